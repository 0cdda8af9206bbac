import { PRIVATE_IP_RANGES } from './defaults.js'
import type { RoutingRule, TsrayConfig } from './types.js'

// V2Ray's semantics are kept: a config reaches whatever its routing allows, private addresses included.
// `tsray test` only warns when a VMess inbound others can reach may send tunnels to this machine's
// loopback or private networks, and says how to refuse them.

const LOOPBACK = /^(?:127\.|::1$|localhost$)/i

/** Whether `rule` sends every private range to a blackhole outbound for inbound `tag`, whatever else. */
function blocksPrivate(rule: RoutingRule, tag: string, blackholes: ReadonlySet<string>): boolean {
  if (!blackholes.has(rule.outboundTag) || rule.ip === undefined) return false
  if (rule.inboundTag !== undefined && !rule.inboundTag.includes(tag)) return false
  const narrowed = [rule.domain, rule.port, rule.sourcePort, rule.network, rule.source, rule.user]
  if (narrowed.some((condition) => condition !== undefined)) return false
  return PRIVATE_IP_RANGES.every((range) => rule.ip!.includes(range))
}

/** One warning per VMess inbound not bound to loopback whose tunnels may reach private targets. */
export function privateTargetWarnings(config: TsrayConfig): string[] {
  const blackholes = new Set(
    config.outbounds.flatMap((outbound, index) =>
      outbound.protocol === 'blackhole' ? [outbound.tag ?? `outbound-${index}`] : [],
    ),
  )
  const firstIsBlackhole = config.outbounds[0]?.protocol === 'blackhole'
  const warnings: string[] = []
  config.inbounds.forEach((inbound, index) => {
    if (inbound.protocol !== 'vmess' || LOOPBACK.test(inbound.listen)) return
    const tag = inbound.tag ?? `inbound-${index}`
    if (firstIsBlackhole || config.routing.rules.some((rule) => blocksPrivate(rule, tag, blackholes))) return
    warnings.push(
      `inbounds[${index}] (vmess on ${inbound.listen}:${inbound.port}) lets its users reach this machine's ` +
        'loopback and private networks; to refuse them, add a blackhole outbound, the routing rule ' +
        '{"type": "field", "ip": ["geoip:private"], "outboundTag": "<its tag>"} first, and ' +
        '"domainStrategy": "IPOnDemand" so that names such as localhost are resolved for it',
    )
  })
  return warnings
}
