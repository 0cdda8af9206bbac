// The operator's sections of a V2Ray/Xray config: `stats`, the stats switches of `policy`, and `api`
// with the inbound that serves it. Read from the merged JSON on their own, beside the main schema.
/** Which counters a config turns on (V2Ray: only with a `"stats": {}` section). */
export interface StatsPolicy {
  /** User counters and online maps per user level. */
  readonly levels: ReadonlyMap<number, { uplink: boolean; downlink: boolean; online: boolean }>
  readonly inboundUplink: boolean
  readonly inboundDownlink: boolean
  readonly outboundUplink: boolean
  readonly outboundDownlink: boolean
}

/** The gRPC API: its tag, the services asked for, and where it listens. */
export interface ApiConfig {
  readonly tag: string
  readonly services: readonly string[]
  /** Xray's `api.listen`, or the listen address and port of the inbound routed to the API. */
  readonly listen: { readonly address: string; readonly port: number } | undefined
  /** The inbounds routed to the API: handlers the API knows, without users. */
  readonly inboundTags: readonly string[]
}

/** What the operator sections configure; absent parts are undefined. */
export interface OperateConfig {
  readonly stats: StatsPolicy | undefined
  readonly api: ApiConfig | undefined
}

/** The API services tsray serves; the others named in `api.services` are reported. */
export const SERVED_API_SERVICES = ['HandlerService', 'StatsService'] as const

type Problem = { path: string; message: string }

function objectOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined
}

function readPort(value: unknown): number | undefined {
  const port = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value
  return typeof port === 'number' && Number.isInteger(port) && port >= 0 && port <= 65535 ? port : undefined
}

/** "127.0.0.1:10085" or "[::1]:10085". */
function readHostPort(value: unknown): { address: string; port: number } | undefined {
  if (typeof value !== 'string') return undefined
  const colon = value.lastIndexOf(':')
  if (colon <= 0) return undefined
  const host = value.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
  const port = readPort(value.slice(colon + 1))
  if (port === undefined || !/^[\w.:-]+$/.test(host)) return undefined
  return { address: host, port }
}

function readStatsPolicy(policy: unknown): StatsPolicy {
  const levels = new Map<number, { uplink: boolean; downlink: boolean; online: boolean }>()
  const configured = objectOf(objectOf(policy)?.levels) ?? {}
  for (const [key, level] of Object.entries(configured)) {
    if (!/^\d{1,10}$/.test(key)) continue
    const values = objectOf(level) ?? {}
    levels.set(Number(key), {
      uplink: values.statsUserUplink === true,
      downlink: values.statsUserDownlink === true,
      online: values.statsUserOnline === true,
    })
  }
  const system = objectOf(objectOf(policy)?.system) ?? {}
  return {
    levels,
    inboundUplink: system.statsInboundUplink === true,
    inboundDownlink: system.statsInboundDownlink === true,
    outboundUplink: system.statsOutboundUplink === true,
    outboundDownlink: system.statsOutboundDownlink === true,
  }
}

/**
 * Reads `stats`, `policy` (its stats switches) and `api` from a merged config. `apiInbounds` are the
 * inbounds a routing rule sends to the API tag: the first one's listen address and port serve the API
 * unless Xray's `api.listen` is set.
 */
export function readOperateConfig(
  raw: Record<string, unknown>,
  apiInbounds: ReadonlySet<string>,
  problems: { warnings: Problem[]; errors: Problem[] },
): OperateConfig {
  const stats = raw.stats === undefined ? undefined : readStatsPolicy(raw.policy)
  const api = objectOf(raw.api)
  if (api === undefined || typeof api.tag !== 'string') return { stats, api: undefined }
  const services = Array.isArray(api.services)
    ? api.services.filter((name): name is string => typeof name === 'string')
    : []
  for (const [index, name] of services.entries()) {
    if (!(SERVED_API_SERVICES as readonly string[]).includes(name))
      problems.warnings.push({
        path: `api.services[${index}]`,
        message: `ignored: tsray serves ${SERVED_API_SERVICES.join(' and ')} only`,
      })
  }
  if (services.includes('StatsService') && stats === undefined)
    problems.warnings.push({
      path: 'api.services',
      message: 'StatsService has no counters to report: the config has no "stats": {} section',
    })
  let listen: ApiConfig['listen']
  if (api.listen !== undefined) {
    listen = readHostPort(api.listen)
    if (listen === undefined)
      problems.errors.push({
        path: 'api.listen',
        message: 'is not "IP:port" (for example "127.0.0.1:10085")',
      })
  } else {
    const inbounds = Array.isArray(raw.inbounds) ? raw.inbounds : []
    const inbound = inbounds
      .map(objectOf)
      .find((entry) => typeof entry?.tag === 'string' && apiInbounds.has(entry.tag))
    if (inbound !== undefined) {
      const port = readPort(inbound.port)
      const address = typeof inbound.listen === 'string' ? inbound.listen : '0.0.0.0'
      if (port === undefined)
        problems.errors.push({
          path: `inbounds (tag "${String(inbound.tag)}")`,
          message: 'serves the API but has no port',
        })
      else listen = { address, port }
    }
  }
  if (listen === undefined && problems.errors.length === 0)
    problems.warnings.push({
      path: 'api',
      message: `ignored: neither api.listen nor an inbound routed to the tag "${api.tag}" says where it listens`,
    })
  return { stats, api: { tag: api.tag, services, listen, inboundTags: [...apiInbounds] } }
}
