// `dns`: the static `hosts` and the `servers` V2Ray asks, in order, when it resolves a domain itself
// (freedom's UseIP*, routing's IPIfNonMatch/IPOnDemand). What tsray cannot do is refused by name.
import { z } from 'zod'
import { ignored, withRule } from './keys.js'
import { describeValue, isPlainObject } from './paths.js'
import {
  fail,
  Failure,
  ipVersion,
  leaf,
  readBoolean,
  readCidrList,
  readDomainList,
  readHost,
  readPortNumber,
  spellingReader,
} from './readers.js'
import type { DnsConfig, DnsHostConfig, DnsQueryStrategy, DnsServerConfig } from './types.js'

/** V2Ray's DNS port when a server gives none. */
const DNS_PORT = 53

/** Server address schemes V2Ray and Xray have that tsray does not speak, and what they are. */
const UNSUPPORTED_SCHEMES: readonly (readonly [string, string])[] = [
  ['https+local://', 'DNS over HTTPS'],
  ['https://', 'DNS over HTTPS'],
  ['h2c://', 'DNS over HTTPS'],
  ['tcp+local://', 'DNS over TCP'],
  ['tcp://', 'DNS over TCP'],
  ['quic+local://', 'DNS over QUIC'],
  ['quic://', 'DNS over QUIC'],
  ['tls://', 'DNS over TLS'],
]

/** A `hosts` key: V2Ray reads a key without a prefix as a full domain (infra/conf/dns.go). */
function readHostMatcher(key: string): string | Failure {
  const lower = key.toLowerCase()
  const prefixed = ['domain:', 'full:', 'keyword:', 'regexp:', 'dotless:', 'geosite:', 'ext:'].some(
    (prefix) => lower.startsWith(prefix),
  )
  const matcher = readDomainList(prefixed ? key : `full:${key}`)
  if (matcher instanceof Failure) return matcher
  return matcher[0] ?? fail(`${describeValue(key)} has nothing to match`)
}

/** `hosts`: domain → an IP, a list of IPs, or one domain that is resolved in its place. */
function readHosts(value: unknown): DnsHostConfig[] | Failure {
  if (value === undefined) return []
  if (!isPlainObject(value)) return fail(`${describeValue(value)} is not an object`)
  const hosts: DnsHostConfig[] = []
  for (const [key, target] of Object.entries(value)) {
    const matcher = readHostMatcher(key)
    if (matcher instanceof Failure) return fail(matcher.problems[0]?.message ?? 'is not valid', [key])
    const list = Array.isArray(target) ? target : [target]
    const addresses: string[] = []
    for (const [index, entry] of list.entries()) {
      const host = readHost(entry)
      const path = Array.isArray(target) ? [key, index] : [key]
      if (host instanceof Failure) return fail(host.problems[0]?.message ?? 'is not valid', path)
      if (ipVersion(host) === 0 && list.length > 1) {
        return fail(`${describeValue(entry)}: a list of addresses holds IP addresses only`, path)
      }
      addresses.push(host)
    }
    if (addresses.length === 0) return fail('is empty', [key])
    hosts.push({ matcher, addresses })
  }
  return hosts
}

function readServerAddress(value: unknown): string | Failure {
  if (typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
  const lower = value.toLowerCase()
  if (lower === 'localhost') return 'localhost'
  if (lower === 'fakedns')
    return fail('"fakedns" is not supported (it needs sniffing, which tsray does not do)')
  const scheme = UNSUPPORTED_SCHEMES.find(([prefix]) => lower.startsWith(prefix))
  if (scheme !== undefined) {
    return fail(
      `${describeValue(value)}: ${scheme[1]} is not supported yet (supported: plain DNS to an IP, "localhost")`,
    )
  }
  const host = readHost(value)
  if (host instanceof Failure) return host
  if (ipVersion(host) === 0) {
    return fail(`${describeValue(value)} is not an IP address (a DNS server is an IP address or "localhost")`)
  }
  return host
}

/** One `servers[]` entry: an address string, or an object with `address`, `port`, `domains`, `expectIPs`. */
function readServer(value: unknown): DnsServerConfig | Failure {
  if (!isPlainObject(value)) {
    const address = readServerAddress(value)
    if (address instanceof Failure) return address
    return { address, port: DNS_PORT, domains: [], expectIps: [], skipFallback: false }
  }
  const field = (key: string): unknown =>
    Object.entries(value).find(([name]) => name.toLowerCase() === key.toLowerCase())?.[1] ?? undefined
  const address = readServerAddress(field('address'))
  if (address instanceof Failure) return fail(address.problems[0]?.message ?? 'is not valid', ['address'])
  const portValue = field('port')
  const port = portValue === undefined || portValue === 0 ? DNS_PORT : readPortNumber(portValue)
  if (port instanceof Failure) return fail(port.problems[0]?.message ?? 'is not valid', ['port'])
  const domainsValue = field('domains')
  const domains = domainsValue === undefined ? [] : readDomainList(domainsValue)
  if (domains instanceof Failure)
    return new Failure(domains.problems.map((p) => ({ ...p, path: ['domains', ...p.path] })))
  const expectValue = field('expectIPs')
  const expectIps = expectValue === undefined ? [] : readExpectIps(expectValue)
  if (expectIps instanceof Failure) {
    return new Failure(expectIps.problems.map((p) => ({ ...p, path: ['expectIPs', ...p.path] })))
  }
  const skipValue = field('skipFallback')
  const skipFallback = skipValue === undefined ? false : readBoolean(skipValue)
  if (skipFallback instanceof Failure) return fail(skipFallback.problems[0]?.message ?? '', ['skipFallback'])
  return { address, port, domains, expectIps, skipFallback }
}

/** geoip lists other than "geoip:private" need geoip.dat, which tsray does not read. */
const isGeoList = (entry: unknown): boolean =>
  typeof entry === 'string' && /^geoip:/i.test(entry) && entry.toLowerCase() !== 'geoip:private'

/** `expectIPs` without the geoip lists tsray cannot read (adviseServers warns about them). */
function readExpectIps(value: unknown): string[] | Failure {
  const list = Array.isArray(value) ? value.filter((entry) => !isGeoList(entry)) : value
  if (Array.isArray(list) && list.length === 0) return []
  return readCidrList(list)
}

/** Warns about what the servers ask for and tsray drops: geoip lists in `expectIPs`, `clientIp`. */
function adviseServers(value: unknown): string | undefined {
  if (!Array.isArray(value)) return undefined
  const dropped = value.flatMap((server, index) => {
    if (!isPlainObject(server)) return []
    const notes: string[] = []
    const expect = Object.entries(server).find(([key]) => key.toLowerCase() === 'expectips')?.[1]
    const geo = Array.isArray(expect) ? expect.filter(isGeoList) : []
    if (geo.length > 0) {
      notes.push(
        `[${index}].expectIPs ${geo.map((entry) => describeValue(entry)).join(', ')} (needs geoip.dat)`,
      )
    }
    if (Object.keys(server).some((key) => key.toLowerCase() === 'clientip')) {
      notes.push(`[${index}].clientIp (tsray sends no EDNS client subnet)`)
    }
    return notes
  })
  return dropped.length === 0 ? undefined : `ignored: ${dropped.join(', ')}`
}

function readServers(value: unknown): DnsServerConfig[] | Failure {
  if (value === undefined) return []
  if (!Array.isArray(value)) return fail(`${describeValue(value)} is not a list`)
  const servers: DnsServerConfig[] = []
  const problems: { message: string; path: (string | number)[] }[] = []
  value.forEach((entry, index) => {
    const server = readServer(entry)
    if (server instanceof Failure)
      problems.push(...server.problems.map((p) => ({ ...p, path: [index, ...p.path] })))
    else servers.push(server)
  })
  return problems.length === 0 ? servers : new Failure(problems)
}

const QUERY_STRATEGIES: Readonly<Record<string, DnsQueryStrategy>> = {
  useip: 'UseIP',
  useipv4: 'UseIPv4',
  useipv6: 'UseIPv6',
}

/** `dns`. */
export const dnsSchema = z
  .object({
    hosts: leaf(readHosts),
    servers: withRule(leaf(readServers), { advise: adviseServers }),
    clientIp: ignored('tsray sends no EDNS client subnet'),
    tag: ignored('tsray sends its DNS queries straight to the servers, not through routing'),
    disableCache: ignored('tsray keeps no DNS cache'),
    disableFallback: leaf((value: unknown) => (value === undefined ? false : readBoolean(value))),
    queryStrategy: leaf(spellingReader(QUERY_STRATEGIES, 'UseIP')),
  })
  .transform((dns): DnsConfig => ({
    hosts: dns.hosts,
    servers: dns.servers,
    disableFallback: dns.disableFallback,
    queryStrategy: dns.queryStrategy,
  }))
