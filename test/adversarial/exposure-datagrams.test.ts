import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { createServer, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { Command } from '../../src/protocol/constants.js'
import { createUser } from '../../src/protocol/user.js'
import {
  associate,
  EXPOSURE_ID,
  recordUncaught,
  sleep,
  startSocksClient,
  startVmessServer,
} from '../helpers/exposure.js'
import { MAX_QUEUED_DATAGRAMS_PER_TUNNEL } from '../../src/budgets.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, listen, startUdpEchoServer } from '../helpers/net.js'
import { scaled } from '../helpers/probe.js'
import { firstChunk, genuineRequest } from '../helpers/requests.js'

// Datagram queues have budgets: a peer that does not read, or an app that floods, costs a bounded
// amount of memory, and SOCKS5 UDP replies go only to the client that associated.
const MEMORY_BOUND = 64 * 1024 * 1024
const FLOOD_DATAGRAMS = scaled(60_000, 400_000)
const DATAGRAM = 1400
/**
 * ArrayBuffer bytes one VMess UDP session of a client may hold for a server that does not read: its
 * datagram queue with each datagram counted four times (as received, sealed, and in the socket's and the
 * stream's write buffers), and 4 MiB for everything else (the allocator's pools, the test's own buffers).
 */
const HELD_PER_SESSION_BOUND = MAX_QUEUED_DATAGRAMS_PER_TUNNEL * DATAGRAM * 4 + 4 * 2 ** 20
const uncaught = recordUncaught()
let udpEcho: Awaited<ReturnType<typeof startUdpEchoServer>>
let server: Awaited<ReturnType<typeof startVmessServer>>

before(async () => {
  udpEcho = await startUdpEchoServer()
  server = await startVmessServer()
})
after(async () => {
  await server.tsray.stop()
  await udpEcho.close()
  uncaught.uninstall()
})

/** RSS and ArrayBuffer bytes (where datagrams and sealed chunks live) after a GC when exposed (node --expose-gc). */
function memory(): { rss: number; arrayBuffers: number } {
  ;(globalThis as { gc?: () => void }).gc?.()
  const { rss, arrayBuffers } = process.memoryUsage()
  return { rss, arrayBuffers }
}

function rss(): number {
  return memory().rss
}

/** Sends `count` datagrams of `size` bytes with `send`, in bursts that let the loop (and receivers) run. */
async function flood(count: number, send: (payload: Buffer) => void): Promise<void> {
  const payload = randomBytes(DATAGRAM)
  for (let sent = 0; sent < count; sent += 20) {
    for (let i = 0; i < 20; i++) send(payload)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

test('SOCKS5 UDP replies go only to the socket that associated, not to another local socket', async () => {
  const client = await startSocksClient(0)
  const first = await associate(client.port)
  const got = { first: 0, other: 0 }
  first.udp.on('message', () => got.first++)
  first.send({ host: '127.0.0.1', port: udpEcho.port }, Buffer.from('first'))
  await sleep(100)
  const other = createSocket('udp4')
  other.on('error', () => undefined)
  other.on('message', () => got.other++)
  await new Promise<void>((resolve) => other.bind(0, '127.0.0.1', () => resolve()))
  for (let i = 0; i < 5; i++) {
    other.send(
      Buffer.concat([
        Buffer.of(0, 0, 0, 1, 127, 0, 0, 1, udpEcho.port >> 8, udpEcho.port & 255),
        Buffer.from('x'),
      ]),
      first.relayPort,
      '127.0.0.1',
    )
    first.send({ host: '127.0.0.1', port: udpEcho.port }, Buffer.from(`first ${i}`))
    await sleep(20)
  }
  await sleep(300)
  other.close()
  first.close()
  await client.tsray.stop()
  assert.deepEqual(got, { first: 6, other: 0 })
})

test('VMess UDP replies to a client that does not read stay within the budget', async () => {
  // A target that answers each datagram with a flood of replies, to a client that never reads.
  const blaster = createSocket('udp4')
  blaster.on('error', () => undefined)
  await new Promise<void>((resolve) => blaster.bind(0, '127.0.0.1', () => resolve()))
  const request = genuineRequest(createUser({ id: EXPOSURE_ID }), {
    legacy: false,
    command: Command.Udp,
    host: '127.0.0.1',
    port: blaster.address().port,
    padding: 0,
  })
  const before = rss()
  const done = new Promise<void>((resolve) =>
    blaster.once('message', (_payload, remote) => {
      void flood(FLOOD_DATAGRAMS, (payload) => blaster.send(payload, remote.port, remote.address)).then(
        resolve,
      )
    }),
  )
  const socket = await connectTcp(server.port)
  socket.on('error', () => undefined)
  socket.pause()
  socket.write(Buffer.concat([request.wire, firstChunk(request, Buffer.from('start'))]))
  await done
  await sleep(500)
  const growth = rss() - before
  socket.destroy()
  blaster.close()
  process.stderr.write(`growth ${(growth / 2 ** 20).toFixed(1)} MiB\n`)
  assert.ok(growth < MEMORY_BOUND, `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB`)
  assert.deepEqual(uncaught.errors.map(String), [])
})

test('SOCKS5 UDP flooding a VMess server that does not read stays within the budget on the client', async (t) => {
  const held = new Set<Socket>()
  const silent = createServer((socket) => {
    held.add(socket)
    socket.on('error', () => undefined)
    socket.pause()
  })
  const silentPort = await listen(silent)
  const client = await startSocksClient(silentPort)
  const association = await associate(client.port)
  const before = memory()
  const datagram = Buffer.concat([Buffer.of(0, 0, 0, 1, 127, 0, 0, 1, 0, 9)])
  await flood(FLOOD_DATAGRAMS, (payload) =>
    association.udp.send([datagram, payload], association.relayPort, '127.0.0.1'),
  )
  await sleep(500)
  // Measured while the association is open: what the client holds for a server that does not read.
  const after = memory()
  const growth = after.rss - before.rss
  const retained = after.arrayBuffers - before.arrayBuffers
  association.close()
  await client.tsray.stop()
  for (const socket of held) socket.destroy()
  await new Promise((resolve) => silent.close(resolve))
  t.diagnostic(
    `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB, ArrayBuffers by ${(retained / 2 ** 20).toFixed(1)} MiB`,
  )
  // RSS moves with the machine's load (how many datagrams the relay reads before the kernel drops them);
  // the bytes held are what the budget bounds: a session's queue, each datagram counted with its copies.
  assert.ok(
    retained < HELD_PER_SESSION_BOUND,
    `${(retained / 2 ** 20).toFixed(1)} MiB of ArrayBuffers held, over ${(HELD_PER_SESSION_BOUND / 2 ** 20).toFixed(1)} MiB`,
  )
  assert.ok(growth < MEMORY_BOUND, `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB`)
  assert.deepEqual(uncaught.errors.map(String), [])
})

failOnLeakedHandles()
