/**
 * Helpers of the end-to-end benchmark (bench/e2e.ts): proxy processes and their configs, CPU and
 * memory read from /proc, statistics and the result table. No measurement logic lives here.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'

/** Which implementation runs a proxy process. */
export type Implementation = 'tsray' | 'v2ray'

/**
 * Raises the fd limit for a child: 9,000 idle tunnels hold ~18,000 sockets in one proxy. Without
 * CAP_SYS_RESOURCE the hard limit caps it, so fall back to the hard limit.
 */
export const RAISE_NOFILE = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"'

const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

/**
 * CPU seconds a process has run, all its threads included: the sum of /proc/PID/task/TID/schedstat
 * (nanoseconds), where the scheduler keeps it; else utime + stime from /proc/PID/stat, which count in
 * 10 ms ticks (too coarse for a 40 MiB sample). Threads stay for a proxy's life in both Node and Go.
 */
export function cpuSeconds(pid: number): number {
  try {
    let nanoseconds = 0
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      nanoseconds += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0])
    }
    if (nanoseconds > 0) return nanoseconds / 1e9
  } catch {
    // No schedstat here (or a thread left while we read): the tick counts follow.
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name may contain spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND
}

/** Resident set size of a process in bytes (/proc/PID/status VmRSS). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /VmRSS:\s+(\d+) kB/.exec(status)
  return match === null ? 0 : Number(match[1]) * 1024
}

/** The 1-minute load average (/proc/loadavg). */
export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** Resolves once 127.0.0.1:port accepts a connection. */
export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const start = Date.now()
  while (Date.now() - start < timeoutMs) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy()
        resolve(true)
      })
      socket.on('error', () => resolve(false))
    })
    if (open) return
    await sleep(50)
  }
  throw new Error(`Cannot reach 127.0.0.1:${port}: nothing listened within ${timeoutMs} ms`)
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** A proxy running as a child process, measured from the outside like any other process. */
export interface ProxyProcess {
  readonly implementation: Implementation
  readonly pid: number
  cpu(): number
  rss(): number
  stop(): Promise<void>
}

/**
 * Starts tsray (`node dist/src/cli/main.js run -c`) or V2Ray (`v2ray -config`) on a config file,
 * with the fd limit raised through the shell (the parent's limit is too low for 9,000 tunnels).
 */
export async function startProxy(
  implementation: Implementation,
  config: object,
  options: {
    dir: string
    name: string
    waitPorts: readonly number[]
    v2ray: string
    /** Extra environment, e.g. TSRAY_NATIVE=0 for tsray on node:crypto. */
    env?: Readonly<Record<string, string>>
  },
): Promise<ProxyProcess> {
  const path = join(options.dir, `${options.name}.json`)
  writeFileSync(path, JSON.stringify(config, null, 2))
  // BENCH_NODE_ARGS passes flags to the tsray processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '')
  const command =
    implementation === 'tsray'
      ? [
          process.execPath,
          ...nodeArgs,
          join(import.meta.dirname, '..', 'src', 'cli', 'main.js'),
          'run',
          '-c',
          path,
        ]
      : [options.v2ray, '-config', path]
  // `exec` keeps the PID, so /proc/PID is the proxy itself, not the shell.
  const child: ChildProcess = spawn('bash', ['-c', `${RAISE_NOFILE}; exec "$@"`, 'bash', ...command], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...options.env },
  })
  let errors = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    if (errors.length < 4096) errors += chunk.toString()
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const pid = child.pid ?? 0
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    // SIGTERM lets tsray stop cleanly (and write a --cpu-prof); SIGKILL if it lingers.
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000)
    await exited
    clearTimeout(timer)
  }
  try {
    for (const port of options.waitPorts) await waitForPort(port)
  } catch (error) {
    await stop()
    throw new Error(
      `Cannot start ${implementation} (${options.name}): ${(error as Error).message}\n${errors}`,
    )
  }
  return { implementation, pid, cpu: () => cpuSeconds(pid), rss: () => rssBytes(pid), stop }
}

/** The V2Ray binary: $V2RAY_BINARY, else the Debian package's. Throws with the install command. */
export function v2rayBinary(): string {
  const candidates = [process.env.V2RAY_BINARY, '/usr/bin/v2ray', '/usr/local/bin/v2ray']
  for (const path of candidates) {
    if (path === undefined || path === '') continue
    try {
      if (execFileSync(path, ['-version'], { encoding: 'utf8' }).includes('V2Ray')) return path
    } catch {
      // try the next one
    }
  }
  throw new Error('The benchmark needs V2Ray 4.34: run `apt-get update && apt-get install -y v2ray`')
}

export function v2rayVersion(binary: string): string {
  return execFileSync(binary, ['-version'], { encoding: 'utf8' }).split('\n')[0] ?? ''
}

// ---------------------------------------------------------------------------------------------------
// Configs: tsray runs V2Ray v4 JSON as it is, so both implementations get the same file.

/** One VMess user of the benchmark: the client's outbound and the server's client list use it. */
export interface BenchUser {
  readonly id: string
  readonly alterId: number
  readonly security: string
  /** Reach the server's WebSocket inbound instead of its TCP one. */
  readonly websocket?: boolean
  /** Mux.Cool with V2Ray's default concurrency of 8 sub-sessions per connection. */
  readonly mux?: boolean
}

/** The path of the servers' WebSocket inbound. */
const WEBSOCKET = { network: 'ws', wsSettings: { path: '/bench' } }

/** A client inbound: a port-forward (dokodemo-door) to the target, or SOCKS5; routed to `outbound`. */
export interface ClientInbound {
  readonly tag: string
  readonly port: number
  readonly kind: 'forward' | 'socks'
  readonly outbound: string
}

const QUIET_LOG = { loglevel: 'none', access: 'none' }

/** A client: every inbound routed by tag to a VMess outbound with its own user and security. */
export function clientConfig(options: {
  inbounds: readonly ClientInbound[]
  outbounds: ReadonlyMap<string, BenchUser>
  server: { port: number; websocketPort?: number }
  target: { port: number }
}): object {
  return {
    log: QUIET_LOG,
    inbounds: options.inbounds.map((inbound) =>
      inbound.kind === 'forward'
        ? {
            tag: inbound.tag,
            listen: '127.0.0.1',
            port: inbound.port,
            protocol: 'dokodemo-door',
            settings: { address: '127.0.0.1', port: options.target.port, network: 'tcp' },
          }
        : {
            tag: inbound.tag,
            listen: '127.0.0.1',
            port: inbound.port,
            protocol: 'socks',
            settings: { auth: 'noauth', udp: false },
          },
    ),
    outbounds: [...options.outbounds].map(([tag, user]) => ({
      tag,
      protocol: 'vmess',
      settings: {
        vnext: [
          {
            address: '127.0.0.1',
            port: user.websocket === true ? (options.server.websocketPort ?? 0) : options.server.port,
            users: [{ id: user.id, alterId: user.alterId, security: user.security }],
          },
        ],
      },
      ...(user.websocket === true ? { streamSettings: WEBSOCKET } : {}),
      ...(user.mux === true ? { mux: { enabled: true, concurrency: 8 } } : {}),
    })),
    routing: {
      rules: options.inbounds.map((inbound) => ({
        type: 'field',
        inboundTag: [inbound.tag],
        outboundTag: inbound.outbound,
      })),
    },
  }
}

/** A server: a VMess inbound with `users` (and the same over WebSocket on `websocketPort`), and freedom. */
export function serverConfig(options: {
  port: number
  websocketPort?: number
  users: readonly { id: string; alterId: number }[]
}): object {
  const settings = { clients: options.users.map((user) => ({ id: user.id, alterId: user.alterId })) }
  return {
    log: QUIET_LOG,
    inbounds: [
      { listen: '127.0.0.1', port: options.port, protocol: 'vmess', settings },
      ...(options.websocketPort === undefined
        ? []
        : [
            {
              listen: '127.0.0.1',
              port: options.websocketPort,
              protocol: 'vmess',
              settings,
              streamSettings: WEBSOCKET,
            },
          ]),
    ],
    outbounds: [{ protocol: 'freedom' }],
  }
}

// ---------------------------------------------------------------------------------------------------
// Statistics and the table

/** Median, min, max and n of some samples. */
export interface Summary {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly n: number
}

export function summarize(samples: readonly number[]): Summary | undefined {
  if (samples.length === 0) return undefined
  const sorted = [...samples].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length }
}

/** Percentile (0..100) of samples, nearest rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

/** A number with about three significant digits. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '–'
  const magnitude = Math.abs(value)
  if (magnitude >= 100) return value.toFixed(0)
  if (magnitude >= 10) return value.toFixed(1)
  if (magnitude >= 1) return value.toFixed(2)
  return value.toPrecision(2)
}

/** "median [min–max]" of a summary. */
export function formatSummary(summary: Summary | undefined): string {
  if (summary === undefined) return '–'
  if (summary.n === 1) return formatNumber(summary.median)
  return `${formatNumber(summary.median)} [${formatNumber(summary.min)}–${formatNumber(summary.max)}]`
}

/** Left-aligns the first column and right-aligns the others, as a Markdown table. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => (row[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`
  const rule = `|${widths.map((width, i) => (i === 0 ? `-${'-'.repeat(width)}-` : `-${'-'.repeat(width - 1)}:`)).join('|')}|`
  return [line(header), rule, ...rows.map(line)].join('\n')
}
