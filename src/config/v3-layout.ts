// V2Ray's v3 layout, which 4.34 still reads: `inbound` and `outbound` (one each), `inboundDetour` and
// `outboundDetour` (lists) and a top-level `port`. V2Ray joins them as inbound, inboundDetour, inbounds
// (outbounds likewise: the first of them is the default route) and gives `port` to the first inbound
// when it has none (infra/conf/v2ray.go, Config.Build). `routing.settings` (v3) adds its rules after
// `routing.rules` and gives its domainStrategy when `routing` has none (infra/conf/router.go).
import { type ConfigReport, isPlainObject, lookupKey } from './paths.js'

const V3_KEYS = ['inbound', 'inboundDetour', 'outbound', 'outboundDetour', 'port'] as const

function listOf(value: unknown): unknown[] {
  if (value === undefined || value === null) return []
  return Array.isArray(value) ? value : [value]
}

/** `routing` with v3's `routing.settings` folded in; the same object when it has none. */
function joinV3Routing(routing: unknown, report: ConfigReport): unknown {
  if (!isPlainObject(routing)) return routing
  const settings = lookupKey(routing, 'settings')
  if (settings === undefined || settings === null) return routing
  const joined: Record<string, unknown> = Object.fromEntries(
    Object.entries(routing).filter(([key]) => key.toLowerCase() !== 'settings'),
  )
  if (isPlainObject(settings)) {
    const rules = [...listOf(lookupKey(routing, 'rules')), ...listOf(lookupKey(settings, 'rules'))]
    if (rules.length > 0) joined.rules = rules
    const strategy = lookupKey(routing, 'domainStrategy') ?? lookupKey(settings, 'domainStrategy')
    if (strategy !== undefined) joined.domainStrategy = strategy
  }
  report.warnings.push({
    path: 'routing.settings',
    message:
      'read as V2Ray reads the v3 layout: its rules follow routing.rules (write them in routing.rules)',
  })
  return joined
}

/** The config with the v3 keys folded into `inbounds` and `outbounds`; the same object when it has none. */
export function joinV3Layout(raw: Record<string, unknown>, report: ConfigReport): Record<string, unknown> {
  const routing = lookupKey(raw, 'routing')
  const joinedRouting = joinV3Routing(routing, report)
  if (joinedRouting !== routing) raw = { ...raw, routing: joinedRouting }
  const present = V3_KEYS.filter((key) => lookupKey(raw, key) !== undefined && lookupKey(raw, key) !== null)
  if (present.length === 0) return raw
  const isV3Key = (key: string): boolean => V3_KEYS.some((name) => name.toLowerCase() === key.toLowerCase())
  const joined: Record<string, unknown> = Object.fromEntries(
    Object.entries(raw).filter(([key]) => !isV3Key(key)),
  )
  const inbounds = [
    ...listOf(lookupKey(raw, 'inbound')),
    ...listOf(lookupKey(raw, 'inboundDetour')),
    ...listOf(lookupKey(raw, 'inbounds')),
  ]
  const outbounds = [
    ...listOf(lookupKey(raw, 'outbound')),
    ...listOf(lookupKey(raw, 'outboundDetour')),
    ...listOf(lookupKey(raw, 'outbounds')),
  ]
  const port = lookupKey(raw, 'port')
  const first = inbounds[0]
  if (
    typeof port === 'number' &&
    port > 0 &&
    isPlainObject(first) &&
    lookupKey(first, 'port') === undefined
  ) {
    inbounds[0] = { ...first, port }
  }
  if (inbounds.length > 0) joined.inbounds = inbounds
  if (outbounds.length > 0) joined.outbounds = outbounds
  report.warnings.push({
    path: present.join(', '),
    message:
      'read as V2Ray reads the v3 layout: inbounds are inbound, inboundDetour, inbounds; outbounds are outbound, outboundDetour, outbounds (write "inbounds" and "outbounds")',
  })
  return joined
}
