import { droppedDatagrams } from '../budgets.js'
import { createRequire } from 'node:module'
import type { Counter, Gauge, Registry } from 'prom-client'

/** prom-client is loaded on first use: a process without metrics never pays its memory. */
let promClient: typeof import('prom-client') | undefined
function promClientLibrary(): typeof import('prom-client') {
  promClient ??= createRequire(import.meta.url)('prom-client') as typeof import('prom-client')
  return promClient
}

/**
 * What an inbound reports. The VMess inbound's `VmessInboundMetrics` has the same shape; it is
 * repeated here (not imported) because observe/ sits beside the inbound layer, not above it.
 */
export interface InboundMetricsSink {
  refused(reason: string): void
  clockSkew(seconds: number): void
  phase(phase: string, delta: 1 | -1): void
  targetFailed(code: string): void
  bufferedBytes(read: () => number): void
  tunnelFault(stage: string): void
}

/** Plain numbers of one inbound, for tests and status output. */
export interface InboundMetricsValues {
  readonly refusals: Readonly<Record<string, number>>
  readonly phases: Readonly<Record<string, number>>
  readonly targetFailures: Readonly<Record<string, number>>
  readonly bufferedBytes: number
  readonly tunnelsAccepted: number
  readonly receivedBytes: number
  readonly sentBytes: number
}

/** A client connection whose wire bytes are counted: a TCP or TLS socket has the two counts. */
export interface CountedConnection {
  readonly bytesRead?: number
  readonly bytesWritten?: number
  once(event: 'close', listener: () => void): unknown
}

/** tsray's metrics: a prom-client registry (never the global one) and the sinks fed into it. */
export interface TsrayMetrics {
  readonly registry: Registry
  /** The sink for the VMess inbound tagged `tag`. */
  vmessInbound(tag: string): InboundMetricsSink
  /** Counts a tunnel the inbound tagged `tag` accepted (what its access log lists as accepted). */
  tunnelAccepted(tag: string): void
  /** Counts the bytes of a client connection of the inbound `tag`, while it is open and after. */
  countBytes(tag: string, connection: CountedConnection): void
  /** The current values of the inbound tagged `tag`. */
  values(tag: string): Promise<InboundMetricsValues>
  /** Reports the count of log lines dropped because a log destination could not keep up. */
  logLinesDropped(read: () => number): void
  /** Hands over the reader of the traffic counters (V2Ray's names, monotonic totals: API resets do not show). */
  trafficCounters(read: () => Iterable<readonly [name: string, total: number]>): void
}

/** Users with their own label on the traffic metrics; the rest are summed under user="_other". */
export const MAX_USER_LABELS = 1000
/** How far off refused clients' clocks were: V2Ray accepts ±120 s (docs/protocol.md §4.3). */
export const CLOCK_SKEW_BUCKETS_SECONDS = [150, 300, 600, 1800, 3600, 21_600, 86_400]

/** `user>>>EMAIL>>>traffic>>>uplink` and the inbound and outbound forms, split. */
function parseCounterName(name: string): { kind: string; tag: string; direction: string } | undefined {
  const parts = name.split('>>>')
  if (parts.length !== 4 || parts[2] !== 'traffic') return undefined
  return { kind: parts[0]!, tag: parts[1]!, direction: parts[3]! }
}

/** Wire bytes of one inbound's client connections: those closed, summed, and those open. */
interface ByteTally {
  closedRead: number
  closedWritten: number
  readonly open: Set<CountedConnection>
}

/**
 * Creates the registry and its metrics: refusals by reason, connections by phase (handshake,
 * draining, connecting, open, closing), target dial failures by code, bytes buffered for tunnels,
 * tunnels accepted, and the wire bytes of VMess client connections.
 * @example
 * const metrics = createMetrics()
 * const instance = buildInstance(config, { metrics })
 * response.end(await metrics.registry.metrics())
 */
export function createMetrics(options?: { registry?: Registry }): TsrayMetrics {
  const { Counter, Gauge, Registry } = promClientLibrary()
  const registry = options?.registry ?? new Registry()
  const refusals = new Counter({
    name: 'tsray_vmess_refusals_total',
    help: 'VMess handshakes refused or cut short, by reason',
    labelNames: ['inbound', 'reason'] as const,
    registers: [registry],
  })
  const phases = new Gauge({
    name: 'tsray_vmess_connections',
    help: 'VMess connections open now, by phase',
    labelNames: ['inbound', 'phase'] as const,
    registers: [registry],
  })
  const tunnelFaults = new Counter({
    name: 'tsray_tunnel_faults_total',
    help: 'Tunnels closed because one of their handlers threw, by stage',
    labelNames: ['inbound', 'stage'] as const,
    registers: [registry],
  })
  new Counter({
    name: 'tsray_datagrams_dropped_total',
    help: 'Datagrams dropped by a queue budget (src/budgets.ts) or for an unusable port',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(droppedDatagrams.udpQueue)
    },
  })
  const targetFailures = new Counter({
    name: 'tsray_vmess_target_failures_total',
    help: 'Targets of VMess tunnels that could not be reached, by error code',
    labelNames: ['inbound', 'code'] as const,
    registers: [registry],
  })
  const readers = new Map<string, (() => number)[]>()
  const buffered = new Gauge({
    name: 'tsray_vmess_buffered_bytes',
    help: 'Bytes held in memory for open VMess tunnels (socket and stream buffers, both ways)',
    labelNames: ['inbound'] as const,
    registers: [registry],
    collect() {
      for (const [inbound, list] of readers)
        this.set(
          { inbound },
          list.reduce((sum, read) => sum + read(), 0),
        )
    },
  })

  const tunnels = new Counter({
    name: 'tsray_tunnels_accepted_total',
    help: 'Tunnels accepted, by inbound: what the access log lists as accepted (a Mux.Cool connection and each sub-session count)',
    labelNames: ['inbound'] as const,
    registers: [registry],
  })
  // Byte counts are read from the sockets when scraped, so a long tunnel counts before it closes.
  const tallies = new Map<string, ByteTally>()
  const tallyOf = (tag: string): ByteTally => {
    let tally = tallies.get(tag)
    if (tally === undefined) {
      tally = { closedRead: 0, closedWritten: 0, open: new Set() }
      tallies.set(tag, tally)
    }
    return tally
  }
  const byteCounter = (name: string, help: string, count: (tally: ByteTally) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['inbound'] as const,
      registers: [registry],
      collect() {
        this.reset()
        for (const [inbound, tally] of tallies) this.inc({ inbound }, count(tally))
      },
    })
  const received = byteCounter(
    'tsray_vmess_received_bytes_total',
    'Bytes read from VMess client connections over TCP, TLS or HTTPUpgrade (wire bytes), by inbound',
    (tally) => tally.closedRead + sum(tally.open, (connection) => connection.bytesRead ?? 0),
  )
  const sent = byteCounter(
    'tsray_vmess_sent_bytes_total',
    'Bytes written to VMess client connections over TCP, TLS or HTTPUpgrade (wire bytes), by inbound',
    (tally) => tally.closedWritten + sum(tally.open, (connection) => connection.bytesWritten ?? 0),
  )

  const { Histogram, collectDefaultMetrics } = promClientLibrary()
  // Process and Node runtime figures: CPU, memory, event loop lag, GC, handles.
  collectDefaultMetrics({ register: registry })
  const skew = new Histogram({
    name: 'tsray_vmess_clock_skew_seconds',
    help: 'How far off the clocks of clients refused as AUTH_CLOCK_SKEW were',
    labelNames: ['inbound'] as const,
    buckets: CLOCK_SKEW_BUCKETS_SECONDS,
    registers: [registry],
  })
  let readTraffic: () => Iterable<readonly [string, number]> = () => []
  const traffic = (kind: 'user' | 'inbound' | 'outbound', help: string) =>
    new Counter({
      name: `tsray_${kind}_traffic_bytes_total`,
      help,
      labelNames: [kind, 'direction'] as const,
      registers: [registry],
      collect() {
        this.reset()
        const seen = new Set<string>()
        for (const [name, total] of readTraffic()) {
          const parsed = parseCounterName(name)
          if (parsed?.kind !== kind) continue
          let tag = parsed.tag
          if (kind === 'user' && !seen.has(tag)) {
            if (seen.size >= MAX_USER_LABELS) tag = '_other'
            else seen.add(tag)
          }
          this.inc({ [kind]: tag, direction: parsed.direction }, total)
        }
      },
    })
  traffic(
    'user',
    `Payload bytes per user (stats counters), the first ${MAX_USER_LABELS} users by name, the rest as "_other"`,
  )
  traffic('inbound', 'Payload bytes per inbound (stats counters)')
  traffic('outbound', 'Payload bytes per outbound (stats counters)')

  let readDroppedLines = (): number => 0
  new Counter({
    name: 'tsray_log_lines_dropped_total',
    help: 'Log lines dropped because a log destination (stdout, a file) could not keep up',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(readDroppedLines())
    },
  })

  const byLabel = async (metric: Counter<string> | Gauge<string>, tag: string, label: string) => {
    const out: Record<string, number> = {}
    for (const value of (await metric.get()).values) {
      if (value.labels.inbound !== tag) continue
      out[String(value.labels[label])] = value.value
    }
    return out
  }

  return {
    registry,
    vmessInbound(tag) {
      return {
        refused: (reason) => refusals.inc({ inbound: tag, reason }),
        clockSkew: (seconds) => skew.observe({ inbound: tag }, seconds),
        phase: (phase, delta) => phases.inc({ inbound: tag, phase }, delta),
        targetFailed: (code) => targetFailures.inc({ inbound: tag, code }),
        tunnelFault: (stage) => tunnelFaults.inc({ inbound: tag, stage }),
        bufferedBytes: (read) => {
          const list = readers.get(tag) ?? []
          list.push(read)
          readers.set(tag, list)
        },
      }
    },
    tunnelAccepted: (tag) => tunnels.inc({ inbound: tag }),
    logLinesDropped(read) {
      readDroppedLines = read
    },
    trafficCounters(read) {
      readTraffic = read
    },
    countBytes(tag, connection) {
      if (typeof connection.bytesRead !== 'number') return
      const tally = tallyOf(tag)
      tally.open.add(connection)
      connection.once('close', () => {
        tally.open.delete(connection)
        tally.closedRead += connection.bytesRead ?? 0
        tally.closedWritten += connection.bytesWritten ?? 0
      })
    },
    async values(tag) {
      const valueOf = async (metric: Counter<string> | Gauge<string>) =>
        (await metric.get()).values.find((value) => value.labels.inbound === tag)?.value ?? 0
      return {
        refusals: await byLabel(refusals, tag, 'reason'),
        phases: await byLabel(phases, tag, 'phase'),
        targetFailures: await byLabel(targetFailures, tag, 'code'),
        bufferedBytes: await valueOf(buffered),
        tunnelsAccepted: await valueOf(tunnels),
        receivedBytes: await valueOf(received),
        sentBytes: await valueOf(sent),
      }
    },
  }
}

function sum<T>(items: Iterable<T>, value: (item: T) => number): number {
  let total = 0
  for (const item of items) total += value(item)
  return total
}
