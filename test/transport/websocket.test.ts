// The WebSocket transport against byte sequences written as V2Ray 4.34 (gorilla/websocket), Xray and v2fly write
// them, early data in both spellings, bad input, and tsray ↔ tsray.
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import {
  createStreamDialer,
  createStreamServer,
  type StreamSettings,
} from '../../src/transport/stream-settings.js'
import type { PeerInfo, StreamServer } from '../../src/transport/transport.js'
import {
  MAX_WEBSOCKET_MESSAGE_BYTES,
  WEBSOCKET_HANDSHAKE_TIMEOUT_MS,
  type WebSocketSettings,
  WEBSOCKET_SEND_BYTES,
} from '../../src/transport/websocket.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, listen, randomData, sha256Hex } from '../helpers/net.js'
import { acceptKey, encodeFrame, Opcode, readFrame, readHead } from '../helpers/websocket-frames.js'

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const BASE: WebSocketSettings = {
  path: '/ray',
  host: undefined,
  requireHost: false,
  headers: [],
  earlyData: undefined,
}

/** An upgrade request as gorilla/websocket writes it for V2Ray and Xray (Go's Request.Write: Host, User-Agent, then sorted). */
function gorillaRequest(path: string, extra: Record<string, string> = {}): string {
  const fields: Record<string, string> = {
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
    Upgrade: 'websocket',
    ...extra,
  }
  const sorted = Object.keys(fields).sort()
  return `GET ${path} HTTP/1.1\r\nHost: cdn.example.com\r\nUser-Agent: Go-http-client/1.1\r\n${sorted.map((name) => `${name}: ${fields[name]}\r\n`).join('')}\r\n`
}

interface Served {
  readonly stream: Duplex
  readonly peer: PeerInfo
}

/** A WebSocket stream server whose streams echo, recording each stream and its peer. */
async function echoServer(
  settings: StreamSettings,
): Promise<{ server: StreamServer; port: number; served: Served[] }> {
  const served: Served[] = []
  const server = createStreamServer(settings, {
    listen: '127.0.0.1',
    port: 0,
    onStream: (stream, peer) => {
      served.push({ stream, peer })
      stream.pipe(stream)
    },
  })
  return { server, port: await server.listen(), served }
}

/** Writes `data` to a stream and reads as many bytes back. */
function roundTrip(stream: Duplex, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk)
      total += chunk.length
      if (total >= data.length) {
        stream.off('data', onData)
        resolve(Buffer.concat(chunks))
      }
    }
    stream.on('data', onData)
    stream.once('error', reject)
    stream.write(data)
  })
}

describe('WebSocket server against V2Ray, Xray and v2fly clients (raw bytes)', () => {
  let plain: Awaited<ReturnType<typeof echoServer>>
  let headerEarly: Awaited<ReturnType<typeof echoServer>>
  let pathEarly: Awaited<ReturnType<typeof echoServer>>
  let xrayHost: Awaited<ReturnType<typeof echoServer>>
  before(async () => {
    plain = await echoServer({ network: 'ws', security: 'none', ws: BASE })
    headerEarly = await echoServer({
      network: 'ws',
      security: 'none',
      ws: { ...BASE, earlyData: { maxBytes: 2048, headerName: 'X-Early' } },
    })
    pathEarly = await echoServer({
      network: 'ws',
      security: 'none',
      ws: { ...BASE, earlyData: { maxBytes: 2048, headerName: undefined } },
    })
    xrayHost = await echoServer({
      network: 'ws',
      security: 'none',
      ws: { ...BASE, host: 'cdn.example.com', requireHost: true },
    })
  })
  after(async () => {
    for (const s of [plain, headerEarly, pathEarly, xrayHost]) await s.server.close(100)
  })

  /** The status line of the answer to `request`, after which the server must close. */
  async function statusOf(port: number, request: string): Promise<string> {
    const socket = await connectTcp(port)
    socket.write(request)
    const head = await readHead(socket)
    await new Promise<void>((resolve) => {
      socket.on('close', () => resolve())
      socket.on('end', () => socket.end())
      socket.resume()
    })
    return head.slice(0, head.indexOf('\r\n'))
  }

  test('V2Ray 4.34 handshake: 101 with the right accept key, then masked binary messages both ways', async () => {
    const socket = await connectTcp(plain.port)
    socket.write(gorillaRequest('/ray'))
    const head = await readHead(socket)
    assert.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
    assert.ok(head.includes(`Sec-WebSocket-Accept: ${acceptKey(KEY)}\r\n`), head)
    assert.ok(!/sec-websocket-protocol/i.test(head), 'nothing to echo')
    const data = randomData(70_000)
    socket.write(encodeFrame(data.subarray(0, 1000)))
    socket.write(encodeFrame(data.subarray(1000), { opcode: Opcode.Text }))
    const back: Buffer[] = []
    let total = 0
    while (total < data.length) {
      const frame = await readFrame(socket)
      assert.equal(frame.opcode, Opcode.Binary)
      assert.ok(frame.payload.length <= WEBSOCKET_SEND_BYTES)
      back.push(frame.payload)
      total += frame.payload.length
    }
    assert.equal(sha256Hex(Buffer.concat(back)), sha256Hex(data))
    // V2Ray's close: a close frame (1000), then the TCP close; the server answers and the stream ends.
    const stream = plain.served.at(-1)?.stream
    const ended = new Promise<void>((resolve) => stream?.once('close', () => resolve()))
    socket.write(encodeFrame(Buffer.from([0x03, 0xe8]), { opcode: Opcode.Close }))
    const close = await readFrame(socket)
    assert.equal(close.opcode, Opcode.Close)
    socket.end()
    await ended
    socket.destroy()
  })

  test('Xray early data: base64url in Sec-WebSocket-Protocol is echoed and read first; a URL-safe alphabet or a standard one', async () => {
    for (const encoding of ['base64url', 'base64'] as const) {
      const early = randomData(1500)
      const encoded = early.toString(encoding)
      const socket = await connectTcp(plain.port)
      socket.write(gorillaRequest('/ray', { 'Sec-WebSocket-Protocol': encoded }))
      const head = await readHead(socket)
      assert.match(head, /^HTTP\/1\.1 101 /)
      assert.ok(head.includes(`Sec-WebSocket-Protocol: ${encoded}\r\n`), `${encoding} echoed: ${head}`)
      const frame = await readFrame(socket)
      assert.equal(sha256Hex(frame.payload), sha256Hex(early), encoding)
      socket.destroy()
    }
  })

  test('v2fly early data: in the configured header, or appended to the path', async () => {
    const early = randomData(2048)
    const viaHeader = await connectTcp(headerEarly.port)
    viaHeader.write(gorillaRequest('/ray', { 'X-Early': early.toString('base64url') }))
    assert.match(await readHead(viaHeader), /^HTTP\/1\.1 101 /)
    assert.equal(sha256Hex((await readFrame(viaHeader)).payload), sha256Hex(early))
    viaHeader.destroy()
    const viaPath = await connectTcp(pathEarly.port)
    viaPath.write(gorillaRequest(`/ray${early.toString('base64url')}`))
    assert.match(await readHead(viaPath), /^HTTP\/1\.1 101 /)
    assert.equal(sha256Hex((await readFrame(viaPath)).payload), sha256Hex(early))
    viaPath.destroy()
  })

  test('anything but an upgrade on the path gets an ordinary 404 and no stream', async () => {
    const before = plain.served.length
    assert.equal(await statusOf(plain.port, 'GET /ray HTTP/1.1\r\nHost: a\r\n\r\n'), 'HTTP/1.1 404 Not Found')
    assert.equal(await statusOf(plain.port, gorillaRequest('/other')), 'HTTP/1.1 404 Not Found')
    assert.equal(await statusOf(plain.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 'HTTP/1.1 404 Not Found')
    assert.equal(
      await statusOf(xrayHost.port, gorillaRequest('/ray').replace('cdn.example.com', 'else.example')),
      'HTTP/1.1 404 Not Found',
    )
    assert.equal(
      await statusOf(
        plain.port,
        'GET /ray HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n',
      ),
      'HTTP/1.1 400 Bad Request',
    )
    assert.equal(await statusOf(plain.port, '\x16\x03\x01\x00\x05hello\r\n\r\n'), 'HTTP/1.1 400 Bad Request')
    assert.equal(plain.served.length, before, 'no stream reached the VMess side')
  })

  test('an oversized frame closes with 1009 before its payload arrives; a malformed one with 1002', async () => {
    const oversized = await connectTcp(plain.port)
    oversized.write(gorillaRequest('/ray'))
    await readHead(oversized)
    oversized.write(encodeFrame(Buffer.alloc(0), { length: MAX_WEBSOCKET_MESSAGE_BYTES + 1 }))
    const tooBig = await readFrame(oversized)
    assert.equal(tooBig.opcode, Opcode.Close)
    assert.equal(tooBig.payload.readUInt16BE(0), 1009)
    oversized.destroy()
    for (const bad of [
      encodeFrame(Buffer.from('x'), { masked: false }),
      encodeFrame(Buffer.from('x'), { opcode: 3 }),
    ]) {
      const socket = await connectTcp(plain.port)
      socket.write(gorillaRequest('/ray'))
      await readHead(socket)
      socket.write(bad)
      const close = await readFrame(socket)
      assert.equal(close.opcode, Opcode.Close)
      assert.equal(close.payload.readUInt16BE(0), 1002)
      socket.destroy()
    }
  })

  test('a request still unfinished after the handshake timeout is dropped, however it trickles', async () => {
    const socket = await connectTcp(plain.port)
    socket.on('error', () => undefined)
    const started = Date.now()
    socket.write('GET /ray HTTP/1.1\r\n')
    const trickle = setInterval(() => socket.write('X-A: b\r\n'), 500)
    socket.resume()
    socket.on('end', () => socket.end())
    await new Promise<void>((resolve) => socket.once('close', () => resolve()))
    clearInterval(trickle)
    const elapsed = Date.now() - started
    assert.ok(
      elapsed >= WEBSOCKET_HANDSHAKE_TIMEOUT_MS - 100 && elapsed < WEBSOCKET_HANDSHAKE_TIMEOUT_MS + 1_000,
      `${elapsed} ms`,
    )
  })

  test('X-Forwarded-For names the client when the request comes from loopback', async () => {
    const socket = await connectTcp(plain.port)
    socket.write(gorillaRequest('/ray', { 'X-Forwarded-For': '198.51.100.1, 203.0.113.5' }))
    await readHead(socket)
    assert.deepEqual(plain.served.at(-1)?.peer, { remoteAddress: '203.0.113.5', remotePort: 0 })
    socket.destroy()
  })
})

describe('WebSocket client against V2Ray-, Xray- and v2fly-shaped servers (raw bytes)', () => {
  let server: Server
  let port = 0
  const heads: string[] = []
  let echoProtocol = true
  before(async () => {
    server = createServer((socket: Socket) => {
      socket.on('error', () => socket.destroy())
      void (async () => {
        const head = await readHead(socket)
        heads.push(head)
        const key = /Sec-WebSocket-Key: (\S+)/i.exec(head)?.[1] ?? ''
        const protocol = /Sec-WebSocket-Protocol: (\S+)/i.exec(head)?.[1]
        const echo = protocol !== undefined && echoProtocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ''
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n${echo}\r\n`,
        )
        if (protocol !== undefined)
          socket.write(encodeFrame(Buffer.from(protocol, 'base64url'), { masked: false }))
        for (;;) {
          const frame = await readFrame(socket)
          if (frame.opcode === Opcode.Close) break
          socket.write(encodeFrame(frame.payload, { masked: false }))
        }
        socket.end()
      })().catch(() => socket.destroy())
    })
    port = await listen(server)
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  test('sends the configured path and Host, splits long writes into messages, and closes with a close frame', async () => {
    const dial = createStreamDialer(
      {
        network: 'ws',
        security: 'none',
        ws: { ...BASE, host: 'cdn.example.com', headers: [['X-Custom', 'yes']] },
      },
      { connectTimeoutMs: 2_000 },
    )
    const stream = await dial('127.0.0.1', port)
    const data = randomData(100_000)
    assert.equal(sha256Hex(await roundTrip(stream, data)), sha256Hex(data))
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()))
    stream.destroy()
    await closed
    const head = heads.at(-1) ?? ''
    assert.match(head, /^GET \/ray HTTP\/1\.1\r\n/)
    assert.match(head, /\r\nHost: cdn\.example\.com\r\n/i)
    assert.match(head, /\r\nX-Custom: yes\r\n/)
  })

  test('Xray early data: the first write rides in Sec-WebSocket-Protocol, echoed (Xray) or not (v2fly)', async () => {
    for (const echo of [true, false]) {
      echoProtocol = echo
      const dial = createStreamDialer(
        {
          network: 'ws',
          security: 'none',
          ws: { ...BASE, earlyData: { maxBytes: 2048, headerName: 'Sec-WebSocket-Protocol' } },
        },
        { connectTimeoutMs: 2_000 },
      )
      const stream = await dial('127.0.0.1', port)
      const early = randomData(2000)
      // The server sends the early data back once as its own first message, then echoes every message.
      const back = await roundTrip(stream, early)
      assert.equal(sha256Hex(back.subarray(0, early.length)), sha256Hex(early), `echo ${echo}`)
      const protocol = /Sec-WebSocket-Protocol: (\S+)/i.exec(heads.at(-1) ?? '')?.[1]
      assert.equal(protocol, early.toString('base64url'))
      stream.destroy()
    }
    echoProtocol = true
  })

  test('v2fly early data without a header name goes at the end of the path; a longer write keeps its tail', async () => {
    const dial = createStreamDialer(
      {
        network: 'ws',
        security: 'none',
        ws: { ...BASE, earlyData: { maxBytes: 100, headerName: undefined } },
      },
      { connectTimeoutMs: 2_000 },
    )
    const stream = await dial('127.0.0.1', port)
    const first = randomData(300)
    const back = await new Promise<Buffer>((resolve) => {
      stream.once('data', (chunk: Buffer) => resolve(chunk))
      stream.write(first)
    })
    // Only the tail came back: the early part was in the path, where this server does not look.
    assert.equal(sha256Hex(back), sha256Hex(first.subarray(100)))
    assert.ok(
      (heads.at(-1) ?? '').startsWith(`GET /ray${first.subarray(0, 100).toString('base64url')} HTTP/1.1\r\n`),
    )
    stream.destroy()
  })

  test('a server that answers 404 makes the dial fail with a TransportError', async () => {
    const refusing = createServer((socket) => {
      socket.on('error', () => socket.destroy())
      socket.once('data', () => socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'))
    })
    const refusingPort = await listen(refusing)
    try {
      const dial = createStreamDialer(
        { network: 'ws', security: 'none', ws: BASE },
        { connectTimeoutMs: 2_000 },
      )
      await assert.rejects(async () => dial('127.0.0.1', refusingPort), {
        name: 'TransportError',
        code: 'WEBSOCKET_HANDSHAKE',
      })
    } finally {
      await new Promise<void>((resolve) => refusing.close(() => resolve()))
    }
  })
})

describe('WebSocket tsray ↔ tsray', () => {
  const variants: [string, WebSocketSettings][] = [
    ['no early data', BASE],
    ["Xray's ?ed", { ...BASE, earlyData: { maxBytes: 2048, headerName: 'Sec-WebSocket-Protocol' } }],
    ["v2fly's header", { ...BASE, earlyData: { maxBytes: 1024, headerName: 'X-Early-Data' } }],
    ["v2fly's path", { ...BASE, earlyData: { maxBytes: 1024, headerName: undefined } }],
  ]
  for (const [name, ws] of variants) {
    test(`${name}: random data both ways, several streams at once`, async () => {
      const settings: StreamSettings = { network: 'ws', security: 'none', ws }
      const { server, port } = await echoServer(settings)
      try {
        const dial = createStreamDialer(settings, { connectTimeoutMs: 2_000 })
        const payloads = [1, 2048, 5000, 1_500_000].map((n) => randomData(n))
        const backs = await Promise.all(
          payloads.map(async (data) => {
            const stream = await dial('127.0.0.1', port)
            const back = await roundTrip(stream, data)
            stream.destroy()
            return back
          }),
        )
        assert.deepEqual(backs.map(sha256Hex), payloads.map(sha256Hex))
      } finally {
        await server.close(100)
      }
    })
  }

  test('ending the client side keeps the WebSocket open until the server is done too', async () => {
    const served: Duplex[] = []
    const server = createStreamServer(
      { network: 'ws', security: 'none', ws: BASE },
      { listen: '127.0.0.1', port: 0, onStream: (stream) => served.push(stream) },
    )
    const port = await server.listen()
    try {
      const client = await createStreamDialer(
        { network: 'ws', security: 'none', ws: BASE },
        { connectTimeoutMs: 2_000 },
      )('127.0.0.1', port)
      const received: Buffer[] = []
      client.on('data', (chunk: Buffer) => received.push(chunk))
      client.end('uplink done')
      await new Promise((resolve) => setTimeout(resolve, 50))
      const stream = served[0]
      assert.ok(stream !== undefined)
      const uplink: Buffer[] = []
      stream.on('data', (chunk: Buffer) => uplink.push(chunk))
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.equal(Buffer.concat(uplink).toString(), 'uplink done')
      // The server still answers after the client's end, then finishes; the client closes when it has both.
      stream.end('downlink after the uplink ended')
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.equal(Buffer.concat(received).toString(), 'downlink after the uplink ended')
      // Done both ways: the client closes, and the server's stream ends and closes with it.
      const serverClosed = new Promise<void>((resolve) => stream.once('close', () => resolve()))
      client.destroy()
      await serverClosed
    } finally {
      await server.close(100)
    }
  })
})

failOnLeakedHandles()
