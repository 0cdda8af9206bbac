// The client library as a Node developer uses it: fetch with VmessDispatcher, https.get with VmessAgent and
// connect(), against the real V2Ray 4.34 over plain TCP and over WebSocket + TLS, to local http and https
// targets (the https one signed by a test CA the client is told to trust).
import assert from 'node:assert/strict'
import {
  createServer as createHttpServer,
  get as httpGet,
  type IncomingMessage,
  type Server,
} from 'node:http'
import { createServer as createHttpsServer, get as httpsGet } from 'node:https'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { connect as netConnect, createServer as createNetServer } from 'node:net'
import type { Duplex } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { fetch as undiciFetch } from 'undici'
import { formatVmessLink } from '../../src/config/share-link.js'
import { connect, VmessAgent, VmessDispatcher, type VmessServerOptions } from '../../src/index.js'
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js'
import { randomData, sha256Hex, startEchoServer } from '../helpers/net.js'
import { freePort, startV2ray, type V2rayProcess } from '../helpers/v2ray.js'

const ID = 'b831381d-6324-4d53-ad4f-8cda48b30811'
const BODY_BYTES = 200 * 1024

let certs: TestCertificates
let echo: Awaited<ReturnType<typeof startEchoServer>>
let body: Buffer
let httpTarget: Server
let httpsTarget: Server
/** Remote ports of the connections each target accepted: one per tunnel. */
const targetConnections = { http: new Set<number>(), https: new Set<number>() }

function listenLocal(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  })
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

function handler(kind: 'http' | 'https') {
  return (request: IncomingMessage, response: import('node:http').ServerResponse): void => {
    targetConnections[kind].add(request.socket.remotePort ?? 0)
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'x-target': kind })
    response.end(body)
  }
}

before(async () => {
  certs = makeTestCertificates()
  echo = await startEchoServer()
  body = randomData(BODY_BYTES)
  httpTarget = createHttpServer(handler('http'))
  httpsTarget = createHttpsServer(
    { cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) },
    handler('https'),
  )
  await listenLocal(httpTarget)
  await listenLocal(httpsTarget)
})

after(async () => {
  await closeServer(httpTarget)
  await closeServer(httpsTarget)
  await echo.close()
  certs.remove()
})

/**
 * Node's global fetch with a dispatcher. Its RequestInit comes from @types/node's copy of undici's types, which
 * this repository's exactOptionalPropertyTypes cannot compare with undici's own; a consumer with the default
 * compiler options needs no cast (test/package/pack.test.ts type-checks one).
 */
const globalFetch = (url: string, init: { dispatcher: VmessDispatcher }): Promise<Response> =>
  fetch(url, init as unknown as RequestInit)

const portOf = (server: Server): number => (server.address() as AddressInfo).port

function v2rayServerConfig(port: number, streamSettings: object): object {
  return {
    log: { loglevel: 'warning' },
    inbounds: [
      { listen: '127.0.0.1', port, protocol: 'vmess', settings: { clients: [{ id: ID }] }, streamSettings },
    ],
    outbounds: [{ protocol: 'freedom' }],
  }
}

/** A TCP relay to 127.0.0.1:port that resets both sides once more than `cutAfter` bytes came back. */
async function startCuttingRelay(
  port: number,
  cutAfter: number,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<import('node:net').Socket>()
  const relay = createNetServer((client) => {
    const upstream = netConnect({ host: '127.0.0.1', port })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => undefined)
      socket.on('close', () => sockets.delete(socket))
    }
    let received = 0
    upstream.on('data', (bytes: Buffer) => {
      received += bytes.length
      if (received <= cutAfter) {
        client.write(bytes)
        return
      }
      client.resetAndDestroy()
      upstream.resetAndDestroy()
    })
    client.on('data', (bytes: Buffer) => upstream.write(bytes))
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  const relayPort = await new Promise<number>((resolve) =>
    relay.listen(0, '127.0.0.1', () => resolve((relay.address() as AddressInfo).port)),
  )
  return {
    port: relayPort,
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise((resolve) => relay.close(() => resolve()))
    },
  }
}

/** A response body as a Buffer, or the error that ended it. */
function readBody(response: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    response.on('data', (chunk: Buffer) => chunks.push(chunk))
    response.on('end', () => resolve(Buffer.concat(chunks)))
    response.on('error', reject)
    response.on('aborted', () => reject(new Error('response aborted')))
  })
}

function getThrough(
  get: typeof httpGet,
  url: string,
  options: import('node:https').RequestOptions,
): Promise<{ response: IncomingMessage; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = get(url, options, (response) => {
      readBody(response).then((received) => resolve({ response, body: received }), reject)
    })
    request.on('error', reject)
  })
}

/** Random data through a connect() stream to the echo server and back. */
async function echoOver(stream: Duplex, data: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = []
  const done = new Promise<Buffer>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('end', () => resolve(Buffer.concat(chunks)))
    stream.on('error', reject)
  })
  stream.end(data)
  return done
}

interface ServerCase {
  readonly name: string
  /** streamSettings of the V2Ray server. */
  readonly serverStream: () => object
  /** The tsray side: a link or options for the same server. */
  readonly client: (port: number) => string | VmessServerOptions
}

const CASES: ServerCase[] = [
  {
    name: 'TCP, v2rayN link',
    serverStream: () => ({ network: 'tcp' }),
    client: (port) =>
      formatVmessLink({
        remark: 'test',
        address: '127.0.0.1',
        port,
        id: ID,
        alterId: 0,
        security: 'aes-128-gcm',
        network: 'tcp',
        headerType: 'none',
        host: '',
        path: '',
        tls: false,
      }),
  },
  {
    name: 'WebSocket + TLS, options',
    serverStream: () => ({
      network: 'ws',
      security: 'tls',
      wsSettings: { path: '/ray' },
      tlsSettings: { certificates: [{ certificateFile: certs.certFile, keyFile: certs.keyFile }] },
    }),
    client: (port) => ({
      address: '127.0.0.1',
      port,
      id: ID,
      security: 'chacha20-poly1305',
      streamSettings: {
        network: 'ws',
        security: 'tls',
        wsSettings: { path: '/ray' },
        tlsSettings: {
          serverName: 'localhost',
          certificates: [{ certificateFile: certs.caFile, usage: 'verify' }],
        },
      },
    }),
  },
]

for (const serverCase of CASES) {
  describe(`the client library through V2Ray 4.34 over ${serverCase.name}`, () => {
    let v2ray: V2rayProcess
    let server: string | VmessServerOptions
    let serverPort: number

    before(async () => {
      const port = await freePort()
      serverPort = port
      v2ray = await startV2ray(v2rayServerConfig(port, serverCase.serverStream()), { waitPort: port })
      server = serverCase.client(port)
    })
    after(async () => {
      await v2ray.stop()
    })

    test('connect() carries random data to a TCP target and back', async () => {
      const data = randomData(1024 * 1024)
      const stream = await connect(server, { host: '127.0.0.1', port: echo.port })
      const back = await echoOver(stream, data)
      assert.equal(sha256Hex(back), sha256Hex(data))
    })

    test('fetch (Node global and undici) with VmessDispatcher reads http and https targets', async () => {
      const dispatcher = new VmessDispatcher(server, { requestTls: { ca: readFileSync(certs.caFile) } })
      try {
        for (const [kind, target] of [
          ['http', `http://127.0.0.1:${portOf(httpTarget)}/`],
          ['https', `https://localhost:${portOf(httpsTarget)}/`],
          // No SNI for an IP address: the certificate's IP entry is checked.
          ['https', `https://127.0.0.1:${portOf(httpsTarget)}/`],
        ] as const) {
          // Node 20's global fetch takes a dispatcher from undici 6 (the major it bundles).
          const global = await globalFetch(target, { dispatcher })
          assert.equal(global.status, 200)
          assert.equal(global.headers.get('x-target'), kind)
          assert.equal(sha256Hex(Buffer.from(await global.arrayBuffer())), sha256Hex(body), `${kind} body`)
          const viaUndici = await undiciFetch(target, { dispatcher })
          assert.equal(sha256Hex(Buffer.from(await viaUndici.arrayBuffer())), sha256Hex(body))
        }
      } finally {
        await dispatcher.close()
      }
    })

    test('https.get and http.get with VmessAgent, keep-alive reusing one tunnel', async () => {
      const agent = new VmessAgent(server, { keepAlive: true, maxSockets: 1 })
      try {
        targetConnections.https.clear()
        for (let i = 0; i < 3; i++) {
          const { response, body: received } = await getThrough(
            httpsGet,
            `https://localhost:${portOf(httpsTarget)}/`,
            { agent, ca: readFileSync(certs.caFile) },
          )
          assert.equal(response.statusCode, 200)
          assert.equal(sha256Hex(received), sha256Hex(body))
        }
        // Three requests, one tunnel: the target saw one TCP connection (from V2Ray's freedom outbound).
        assert.equal(targetConnections.https.size, 1)
        const plain = await getThrough(httpGet, `http://127.0.0.1:${portOf(httpTarget)}/`, { agent })
        assert.equal(plain.response.headers['x-target'], 'http')
        assert.equal(sha256Hex(plain.body), sha256Hex(body))
      } finally {
        agent.destroy()
      }
    })

    test('VmessAgent refuses an https target whose certificate the request does not trust', async () => {
      const agent = new VmessAgent(server)
      try {
        await assert.rejects(
          getThrough(httpsGet, `https://localhost:${portOf(httpsTarget)}/`, { agent }),
          (error: NodeJS.ErrnoException) => {
            assert.match(String(error.code), /SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY/)
            return true
          },
        )
      } finally {
        agent.destroy()
      }
    })

    test('a tunnel cut mid-response reaches connect(), fetch and https.get as an error, not an end', async () => {
      // The network between client and server resets after part of the response.
      const relay = await startCuttingRelay(serverPort, BODY_BYTES / 2)
      const cut = serverCase.client(relay.port)
      const dispatcher = new VmessDispatcher(cut, { requestTls: { ca: readFileSync(certs.caFile) } })
      const agent = new VmessAgent(cut)
      try {
        const stream = await connect(cut, { host: '127.0.0.1', port: portOf(httpTarget) })
        const outcome = new Promise<string>((resolve) => {
          stream.on('data', () => undefined)
          stream.on('end', () => resolve('end'))
          stream.on('error', () => resolve('error'))
        })
        stream.write('GET / HTTP/1.1\r\nHost: target\r\n\r\n')
        assert.equal(await outcome, 'error')
        await assert.rejects(async () => {
          const response = await globalFetch(`http://127.0.0.1:${portOf(httpTarget)}/`, { dispatcher })
          await response.arrayBuffer()
        })
        await assert.rejects(
          getThrough(httpsGet, `https://localhost:${portOf(httpsTarget)}/`, {
            agent,
            ca: readFileSync(certs.caFile),
          }),
        )
      } finally {
        agent.destroy()
        await dispatcher.close()
        await relay.close()
      }
    })
  })
}

describe('connect() errors', () => {
  test('a VMess server that cannot be reached rejects connect() and names the server', async () => {
    const closed = await freePort()
    await assert.rejects(
      connect({ address: '127.0.0.1', port: closed, id: ID }, { host: 'example.com', port: 80 }),
      (error: Error & { code?: string; cause?: { code?: string } }) => {
        assert.equal(error.code, 'SERVER_UNREACHABLE')
        assert.equal(error.cause?.code, 'ECONNREFUSED')
        assert.match(error.message, new RegExp(`VMess server 127\\.0\\.0\\.1:${closed}`))
        return true
      },
    )
  })

  test('a link tsray cannot run is refused with the reason before anything is dialled', async () => {
    const kcp = formatVmessLink({
      remark: '',
      address: '127.0.0.1',
      port: 1,
      id: ID,
      alterId: 0,
      security: 'auto',
      network: 'kcp',
      headerType: 'none',
      host: '',
      path: '',
      tls: false,
    })
    await assert.rejects(connect(kcp, { host: 'example.com', port: 80 }), /kcp/)
    await assert.rejects(connect('vmess://not-a-link', { host: 'example.com', port: 80 }), /vmess link/)
  })

  test('an aborted signal rejects connect() with an AbortError', async () => {
    const silent = createNetServer((socket) => socket.on('error', () => undefined))
    const port = await new Promise<number>((resolve) =>
      silent.listen(0, '127.0.0.1', () => resolve((silent.address() as AddressInfo).port)),
    )
    try {
      await assert.rejects(
        connect(
          { address: '127.0.0.1', port, id: ID },
          { host: 'example.com', port: 80, signal: AbortSignal.abort() },
        ),
        { name: 'AbortError' },
      )
    } finally {
      await new Promise((resolve) => silent.close(resolve))
    }
  })
})
