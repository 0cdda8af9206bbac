import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { Command } from '../../src/protocol/constants.js'
import { createUser } from '../../src/protocol/user.js'
import type { VmessClientStream } from '../../src/streams/vmess-client-stream.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { pool, scaled } from '../helpers/probe.js'
import { testUuid } from '../helpers/requests.js'
import { type ServerChild, type ServerChildStats, startServerChild } from '../helpers/server-child.js'

// Load and leaks (docs/security.md §4.2 L1–L3): the server runs in a child process, so its handles, fds
// and heap are its own; the echo target runs in another, so every process stays within `ulimit -n`.
const HELD = scaled(2_000, 9_000)
const CHURN = scaled(20_000, 1_000_000)
const NETWORK_HANDLES = ['TCPSocketWrap', 'TCPServerWrap', 'UDPWrap', 'PipeWrap', 'TTYWrap']
const user = createUser({ id: testUuid('tsray load', 0) })
let server: ServerChild
let echo: ServerChild
let client: VmessOutbound

/** The soft limit on open files, which the children inherit. */
function openFilesLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'))
  return Number(line?.split(/\s+/)[3] ?? 0)
}

before(async () => {
  // The server process holds two sockets per tunnel.
  const needed = 2 * HELD + 1_000
  if (openFilesLimit() < needed) {
    throw new Error(
      `The load tests need ${needed} open files per process and the limit is ${openFilesLimit()}: run \`ulimit -n ${needed}\` first (.ci/run does)`,
    )
  }
  server = await startServerChild('vmess', {
    users: { label: 'tsray load', count: 1 },
    legacy: true,
    handshakeTimeoutMs: 10_000,
  })
  echo = await startServerChild('echo')
  client = new VmessOutbound({
    tag: 'client',
    connectTimeoutMs: 10_000,
    server: { host: '127.0.0.1', port: server.port, user, legacy: false, security: 'aes-128-gcm' },
  })
})
after(async () => {
  await server.stop()
  await echo.stop()
})

function open(): Promise<VmessClientStream> {
  return client.open(Command.Tcp, { network: 'tcp', host: '127.0.0.1', port: echo.port })
}

/** Writes `data` and reads as many bytes back. */
function echoOnce(stream: VmessClientStream, data: Buffer, end: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let length = 0
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk)
      length += chunk.length
      if (length >= data.length) {
        stream.off('data', onData)
        resolve(Buffer.concat(chunks))
      }
    }
    stream.on('data', onData)
    stream.once('error', reject)
    if (end) stream.end(data)
    else stream.write(data)
  })
}

async function openConnections(): Promise<number> {
  const phases = (await server.stats()).metrics.phases
  return Object.values(phases).reduce((sum, n) => sum + n, 0)
}

async function settle(label: string): Promise<ServerChildStats> {
  const deadline = Date.now() + 30_000
  while ((await openConnections()) > 0) {
    if (Date.now() > deadline) throw new Error(`${label}: ${await openConnections()} connections still open`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return server.stats()
}

function networkHandles(stats: ServerChildStats): Record<string, number> {
  return Object.fromEntries(NETWORK_HANDLES.map((name) => [name, stats.handles[name] ?? 0]))
}

function assertBaseline(baseline: ServerChildStats, now: ServerChildStats, label: string): void {
  assert.deepEqual(networkHandles(now), networkHandles(baseline), `${label}: handles`)
  assert.equal(now.fds, baseline.fds, `${label}: open fds`)
  assert.ok(
    now.heapUsed <= baseline.heapUsed * 1.1,
    `${label}: heap ${now.heapUsed} B after GC, baseline ${baseline.heapUsed} B`,
  )
  assert.equal(now.metrics.bufferedBytes, 0, `${label}: buffered bytes`)
}

/** Opens `count` tunnels, holds them until the server has them all, echoes 1 KiB on each, closes them. */
async function holdThenEcho(count: number): Promise<ServerChildStats> {
  const streams = await pool(Array.from({ length: count }), 200, () => open())
  for (const stream of streams) stream.on('error', () => undefined)
  // The header leaves 100 ms after the connect when no data comes (FIRST_DATA_WAIT_MS): wait for all of them.
  const deadline = Date.now() + 30_000
  let held = await server.stats()
  while ((held.metrics.phases.open ?? 0) < count && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    held = await server.stats()
  }
  assert.equal(held.metrics.phases.open, count, JSON.stringify(held.metrics.phases))
  const failures: string[] = []
  await pool(streams, 200, async (stream, index) => {
    const data = randomBytes(1024)
    const back = await echoOnce(stream, data, true)
    if (!back.equals(data)) failures.push(`tunnel ${index}`)
  })
  assert.deepEqual(failures, [])
  for (const stream of streams) stream.destroy()
  return held
}

/** `count` short tunnels, 100 at a time: open, echo 1 KiB, close. Returns how many failed. */
async function churn(count: number): Promise<number> {
  let failures = 0
  await pool(Array.from({ length: count }), 100, async () => {
    try {
      const stream = await open()
      stream.on('error', () => undefined)
      const data = randomBytes(1024)
      const back = await echoOnce(stream, data, true)
      if (!back.equals(data)) failures++
      stream.destroy()
    } catch {
      failures++
    }
  })
  return failures
}

let baseline: ServerChildStats

test('warm-up: 1,000 tunnels held and 1,000 short ones, then the baseline', async () => {
  // Compiled code and inline caches of every path count in the heap: warm them before measuring.
  await holdThenEcho(1_000)
  assert.equal(await churn(1_000), 0)
  baseline = await settle('warm-up')
})

test(`${HELD} tunnels held open, then each echoes 1 KiB; afterwards handles and fds are back to the baseline, heap within 10 %`, async (t) => {
  const held = await holdThenEcho(HELD)
  const after = await settle('held')
  t.diagnostic(
    `${HELD} tunnels held: server RSS +${((held.rss - baseline.rss) / HELD / 1024).toFixed(1)} KiB per tunnel, ` +
      `${held.fds - baseline.fds} fds; after: heap ${baseline.heapUsed} → ${after.heapUsed} B`,
  )
  assertBaseline(baseline, after, 'after the held tunnels')
})

test(`${CHURN} short tunnels (open, 1 KiB echo, close); afterwards handles and fds are back to the baseline, heap within 10 %`, async (t) => {
  const started = Date.now()
  const failures = await churn(CHURN)
  const seconds = (Date.now() - started) / 1000
  assert.equal(failures, 0)
  const after = await settle('churn')
  t.diagnostic(
    `${CHURN} tunnels in ${seconds.toFixed(1)} s (${(CHURN / seconds).toFixed(0)}/s); heap ${baseline.heapUsed} → ${after.heapUsed} B`,
  )
  assertBaseline(baseline, after, 'after the churn')
})

failOnLeakedHandles()
