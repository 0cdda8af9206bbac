import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { after, before, test } from 'node:test'
import type { VmessInbound } from '../../src/inbound/vmess.js'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { ChunkSealer } from '../../src/protocol/chunk-sealer.js'
import { Command } from '../../src/protocol/constants.js'
import { requestBodyParams } from '../../src/protocol/session-keys.js'
import type { VmessClientStream } from '../../src/streams/vmess-client-stream.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp } from '../helpers/net.js'
import { probe, reactionClass, scaled } from '../helpers/probe.js'
import { ADDRESSES, genuineRequest, MemoryMetrics, userWithDrain, waitFor } from '../helpers/requests.js'
import {
  echo,
  push,
  replyAfterFin,
  resetAfter,
  type ScriptedTarget,
  startTarget,
  TestDispatcher,
} from '../helpers/targets.js'
import { freePort } from '../helpers/v2ray.js'
import { closeVmess, listenVmess, testVmessInbound } from '../helpers/vmess-server.js'

const DEADLINE_MS = 2_000
/** V2Ray's code defaults (docs/protocol.md §9): the half-close cases must pass with them. */
const V2RAY_TIMEOUTS = { connIdleMs: 300_000, uplinkOnlyMs: 1_000, downlinkOnlyMs: 1_000 }
const { user } = userWithDrain({ min: 1_000, max: 2_000 })
const metrics = new MemoryMetrics()
const dispatcher = new TestDispatcher()
const targets: Record<string, ScriptedTarget> = {}
const uncaught: unknown[] = []
const onUncaught = (error: unknown): void => void uncaught.push(error)
let inbound: VmessInbound
let port = 0

before(async () => {
  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onUncaught)
  targets.echo = await startTarget(echo)
  targets.resetAtOnce = await startTarget(resetAfter(0))
  targets.resetMidStream = await startTarget(resetAfter(50_000))
  dispatcher.slowTo = targets.echo.port
  inbound = testVmessInbound([user], {
    handshakeTimeoutMs: DEADLINE_MS,
    metrics,
    dispatcher,
    timeouts: () => V2RAY_TIMEOUTS,
  })
  port = await listenVmess(inbound)
})
after(async () => {
  await closeVmess(inbound)
  for (const target of Object.values(targets)) await target.close()
  process.off('uncaughtException', onUncaught)
  process.off('unhandledRejection', onUncaught)
})

/** Nothing is left: no connection in any phase, no buffered byte, no target connection, no crash. */
async function assertReleased(withinMs: number, label: string): Promise<void> {
  await waitFor(
    () =>
      metrics.open === 0 &&
      inbound.bufferedBytes === 0 &&
      Object.values(targets).every((t) => t.open.size === 0),
    withinMs,
    () =>
      `${label}: phases ${JSON.stringify([...metrics.phases])}, buffered ${inbound.bufferedBytes}, ` +
      `targets open ${Object.entries(targets)
        .map(([name, t]) => `${name}=${t.open.size}`)
        .join(' ')}`,
  )
  assert.deepEqual(uncaught, [], label)
}

function wireTo(targetPort: number): { header: Buffer; chunk: Buffer; end: Buffer } {
  const request = genuineRequest(user, {
    legacy: false,
    command: Command.Tcp,
    host: ADDRESSES.ipv4,
    port: targetPort,
    padding: 5,
  })
  const sealer = new ChunkSealer(requestBodyParams(request.header))
  return { header: request.wire, chunk: sealer.seal(randomBytes(60_000)), end: sealer.end() }
}

async function rawClient(): Promise<Socket> {
  const socket = await connectTcp(port)
  socket.setNoDelay(true)
  socket.on('error', () => undefined)
  return socket
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

test('an RST from the client at every phase leaves no connection, buffer or target behind, and aborts the target', async () => {
  const phases: { name: string; run: (socket: Socket) => void; resetsTarget: boolean }[] = [
    { name: 'before the header', run: () => undefined, resetsTarget: false },
    {
      name: 'mid-header',
      run: (socket) => void socket.write(wireTo(targets.echo!.port).header.subarray(0, 30)),
      resetsTarget: false,
    },
    {
      name: 'during the drain',
      run: (socket) => void socket.write(randomBytes(200)),
      resetsTarget: false,
    },
    {
      name: 'during the target connect',
      run: (socket) => {
        const wire = wireTo(TestDispatcher.SLOW_PORT)
        socket.write(Buffer.concat([wire.header, wire.chunk.subarray(0, 100)]))
      },
      // The dial completes after the client left: the target is reset at once.
      resetsTarget: false,
    },
    {
      name: 'mid-chunk',
      run: (socket) => {
        const wire = wireTo(targets.echo!.port)
        socket.write(Buffer.concat([wire.header, wire.chunk.subarray(0, 30_000)]))
      },
      resetsTarget: true,
    },
    {
      name: 'during the end chunk',
      run: (socket) => {
        const wire = wireTo(targets.echo!.port)
        socket.write(Buffer.concat([wire.header, wire.chunk, wire.end.subarray(0, 1)]))
      },
      resetsTarget: true,
    },
  ]
  for (const phase of phases) {
    const resetsBefore = targets.echo!.reset.count
    const endsBefore = targets.echo!.ended.count
    const socket = await rawClient()
    phase.run(socket)
    await pause(150)
    socket.resetAndDestroy()
    const slow = phase.name === 'during the target connect'
    await assertReleased(slow ? TestDispatcher.SLOW_DIAL_MS + 1_000 : 1_000, phase.name)
    // A cut-short upload must never reach the target as a clean end.
    assert.equal(targets.echo!.ended.count, endsBefore, `${phase.name}: the target saw a FIN`)
    if (phase.resetsTarget)
      assert.equal(targets.echo!.reset.count, resetsBefore + 1, `${phase.name}: the target was not reset`)
  }
})

async function openClient(targetPort: number): Promise<VmessClientStream> {
  const outbound = new VmessOutbound({
    tag: 'client',
    connectTimeoutMs: 5_000,
    server: { host: '127.0.0.1', port, user, legacy: false, security: 'aes-128-gcm' },
  })
  return outbound.open(Command.Tcp, { network: 'tcp', host: '127.0.0.1', port: targetPort })
}

/** Collects a stream until it ends or fails. */
function collect(
  stream: VmessClientStream,
  timeoutMs = 20_000,
): Promise<{ data: Buffer; error: string | undefined }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      stream.destroy()
      resolve({ data: Buffer.concat(chunks), error: 'timeout' })
    }, timeoutMs)
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('end', () => {
      clearTimeout(timer)
      resolve({ data: Buffer.concat(chunks), error: undefined })
    })
    stream.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve({ data: Buffer.concat(chunks), error: error.code ?? error.message })
    })
  })
}

test('an RST from the target at every phase ends the tunnel with an abort the client sees, and leaves nothing behind', async () => {
  for (const [name, target, send] of [
    ['right after the connect', targets.resetAtOnce!, 10],
    ['mid-stream', targets.resetMidStream!, 200_000],
  ] as const) {
    const stream = await openClient(target.port)
    const result = collect(stream)
    stream.write(randomBytes(send))
    const { error } = await result
    stream.destroy()
    assert.equal(error, 'ECONNRESET', `${name}: the client saw ${error ?? 'a clean end'}`)
    await assertReleased(1_000, name)
  }
  assert.ok((metrics.targetFailures.get('ECONNRESET') ?? 0) >= 2, JSON.stringify([...metrics.targetFailures]))
})

test('a target that is refused, unresolvable or times out: the client gets a FIN and no byte; the failure is counted', async () => {
  const closedPort = await freePort()
  for (const [name, host, targetPort, code] of [
    ['refused', ADDRESSES.ipv4, closedPort, 'ECONNREFUSED'],
    ['unresolvable', 'tsray-test.invalid', 80, 'ENOTFOUND'],
    ['timing out', ADDRESSES.ipv4, TestDispatcher.TIMEOUT_PORT, 'ETIMEDOUT'],
  ] as const) {
    const before = metrics.targetFailures.get(code) ?? 0
    const request = genuineRequest(user, {
      legacy: false,
      command: Command.Tcp,
      host,
      port: targetPort,
      padding: 0,
    })
    const sealer = new ChunkSealer(requestBodyParams(request.header))
    const wire = Buffer.concat([request.wire, sealer.seal(randomBytes(5_000))])
    const reaction = await probe(port, wire, { mode: 'hold', deadlineMs: DEADLINE_MS })
    assert.equal(reactionClass(reaction), '0 bytes, server closed first, fin, prompt', name)
    assert.equal(
      metrics.targetFailures.get(code),
      before + 1,
      `${name}: ${JSON.stringify([...metrics.targetFailures])}`,
    )
    await assertReleased(1_000, name)
  }
})

test('a slow target connect: the tunnel waits for it and then carries every byte', async () => {
  const stream = await openClient(TestDispatcher.SLOW_PORT)
  const data = randomBytes(300_000)
  const result = collect(stream)
  stream.end(data)
  const { data: back, error } = await result
  stream.destroy()
  assert.equal(error, undefined)
  assert.ok(back.equals(data))
  await assertReleased(1_000, 'slow connect')
})

test('half-close: the client FIN reaches the target, and a reply sent 3 s later arrives in full (V2Ray default timers)', async () => {
  const reply = randomBytes(256 * 1024)
  const late = await startTarget(replyAfterFin(3_000, reply))
  targets.late = late
  try {
    const stream = await openClient(late.port)
    const result = collect(stream)
    const started = Date.now()
    stream.end(randomBytes(10_000))
    const { data, error } = await result
    stream.destroy()
    assert.equal(error, undefined)
    assert.ok(Date.now() - started >= 3_000)
    assert.equal(data.length, reply.length)
    assert.ok(data.equals(reply))
    assert.equal(late.ended.count, 1)
    // Both directions ended: nothing stays half-open.
    await assertReleased(V2RAY_TIMEOUTS.uplinkOnlyMs + 1_000, 'late reply')
  } finally {
    delete targets.late
    await late.close()
  }
})

test('half-close: the target FIN reaches the client, and the client keeps sending until it ends too', async () => {
  const received = { bytes: 0, ended: false }
  const early = await startTarget((socket) => {
    socket.end(Buffer.from('bye'))
    socket.on('data', (bytes: Buffer) => (received.bytes += bytes.length))
    socket.on('end', () => (received.ended = true))
  })
  targets.early = early
  try {
    const stream = await openClient(early.port)
    const chunks: Buffer[] = []
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve)
      stream.on('error', reject)
    })
    assert.equal(Buffer.concat(chunks).toString(), 'bye')
    // After the downlink ended the uplink carries on, with pauses shorter than uplinkOnly.
    for (let i = 0; i < 5; i++) {
      stream.write(randomBytes(20_000))
      await pause(300)
    }
    stream.end()
    await waitFor(
      () => received.ended,
      5_000,
      () => `target got ${received.bytes} bytes`,
    )
    assert.equal(received.bytes, 100_000)
    stream.destroy()
    await assertReleased(V2RAY_TIMEOUTS.uplinkOnlyMs + 1_000, 'target FIN first')
  } finally {
    delete targets.early
    await early.close()
  }
})

test('a slow reader (16 KiB/s) while the target pushes: server memory for the tunnel stays ≤ 1 MiB and nothing is lost', async (t) => {
  const total = scaled(8, 256) * 1024 * 1024
  const slowMs = scaled(4_000, 60_000)
  const sent = { sha256: '' }
  const pusher = await startTarget(push(total, sent))
  targets.pusher = pusher
  try {
    const stream = await openClient(pusher.port)
    stream.end()
    const hash = createHash('sha256')
    let read = 0
    let maxBuffered = 0
    const before = process.memoryUsage().arrayBuffers
    let maxArrayBuffers = 0
    // The slow phase: 4 KiB every 250 ms.
    const until = Date.now() + slowMs
    while (Date.now() < until) {
      await pause(250)
      let chunk: Buffer | null
      let budget = 4 * 1024
      while (
        budget > 0 &&
        (chunk = stream.read(Math.min(budget, stream.readableLength || budget)) as Buffer | null) !== null
      ) {
        hash.update(chunk)
        read += chunk.length
        budget -= chunk.length
      }
      maxBuffered = Math.max(maxBuffered, inbound.bufferedBytes)
      maxArrayBuffers = Math.max(maxArrayBuffers, process.memoryUsage().arrayBuffers - before)
    }
    assert.ok(read < total / 2, `read ${read} bytes in the slow phase: not slow`)
    assert.ok(maxBuffered > 0, 'nothing was buffered: the reader was not slow')
    assert.ok(maxBuffered <= 1024 * 1024, `the server held ${maxBuffered} bytes for the tunnel`)
    // Then read the rest at full speed.
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => {
        hash.update(chunk)
        read += chunk.length
      })
      stream.on('end', resolve)
      stream.on('error', reject)
    })
    stream.destroy()
    assert.equal(read, total)
    assert.equal(hash.digest('hex'), sent.sha256)
    await assertReleased(2_000, 'slow reader')
    t.diagnostic(`server buffer peak ${maxBuffered} B, process ArrayBuffer growth peak ${maxArrayBuffers} B`)
  } finally {
    delete targets.pusher
    await pusher.close()
  }
})

failOnLeakedHandles()
