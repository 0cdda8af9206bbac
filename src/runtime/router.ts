import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ConnectionContext, Outbound, PacketChannel } from '../outbound/outbound.js'
import type { Destination } from '../types.js'
import type { Dispatcher } from '../outbound/outbound.js'
import { PRIVATE_IP_RANGES } from '../config/defaults.js'
import { canonicalIpLiteral, canonicalTarget } from './target-address.js'
import { domainMatcher } from './domain-matcher.js'

/** One routing rule: every condition given must match (V2Ray `routing.rules[]`, type "field"). */
export interface RouteRule {
  readonly outboundTag: string
  readonly inboundTags?: readonly string[]
  /** Plain substring, `keyword:`, `domain:`, `full:`, `regexp:` or `dotless:` patterns. */
  readonly domains?: readonly string[]
  /** CIDRs or single IPs. */
  readonly ips?: readonly string[]
  /** Port ranges, inclusive. */
  readonly ports?: readonly (readonly [number, number])[]
  readonly networks?: readonly ('tcp' | 'udp')[]
  readonly users?: readonly string[]
  /** CIDRs or single IPs of the client. */
  readonly sources?: readonly string[]
  /** Port ranges of the client, inclusive. */
  readonly sourcePorts?: readonly (readonly [number, number])[]
}

function ipList(cidrs: readonly string[]): BlockList {
  const list = new BlockList()
  for (const cidr of cidrs) {
    const [address = '', prefix] = cidr.split('/')
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4'
    if (prefix === undefined) list.addAddress(address, family)
    else list.addSubnet(address, Number(prefix), family)
  }
  return list
}

function hostOf(source: string): string {
  const host = source.slice(0, source.lastIndexOf(':'))
  return host.startsWith('[') ? host.slice(1, -1) : host
}

interface CompiledRule {
  readonly outbound: Outbound
  readonly matches: (destination: Destination, context: ConnectionContext) => boolean
}

function compileRule(rule: RouteRule, outbound: Outbound): CompiledRule {
  const checks: ((destination: Destination, context: ConnectionContext) => boolean)[] = []
  if (rule.inboundTags !== undefined) {
    const tags = new Set(rule.inboundTags)
    checks.push((_d, context) => tags.has(context.inboundTag))
  }
  if (rule.domains !== undefined) {
    const matchers = rule.domains.map(domainMatcher)
    checks.push((d) => isIP(d.host) === 0 && matchers.some((m) => m(d.host.toLowerCase())))
  }
  if (rule.ips !== undefined) {
    const list = ipList(rule.ips)
    checks.push((d) => {
      const family = isIP(d.host)
      return family !== 0 && list.check(d.host, family === 6 ? 'ipv6' : 'ipv4')
    })
  }
  if (rule.ports !== undefined) {
    const ranges = rule.ports
    checks.push((d) => ranges.some(([from, to]) => d.port >= from && d.port <= to))
  }
  if (rule.networks !== undefined) {
    const networks = new Set(rule.networks)
    checks.push((d) => networks.has(d.network))
  }
  if (rule.users !== undefined) {
    const users = new Set(rule.users)
    checks.push((_d, context) => users.has(context.user))
  }
  if (rule.sources !== undefined) {
    const list = ipList(rule.sources)
    checks.push((_d, context) => {
      const host = hostOf(context.source)
      const family = isIP(host)
      return family !== 0 && list.check(host, family === 6 ? 'ipv6' : 'ipv4')
    })
  }
  if (rule.sourcePorts !== undefined) {
    const ranges = rule.sourcePorts
    checks.push((_d, context) => {
      const port = Number(context.source.slice(context.source.lastIndexOf(':') + 1))
      return ranges.some(([from, to]) => port >= from && port <= to)
    })
  }
  return { outbound, matches: (d, c) => checks.every((check) => check(d, c)) }
}

/** Where a listener on this machine may be reached from inside it. */
const OWN_ADDRESSES = ipList(PRIVATE_IP_RANGES)

/** `destination` with an IP literal in plain form (a domain, "localhost" included, stays as is). */
function canonicalLiteral(destination: Destination): Destination {
  const host = canonicalIpLiteral(destination.host)
  return host === undefined || host === destination.host ? destination : { ...destination, host }
}

async function systemResolve(host: string): Promise<readonly string[]> {
  return (await lookup(host, { all: true })).map((entry) => entry.address)
}

/** V2Ray's `routing.domainStrategy`: whether a domain that matched no rule is resolved and tried as an IP. */
export type DomainStrategy = 'AsIs' | 'IPIfNonMatch' | 'IPOnDemand'

/**
 * Picks an outbound per connection or datagram: the first matching rule wins, else the first
 * outbound (V2Ray's default). With IPIfNonMatch or IPOnDemand a TCP domain that matched no rule is
 * resolved and its IP tried against the rules; the connection still goes to the domain.
 */
export class Router implements Dispatcher {
  readonly #rules: readonly CompiledRule[]
  readonly #defaultOutbound: Outbound
  readonly #resolveDomains: boolean
  readonly #protected: readonly { readonly host: string; readonly port: number }[]
  readonly #resolve: (host: string) => Promise<readonly string[]>

  constructor(options: {
    rules: readonly RouteRule[]
    outbounds: ReadonlyMap<string, Outbound>
    defaultOutbound: Outbound
    domainStrategy?: DomainStrategy
    /**
     * This process's own endpoints that no tunnel may reach (the metrics endpoint): refused when the
     * target is that address, or a loopback, unspecified or private one, with that port.
     */
    protectedEndpoints?: readonly { readonly host: string; readonly port: number }[]
    /** The IPs of a domain (V2Ray's DNS: `dns.hosts`, then `dns.servers`); the system resolver when absent. */
    resolve?: (host: string) => Promise<readonly string[]>
  }) {
    this.#protected = options.protectedEndpoints ?? []
    this.#resolveDomains = (options.domainStrategy ?? 'AsIs') !== 'AsIs'
    this.#resolve = options.resolve ?? systemResolve
    this.#rules = options.rules.map((rule) => {
      const outbound = options.outbounds.get(rule.outboundTag)
      if (outbound === undefined) throw new Error(`Cannot route: no outbound is tagged "${rule.outboundTag}"`)
      return compileRule(rule, outbound)
    })
    this.#defaultOutbound = options.defaultOutbound
  }

  /** The outbound for `destination`. */
  pick(destination: Destination, context: ConnectionContext): Outbound {
    return this.#match(destination, context) ?? this.#defaultOutbound
  }

  #match(destination: Destination, context: ConnectionContext): Outbound | undefined {
    // IP conditions see an IP literal in any spelling as the address it is; a name ("localhost"
    // included) stays a name, as in V2Ray: only IPIfNonMatch/IPOnDemand resolve it for IP rules.
    const seen = canonicalLiteral(destination)
    for (const rule of this.#rules) {
      if (rule.matches(destination, context) || (seen !== destination && rule.matches(seen, context)))
        return rule.outbound
    }
    return undefined
  }

  async dialTcp(requested: Destination, context: ConnectionContext): Promise<Duplex> {
    // The literal routed is the literal dialled, whatever its spelling.
    const destination = canonicalLiteral(requested)
    if (this.#isProtected(destination)) {
      throw Object.assign(
        new Error(`Cannot dial ${destination.host}:${destination.port}: this server's own endpoint`),
        {
          code: 'TARGET_FORBIDDEN',
        },
      )
    }
    let outbound = this.#match(destination, context)
    if (
      outbound === undefined &&
      this.#resolveDomains &&
      isIP(destination.host) === 0 &&
      this.#rules.length > 0
    ) {
      // V2Ray tries the rules on every address of the domain.
      const addresses = await this.#resolve(destination.host).catch(() => [])
      for (const address of addresses) {
        outbound = this.#match({ ...destination, host: address }, context)
        if (outbound !== undefined) break
      }
    }
    return (outbound ?? this.#defaultOutbound).dialTcp(destination, context)
  }

  #isProtected(destination: Destination): boolean {
    if (this.#protected.length === 0) return false
    const host = canonicalTarget(destination.host)
    return this.#protected.some(
      (endpoint) =>
        endpoint.port === destination.port &&
        (host === canonicalTarget(endpoint.host) ||
          OWN_ADDRESSES.check(host, isIP(host) === 6 ? 'ipv6' : 'ipv4')),
    )
  }

  openUdp(context: ConnectionContext): PacketChannel {
    return new RoutedPacketChannel(this, context)
  }
}

/** A datagram channel that opens one channel per chosen outbound and routes each datagram. */
class RoutedPacketChannel implements PacketChannel {
  readonly #router: Router
  readonly #context: ConnectionContext
  readonly #channels = new Map<Outbound, PacketChannel>()
  #onPacket: (payload: Buffer, from: Destination) => void = () => undefined
  readonly #onClose: ((error?: Error) => void)[] = []
  #closed = false

  constructor(router: Router, context: ConnectionContext) {
    this.#router = router
    this.#context = context
  }

  send(payload: Buffer, requested: Destination): void {
    if (this.#closed) return
    const to = canonicalLiteral(requested)
    const outbound = this.#router.pick(to, this.#context)
    let channel = this.#channels.get(outbound)
    if (channel === undefined) {
      channel = outbound.openUdp(this.#context)
      channel.onPacket((reply, from) => this.#onPacket(reply, from))
      channel.onClose((error) => {
        this.#channels.delete(outbound)
        if (this.#channels.size === 0) this.#close(error)
      })
      this.#channels.set(outbound, channel)
    }
    channel.send(payload, to)
  }

  onPacket(handler: (payload: Buffer, from: Destination) => void): void {
    this.#onPacket = handler
  }

  onClose(handler: (error?: Error) => void): void {
    this.#onClose.push(handler)
  }

  close(): void {
    for (const channel of [...this.#channels.values()]) channel.close()
    this.#close()
  }

  #close(error?: Error): void {
    if (this.#closed) return
    this.#closed = true
    for (const handler of this.#onClose) handler(error)
  }
}
