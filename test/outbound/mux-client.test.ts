import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { VmessInbound } from '../../src/inbound/vmess.js'
import { MuxClient } from '../../src/outbound/mux-client.js'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { createUser } from '../../src/protocol/user.js'
import { dialTcp } from '../../src/transport/tcp.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { concurrentEchoes, echoOver, streamSizes } from '../helpers/mux.js'
import { randomData, sha256Hex, startEchoServer, startUdpEchoServer } from '../helpers/net.js'
import { closeVmess, listenVmess, testVmessInbound } from '../helpers/vmess-server.js'

const user = createUser({ id: 'b831381d-6324-4d53-ad4f-8cda48b30811', email: 'mux@test' })
const context = { inboundTag: 'test', source: '127.0.0.1:1', user: '' }
let echo: Awaited<ReturnType<typeof startEchoServer>>
let udpEchoA: Awaited<ReturnType<typeof startUdpEchoServer>>
let udpEchoB: Awaited<ReturnType<typeof startUdpEchoServer>>
let inbound: VmessInbound
let serverPort = 0

before(async () => {
  echo = await startEchoServer()
  udpEchoA = await startUdpEchoServer()
  udpEchoB = await startUdpEchoServer()
  inbound = testVmessInbound([user])
  serverPort = await listenVmess(inbound)
})

after(async () => {
  await closeVmess(inbound)
  await echo.close()
  await udpEchoA.close()
  await udpEchoB.close()
})

/** A mux outbound to the tsray server whose transport dials are counted. */
function muxOutbound(options: { concurrency: number; idleCloseMs?: number }): {
  outbound: VmessOutbound
  dials: () => number
} {
  let dials = 0
  const outbound = new VmessOutbound({
    tag: 'proxy',
    connectTimeoutMs: 5_000,
    server: { host: '127.0.0.1', port: serverPort, user, legacy: false, security: 'aes-128-gcm' },
    dial: (host, port) => {
      dials++
      return dialTcp(host, port, { timeoutMs: 5_000 })
    },
    mux: { concurrency: options.concurrency, idleCloseMs: options.idleCloseMs ?? 200 },
  })
  return { outbound, dials: () => dials }
}

const echoTarget = (): { network: 'tcp'; host: string; port: number } => ({
  network: 'tcp',
  host: '127.0.0.1',
  port: echo.port,
})

test('VmessOutbound with mux carries 20 concurrent TCP streams over 3 connections of 8, data intact', async () => {
  const { outbound, dials } = muxOutbound({ concurrency: 8 })
  try {
    const results = await concurrentEchoes(streamSizes(20), () => outbound.dialTcp(echoTarget(), context), {
      halfClose: false,
    })
    for (const [sent, back] of results) assert.equal(back, sent)
    assert.equal(dials(), 3)
  } finally {
    outbound.close()
  }
})

test('a mux sub-stream half-closes: after end() the whole echo still comes back', async () => {
  const { outbound } = muxOutbound({ concurrency: 4 })
  try {
    const results = await concurrentEchoes(
      [5, 70_000, 2 * 1024 * 1024],
      () => outbound.dialTcp(echoTarget(), context),
      {
        halfClose: true,
      },
    )
    for (const [sent, back] of results) assert.equal(back, sent)
  } finally {
    outbound.close()
  }
})

test('a server-first target gets its New frame without client data after the first-data wait', async () => {
  const { outbound } = muxOutbound({ concurrency: 8 })
  const { createServer } = await import('node:net')
  const greeter = createServer((socket) => {
    socket.on('error', () => undefined)
    socket.end('hello from the server')
  })
  await new Promise<void>((resolve) => greeter.listen(0, '127.0.0.1', () => resolve()))
  const address = greeter.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  try {
    const stream = await outbound.dialTcp({ network: 'tcp', host: '127.0.0.1', port }, context)
    const chunks: Buffer[] = []
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => resolve())
      stream.on('error', reject)
    })
    stream.end()
    assert.equal(Buffer.concat(chunks).toString(), 'hello from the server')
  } finally {
    outbound.close()
    await new Promise<void>((resolve) => greeter.close(() => resolve()))
  }
})

test('MuxClient closes an idle connection and opens a new one for the next stream', async () => {
  const { outbound, dials } = muxOutbound({ concurrency: 8, idleCloseMs: 100 })
  try {
    const data = randomData(1000)
    const first = await echoOver(await outbound.dialTcp(echoTarget(), context), data, { halfClose: true })
    assert.equal(sha256Hex(first), sha256Hex(data))
    await new Promise((resolve) => setTimeout(resolve, 400))
    const second = await echoOver(await outbound.dialTcp(echoTarget(), context), data, { halfClose: true })
    assert.equal(sha256Hex(second), sha256Hex(data))
    assert.equal(dials(), 2)
  } finally {
    outbound.close()
  }
})

test('MuxClient puts at most 128 sub-sessions on one connection over its life, then opens another', async () => {
  const { outbound, dials } = muxOutbound({ concurrency: 1024, idleCloseMs: 5_000 })
  try {
    for (let round = 0; round < 13; round++) {
      // 10 at a time, 130 in all.
      const results = await concurrentEchoes(
        Array.from({ length: 10 }, () => 10),
        () => outbound.dialTcp(echoTarget(), context),
        { halfClose: true },
      )
      for (const [sent, back] of results) assert.equal(back, sent)
    }
    assert.equal(dials(), 2)
  } finally {
    outbound.close()
  }
})

test('UDP through mux: one sub-session per destination, replies attributed to their sources', async () => {
  const { outbound, dials } = muxOutbound({ concurrency: 8 })
  const channel = outbound.openUdp(context)
  try {
    const replies: { from: string; sha: string }[] = []
    const done = new Promise<void>((resolve) => {
      channel.onPacket((payload, from) => {
        replies.push({ from: `${from.host}:${from.port}`, sha: sha256Hex(payload) })
        if (replies.length === 6) resolve()
      })
    })
    const expected: { from: string; sha: string }[] = []
    for (const [index, size] of [1, 500, 2048].entries()) {
      for (const port of [udpEchoA.port, udpEchoB.port]) {
        const payload = randomData(size + index)
        const clipped = payload.subarray(0, Math.min(payload.length, 2048))
        expected.push({ from: `127.0.0.1:${port}`, sha: sha256Hex(clipped) })
        channel.send(clipped, { network: 'udp', host: '127.0.0.1', port })
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    await done
    const order = (a: { from: string; sha: string }, b: { from: string; sha: string }): number =>
      (a.from + a.sha).localeCompare(b.from + b.sha)
    assert.deepEqual(replies.sort(order), expected.sort(order))
    assert.equal(dials(), 1)
  } finally {
    channel.close()
    outbound.close()
  }
})

test('MuxClient rejects dialTcp with the dial error, after close, and refuses a concurrency outside 1–1024', async () => {
  const client = new MuxClient({
    concurrency: 8,
    connect: () => Promise.reject(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })),
  })
  await assert.rejects(client.dialTcp(echoTarget()), { code: 'ECONNREFUSED' })
  assert.equal(client.connectionCount, 0)
  client.close()
  await assert.rejects(client.dialTcp(echoTarget()), { code: 'MUX_CLOSED' })
  for (const concurrency of [0, 1025, 1.5]) {
    assert.throws(() => new MuxClient({ concurrency, connect: () => Promise.reject(new Error('unused')) }), {
      code: 'MUX_CONCURRENCY_INVALID',
    })
  }
})

failOnLeakedHandles()
