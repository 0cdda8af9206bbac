import assert from 'node:assert/strict'
import http, { createServer as createHttpServer, request as httpRequest } from 'node:http'
import { syncBuiltinESMExports } from 'node:module'
import { createServer, type Server, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { recordUncaught, sleep } from '../helpers/exposure.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, listen } from '../helpers/net.js'
import { scaled } from '../helpers/probe.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort } from '../helpers/v2ray.js'

// What a target answers cannot stop the HTTP inbound, and an upload slower than the handshake
// timeout is not cut while its body keeps moving.
const HANDSHAKE_S = 1
/**
 * Node enforces requestTimeout only on its periodic connection check (every 30 s by default), so an
 * upload cut by it shows only when a check falls within the upload. The quick run has every HTTP server
 * of this process check every CHECK_INTERVAL_MS (Node's connectionsCheckingInterval) so that a 2.5 s
 * upload spans many checks; the full run uses Node's default and an upload longer than 30 s.
 */
const CHECK_INTERVAL_MS = 100
const UPLOAD_MS = scaled(2_500, 40_000)
const uncaught = recordUncaught()
let proxy: Awaited<ReturnType<typeof startTsray>>
let proxyPort = 0
const targets: Server[] = []
const sockets = new Set<Socket>()

/** A raw TCP target that answers every request with `reply`. */
async function rawTarget(reply: string): Promise<number> {
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    socket.once('data', () => socket.end(Buffer.from(reply, 'latin1')))
  })
  targets.push(server)
  return listen(server)
}

/** Sends a GET for http://127.0.0.1:port/ through the proxy; resolves with the raw response. */
async function getThrough(port: number): Promise<string> {
  const socket = await connectTcp(proxyPort)
  socket.on('error', () => undefined)
  socket.write(`GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  await Promise.race([new Promise((resolve) => socket.once('close', resolve)), sleep(5_000)])
  socket.destroy()
  return Buffer.concat(chunks).toString('latin1')
}

const originalCreateServer = http.createServer
before(async () => {
  if (UPLOAD_MS < 30_000) {
    // The inbound's createServer is node:http's: give it a frequent connection check, unless it sets its own.
    const often = (options: http.ServerOptions = {}): http.ServerOptions => ({
      connectionsCheckingInterval: CHECK_INTERVAL_MS,
      ...options,
    })
    http.createServer = (
      first?: http.ServerOptions | http.RequestListener,
      listener?: http.RequestListener,
    ) =>
      typeof first === 'function'
        ? originalCreateServer(often(), first)
        : originalCreateServer(often(first), listener)
    syncBuiltinESMExports()
  }
  proxy = await startTsray({
    policy: { levels: { '0': { handshake: HANDSHAKE_S } } },
    inbounds: [{ listen: '127.0.0.1', port: await freePort(), protocol: 'http', settings: {} }],
    outbounds: [{ protocol: 'freedom' }],
  })
  proxyPort = proxy.bound[0]!.port
  http.createServer = originalCreateServer
  syncBuiltinESMExports()
})
after(async () => {
  await proxy.stop()
  for (const socket of sockets) socket.destroy()
  for (const server of targets) await new Promise((resolve) => server.close(resolve))
  uncaught.uninstall()
})

test('HttpInbound passes on a target status line with a control character without dying', async () => {
  const port = await rawTarget('HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
  const response = await getThrough(port)
  assert.match(response, /^HTTP\/1\.1 200 OK\r\n/)
  assert.match(response, /\r\n\r\nok$/)
  assert.deepEqual(uncaught.errors.map(String), [])
})

test('HttpInbound answers 502 to a 101 nobody asked for, instead of leaving the client waiting', async () => {
  const port = await rawTarget(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n',
  )
  const response = await getThrough(port)
  assert.match(response, /^HTTP\/1\.1 502 /)
  assert.deepEqual(uncaught.errors.map(String), [])
})

test(
  'HttpInbound carries an upload that takes longer than the handshake timeout',
  { timeout: UPLOAD_MS + 20_000 },
  async () => {
    let received = 0
    const server = createHttpServer((request, response) => {
      request.on('data', (chunk: Buffer) => (received += chunk.length))
      request.on('end', () => response.end(`got ${received}`))
    })
    targets.push(server)
    const port = await listen(server)
    const pieces = 6
    const status = await new Promise<{ code: number; body: string }>((resolve, reject) => {
      const upload = httpRequest({
        host: '127.0.0.1',
        port: proxyPort,
        method: 'POST',
        path: `http://127.0.0.1:${port}/upload`,
        headers: { Host: `127.0.0.1:${port}`, 'Content-Length': String(pieces * 100) },
        agent: false,
      })
      upload.on('error', reject)
      upload.on('response', (response) => {
        let body = ''
        response.on('data', (chunk: Buffer) => (body += chunk.toString()))
        response.on('end', () => resolve({ code: response.statusCode ?? 0, body }))
      })
      let sent = 0
      const tick = setInterval(() => {
        upload.write(Buffer.alloc(100, 0x61))
        if (++sent === pieces) {
          clearInterval(tick)
          upload.end()
        }
      }, UPLOAD_MS / pieces)
    })
    assert.deepEqual(status, { code: 200, body: `got ${pieces * 100}` })
  },
)

failOnLeakedHandles()
