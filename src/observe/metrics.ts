import { Counter, Gauge, Registry } from 'prom-client'

/**
 * What an inbound reports. The VMess inbound's `VmessInboundMetrics` has the same shape; it is
 * repeated here (not imported) because observe/ sits beside the inbound layer, not above it.
 */
export interface InboundMetricsSink {
  refused(reason: string): void
  phase(phase: string, delta: 1 | -1): void
  targetFailed(code: string): void
  bufferedBytes(read: () => number): void
}

/** Plain numbers of one inbound, for tests and status output. */
export interface InboundMetricsValues {
  readonly refusals: Readonly<Record<string, number>>
  readonly phases: Readonly<Record<string, number>>
  readonly targetFailures: Readonly<Record<string, number>>
  readonly bufferedBytes: number
}

/** tsray's metrics: a prom-client registry (never the global one) and the sinks fed into it. */
export interface TsrayMetrics {
  readonly registry: Registry
  /** The sink for the VMess inbound tagged `tag`. */
  vmessInbound(tag: string): InboundMetricsSink
  /** The current values of the inbound tagged `tag`. */
  values(tag: string): Promise<InboundMetricsValues>
}

/**
 * Creates the registry and its metrics: refusals by reason, connections by phase (handshake,
 * draining, connecting, open, closing), target dial failures by code, and bytes buffered for tunnels.
 * @example
 * const metrics = createMetrics()
 * const instance = buildInstance(config, { metrics })
 * response.end(await metrics.registry.metrics())
 */
export function createMetrics(options?: { registry?: Registry }): TsrayMetrics {
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
        phase: (phase, delta) => phases.inc({ inbound: tag, phase }, delta),
        targetFailed: (code) => targetFailures.inc({ inbound: tag, code }),
        bufferedBytes: (read) => {
          const list = readers.get(tag) ?? []
          list.push(read)
          readers.set(tag, list)
        },
      }
    },
    async values(tag) {
      const bytes = (await buffered.get()).values.find((value) => value.labels.inbound === tag)
      return {
        refusals: await byLabel(refusals, tag, 'reason'),
        phases: await byLabel(phases, tag, 'phase'),
        targetFailures: await byLabel(targetFailures, tag, 'code'),
        bufferedBytes: bytes?.value ?? 0,
      }
    },
  }
}
