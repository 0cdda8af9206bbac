/**
 * tsray against V2Ray 4.34 end to end, on this machine, in one run (STYLE §7):
 *
 *   load tool ──► client (port-forward or SOCKS5 inbound) ──VMess over 127.0.0.1──► server ──► target
 *
 * Chains: tsray at both ends, V2Ray at both ends, a second V2Ray pair (A/A: the noise floor) and the
 * two mixed chains. Every proxy is a child process, measured from /proc like any other; the load tool
 * (bench/load.ts) is a process of its own. Samples of the chains are interleaved and their order
 * rotated, so drift on a shared machine hits them alike; each figure is median [min–max] of n.
 *
 * Run: npm run bench [-- --quick] [-- --only=REGEX] [-- --reps=N]
 * Environment: V2RAY_BINARY (default /usr/bin/v2ray), BENCH_NODE_ARGS (node flags for the tsray
 * processes, e.g. "--cpu-prof"; printed with the table), BENCH_DEBUG=1 (each step on stderr).
 */
import { type ChildProcess, fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type BenchUser,
  type ClientInbound,
  clientConfig,
  cpuSeconds,
  freePort,
  loadAverage,
  RAISE_NOFILE,
  percentile,
  type ProxyProcess,
  serverConfig,
  sleep,
  startProxy,
  v2rayBinary,
  v2rayVersion,
} from './lib.js'
import type { LoadCommand, LoadReply, Route } from './load.js'
import { type Chain, CHAINS, DIRECT_KEY, figure, record, perProcess, report, TSRAY, V2RAY } from './report.js'

const argv = process.argv.slice(2)
const QUICK = argv.includes('--quick')
const ONLY = new RegExp(argv.find((a) => a.startsWith('--only='))?.slice(7) ?? '.')
const REPS_ARG = argv.find((a) => a.startsWith('--reps='))
/** BENCH_DEBUG=1 prints each step to stderr. */
const debug = (message: string): void => {
  if (process.env.BENCH_DEBUG !== undefined)
    console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`)
}

/** Sizes chosen so a sample is long against the 10 ms tick of /proc CPU times, and --quick stays < 3 min. */
const SETTINGS = QUICK
  ? { reps: 3, bytes: 40 << 20, rateMs: 600, junkMs: 1_000, junkReps: 1, idleReps: 1, warmupBytes: 4 << 20 }
  : {
      reps: 5,
      bytes: 192 << 20,
      rateMs: 2_000,
      junkMs: 3_000,
      junkReps: 3,
      idleReps: 2,
      warmupBytes: 32 << 20,
    }
const REPS = REPS_ARG === undefined ? SETTINGS.reps : Number(REPS_ARG.slice(7))
const RATE_WORKERS = 16
const JUNK_CONCURRENCY = 16
const GENUINE_INTERVAL_MS = 20
/** The event loop stays responsive under junk: genuine handshakes within this, p99 (issue #5). */
const GENUINE_P99_LIMIT_MS = 50
const IDLE_COUNTS = [1_000, 9_000]
/** An idle tsray process before any tunnel: RSS within this. */
const IDLE_RSS_LIMIT_MIB = 40
const JUNK_USER_COUNTS = [1, 1_000, 10_000]
const GIB = 1 << 30

// ---------------------------------------------------------------------------------------------------
// Chains and their processes

/** The client inbounds of every chain, each routed to an outbound with its own security. */
const INBOUND_KINDS = ['gcm', 'chacha', 'none', 'legacy', 'websocket', 'mux', 'socks'] as const
type InboundKind = (typeof INBOUND_KINDS)[number]

const AEAD_USER_ID = randomUUID()
const LEGACY_USER_ID = randomUUID()
const LEGACY_ALTER_ID = 4
const OUTBOUND_USERS: ReadonlyMap<string, BenchUser> = new Map([
  ['gcm', { id: AEAD_USER_ID, alterId: 0, security: 'aes-128-gcm' }],
  ['chacha', { id: AEAD_USER_ID, alterId: 0, security: 'chacha20-poly1305' }],
  ['none', { id: AEAD_USER_ID, alterId: 0, security: 'none' }],
  ['legacy', { id: LEGACY_USER_ID, alterId: LEGACY_ALTER_ID, security: 'aes-128-gcm' }],
  ['websocket', { id: AEAD_USER_ID, alterId: 0, security: 'aes-128-gcm', websocket: true }],
  ['mux', { id: AEAD_USER_ID, alterId: 0, security: 'aes-128-gcm', mux: true }],
])
const SERVER_USERS = [
  { id: AEAD_USER_ID, alterId: 0 },
  { id: LEGACY_USER_ID, alterId: LEGACY_ALTER_ID },
]

interface RunningChain {
  readonly chain: Chain
  readonly client: ProxyProcess
  readonly server: ProxyProcess
  readonly ports: ReadonlyMap<InboundKind, number>
}

const dir = mkdtempSync(join(tmpdir(), 'tsray-bench-'))
const v2ray = v2rayBinary()

async function startChain(
  chain: Chain,
  targetPort: number,
  kinds: readonly InboundKind[],
): Promise<RunningChain> {
  const serverPort = await freePort()
  const websocketPort = await freePort()
  const ports = new Map<InboundKind, number>()
  const inbounds: ClientInbound[] = []
  for (const kind of kinds) {
    const port = await freePort()
    ports.set(kind, port)
    inbounds.push({
      tag: kind,
      port,
      kind: kind === 'socks' ? 'socks' : 'forward',
      outbound: kind === 'socks' ? 'gcm' : kind,
    })
  }
  const name = `${chain.key}-${serverPort}`
  const server = await startProxy(
    chain.server,
    serverConfig({ port: serverPort, websocketPort, users: SERVER_USERS }),
    { dir, name: `${name}-server`, waitPorts: [serverPort, websocketPort], v2ray, ...envOf(chain) },
  )
  const client = await startProxy(
    chain.client,
    clientConfig({
      inbounds,
      outbounds: OUTBOUND_USERS,
      server: { port: serverPort, websocketPort },
      target: { port: targetPort },
    }),
    { dir, name: `${name}-client`, waitPorts: [...ports.values()], v2ray, ...envOf(chain) },
  ).catch(async (error: unknown) => {
    await server.stop()
    throw error
  })
  return { chain, client, server, ports }
}

function envOf(chain: Chain): { env?: Readonly<Record<string, string>> } {
  return chain.env === undefined ? {} : { env: chain.env }
}

async function stopChain(running: RunningChain): Promise<void> {
  await Promise.all([running.client.stop(), running.server.stop()])
}

// ---------------------------------------------------------------------------------------------------
// The load tool

class LoadTool {
  readonly #child: ChildProcess
  #pending: ((reply: LoadReply) => void) | undefined

  constructor() {
    // Its own fd limit: 9,000 tunnels are 18,000 sockets here (both ends of the target).
    this.#child = fork(join(import.meta.dirname, 'load.js'), [], {
      execPath: 'bash',
      execArgv: ['-c', `${RAISE_NOFILE}; exec "$0" "$@"`, process.execPath],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.#child.on('message', (reply: LoadReply) => {
      const pending = this.#pending
      this.#pending = undefined
      pending?.(reply)
    })
  }

  get pid(): number {
    return this.#child.pid ?? 0
  }

  async send<Op extends LoadReply['op']>(
    command: LoadCommand,
    op: Op,
  ): Promise<Extract<LoadReply, { op: Op }>> {
    debug(`load ${JSON.stringify(command)}`)
    const reply = await new Promise<LoadReply>((resolve) => {
      this.#pending = resolve
      this.#child.send(command)
    })
    if (reply.op === 'error') throw new Error(`load tool: ${reply.message}`)
    if (reply.op !== op) throw new Error(`load tool answered ${reply.op} to ${command.op}`)
    return reply as Extract<LoadReply, { op: Op }>
  }

  stop(): void {
    this.#child.disconnect()
  }
}

// ---------------------------------------------------------------------------------------------------
// Figures

/** Runs `measure` REPS times per chain, chains interleaved and rotated, after one discarded warm-up each. */
async function interleave<T extends RunningChain | undefined>(
  contenders: readonly T[],
  measure: (contender: T, warmup: boolean) => Promise<void>,
  reps = REPS,
): Promise<void> {
  for (const contender of contenders) await measure(contender, true)
  for (let rep = 0; rep < reps; rep++) {
    for (let i = 0; i < contenders.length; i++) {
      await measure(contenders[(i + rep) % contenders.length]!, false)
    }
  }
}

function routeOf(running: RunningChain | undefined, kind: InboundKind, targetPort: number): Route {
  if (running === undefined) return { port: targetPort, socks: false }
  return { port: running.ports.get(kind) ?? 0, socks: kind === 'socks' }
}

async function measureThroughput(
  load: LoadTool,
  running: readonly (RunningChain | undefined)[],
  targetPort: number,
  options: {
    op: 'upload' | 'download'
    kind: InboundKind
    streams: number
    label: string
    cpuTarget?: number
    rateTarget?: number
  },
): Promise<void> {
  const name = options.label
  if (!ONLY.test(name)) return
  const rateRow = figure(`${name}: throughput`, 'MB/s', 'higher', options.rateTarget)
  const cpuRow = figure(`${name}: CPU client+server`, 's/GiB', 'lower', options.cpuTarget)
  const rssRow =
    options.streams > 1 ? figure(`${name}: RSS client+server at the end`, 'MiB', 'lower', 1.5) : undefined
  await interleave(running, async (chain, warmup) => {
    const bytes = warmup ? SETTINGS.warmupBytes : SETTINGS.bytes
    const processes = chain === undefined ? [load.pid] : [chain.client.pid, chain.server.pid]
    const before = processes.map(cpuSeconds)
    let reply: Extract<LoadReply, { op: 'transfer' }>
    try {
      reply = await load.send(
        { op: options.op, route: routeOf(chain, options.kind, targetPort), streams: options.streams, bytes },
        'transfer',
      )
    } catch (error) {
      // A failed sample is reported and left out; the run goes on.
      console.error(`${name}, ${chain?.chain.label ?? 'direct'}: sample failed (${(error as Error).message})`)
      return
    }
    const used = processes.map((pid, i) => cpuSeconds(pid) - before[i]!)
    if (warmup) return
    // RSS at the end of the run, client and server: what the load left resident.
    if (chain !== undefined && rssRow !== undefined) {
      record(rssRow, chain.chain.key, (chain.client.rss() + chain.server.rss()) / 2 ** 20)
    }
    const key = chain?.chain.key ?? DIRECT_KEY
    record(rateRow, key, reply.bytes / reply.ms / 1e3)
    const gib = reply.bytes / GIB
    // Without a proxy the column is the load tool's own CPU: it shows what the tool costs.
    record(cpuRow, key, used.reduce((a, b) => a + b, 0) / gib)
    if (chain !== undefined) {
      const byFigure = perProcess.get(key) ?? new Map<string, { client: number[]; server: number[] }>()
      perProcess.set(key, byFigure)
      const entry = byFigure.get(name) ?? { client: [], server: [] }
      byFigure.set(name, entry)
      entry.client.push(used[0]! / gib)
      entry.server.push(used[1]! / gib)
    }
  })
}

async function measureRate(
  load: LoadTool,
  running: readonly (RunningChain | undefined)[],
  targetPort: number,
  kind: InboundKind,
  label: string,
): Promise<void> {
  if (!ONLY.test(label)) return
  const rateRow = figure(`${label}: rate`, 'conn/s', 'higher', kind === 'socks' ? 1.5 : undefined)
  const p50Row = figure(`${label}: p50`, 'ms', 'lower')
  const p99Row = figure(`${label}: p99`, 'ms', 'lower', kind === 'socks' ? 1 : undefined)
  // Steadier than the rate on a shared machine: what one round trip costs the two proxies.
  const cpuRow = figure(`${label}: CPU client+server per connection`, 'µs', 'lower')
  await interleave(running, async (chain, warmup) => {
    const processes = chain === undefined ? [load.pid] : [chain.client.pid, chain.server.pid]
    const before = processes.map(cpuSeconds)
    const reply = await load.send(
      {
        op: 'rate',
        route: routeOf(chain, kind, targetPort),
        workers: RATE_WORKERS,
        durationMs: warmup ? SETTINGS.rateMs / 2 : SETTINGS.rateMs,
      },
      'rate',
    )
    if (warmup) return
    if (reply.errors > 0) {
      console.error(
        `${label}, ${chain?.chain.label ?? 'direct'}: ${reply.errors} errors (${reply.firstError})`,
      )
    }
    const key = chain?.chain.key ?? DIRECT_KEY
    record(rateRow, key, (reply.count / reply.ms) * 1e3)
    record(p50Row, key, percentile(reply.latencies, 50))
    record(p99Row, key, percentile(reply.latencies, 99))
    const used = processes.reduce((sum, pid, i) => sum + cpuSeconds(pid) - before[i]!, 0)
    // Without a proxy the column is the load tool's own CPU per round trip.
    if (reply.count > 0) record(cpuRow, key, (used / reply.count) * 1e6)
  })
}

/** RSS per idle tunnel, client + server, on fresh processes (a warm heap would hide the growth). */
async function measureIdle(load: LoadTool, targetPort: number): Promise<void> {
  for (const count of IDLE_COUNTS) {
    const label = `${count.toLocaleString('en-US')} idle tunnels: RSS per tunnel, client+server`
    if (!ONLY.test(label)) continue
    const row = figure(label, 'KiB', 'lower', 0.3)
    for (let rep = 0; rep < SETTINGS.idleReps; rep++) {
      const order = rep % 2 === 0 ? [TSRAY, V2RAY] : [V2RAY, TSRAY]
      for (const chain of order) {
        const running = await startChain(chain, targetPort, ['gcm'])
        try {
          // One tunnel first, so the lazily built parts of each process are in the baseline.
          await load.send(
            { op: 'open-idle', route: routeOf(running, 'gcm', targetPort), count: 1, concurrency: 1 },
            'open-idle',
          )
          await load.send({ op: 'close-idle' }, 'close-idle')
          await sleep(300)
          const before = running.client.rss() + running.server.rss()
          const reply = await load.send(
            { op: 'open-idle', route: routeOf(running, 'gcm', targetPort), count, concurrency: 128 },
            'open-idle',
          )
          await sleep(1_000)
          const after = running.client.rss() + running.server.rss()
          if (reply.opened < count) console.error(`${label} ${chain.label}: opened ${reply.opened}`)
          record(row, chain.key, (after - before) / reply.opened / 1024)
        } finally {
          await load.send({ op: 'close-idle' }, 'close-idle')
          await stopChain(running)
        }
      }
    }
  }
}

/** Waits until `proxy` uses under 5 % of a core over 250 ms (at most 60 s). */
async function settle(proxy: ProxyProcess): Promise<void> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    const before = proxy.cpu()
    await sleep(250)
    if (proxy.cpu() - before < 0.0125) return
  }
}

/** Deterministic distinct UUIDs for the junk servers; the genuine user is the last. */
function manyUsers(count: number): { id: string; alterId: number }[] {
  return Array.from({ length: count }, (_, i) => {
    const hex = (i + 1).toString(16).padStart(12, '0')
    return { id: `7a3e6f2c-1d4b-4c8e-9f0a-${hex}`, alterId: 0 }
  })
}

/** Server CPU per junk connection (random bytes, FIN), with genuine handshakes timed meanwhile. */
async function measureJunk(load: LoadTool): Promise<void> {
  for (const userCount of JUNK_USER_COUNTS) {
    const label = `junk handshakes, ${userCount.toLocaleString('en-US')} user${userCount > 1 ? 's' : ''}`
    if (!ONLY.test(label)) continue
    const cpuRow = figure(
      `${label}: server CPU per junk`,
      'µs',
      'lower',
      userCount === 10_000 ? 0.3 : undefined,
    )
    const genuineRow = figure(
      `${label}: genuine handshake p99 meanwhile`,
      'ms',
      'lower',
      undefined,
      userCount === 10_000 ? GENUINE_P99_LIMIT_MS : undefined,
    )
    const users = manyUsers(userCount)
    const genuineId = users[users.length - 1]!.id
    for (let rep = 0; rep < SETTINGS.junkReps; rep++) {
      const order = rep % 2 === 0 ? (['tsray', 'v2ray'] as const) : (['v2ray', 'tsray'] as const)
      for (const implementation of order) {
        const port = await freePort()
        const server = await startProxy(implementation, serverConfig({ port, users }), {
          dir,
          name: `junk-${implementation}-${userCount}`,
          waitPorts: [port],
          v2ray,
        })
        try {
          // Warm-up: lazily built tables and the JIT are not what this figure is about.
          await load.send(
            {
              op: 'junk',
              port,
              durationMs: QUICK ? 300 : 1_000,
              concurrency: 4,
              genuine: { id: genuineId, intervalMs: 50 },
            },
            'junk',
          )
          // Tables built lazily or in slices after start (the legacy time window: 241 s × users) are
          // not per junk either: wait until the server is idle before the measured run.
          await settle(server)
          const before = server.cpu()
          const reply = await load.send(
            {
              op: 'junk',
              port,
              durationMs: SETTINGS.junkMs,
              concurrency: JUNK_CONCURRENCY,
              genuine: { id: genuineId, intervalMs: GENUINE_INTERVAL_MS },
            },
            'junk',
          )
          const used = server.cpu() - before
          if (reply.genuineFailed > 0)
            console.error(`${label} ${implementation}: ${reply.genuineFailed} genuine failed`)
          // The genuine probes' own (small) cost is included, alike for both servers.
          record(cpuRow, implementation, (used / reply.count) * 1e6)
          record(genuineRow, implementation, percentile(reply.genuine, 99))
        } finally {
          await server.stop()
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = new Date()
  const startLoad = loadAverage()
  const started = performance.now()
  const load = new LoadTool()
  const running: RunningChain[] = []
  const { port: targetPort } = await load.send({ op: 'target' }, 'target')
  try {
    for (const chain of CHAINS) running.push(await startChain(chain, targetPort, INBOUND_KINDS))
    // Idle RSS per process, before any tunnel: the baseline every deployment pays.
    await sleep(1_000)
    const idleServer = figure('idle process RSS, server', 'MiB', 'lower', undefined, IDLE_RSS_LIMIT_MIB)
    const idleClient = figure('idle process RSS, client', 'MiB', 'lower', undefined, IDLE_RSS_LIMIT_MIB)
    for (const chain of running) {
      record(idleServer, chain.chain.key, chain.server.rss() / 2 ** 20)
      record(idleClient, chain.chain.key, chain.client.rss() / 2 ** 20)
    }
    const withDirect: (RunningChain | undefined)[] = [undefined, ...running]
    const throughputCases: {
      kind: InboundKind
      name: string
      rate?: number
      cpu?: number
      direct?: boolean
    }[] = [
      { kind: 'gcm', name: 'aes-128-gcm', rate: 1.1, cpu: 0.9, direct: true },
      { kind: 'chacha', name: 'chacha20-poly1305', rate: 1.1, cpu: 0.9 },
      { kind: 'none', name: 'none' },
      { kind: 'legacy', name: 'legacy header, aes-128-gcm' },
      { kind: 'websocket', name: 'WebSocket, aes-128-gcm' },
    ]
    for (const c of throughputCases) {
      for (const op of ['upload', 'download'] as const) {
        await measureThroughput(load, c.direct === true ? withDirect : running, targetPort, {
          op,
          kind: c.kind,
          streams: 1,
          label: `1 stream ${op === 'upload' ? 'up' : 'down'}, ${c.name}`,
          ...(c.rate !== undefined ? { rateTarget: c.rate } : {}),
          ...(c.cpu !== undefined ? { cpuTarget: c.cpu } : {}),
        })
      }
    }
    for (const streams of [8, 64]) {
      for (const op of ['upload', 'download'] as const) {
        await measureThroughput(load, withDirect, targetPort, {
          op,
          kind: 'gcm',
          streams,
          label: `${streams} streams ${op === 'upload' ? 'up' : 'down'}, aes-128-gcm`,
          rateTarget: 1.1,
          cpuTarget: 0.9,
        })
      }
    }
    // Mux.Cool: 8 streams ride one VMess connection (V2Ray's default concurrency) instead of 8.
    for (const op of ['upload', 'download'] as const) {
      await measureThroughput(load, running, targetPort, {
        op,
        kind: 'mux',
        streams: 8,
        label: `8 streams ${op === 'upload' ? 'up' : 'down'} over Mux.Cool, aes-128-gcm`,
      })
    }
    await measureRate(load, withDirect, targetPort, 'socks', 'SOCKS5 connect, 100 B echo, close, 16 workers')
    await measureRate(load, running, targetPort, 'gcm', 'port-forward connect, 100 B echo, close, 16 workers')
  } finally {
    await Promise.all(running.map(stopChain))
  }
  try {
    await measureIdle(load, targetPort)
    await measureJunk(load)
  } finally {
    load.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const seconds = (performance.now() - started) / 1e3
  report([
    `tsray vs ${v2rayVersion(v2ray)}; node ${process.version}; ${cpus().length} × ${cpu}; ${startedAt.toISOString()}`,
    `${QUICK ? '--quick, ' : ''}median [min–max] of n = ${REPS} interleaved samples per chain (idle: ${SETTINGS.idleReps}, junk: ${SETTINGS.junkReps}); ` +
      `1 stream = ${SETTINGS.bytes >> 20} MiB; load average ${startLoad.toFixed(2)} at start, ${loadAverage().toFixed(2)} at end; ${seconds.toFixed(0)} s` +
      (process.env.BENCH_NODE_ARGS ? `; tsray run with node ${process.env.BENCH_NODE_ARGS}` : ''),
  ])
}

process.on('SIGINT', () => {
  rmSync(dir, { recursive: true, force: true })
  process.exit(130)
})

await main()
