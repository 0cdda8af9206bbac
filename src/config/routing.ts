// `routing`: the domain strategy and field rules.
import { z } from 'zod'
import { advised, ignored, refused, withRule } from './keys.js'
import { describeValue } from './paths.js'
import {
  adviseUnknownWord,
  fail,
  Failure,
  leaf,
  optional,
  readCidrList,
  readDomainList,
  readPortList,
  readRequiredString,
  readStringList,
  spellingReader,
  uniqueNetworks,
} from './readers.js'
import { type RoutingConfig, type RoutingDomainStrategy, type RoutingRule } from './types.js'

function readRuleType(value: unknown): 'field' | Failure {
  if (value === undefined || (typeof value === 'string' && value.toLowerCase() === 'field')) return 'field'
  return fail(`${describeValue(value)} is not a rule type (supported: "field")`)
}

const optionalList = <T>(read: (value: unknown) => T[] | Failure) => leaf(optional(read, undefined))

/** `routing.rules[]`. */
export const routingRuleSchema = z
  .object({
    type: leaf(readRuleType),
    outboundTag: leaf(readRequiredString),
    balancerTag: refused('not supported yet: tsray has no balancers'),
    inboundTag: optionalList(readStringList),
    domain: optionalList(readDomainList),
    domains: optionalList(readDomainList),
    ip: optionalList(readCidrList),
    port: optionalList(readPortList),
    sourcePort: optionalList(readPortList),
    network: optionalList(uniqueNetworks),
    source: optionalList(readCidrList),
    user: optionalList(readStringList),
    protocol: refused('not supported: matching sniffed protocols needs sniffing, which tsray does not do'),
    attrs: refused('not supported: matching HTTP attributes needs sniffing, which tsray does not do'),
  })
  .transform((rule): RoutingRule => ({
    outboundTag: rule.outboundTag,
    inboundTag: rule.inboundTag,
    domain:
      rule.domain === undefined && rule.domains === undefined
        ? undefined
        : [...(rule.domain ?? []), ...(rule.domains ?? [])],
    ip: rule.ip,
    port: rule.port,
    sourcePort: rule.sourcePort,
    network: rule.network,
    source: rule.source,
    user: rule.user,
  }))

const ROUTING_STRATEGIES: Readonly<Record<string, RoutingDomainStrategy>> = {
  asis: 'AsIs',
  ipifnonmatch: 'IPIfNonMatch',
  ip_if_non_match: 'IPIfNonMatch',
  'ip-if-non-match': 'IPIfNonMatch',
  ipondemand: 'IPOnDemand',
  ip_on_demand: 'IPOnDemand',
  'ip-on-demand': 'IPOnDemand',
}

function readRoutingStrategy(value: unknown): RoutingDomainStrategy | Failure {
  if (typeof value === 'string' && ['alwaysip', 'always_ip', 'always-ip'].includes(value.toLowerCase())) {
    return fail(
      `${describeValue(value)} is not supported yet (supported: "AsIs", "IPIfNonMatch", "IPOnDemand")`,
    )
  }
  return spellingReader(ROUTING_STRATEGIES, 'AsIs')(value)
}

/** `routing`. */
export const routingSchema = z
  .object({
    domainStrategy: withRule(leaf(readRoutingStrategy), {
      advise: adviseUnknownWord(
        [...Object.keys(ROUTING_STRATEGIES), 'alwaysip', 'always_ip', 'always-ip'],
        'a routing domain strategy',
        'AsIs',
      ),
    }),
    rules: z.array(routingRuleSchema).optional(),
    balancers: advised((value) =>
      Array.isArray(value) && value.length > 0 ? 'ignored: balancers are not supported yet' : undefined,
    ),
    strategy: ignored('a V2Ray v3 key'),
  })
  .transform((routing): RoutingConfig => ({
    domainStrategy: routing.domainStrategy,
    rules: routing.rules ?? [],
  }))
