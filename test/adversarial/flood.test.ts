import assert from 'node:assert/strict'
import { randomBytes, randomInt } from 'node:crypto'
import { connect } from 'node:net'
import { after, before, test } from 'node:test'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { Command } from '../../src/protocol/constants.js'
import { createUser } from '../../src/protocol/user.js'
import { dialTcp } from '../../src/transport/tcp.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { scaled } from '../helpers/probe.js'
import { testUuid } from '../helpers/requests.js'
import { type ServerChild, type ServerChildStats, startServerChild } from '../helpers/server-child.js'

// A junk flood against a server with 10,000 users (docs/security.md §4.2 L4): every junk connection costs
// a scan of every user's AuthID key. The server must stay responsive and keep serving genuine clients.
const USERS = 10_000
const LABEL = 'tsray flood'
const FLOOD_MS = scaled(6_000, 60_000)
/** Junk connections started per second (docs/security.md §4.2 L4 uses 300/s). */
const JUNK_PER_SECOND = 300
const DEADLINE_MS = 2_000
/** Junk connections started at once at most, when the test process catches up after a late timer. */
const MAX_JUNK_BURST = 30
/**
 * The server's event-loop delay p99 may exceed that of a near-idle process in the same window by this much,
 * plus LOOP_EXCESS_PER_IDLE_DELAY times the idle process's p99: a process with work to do waits for a
 * CPU each time it wakes, so on a busy machine its delay grows with what the idle process measures.
 */
const LOOP_EXCESS_MS = 20
const LOOP_EXCESS_PER_IDLE_DELAY = 3
/** The junk connections per genuine tunnel at least (nominally 75: 300/s against one every 250 ms). */
const MIN_JUNK_PER_GENUINE = 20
let server: ServerChild
let echo: ServerChild

before(async () => {
  // Legacy accepted, as by default: its table for 10,000 users is built while the flood runs.
  server = await startServerChild('vmess', {
    users: { label: LABEL, count: USERS },
    legacy: true,
    handshakeTimeoutMs: DEADLINE_MS,
  })
  echo = await startServerChild('echo')
})
after(async () => {
  await server.stop()
  await echo.stop()
})

/** One junk connection: 100 random bytes, then a FIN or a wait for the server to close it. */
function junk(port: number, fin: boolean, onConnect: () => void): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      onConnect()
      if (fin) socket.end(randomBytes(100))
      else socket.write(randomBytes(100))
    })
    const timer = setTimeout(() => socket.destroy(), DEADLINE_MS * 3)
    socket.on('error', () => undefined)
    socket.on('end', () => socket.end())
    socket.on('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** A genuine tunnel for user `index` from `localAddress`: 1 KiB echoed; resolves with the time it took. */
async function genuine(index: number, localAddress: string): Promise<number> {
  const started = performance.now()
  const client = new VmessOutbound({
    tag: 'client',
    connectTimeoutMs: 10_000,
    server: {
      host: '127.0.0.1',
      port: server.port,
      user: createUser({ id: testUuid(LABEL, index) }),
      legacy: false,
      security: 'aes-128-gcm',
    },
    dial: (host, port) => dialTcp(host, port, { timeoutMs: 10_000, localAddress }),
  })
  const stream = await client.open(Command.Tcp, { network: 'tcp', host: '127.0.0.1', port: echo.port })
  const data = randomBytes(1024)
  const back = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    const timer = setTimeout(
      () => reject(new Error(`user ${index} from ${localAddress}: no echo in 10 s`)),
      10_000,
    )
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('end', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks))
    })
    stream.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    stream.end(data)
  })
  stream.destroy()
  if (!back.equals(data))
    throw new Error(`user ${index} from ${localAddress}: ${back.length} of ${data.length} bytes came back`)
  return performance.now() - started
}

interface FloodRun {
  readonly junk: number
  /** Junk connections that reached the server (the client saw its connect complete). */
  readonly connected: number
  /** Junk the server refused meanwhile (its refusal metrics, before and after). */
  readonly refused: number
  /** Genuine tunnels started: each must be served. */
  readonly started: number
  readonly stats: ServerChildStats
  /** The echo child's own event-loop delay meanwhile: what the shared machine alone costs a process. */
  readonly control: ServerChildStats
  readonly latencies: { from: string; ms: number }[]
  readonly failures: string[]
}

/** FLOOD_MS of junk at JUNK_PER_SECOND, with a genuine tunnel every 250 ms. */
async function floodOnce(): Promise<FloodRun> {
  const refusedBefore = totalRefusals(await server.stats())
  await Promise.all([server.resetLoop(), echo.resetLoop()])
  const started = Date.now()
  const until = started + FLOOD_MS
  let junkCount = 0
  let connected = 0
  const junkRuns: Promise<void>[] = []
  // Every 10 ms, the junk connections owed at JUNK_PER_SECOND since the start (a busy machine delays and
  // merges timer ticks; catching up keeps the offered rate), at most a burst of MAX_JUNK_BURST: half hold
  // theirs (to the deadline), half close at once.
  const ticker = setInterval(() => {
    const owed = Math.floor(((Date.now() - started) * JUNK_PER_SECOND) / 1_000) - junkCount
    for (let i = 0; i < Math.min(owed, MAX_JUNK_BURST); i++)
      junkRuns.push(junk(server.port, junkCount++ % 2 === 1, () => connected++))
  }, 10)
  const flood = new Promise<void>((resolve) =>
    setTimeout(() => {
      clearInterval(ticker)
      resolve()
    }, FLOOD_MS),
  )
  const latencies: { from: string; ms: number }[] = []
  const failures: string[] = []
  const genuineRuns: Promise<void>[] = []
  for (let i = 0; Date.now() < until - 1_000; i++) {
    // Alternately from the address whose user is known, and from fresh addresses with random users.
    const from = i % 2 === 0 ? '127.0.0.1' : `127.0.${1 + (i % 200)}.${2 + (i % 250)}`
    const user = i % 2 === 0 ? 1 : randomInt(USERS)
    genuineRuns.push(
      genuine(user, from).then(
        (ms) => void latencies.push({ from, ms }),
        (error: Error) => void failures.push(error.message),
      ),
    )
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  await Promise.all(genuineRuns)
  await flood
  const [stats, control] = await Promise.all([server.stats(), echo.stats()])
  await Promise.all(junkRuns)
  const refused = totalRefusals(await server.stats()) - refusedBefore
  return {
    junk: junkCount,
    connected,
    refused,
    started: genuineRuns.length,
    stats,
    control,
    latencies,
    failures,
  }
}

function totalRefusals(stats: ServerChildStats): number {
  return Object.values(stats.metrics.refusals).reduce((sum, count) => sum + count, 0)
}

/** What a run shows wrong, if anything; nothing here depends on the machine's speed. */
function problems(run: FloodRun): string[] {
  const found: string[] = []
  // Every genuine tunnel is served, from the known address and from fresh ones.
  found.push(...run.failures)
  if (run.latencies.length !== run.started)
    found.push(`${run.latencies.length} of ${run.started} genuine tunnels`)
  if (
    !run.latencies.some((l) => l.from === '127.0.0.1') ||
    !run.latencies.some((l) => l.from !== '127.0.0.1')
  )
    found.push('no genuine tunnel from the known address or from a fresh one')
  // The flood was one: it outnumbered the genuine tunnels, and the server scanned and refused the junk
  // that reached it rather than leaving it unread.
  if (run.junk < MIN_JUNK_PER_GENUINE * run.started)
    found.push(`only ${run.junk} junk connections for ${run.started} genuine tunnels`)
  if (run.refused < run.connected * 0.9)
    found.push(`${run.refused} of ${run.connected} junk connections refused`)
  // The server's loop kept up: its delay beyond an idle process's in the same window.
  if (loopExcess(run) > loopAllowed(run))
    found.push(
      `event-loop delay p99 ${loopExcess(run).toFixed(1)} ms beyond an idle process's (allowed ${loopAllowed(run).toFixed(1)} ms)`,
    )
  return found
}

function loopExcess(run: FloodRun): number {
  return run.stats.loop.p99 - run.control.loop.p99
}

function loopAllowed(run: FloodRun): number {
  return LOOP_EXCESS_MS + LOOP_EXCESS_PER_IDLE_DELAY * run.control.loop.p99
}

test(`a junk flood on ${USERS} users: genuine clients are all served, the event loop keeps up`, async (t) => {
  // One genuine connection first, so 127.0.0.1 has a scan hint.
  await genuine(1, '127.0.0.1')
  // The machine is shared (npm test runs two files at once, and the junk clients run here): the flood's
  // size is judged against the genuine tunnels the same process started in the same window, the server's
  // delay against a near-idle process measured in the same window (the echo child). A run that other
  // processes starved (a SYN dropped, a loop delayed) is repeated, at most twice: a server that junk
  // really starves fails all three.
  const runs: FloodRun[] = []
  for (let attempt = 0; attempt < 3 && (runs.length === 0 || problems(runs.at(-1)!).length > 0); attempt++)
    runs.push(await floodOnce())
  for (const run of runs) {
    const { stats, latencies } = run
    const worst = (from: (address: string) => boolean) =>
      Math.max(...latencies.filter((l) => from(l.from)).map((l) => l.ms)).toFixed(0)
    t.diagnostic(
      `${run.junk} junk connections in ${FLOOD_MS} ms (${run.connected} connected, ${run.refused} refused); ` +
        `event loop p50 ${stats.loop.p50.toFixed(1)} ms, p99 ${stats.loop.p99.toFixed(1)} ms, max ${stats.loop.max.toFixed(1)} ms ` +
        `(an idle process meanwhile: p99 ${run.control.loop.p99.toFixed(1)} ms; excess allowed ${loopAllowed(run).toFixed(1)} ms); ` +
        `${latencies.length} of ${run.started} genuine tunnels, ` +
        `slowest ${worst((a) => a === '127.0.0.1')} ms (known address), ${worst((a) => a !== '127.0.0.1')} ms (fresh addresses); ` +
        `refusals so far ${JSON.stringify(stats.metrics.refusals)}; problems ${JSON.stringify(problems(run))}`,
    )
  }
  assert.ok(
    runs.some((run) => problems(run).length === 0),
    runs.map((run, index) => `run ${index + 1}: ${problems(run).join('; ')}`).join('\n'),
  )
})

failOnLeakedHandles()
