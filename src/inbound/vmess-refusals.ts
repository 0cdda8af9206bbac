import type { RefusalReason } from '../protocol/server-handshake.js'
import type { VmessUser } from '../protocol/user.js'
import type { Logger } from '../types.js'

/**
 * Why the inbound itself ends a handshake, beside the refusals of the header parser (RefusalReason);
 * every one goes through one reporting path: access log, rate-limited log, metric.
 */
export const INBOUND_REFUSALS = [
  'HANDSHAKE_TIMEOUT',
  'HEADER_INCOMPLETE',
  'HEADER_EOF',
  'INSECURE_ENCRYPTION',
  'AUTH_SCAN_OVERLOAD',
  'CHUNK_AUTH_FAILED',
  'CHUNK_TOO_LONG',
  'CHUNK_TRUNCATED',
] as const
export type InboundRefusal = (typeof INBOUND_REFUSALS)[number]
export const isInboundRefusal = (code: string): code is InboundRefusal =>
  (INBOUND_REFUSALS as readonly string[]).includes(code)

/** Refusals logged at most once per client IP per this period. */
export const REFUSAL_LOG_PERIOD_MS = 60_000
const MAX_REFUSAL_LOG_ENTRIES = 10_000
/** A user's clock skew is logged at most once per this period. */
const CLOCK_SKEW_LOG_PERIOD_MS = 60_000

/** One accepted or refused tunnel, for the access log. */
export interface AccessRecord {
  readonly source: string
  readonly destination: string
  readonly status: 'accepted' | 'rejected'
  readonly user: string
  readonly reason?: string
}

/** Where refusals and faults are reported: the parts of the inbound's options this file reads. */
export interface VmessReportSinks {
  readonly logger: Logger
  readonly onAccess?: (line: AccessRecord) => void
  readonly metrics?: {
    refused(reason: string): void
    clockSkew?(seconds: number): void
    tunnelFault?(stage: string): void
  }
}

/** The one reporting path of a VMess inbound's refusals, clock skews and handler faults. */
export class VmessReports {
  readonly #sinks: VmessReportSinks
  readonly #lastRefusalLog = new Map<string, number>()
  readonly #lastSkewLog = new Map<string, number>()

  constructor(sinks: VmessReportSinks) {
    this.#sinks = sinks
  }

  /** A refused handshake: counted, access-logged, and logged once per client IP per period. */
  refused(source: string, reason: RefusalReason | InboundRefusal): void {
    this.#sinks.metrics?.refused(reason)
    this.#sinks.onAccess?.({ source, destination: '', status: 'rejected', user: '', reason })
    const ip = source.slice(0, source.lastIndexOf(':'))
    const now = Date.now()
    const last = this.#lastRefusalLog.get(ip)
    if (last !== undefined && now - last < REFUSAL_LOG_PERIOD_MS) return
    if (this.#lastRefusalLog.size >= MAX_REFUSAL_LOG_ENTRIES) this.#lastRefusalLog.clear()
    this.#lastRefusalLog.set(ip, now)
    this.#sinks.logger.info({ source, reason }, 'refused VMess handshake')
  }

  /**
   * A client refused for its clock: `seconds` (how far off) is counted; the skew is logged with its size
   * and sign (`AUTH_CLOCK_SKEW +183 s`), once per user per minute.
   */
  clockSkew(
    skew: { readonly user: VmessUser; readonly seconds: number } | undefined,
    seconds: number | undefined,
  ): void {
    if (seconds !== undefined) this.#sinks.metrics?.clockSkew?.(seconds)
    if (skew === undefined) return
    const key = skew.user.email !== '' ? skew.user.email : skew.user.id.toString('hex')
    const now = Date.now()
    const last = this.#lastSkewLog.get(key)
    if (last !== undefined && now - last < CLOCK_SKEW_LOG_PERIOD_MS) return
    if (this.#lastSkewLog.size >= MAX_REFUSAL_LOG_ENTRIES) this.#lastSkewLog.clear()
    this.#lastSkewLog.set(key, now)
    const text = `${skew.seconds >= 0 ? '+' : '-'}${Math.abs(skew.seconds)} s`
    this.#sinks.logger.warn({ user: key, skewSeconds: skew.seconds }, `AUTH_CLOCK_SKEW ${text}`)
  }

  /** A tunnel that failed because one of its handlers threw: logged once, counted. */
  fault(source: string, stage: string, error: unknown): void {
    this.#sinks.metrics?.tunnelFault?.(stage)
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    this.#sinks.logger.warn({ source, stage, err: reason }, 'tunnel closed: a handler threw')
  }
}
