// HTTPUpgrade against the bytes Xray and v2fly 5 write (Go's Request.Write and Response.Write), bad requests,
// 0-RTT (?ed), and tsray ↔ tsray with and without TLS.
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import {
  encodeUpgradeRequest,
  HTTP_UPGRADE_USER_AGENT,
  type HttpUpgradeSettings,
  UPGRADE_RESPONSE,
} from '../../src/transport/httpupgrade.js'
import {
  createStreamDialer,
  createStreamServer,
  type StreamSettings,
} from '../../src/transport/stream-settings.js'
import type { PeerInfo, StreamServer } from '../../src/transport/transport.js'
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, listen, randomData, readExactly, sha256Hex } from '../helpers/net.js'
import { readHead } from '../helpers/websocket-frames.js'

const BASE: HttpUpgradeSettings = { path: '/up', host: undefined, headers: [], earlyData: false }

/** Xray's request for path /up and host h.example (Go's Request.Write: Host, User-Agent, then fields sorted). */
const XRAY_REQUEST =
  'GET /up HTTP/1.1\r\nHost: h.example\r\nUser-Agent: Mozilla/5.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'
/** v2fly 5's request (its Go client's default User-Agent, lower-case values). */
const V2FLY_REQUEST =
  'GET /up HTTP/1.1\r\nHost: h.example\r\nUser-Agent: Go-http-client/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'
/** v2fly 5's response: Response.Write with Header.Set("Connection", "upgrade"). */
const V2FLY_RESPONSE =
  'HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'

test('encodeUpgradeRequest writes the request as Xray does: Host, User-Agent, then the fields in Go order', () => {
  assert.equal(
    encodeUpgradeRequest(
      {
        ...BASE,
        headers: [
          ['X-Custom', '1'],
          ['host', 'ignored.example'],
        ],
      },
      'h.example',
    ).toString(),
    `GET /up HTTP/1.1\r\nHost: h.example\r\nUser-Agent: ${HTTP_UPGRADE_USER_AGENT}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Custom: 1\r\n\r\n`,
  )
  assert.equal(
    encodeUpgradeRequest({ ...BASE, headers: [['User-Agent', 'curl/8']] }, 'h.example').toString(),
    XRAY_REQUEST.replace('Mozilla/5.0', 'curl/8'),
  )
  assert.equal(UPGRADE_RESPONSE, V2FLY_RESPONSE.replace('Connection: upgrade', 'Connection: Upgrade'))
})

/** A stream server whose streams echo, recording their peers. */
async function echoServer(
  settings: StreamSettings,
): Promise<{ server: StreamServer; port: number; peers: PeerInfo[] }> {
  const peers: PeerInfo[] = []
  const server = createStreamServer(settings, {
    listen: '127.0.0.1',
    port: 0,
    onStream: (stream, peer) => {
      peers.push(peer)
      stream.pipe(stream)
    },
  })
  return { server, port: await server.listen(), peers }
}

function roundTrip(stream: Duplex, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      total += chunk.length
      if (total >= data.length) resolve(Buffer.concat(chunks))
    })
    stream.once('error', reject)
    stream.write(data)
  })
}

describe('HTTPUpgrade server against Xray and v2fly clients (raw bytes)', () => {
  let plain: Awaited<ReturnType<typeof echoServer>>
  let withHost: Awaited<ReturnType<typeof echoServer>>
  before(async () => {
    plain = await echoServer({ network: 'httpupgrade', security: 'none', httpUpgrade: BASE })
    withHost = await echoServer({
      network: 'httpupgrade',
      security: 'none',
      httpUpgrade: { ...BASE, host: 'h.example' },
    })
  })
  after(async () => {
    await plain.server.close(100)
    await withHost.server.close(100)
  })

  test('answers 101 as Xray does and passes the bytes that came with the request (0-RTT) on', async () => {
    for (const request of [XRAY_REQUEST, V2FLY_REQUEST]) {
      const socket = await connectTcp(withHost.port)
      const data = randomData(100_000)
      socket.write(Buffer.concat([Buffer.from(request), data]))
      assert.equal(await readHead(socket), UPGRADE_RESPONSE)
      assert.equal(sha256Hex(await readExactly(socket, data.length)), sha256Hex(data))
      socket.destroy()
    }
  })

  test('a wrong path, a wrong Host, a request that is no upgrade get 404; garbage gets 400', async () => {
    const answer = async (port: number, bytes: string): Promise<string> => {
      const socket = await connectTcp(port)
      socket.write(bytes)
      const head = await readHead(socket)
      socket.destroy()
      return head.slice(0, head.indexOf('\r\n'))
    }
    const before = withHost.peers.length
    assert.equal(await answer(withHost.port, XRAY_REQUEST.replace('/up', '/down')), 'HTTP/1.1 404 Not Found')
    assert.equal(
      await answer(withHost.port, XRAY_REQUEST.replace('h.example', 'x.example')),
      'HTTP/1.1 404 Not Found',
    )
    assert.equal(
      await answer(withHost.port, 'GET /up HTTP/1.1\r\nHost: h.example\r\n\r\n'),
      'HTTP/1.1 404 Not Found',
    )
    assert.equal(await answer(withHost.port, '\x16\x03\x01 not http\r\n\r\n'), 'HTTP/1.1 400 Bad Request')
    assert.equal(withHost.peers.length, before)
  })

  test('X-Forwarded-For from a loopback peer names the client', async () => {
    const socket = await connectTcp(plain.port)
    socket.write(XRAY_REQUEST.replace('\r\n\r\n', '\r\nX-Forwarded-For: 192.0.2.44\r\n\r\n'))
    await readHead(socket)
    assert.deepEqual(plain.peers.at(-1), { remoteAddress: '192.0.2.44', remotePort: 0 })
    socket.destroy()
  })
})

describe('HTTPUpgrade client against Xray and v2fly servers (raw bytes)', () => {
  let server: Server
  let port = 0
  const heads: string[] = []
  let response = UPGRADE_RESPONSE
  before(async () => {
    server = createServer((socket: Socket) => {
      socket.on('error', () => socket.destroy())
      void readHead(socket).then(
        (head) => {
          heads.push(head)
          // The 101 and the first bytes in one write, as a server that has data at once sends them.
          socket.write(`${response}hello`)
          socket.on('data', (bytes: Buffer) => socket.write(bytes))
          socket.resume()
        },
        () => socket.destroy(),
      )
    })
    port = await listen(server)
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  for (const [name, bytes] of [
    ["Xray's", UPGRADE_RESPONSE],
    ["v2fly 5's", V2FLY_RESPONSE],
  ] as const) {
    test(`reads ${name} 101 and the bytes after it; sends Xray's request with the configured Host`, async () => {
      response = bytes
      const dial = createStreamDialer(
        { network: 'httpupgrade', security: 'none', httpUpgrade: { ...BASE, host: 'h.example' } },
        { connectTimeoutMs: 2_000 },
      )
      const stream = await dial('127.0.0.1', port)
      const data = randomData(50_000)
      const back = await roundTrip(stream, data)
      assert.equal(back.subarray(0, 5).toString(), 'hello')
      assert.equal(sha256Hex(back.subarray(5, 5 + data.length)), sha256Hex(data))
      stream.destroy()
      assert.match(
        heads.at(-1) ?? '',
        /^GET \/up HTTP\/1\.1\r\nHost: h\.example\r\nUser-Agent: .+\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n$/,
      )
    })
  }

  test('a refusal (404) makes the dial fail; with ?ed the stream fails at its first read instead', async () => {
    response = 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'
    const settings = (earlyData: boolean): StreamSettings => ({
      network: 'httpupgrade',
      security: 'none',
      httpUpgrade: { ...BASE, earlyData },
    })
    await assert.rejects(
      async () => createStreamDialer(settings(false), { connectTimeoutMs: 2_000 })('127.0.0.1', port),
      {
        code: 'HTTP_UPGRADE_REFUSED',
      },
    )
    const stream = await createStreamDialer(settings(true), { connectTimeoutMs: 2_000 })('127.0.0.1', port)
    stream.resume()
    await assert.rejects(new Promise((_resolve, reject) => stream.once('error', reject)), {
      code: 'HTTP_UPGRADE_REFUSED',
    })
    response = UPGRADE_RESPONSE
  })

  test('with ?ed the first bytes leave right behind the request, before the 101 arrives', async () => {
    let heard = ''
    const slow = createServer((socket: Socket) => {
      socket.on('error', () => socket.destroy())
      socket.on('data', (bytes: Buffer) => {
        heard += bytes.toString('latin1')
        // Answer only once the early bytes are here: a client that waited for the 101 would hang.
        if (heard.endsWith('early bytes')) socket.write(`${UPGRADE_RESPONSE}ok`)
      })
    })
    const slowPort = await listen(slow)
    try {
      const stream = await createStreamDialer(
        { network: 'httpupgrade', security: 'none', httpUpgrade: { ...BASE, earlyData: true } },
        { connectTimeoutMs: 2_000 },
      )('127.0.0.1', slowPort)
      const back = await new Promise<Buffer>((resolve) => {
        stream.once('data', (chunk: Buffer) => resolve(chunk))
        stream.write('early bytes')
      })
      assert.equal(back.toString(), 'ok')
      stream.destroy()
    } finally {
      await new Promise<void>((resolve) => slow.close(() => resolve()))
    }
  })
})

describe('HTTPUpgrade tsray ↔ tsray', () => {
  let certs: TestCertificates
  before(() => {
    certs = makeTestCertificates()
  })
  after(() => certs.remove())

  for (const [name, secure, earlyData] of [
    ['plain', false, false],
    ['plain with ?ed', false, true],
    ['over TLS with ?ed', true, true],
  ] as const) {
    test(`${name}: random data both ways, several streams at once`, async () => {
      const tls = {
        serverName: 'localhost',
        alpn: undefined,
        allowInsecure: false,
        disableSystemRoot: false,
        certificates: [
          {
            certificate: { file: certs.certFile },
            key: { file: certs.keyFile },
            usage: 'encipherment' as const,
          },
          { certificate: { file: certs.caFile }, key: undefined, usage: 'verify' as const },
        ],
      }
      const settings: StreamSettings = {
        network: 'httpupgrade',
        httpUpgrade: { ...BASE, earlyData },
        ...(secure ? { security: 'tls', tls } : { security: 'none' }),
      }
      const { server, port } = await echoServer(settings)
      try {
        const dial = createStreamDialer(settings, { connectTimeoutMs: 2_000 })
        const payloads = [1, 1000, 2_000_000].map((n) => randomData(n))
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
})

failOnLeakedHandles()
