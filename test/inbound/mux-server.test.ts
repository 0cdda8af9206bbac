import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { Duplex, PassThrough } from 'node:stream'
import { after, before, test } from 'node:test'
import fc from 'fast-check'
import { MAX_MUX_SESSIONS, serveMux } from '../../src/inbound/mux-server.js'
import type { AccessRecord, VmessInbound } from '../../src/inbound/vmess.js'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { Command } from '../../src/protocol/constants.js'
import { encodeKeepFrames } from '../../src/protocol/mux-data-frames.js'
import type { Dispatcher } from '../../src/outbound/outbound.js'
import {
  encodeMuxFrame,
  type MuxFrame,
  MuxFrameParser,
  MuxOption,
  MuxStatus,
  XUDP_SESSION_ID,
} from '../../src/protocol/mux-frame.js'
import {
  encodePacketAddrDatagram,
  PACKET_ADDR_DOMAIN,
  parsePacketAddrDatagram,
} from '../../src/protocol/udp-packet.js'
import { createUser } from '../../src/protocol/user.js'
import type { VmessClientStream } from '../../src/streams/vmess-client-stream.js'
import type { Destination } from '../../src/types.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { describeFrames, FrameReader } from '../helpers/mux.js'
import { memoryLogger } from '../helpers/logger.js'
import { listen, randomData, startEchoServer, startUdpEchoServer } from '../helpers/net.js'
import { closeVmess, listenVmess, testVmessInbound } from '../helpers/vmess-server.js'

const user = createUser({ id: 'b831381d-6324-4d53-ad4f-8cda48b30811', email: 'mux@test' })
const CONN_IDLE_MS = 400
let echo: Awaited<ReturnType<typeof startEchoServer>>
let udpA: Awaited<ReturnType<typeof startUdpEchoServer>>
let udpB: Awaited<ReturnType<typeof startUdpEchoServer>>
let inbound: VmessInbound
let idleInbound: VmessInbound
let port = 0
let idlePort = 0
const access: AccessRecord[] = []

before(async () => {
  echo = await startEchoServer()
  udpA = await startUdpEchoServer()
  udpB = await startUdpEchoServer()
  inbound = testVmessInbound([user], { onAccess: (record) => access.push(record) })
  port = await listenVmess(inbound)
  idleInbound = testVmessInbound([user], {
    timeouts: () => ({ connIdleMs: CONN_IDLE_MS, uplinkOnlyMs: 1_000, downlinkOnlyMs: 1_000 }),
  })
  idlePort = await listenVmess(idleInbound)
})

after(async () => {
  await closeVmess(inbound)
  await closeVmess(idleInbound)
  await echo.close()
  await udpA.close()
  await udpB.close()
})

/** A VMess Cmd 3 connection whose plaintext body the test frames by hand; `socket` is the TCP below it. */
async function openMux(serverPort = port): Promise<{ stream: VmessClientStream; reader: FrameReader }> {
  const outbound = new VmessOutbound({
    tag: 'raw',
    connectTimeoutMs: 5_000,
    server: { host: '127.0.0.1', port: serverPort, user, legacy: false, security: 'aes-128-gcm' },
  })
  const stream = await outbound.open(Command.Mux, { network: 'tcp', host: 'v1.mux.cool', port: 0 })
  stream.on('error', () => undefined)
  return { stream, reader: new FrameReader(stream) }
}

const newTcp = (sessionId: number, targetPort: number, data?: Buffer): Buffer =>
  encodeMuxFrame({
    sessionId,
    status: MuxStatus.New,
    option: 0,
    network: 'tcp',
    host: '127.0.0.1',
    port: targetPort,
    ...(data !== undefined ? { data } : {}),
  })
const keep = (sessionId: number, data: Buffer): Buffer =>
  encodeMuxFrame({ sessionId, status: MuxStatus.Keep, option: 0, data })
const end = (sessionId: number, option = 0): Buffer =>
  encodeMuxFrame({ sessionId, status: MuxStatus.End, option })

const dataOf = (frames: MuxFrame[], sessionId: number): Buffer =>
  Buffer.concat(frames.filter((f) => f.sessionId === sessionId && f.data !== undefined).map((f) => f.data!))
const isEnd = (f: MuxFrame, sessionId: number): boolean =>
  f.sessionId === sessionId && f.status === MuxStatus.End

test('serveMux relays a TCP sub-session: Keep frames without an address back, End after the target closes', async () => {
  const { stream, reader } = await openMux()
  try {
    const data = randomData(100_000)
    stream.write(
      Buffer.concat([newTcp(1, echo.port, data.subarray(0, 1000)), encodeKeepFrames(1, data.subarray(1000))]),
    )
    stream.write(end(1))
    const frames = await reader.until((all) => all.some((f) => isEnd(f, 1)))
    const replies = frames.filter((f) => f.sessionId === 1)
    assert.ok(replies.slice(0, -1).every((f) => f.status === MuxStatus.Keep && f.host === undefined))
    assert.ok(
      replies.every((f) => (f.data?.length ?? 0) <= 8 * 1024),
      'frames of at most 8 KiB',
    )
    assert.equal(replies.at(-1)!.option & MuxOption.Error, 0)
    assert.deepEqual(dataOf(frames, 1), data)
    assert.ok(access.some((r) => r.destination === `tcp:127.0.0.1:${echo.port}` && r.status === 'accepted'))
  } finally {
    stream.destroy()
  }
})

test('serveMux keeps many sub-sessions apart on one connection', async () => {
  const { stream, reader } = await openMux()
  try {
    const sent = new Map<number, Buffer>()
    for (let id = 1; id <= 40; id++) {
      const data = randomData(id * 997)
      sent.set(id, data)
      stream.write(Buffer.concat([newTcp(id, echo.port), encodeKeepFrames(id, data), end(id)]))
    }
    const frames = await reader.until((all) => [...sent.keys()].every((id) => all.some((f) => isEnd(f, id))))
    for (const [id, data] of sent) assert.deepEqual(dataOf(frames, id), data, `session ${id}`)
  } finally {
    stream.destroy()
  }
})

test('serveMux answers frames for an unknown session with End, and ignores KeepAlive data', async () => {
  const { stream, reader } = await openMux()
  try {
    stream.write(
      encodeMuxFrame({ sessionId: 9, status: MuxStatus.KeepAlive, option: 0, data: randomData(300) }),
    )
    stream.write(keep(77, Buffer.from('who?')))
    const frames = await reader.until((all) => all.some((f) => isEnd(f, 77)))
    assert.equal(frames.length, 1, describeFrames(frames))
    // Still usable after both.
    stream.write(newTcp(1, echo.port, Buffer.from('ping')))
    await reader.until((all) => dataOf(all, 1).toString() === 'ping')
  } finally {
    stream.destroy()
  }
})

test('serveMux answers a sub-session whose target refuses with End and the Error option', async () => {
  const closed = createServer()
  const closedPort = await listen(closed)
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  const { stream, reader } = await openMux()
  try {
    stream.write(newTcp(3, closedPort, Buffer.from('anyone?')))
    const frames = await reader.until((all) => all.some((f) => isEnd(f, 3)))
    assert.equal(frames.find((f) => isEnd(f, 3))!.option & MuxOption.Error, MuxOption.Error)
    assert.ok(access.some((r) => r.destination === `tcp:127.0.0.1:${closedPort}` && r.status === 'rejected'))
  } finally {
    stream.destroy()
  }
})

test(`serveMux refuses a New frame beyond ${MAX_MUX_SESSIONS} open sub-sessions with End and Error; the others keep working`, async () => {
  const { stream, reader } = await openMux()
  try {
    const flood = Array.from({ length: MAX_MUX_SESSIONS + 2 }, (_, index) => newTcp(index + 1, echo.port))
    stream.write(Buffer.concat(flood))
    const frames = await reader.until((all) => all.some((f) => isEnd(f, MAX_MUX_SESSIONS + 2)))
    const refused = frames.filter((f) => f.status === MuxStatus.End).map((f) => [f.sessionId, f.option])
    assert.deepEqual(refused, [
      [MAX_MUX_SESSIONS + 1, MuxOption.Error],
      [MAX_MUX_SESSIONS + 2, MuxOption.Error],
    ])
    stream.write(keep(MAX_MUX_SESSIONS, Buffer.from('still here')))
    await reader.until((all) => dataOf(all, MAX_MUX_SESSIONS).toString() === 'still here')
    // Ending one frees a place.
    stream.write(end(1))
    await reader.until((all) => all.some((f) => isEnd(f, 1)))
    stream.write(newTcp(500, echo.port, Buffer.from('room again')))
    await reader.until((all) => dataOf(all, 500).toString() === 'room again')
  } finally {
    stream.destroy()
  }
})

for (const [name, bytes] of [
  ['a metadata length over 512', Buffer.of(0x02, 0x01, 0, 1, 1, 0)],
  ['a metadata length under 4', Buffer.of(0x00, 0x02, 0, 1)],
  ['an unknown status', Buffer.of(0x00, 0x04, 0, 1, 9, 0)],
  ['an unknown network', Buffer.of(0x00, 0x0c, 0, 1, 1, 0, 7, 0, 80, 1, 127, 0, 0, 1)],
  ['a New frame whose address overruns the metadata', Buffer.of(0x00, 0x08, 0, 1, 1, 0, 1, 0, 80, 2)],
] as const) {
  test(`serveMux closes the connection cleanly on ${name}, and serves the next one`, async () => {
    const { stream, reader } = await openMux()
    try {
      stream.write(Buffer.concat([newTcp(1, echo.port), bytes]))
      const frames = await reader.until((_, ended) => ended)
      assert.ok(
        frames.every((f) => f.sessionId === 1),
        describeFrames(frames),
      )
    } finally {
      stream.destroy()
    }
    const next = await openMux()
    try {
      next.stream.write(newTcp(1, echo.port, Buffer.from('next')))
      await next.reader.until((all) => dataOf(all, 1).toString() === 'next')
    } finally {
      next.stream.destroy()
    }
  })
}

test('XUDP: datagrams reach the peer each Keep frame names, and replies carry their source (session 0)', async () => {
  const { stream, reader } = await openMux()
  try {
    const globalId = randomData(8)
    stream.write(
      encodeMuxFrame({
        sessionId: XUDP_SESSION_ID,
        status: MuxStatus.New,
        option: 0,
        network: 'udp',
        host: '127.0.0.1',
        port: udpA.port,
        globalId,
        data: Buffer.from('to A first'),
      }),
    )
    // Keep frames as Xray's xudp.PacketWriter builds them: 00 00 | 02 | 01 | 02 | port | addr.
    const keepTo = (targetPort: number, text: string): Buffer =>
      Buffer.concat([
        Buffer.of(
          0x00,
          0x0c,
          0x00,
          0x00,
          0x02,
          0x01,
          0x02,
          targetPort >> 8,
          targetPort & 0xff,
          0x01,
          127,
          0,
          0,
          1,
        ),
        Buffer.of(0, text.length),
        Buffer.from(text),
      ])
    await new Promise((resolve) => setTimeout(resolve, 20))
    stream.write(keepTo(udpB.port, 'to B'))
    await new Promise((resolve) => setTimeout(resolve, 20))
    stream.write(keep(XUDP_SESSION_ID, Buffer.from('to A again')))
    const frames = await reader.until((all) => all.filter((f) => f.data !== undefined).length === 3)
    const got = frames.map((f) => [f.sessionId, f.status, f.host, f.port, f.data?.toString()])
    assert.deepEqual(got, [
      [0, MuxStatus.Keep, '127.0.0.1', udpA.port, 'to A first'],
      [0, MuxStatus.Keep, '127.0.0.1', udpB.port, 'to B'],
      [0, MuxStatus.Keep, '127.0.0.1', udpA.port, 'to A again'],
    ])
  } finally {
    stream.destroy()
  }
})

test('XUDP with a GlobalID keeps its source port when another connection takes it over or resumes it', async () => {
  // Replies with the port each datagram came from.
  const reporter = createSocket('udp4')
  reporter.on('message', (_payload, remote) =>
    reporter.send(String(remote.port), remote.port, remote.address),
  )
  await new Promise<void>((resolve) => reporter.bind(0, '127.0.0.1', () => resolve()))
  const reporterPort = reporter.address().port
  const globalId = randomData(8)
  const xudpNew = encodeMuxFrame({
    sessionId: XUDP_SESSION_ID,
    status: MuxStatus.New,
    option: 0,
    network: 'udp',
    host: '127.0.0.1',
    port: reporterPort,
    globalId,
    data: Buffer.from('which port?'),
  })
  const sourcePort = async (reader: FrameReader): Promise<string> => {
    const frames = await reader.until((all) => all.some((f) => f.data !== undefined))
    return frames.find((f) => f.data !== undefined)!.data!.toString()
  }
  const first = await openMux()
  const second = await openMux()
  const third = await openMux()
  try {
    first.stream.write(xudpNew)
    const port1 = await sourcePort(first.reader)
    second.stream.write(xudpNew)
    assert.equal(await sourcePort(second.reader), port1)
    // The first connection's session was handed over: it is told End.
    await first.reader.until((all) => all.some((f) => isEnd(f, XUDP_SESSION_ID)))
    second.stream.destroy()
    await new Promise((resolve) => setTimeout(resolve, 50))
    third.stream.write(xudpNew)
    assert.equal(await sourcePort(third.reader), port1)
    third.stream.write(end(XUDP_SESSION_ID))
  } finally {
    first.stream.destroy()
    second.stream.destroy()
    third.stream.destroy()
    await new Promise<void>((resolve) => reporter.close(() => resolve()))
  }
})

test('a V2Ray-style UDP sub-session gets one datagram per Keep frame and no addresses', async () => {
  const { stream, reader } = await openMux()
  try {
    stream.write(
      encodeMuxFrame({
        sessionId: 1,
        status: MuxStatus.New,
        option: 0,
        network: 'udp',
        host: '127.0.0.1',
        port: udpA.port,
        data: randomData(2000),
      }),
    )
    stream.write(keep(1, randomData(1)))
    const frames = await reader.until((all) => all.length === 2)
    assert.deepEqual(
      frames.map((f) => [f.sessionId, f.status, f.host, f.data?.length]).sort(),
      [
        [1, MuxStatus.Keep, undefined, 1],
        [1, MuxStatus.Keep, undefined, 2000],
      ].sort(),
    )
  } finally {
    stream.destroy()
  }
})

test('packetaddr: a Cmd 2 request to sp.packet-addr.v2fly.arpa reaches many peers and names each reply source', async () => {
  const outbound = new VmessOutbound({
    tag: 'raw',
    connectTimeoutMs: 5_000,
    server: { host: '127.0.0.1', port, user, legacy: false, security: 'chacha20-poly1305' },
  })
  const stream = await outbound.open(Command.Udp, { network: 'udp', host: PACKET_ADDR_DOMAIN, port: 0 })
  stream.on('error', () => undefined)
  try {
    const replies: string[] = []
    const done = new Promise<void>((resolve) => {
      stream.on('data', (datagram: Buffer) => {
        const reply = parsePacketAddrDatagram(datagram)
        replies.push(`${reply.host}:${reply.port}:${reply.payload.toString()}`)
        if (replies.length === 3) resolve()
      })
    })
    stream.write(encodePacketAddrDatagram({ host: '127.0.0.1', port: udpA.port }, Buffer.from('one')))
    stream.write(encodePacketAddrDatagram({ host: '127.0.0.1', port: udpB.port }, Buffer.from('two')))
    stream.write(Buffer.of(0x09, 1, 2)) // not a packetaddr datagram: dropped
    stream.write(encodePacketAddrDatagram({ host: '127.0.0.1', port: udpA.port }, Buffer.from('three')))
    await done
    assert.deepEqual(
      replies.sort(),
      [`127.0.0.1:${udpA.port}:one`, `127.0.0.1:${udpA.port}:three`, `127.0.0.1:${udpB.port}:two`].sort(),
    )
  } finally {
    stream.destroy()
  }
})

/** A TCP server that accepts and never reads, counting what it got; the kernel buffers fill and stop the sender. */
async function startStalledServer(): Promise<{ port: number; sockets: Socket[]; server: Server }> {
  const sockets: Socket[] = []
  const server = createServer((socket) => {
    socket.on('error', () => undefined)
    socket.pause()
    sockets.push(socket)
  })
  return { port: await listen(server), sockets, server }
}

/** A TCP pass-through to the VMess server (with back-pressure) that counts the client's bytes it forwarded. */
async function startCountingProxy(
  targetPort: number,
): Promise<{ port: number; uplink: () => number; close: () => Promise<void> }> {
  let uplink = 0
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    client.on('error', () => undefined)
    const upstream = connect({ host: '127.0.0.1', port: targetPort })
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    sockets.add(client).add(upstream)
    client.on('data', (bytes: Buffer) => (uplink += bytes.length))
    client.pipe(upstream)
    upstream.pipe(client)
  })
  const port = await listen(server)
  return {
    port,
    uplink: () => uplink,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

test('back-pressure: a sub-stream whose target does not read stops the connection reading, so memory stays bounded', async () => {
  const stalled = await startStalledServer()
  const proxy = await startCountingProxy(port)
  const { stream, reader } = await openMux(proxy.port)
  try {
    const total = 48 * 1024 * 1024
    stream.write(Buffer.concat([newTcp(1, stalled.port), encodeKeepFrames(1, Buffer.alloc(total))]))
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    // The server stopped reading: only kernel buffers' worth got past the proxy.
    assert.ok(proxy.uplink() < total / 2, `${proxy.uplink()} of ${total} bytes reached the server`)
    assert.equal(reader.ended, false)
  } finally {
    stream.destroy()
    for (const socket of stalled.sockets) socket.destroy()
    await new Promise<void>((resolve) => stalled.server.close(() => resolve()))
    await proxy.close()
  }
})

test('back-pressure: a client that does not read stops the target being read, so memory stays bounded', async () => {
  const total = 48 * 1024 * 1024
  let pushed = 0
  const sockets: Socket[] = []
  const flood = createServer((socket) => {
    socket.on('error', () => undefined)
    sockets.push(socket)
    const chunk = Buffer.alloc(1024 * 1024)
    const pump = (): void => {
      while (pushed < total) {
        pushed += chunk.length
        if (!socket.write(chunk)) {
          socket.once('drain', pump)
          return
        }
      }
    }
    pump()
  })
  const floodPort = await listen(flood)
  const { stream } = await openMux()
  try {
    stream.write(newTcp(1, floodPort, Buffer.from('go')))
    stream.pause()
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    assert.ok(pushed < total / 2, `${pushed} of ${total} bytes left the target`)
  } finally {
    stream.destroy()
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => flood.close(() => resolve()))
  }
})

test('a mux connection without sub-sessions closes after connIdle', async () => {
  const { stream, reader } = await openMux(idlePort)
  try {
    stream.write(newTcp(1, echo.port, Buffer.from('x')))
    await reader.until((all) => dataOf(all, 1).length === 1)
    // The server's idle clock starts once the last sub-session is gone, after this End arrives.
    const start = Date.now()
    stream.write(end(1))
    await reader.until((_, ended) => ended, 3_000)
    assert.ok(Date.now() - start >= CONN_IDLE_MS - 20, `closed after ${Date.now() - start} ms`)
    assert.ok(reader.frames.some((f) => isEnd(f, 1)))
  } finally {
    stream.destroy()
  }
})

test('the client ending the connection half-closes every sub-session; the server ends once they finish', async () => {
  const { stream, reader } = await openMux()
  try {
    stream.write(
      Buffer.concat([newTcp(1, echo.port, Buffer.from('a')), newTcp(2, echo.port, Buffer.from('b'))]),
    )
    stream.end()
    const frames = await reader.until((_, ended) => ended)
    assert.equal(dataOf(frames, 1).toString(), 'a')
    assert.equal(dataOf(frames, 2).toString(), 'b')
    assert.ok(frames.some((f) => isEnd(f, 1)) && frames.some((f) => isEnd(f, 2)))
  } finally {
    stream.destroy()
  }
})

/** A transport the test feeds by hand; what the server writes is collected. */
class FakeTransport extends Duplex {
  readonly written: Buffer[] = []
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.written.push(chunk)
    callback()
  }
}

/** A dispatcher whose TCP targets echo in memory and whose UDP channels echo each datagram. */
function echoDispatcher(): {
  dispatcher: Dispatcher
  targets: PassThrough[]
  channels: { closed: boolean }[]
} {
  const targets: PassThrough[] = []
  const channels: { closed: boolean }[] = []
  const dispatcher: Dispatcher = {
    dialTcp: () => {
      const target = new PassThrough()
      targets.push(target)
      return Promise.resolve(target)
    },
    openUdp: () => {
      const state = { closed: false }
      channels.push(state)
      let onPacket: (payload: Buffer, from: Destination) => void = () => undefined
      const onClose: (() => void)[] = []
      return {
        send: (payload, to) => setImmediate(() => state.closed || onPacket(payload, to)),
        onPacket: (handler) => (onPacket = handler),
        onClose: (handler) => void onClose.push(handler),
        close: () => {
          if (state.closed) return
          state.closed = true
          for (const handler of onClose) handler()
        },
      }
    },
  }
  return { dispatcher, targets, channels }
}

const anyFrame = fc.oneof(
  fc
    .record({
      sessionId: fc.integer({ min: 0, max: 4 }),
      network: fc.constantFrom('tcp' as const, 'udp' as const),
      port: fc.integer({ min: 1, max: 65535 }),
      data: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
      zeroGlobalId: fc.boolean(),
    })
    .map(({ sessionId, network, port, data, zeroGlobalId }) =>
      encodeMuxFrame({
        sessionId,
        status: MuxStatus.New,
        option: 0,
        network,
        host: '127.0.0.1',
        port,
        // Only all-zero GlobalIDs: a real one would keep its channel for a minute after the connection.
        ...(network === 'udp' && zeroGlobalId ? { globalId: Buffer.alloc(8) } : {}),
        ...(data !== undefined ? { data: Buffer.from(data) } : {}),
      }),
    ),
  fc
    .record({
      sessionId: fc.integer({ min: 0, max: 4 }),
      data: fc.uint8Array({ maxLength: 64 }),
      to: fc.boolean(),
    })
    .map(({ sessionId, data, to }) =>
      encodeMuxFrame({
        sessionId,
        status: MuxStatus.Keep,
        option: 0,
        data: Buffer.from(data),
        ...(to ? { host: '127.0.0.2', port: 53 } : {}),
      }),
    ),
  fc
    .record({ sessionId: fc.integer({ min: 0, max: 4 }), option: fc.constantFrom(0, MuxOption.Error) })
    .map(({ sessionId, option }) => end(sessionId, option)),
  fc
    .uint8Array({ maxLength: 32 })
    .map((data) =>
      encodeMuxFrame({ sessionId: 1, status: MuxStatus.KeepAlive, option: 0, data: Buffer.from(data) }),
    ),
  fc.uint8Array({ minLength: 1, maxLength: 12 }).map((junk) => Buffer.from(junk)),
)

test('serveMux survives random frame sequences and junk, split anywhere: no throw, nothing left open after the connection', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(anyFrame, { maxLength: 30 }),
      fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }),
      fc.boolean(),
      async (frames, splits, finish) => {
        const transport = new FakeTransport()
        const { dispatcher, targets, channels } = echoDispatcher()
        serveMux(transport, {
          dispatcher,
          context: { inboundTag: 'in', source: '127.0.0.1:1', user: '' },
          timeouts: { connIdleMs: 5_000, uplinkOnlyMs: 100, downlinkOnlyMs: 100 },
          logger: memoryLogger(),
        })
        const bytes = Buffer.concat(frames)
        for (let offset = 0, index = 0; offset < bytes.length; index++) {
          const size = splits[index % splits.length]!
          transport.push(bytes.subarray(offset, offset + size))
          offset += size
        }
        if (finish) transport.push(null)
        await new Promise((resolve) => setImmediate(resolve))
        transport.destroy()
        await new Promise((resolve) => setTimeout(resolve, 5))
        assert.ok(targets.every((target) => target.destroyed || target.writableEnded))
        assert.ok(channels.every((channel) => channel.closed))
        // Whatever the server wrote is well-formed Mux.Cool.
        new MuxFrameParser().push(Buffer.concat(transport.written))
      },
    ),
    { numRuns: 300 },
  )
})

failOnLeakedHandles()
