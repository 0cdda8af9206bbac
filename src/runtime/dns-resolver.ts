// V2Ray's DNS as freedom (UseIP*) and routing (IPIfNonMatch, IPOnDemand) consult it: `dns.hosts` first,
// then the servers, those whose `domains` match the name before the others, each answer checked against
// the server's `expectIPs`; no servers means the system resolver (app/dns in v2ray-core 4.x).
// The queries themselves are node:dns's (c-ares: UDP, TCP when an answer is truncated).
import { lookup, Resolver } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'
import type { DnsConfig, DnsServerConfig } from '../config/types.js'
import { domainMatcher, type DomainMatcher } from './domain-matcher.js'

/** Which addresses a lookup wants: any, IPv4 only or IPv6 only. */
export type AddressFamily = 0 | 4 | 6

/** How long one server may take to answer one question, and how often it is asked. */
export const DNS_QUERY_TIMEOUT_MS = 4_000
export const DNS_QUERY_TRIES = 2
/** Hosts entries pointing at other names are followed this deep (a loop ends there). */
const MAX_ALIAS_DEPTH = 4

interface CompiledServer {
  readonly config: DnsServerConfig
  readonly domains: readonly DomainMatcher[]
  readonly expect: BlockList | undefined
  readonly resolver: Resolver | undefined
}

function blockListOf(cidrs: readonly string[]): BlockList | undefined {
  if (cidrs.length === 0) return undefined
  const list = new BlockList()
  for (const cidr of cidrs) {
    const [address = '', written] = cidr.split('/')
    const prefix = written ?? (isIP(address) === 6 ? '128' : '32')
    list.addSubnet(address, Number(prefix), isIP(address) === 6 ? 'ipv6' : 'ipv4')
  }
  return list
}

function compileServer(config: DnsServerConfig): CompiledServer {
  let resolver: Resolver | undefined
  if (config.address !== 'localhost') {
    resolver = new Resolver({ timeout: DNS_QUERY_TIMEOUT_MS, tries: DNS_QUERY_TRIES })
    const host = isIP(config.address) === 6 ? `[${config.address}]` : config.address
    resolver.setServers([`${host}:${config.port}`])
  }
  return {
    config,
    domains: config.domains.map(domainMatcher),
    expect: blockListOf(config.expectIps),
    resolver,
  }
}

function familyOf(address: string): 4 | 6 {
  return isIP(address) === 6 ? 6 : 4
}

/** Resolves names as V2Ray's DNS does. */
export class DnsResolver {
  readonly #hosts: readonly { readonly match: DomainMatcher; readonly addresses: readonly string[] }[]
  readonly #servers: readonly CompiledServer[]
  readonly #disableFallback: boolean
  readonly #strategy: AddressFamily

  constructor(config: DnsConfig | undefined) {
    this.#hosts = (config?.hosts ?? []).map((entry) => ({
      match: domainMatcher(entry.matcher),
      addresses: entry.addresses,
    }))
    this.#servers = (config?.servers ?? []).map(compileServer)
    this.#disableFallback = config?.disableFallback ?? false
    const strategy = config?.queryStrategy ?? 'UseIP'
    this.#strategy = strategy === 'UseIPv4' ? 4 : strategy === 'UseIPv6' ? 6 : 0
  }

  /** Every address of `host` in `family` (0: both); rejects when no source has one. */
  async resolve(host: string, family: AddressFamily = 0): Promise<string[]> {
    if (isIP(host) !== 0) return [host]
    const wanted: AddressFamily = family === 0 ? this.#strategy : family
    let name = host.toLowerCase().replace(/\.$/, '')
    for (let depth = 0; depth < MAX_ALIAS_DEPTH; depth += 1) {
      const entry = this.#hosts.find((candidate) => candidate.match(name))
      if (entry === undefined) break
      const first = entry.addresses[0] ?? ''
      if (isIP(first) === 0) {
        name = first.toLowerCase()
        continue
      }
      const addresses = entry.addresses.filter((address) => wanted === 0 || familyOf(address) === wanted)
      if (addresses.length > 0) return addresses
      throw new Error(`Cannot resolve ${host}: dns.hosts has no IPv${wanted} address for it`)
    }
    return this.#ask(name, wanted)
  }

  async #ask(name: string, family: AddressFamily): Promise<string[]> {
    if (this.#servers.length === 0) return systemLookup(name, family)
    const matching = this.#servers.filter((server) => server.domains.some((match) => match(name)))
    const others = this.#disableFallback
      ? []
      : this.#servers.filter((server) => !matching.includes(server) && !server.config.skipFallback)
    let lastError: unknown = new Error(`Cannot resolve ${name}: no DNS server is asked for it`)
    for (const server of [...matching, ...others]) {
      try {
        const answer = await query(server, name, family)
        const expect = server.expect
        const accepted =
          expect === undefined
            ? answer
            : answer.filter((address) => expect.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4'))
        if (accepted.length > 0) return accepted
        lastError = new Error(`Cannot resolve ${name}: ${server.config.address} gave no expected address`)
      } catch (error) {
        lastError = error
      }
    }
    throw lastError
  }
}

async function systemLookup(name: string, family: AddressFamily): Promise<string[]> {
  const entries = await lookup(name, { all: true, family })
  return entries.map((entry) => entry.address)
}

async function query(server: CompiledServer, name: string, family: AddressFamily): Promise<string[]> {
  if (server.resolver === undefined) return systemLookup(name, family)
  const resolver = server.resolver
  const ask = (version: 4 | 6): Promise<string[]> =>
    (version === 4 ? resolver.resolve4(name) : resolver.resolve6(name)).catch((error: unknown) => {
      if (family !== 0) throw error
      return []
    })
  if (family !== 0) return ask(family)
  const [v4, v6] = await Promise.all([ask(4), ask(6)])
  const all = [...v4, ...v6]
  if (all.length === 0)
    throw new Error(`Cannot resolve ${name}: ${server.config.address} has no address for it`)
  return all
}
