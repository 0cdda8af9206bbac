import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { MAX_WEBSOCKET_FIRST_MESSAGE_BYTES } from '../../src/budgets.js'
import { EXPOSURE_ID, sleep } from '../helpers/exposure.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, exchange, sha256Hex, startEchoServer } from '../helpers/net.js'
import { scaled } from '../helpers/probe.js'
import { socksConnect } from '../helpers/clients.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort } from '../helpers/v2ray.js'
import { encodeFrame, readHead } from '../helpers/websocket-frames.js'

// Before its first WebSocket message completes, a connection is not authenticated: many connections
// holding an unfinished 1 MiB frame cost a bounded amount of memory, and a genuine client still works.
const CONNECTIONS = scaled(300, 2_000)
const HELD_BYTES = 512 * 1024
const MEMORY_BOUND = 64 * 1024 * 1024
const ws = { network: 'ws', wsSettings: { path: '/v' } }
let server: Awaited<ReturnType<typeof startTsray>>
let client: Awaited<ReturnType<typeof startTsray>>
let echo: Awaited<ReturnType<typeof startEchoServer>>

before(async () => {
  echo = await startEchoServer()
  server = await startTsray({
    inbounds: [
      {
        listen: '127.0.0.1',
        port: await freePort(),
        protocol: 'vmess',
        settings: { clients: [{ id: EXPOSURE_ID }] },
        streamSettings: ws,
      },
    ],
    outbounds: [{ protocol: 'freedom' }],
  })
  client = await startTsray({
    inbounds: [{ listen: '127.0.0.1', port: await freePort(), protocol: 'socks', settings: {} }],
    outbounds: [
      {
        protocol: 'vmess',
        settings: {
          vnext: [{ address: '127.0.0.1', port: server.bound[0]!.port, users: [{ id: EXPOSURE_ID }] }],
        },
        streamSettings: ws,
      },
    ],
  })
})
after(async () => {
  await client.stop()
  await server.stop()
  await echo.close()
})

/**
 * What the process holds after a collection: heap and Buffer memory. RSS is printed beside it but not
 * asserted: the allocator keeps freed pages of a busy process, which a loaded machine makes noisy.
 */
function held(): number {
  ;(globalThis as { gc?: () => void }).gc?.()
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.external
}

/** Upgrades a raw connection on the server's WebSocket path. */
async function upgraded(port: number): Promise<Socket> {
  const socket = await connectTcp(port)
  socket.on('error', () => undefined)
  socket.write(
    'GET /v HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  )
  const head = await readHead(socket)
  assert.match(head, /^HTTP\/1\.1 101 /)
  return socket
}

test('connections holding an unfinished 1 MiB WebSocket frame stay within the memory budget', async () => {
  const port = server.bound[0]!.port
  const before = held()
  const rssBefore = process.memoryUsage().rss
  const sockets: Socket[] = []
  const partial = encodeFrame(randomBytes(HELD_BYTES), { length: 1024 * 1024 }).subarray(0, HELD_BYTES)
  for (let i = 0; i < CONNECTIONS; i++) {
    const socket = await upgraded(port)
    socket.write(partial)
    sockets.push(socket)
    if (i % 20 === 19) await sleep(10)
  }
  await sleep(500)
  const growth = held() - before
  const rssGrowth = process.memoryUsage().rss - rssBefore
  const open = sockets.filter((socket) => !socket.destroyed && !socket.readableEnded).length
  for (const socket of sockets) socket.destroy()
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)
  process.stderr.write(
    `held +${mib(growth)} MiB (RSS +${mib(rssGrowth)} MiB), ${open} connections still open\n`,
  )
  assert.ok(
    growth < MEMORY_BOUND,
    `heap and Buffers grew by ${mib(growth)} MiB for ${CONNECTIONS} connections`,
  )
  assert.ok(HELD_BYTES > MAX_WEBSOCKET_FIRST_MESSAGE_BYTES)
})

test('a genuine client over WebSocket still moves 1 MiB after the flood', async () => {
  const data = randomBytes(1024 * 1024)
  const tunnel = await socksConnect(client.bound[0]!.port, { host: '127.0.0.1', port: echo.port })
  const back = await exchange(tunnel, data, { timeoutMs: 15_000 })
  tunnel.destroy()
  assert.equal(sha256Hex(back), sha256Hex(data))
})

failOnLeakedHandles()
