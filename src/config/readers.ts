// Leaf readers: one JSON value in, the typed value or the problems out, wrapped in a zod schema by `leaf`.
import { z } from 'zod'
import {
  DEFAULT_LISTEN_ADDRESS,
  MAX_ALTER_ID,
  MAX_NON_UUID_ID_BYTES,
  MAX_USER_LEVEL,
  PRIVATE_IP_RANGES,
} from './defaults.js'
import { describeValue, type JsonPath } from './paths.js'
import { type MetricsConfig, type Network, type PortRange } from './types.js'
import { idTextProblem } from './vmess-id.js'

/** A UUID in the form the loader gives back (other VMess ids are 1–30-byte strings to map to a UUIDv5). */
export const CANONICAL_UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export interface LeafProblem {
  readonly message: string
  readonly path: JsonPath
}

/** Why a value cannot be read; `path` is relative to the value. */
export class Failure {
  readonly problems: readonly LeafProblem[]

  constructor(problems: readonly LeafProblem[]) {
    this.problems = problems
  }
}

export const fail = (message: string, path: JsonPath = []): Failure => new Failure([{ message, path }])

/** A zod schema over any input that runs `read` and reports its problems in our own words. */
export function leaf<T>(read: (value: unknown) => T | Failure) {
  // optional(): zod 4 refuses an undefined result for an absent key unless the input side is optional.
  return z
    .unknown()
    .optional()
    .transform((value, context): T => {
      const result = read(value)
      if (!(result instanceof Failure)) return result
      for (const problem of result.problems) {
        context.addIssue({ code: 'custom', message: problem.message, path: [...problem.path], input: value })
      }
      return z.NEVER
    })
}

/** `read` for a present value, `fallback` for an absent one. */
export function optional<T, F>(read: (value: unknown) => T | Failure, fallback: F) {
  return (value: unknown): T | F | Failure => (value === undefined ? fallback : read(value))
}

export function readString(value: unknown): string | Failure {
  return typeof value === 'string' ? value : fail(`${describeValue(value)} is not a string`)
}

export function readRequiredString(value: unknown): string | Failure {
  if (value === undefined) return fail('is required')
  if (typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
  return value === '' ? fail('is empty') : value
}

export function readBoolean(value: unknown): boolean | Failure {
  return typeof value === 'boolean' ? value : fail(`${describeValue(value)} is not true or false`)
}

export function integerReader(min: number, max: number) {
  return (value: unknown): number | Failure =>
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
      ? value
      : fail(`${describeValue(value)} is not an integer from ${min} to ${max}`)
}

export const MAX_UINT32 = 0xffff_ffff
export const MAX_INT32 = 0x7fff_ffff
export const readUint32 = integerReader(0, MAX_UINT32)
export const readUserLevel = optional(integerReader(0, MAX_UINT32), 0)
export const readLevel = optional(integerReader(0, MAX_USER_LEVEL), 0)
export const readAlterId = optional(integerReader(0, MAX_ALTER_ID), 0)

/** `timeout` in seconds; 0 means "not set" to V2Ray. */
export function readTimeoutMs(value: unknown): number | undefined | Failure {
  if (value === undefined) return undefined
  const seconds = readUint32(value)
  if (seconds instanceof Failure) return seconds
  return seconds === 0 ? undefined : seconds * 1000
}

export function readPortNumber(value: unknown): number | Failure {
  if (value === undefined) return fail('is required')
  const port = typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : value
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535
    ? port
    : fail(`${describeValue(value)} is not a port number (1–65535)`)
}

/** An inbound `port`: a number, a numeric string, or a range of one port (a set "env:" variable is resolved before). */
export function readListenPort(value: unknown): number | Failure {
  // 0 lets the OS pick a free port; Instance.start() reports the one bound.
  if (value === 0 || value === '0') return 0
  if (typeof value === 'string' && value.startsWith('env:')) {
    return fail(`${describeValue(value)} names an environment variable that is not set`)
  }
  if (typeof value === 'string') {
    const range = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(value)
    if (range !== null && range[1] !== range[2]) {
      return fail(
        `${describeValue(value)} is a port range; tsray listens on one port per inbound (V2Ray's allocate is not supported)`,
      )
    }
    if (range !== null) return readPortNumber(range[1])
    return readPortNumber(value.trim())
  }
  return readPortNumber(value)
}

/** `email`: V2Ray treats an empty one as none. */
export function readEmail(value: unknown): string | undefined | Failure {
  return value === undefined || value === '' ? undefined : readString(value)
}

export function readTag(value: unknown): string | undefined | Failure {
  if (value === undefined || value === '') return undefined
  return readString(value)
}

const IPV4_PATTERN = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

/** 4 or 6 for an IP literal (IPv6 without brackets), else 0. */
export function ipVersion(text: string): 0 | 4 | 6 {
  if (IPV4_PATTERN.test(text)) return 4
  // The WHATWG URL parser knows every IPv6 text form, embedded IPv4 included.
  if (text.includes(':') && !/[[\]/%]/.test(text) && URL.canParse(`http://[${text}]/`)) return 6
  return 0
}

const DOMAIN_PATTERN = /^[A-Za-z0-9_*]([A-Za-z0-9_.*-]{0,251}[A-Za-z0-9_])?\.?$/

/** A host to connect to: an IP literal (IPv6 brackets removed) or a domain name. */
export function readHost(value: unknown): string | Failure {
  const text = readRequiredString(value)
  if (text instanceof Failure) return text
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
  if (ipVersion(bare) !== 0) return bare
  return DOMAIN_PATTERN.test(text) && text.length <= 255
    ? text
    : fail(`${describeValue(value)} is not an IP address or a domain name`)
}

export function readIpAddress(value: unknown): string | Failure {
  const text = readRequiredString(value)
  if (text instanceof Failure) return text
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
  return ipVersion(bare) !== 0 ? bare : fail(`${describeValue(value)} is not an IP address`)
}

export function readListenAddress(value: unknown): string | Failure {
  if (value === undefined) return DEFAULT_LISTEN_ADDRESS
  if (typeof value === 'string' && (value.startsWith('/') || value.startsWith('@'))) {
    return fail(`${describeValue(value)} is a Unix socket; not supported yet (supported: IP addresses)`)
  }
  if (value === 'localhost') return value
  return readIpAddress(value)
}

/** `metrics.listen`: "host:port" as Go writes a listen address ("[::1]:9100"; ":9100" = every IPv4 address). */
export function readMetricsListen(value: unknown): MetricsConfig['listen'] | undefined | Failure {
  if (value === undefined) return undefined
  const text = readRequiredString(value)
  if (text instanceof Failure) return text
  const expected = 'an address and port such as "127.0.0.1:9100"'
  const parts = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(text)
  if (parts === null) return fail(`${describeValue(value)} is not ${expected}`)
  const host = parts[1] ?? parts[2] ?? ''
  const port = /^\d{1,5}$/.test(parts[3] ?? '') ? Number(parts[3]) : NaN
  if (!(port >= 1 && port <= 65535)) {
    return fail(`${describeValue(value)} does not end in a port number (1–65535); expected ${expected}`)
  }
  if (host === '') return { address: '0.0.0.0', port }
  if (host === 'localhost' || ipVersion(host) === (parts[1] === undefined ? 4 : 6))
    return { address: host, port }
  return fail(`${describeValue(value)} has no IP address before the port; expected ${expected}`)
}

const UUID_PATTERN = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i

function isShortId(value: string): boolean {
  const bytes = Buffer.byteLength(value, 'utf8')
  return bytes >= 1 && bytes <= MAX_NON_UUID_ID_BYTES
}

/** A VMess id: a UUID (given back lowercase with dashes) or a 1–30-byte string kept as it is. */
export function readVmessId(value: unknown): string | Failure {
  if (value === undefined) return fail('is required')
  if (typeof value === 'string' && UUID_PATTERN.test(value)) {
    const hex = value.replaceAll('-', '').toLowerCase()
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  }
  const problem = typeof value === 'string' ? idTextProblem(value) : undefined
  if (problem !== undefined) return fail(problem)
  if (typeof value === 'string' && isShortId(value)) return value
  return fail(`${describeValue(value)} is not a UUID`)
}

export function adviseShortId(value: unknown): string | undefined {
  return typeof value === 'string' && !UUID_PATTERN.test(value) && isShortId(value)
    ? `${describeValue(value)} is not a UUID; tsray maps it to a UUIDv5 as Xray does (V2Ray refuses such ids)`
    : undefined
}

/** A list of strings, also written as one comma-separated string (V2Ray's StringList). */
export function readStringList(value: unknown): string[] | Failure {
  if (typeof value === 'string') return value.split(',')
  if (!Array.isArray(value)) return fail(`${describeValue(value)} is not a list of strings`)
  const problems = value.flatMap((item, index) =>
    typeof item === 'string' ? [] : [{ message: `${describeValue(item)} is not a string`, path: [index] }],
  )
  return problems.length === 0 ? (value as string[]) : new Failure(problems)
}

/** Reads every entry of a string list with `readEntry`, reporting each bad entry at its index. */
function listReader<T>(readEntry: (entry: string) => T | T[] | Failure) {
  return (value: unknown): T[] | Failure => {
    const list = readStringList(value)
    if (list instanceof Failure) return list
    if (list.length === 0) return fail('is empty')
    const problems: LeafProblem[] = []
    const entries: T[] = []
    list.forEach((entry, index) => {
      const result = readEntry(entry)
      if (result instanceof Failure) {
        problems.push(...result.problems.map((problem) => ({ ...problem, path: [index, ...problem.path] })))
      } else if (Array.isArray(result)) entries.push(...result)
      else entries.push(result)
    })
    return problems.length === 0 ? entries : new Failure(problems)
  }
}

function readNetworkWord(word: string): Network | Failure {
  const network = word.trim().toLowerCase()
  if (network === 'tcp' || network === 'udp') return network
  if (network === 'unix') return fail(`${describeValue(word)} is not supported yet (supported: "tcp", "udp")`)
  return fail(`${describeValue(word)} is not a network (supported: "tcp", "udp")`)
}

const readNetworkList = listReader(readNetworkWord)

export function uniqueNetworks(value: unknown): Network[] | Failure {
  const networks = readNetworkList(value)
  return networks instanceof Failure ? networks : [...new Set(networks)]
}

function readPortRangeText(text: string): PortRange | Failure {
  const trimmed = text.trim()
  const match = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/.exec(trimmed)
  const from = match === null ? NaN : Number(match[1])
  const to = match?.[2] === undefined ? from : Number(match[2])
  if (!(from <= to && to <= 65535)) {
    return fail(`${describeValue(text)} is not a port or a port range like "1000-2000"`)
  }
  return { from, to }
}

/** A routing port list: a number, "53", "1000-2000" or "53,443,1000-2000". */
export function readPortList(value: unknown): PortRange[] | Failure {
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= 0 && value <= 65535
      ? [{ from: value, to: value }]
      : fail(`${describeValue(value)} is not a port number (0–65535)`)
  }
  if (typeof value !== 'string')
    return fail(`${describeValue(value)} is not a port list like "53,443,1000-2000"`)
  const parts = value.split(',').filter((part) => part.trim() !== '')
  if (parts.length === 0) return fail('is empty')
  const ranges: PortRange[] = []
  for (const part of parts) {
    const range = readPortRangeText(part)
    if (range instanceof Failure) return range
    ranges.push(range)
  }
  return ranges
}

/** A CIDR or a plain IP, given back as `addr/prefix`; `geoip:private` expands to its ranges. */
function readCidr(entry: string): string | string[] | Failure {
  const lower = entry.toLowerCase()
  if (lower === 'geoip:private') return [...PRIVATE_IP_RANGES]
  if (lower.startsWith('geoip:')) {
    return fail(
      `${describeValue(entry)} needs geoip.dat, which tsray does not read (only "geoip:private" is built in)`,
    )
  }
  if (lower.startsWith('ext:') || lower.startsWith('ext-ip:')) {
    return fail(`${describeValue(entry)} needs an external geo file, which tsray does not read`)
  }
  const slash = entry.indexOf('/')
  const address = slash < 0 ? entry : entry.slice(0, slash)
  const version = ipVersion(address)
  const maxPrefix = version === 6 ? 128 : 32
  const prefixText = slash < 0 ? String(maxPrefix) : entry.slice(slash + 1)
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN
  if (version === 0 || !(prefix <= maxPrefix)) {
    return fail(`${describeValue(entry)} is not an IP address or a CIDR like "10.0.0.0/8"`)
  }
  return `${address}/${prefix}`
}

export const readCidrList = listReader(readCidr)

const DOMAIN_MATCHER_PREFIXES = ['domain:', 'full:', 'keyword:', 'regexp:', 'dotless:'] as const

/** A routing domain matcher, kept as V2Ray's string; regexps must compile. */
function readDomainMatcher(entry: string): string | Failure {
  const lower = entry.toLowerCase()
  if (lower.startsWith('geosite:')) {
    return fail(
      `${describeValue(entry)} needs geosite.dat, which tsray does not read; list the domains instead`,
    )
  }
  if (lower.startsWith('ext:') || lower.startsWith('ext-domain:')) {
    return fail(`${describeValue(entry)} needs an external geo file, which tsray does not read`)
  }
  const prefix = DOMAIN_MATCHER_PREFIXES.find((candidate) => entry.startsWith(candidate))
  const body = prefix === undefined ? entry : entry.slice(prefix.length)
  if (prefix === 'dotless:') {
    return body.includes('.')
      ? fail(`${describeValue(entry)}: a dotless matcher cannot contain a dot`)
      : entry
  }
  if (body === '') return fail(`${describeValue(entry)} has nothing to match`)
  if (prefix === 'regexp:') {
    try {
      new RegExp(body)
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      return fail(`${describeValue(entry)} is not a valid regular expression: ${reason}`)
    }
  }
  return entry
}

export const readDomainList = listReader(readDomainMatcher)

/** Normalises a word against V2Ray's accepted spellings, compared in lower case. */
export function spellingReader<T extends string>(spellings: Readonly<Record<string, T>>, fallback: T) {
  return (value: unknown): T | Failure => {
    if (value === undefined || value === '') return fallback
    if (typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
    return spellings[value.toLowerCase()] ?? fallback
  }
}

/** A warning for a word V2Ray reads as its default; `known` holds the accepted spellings in lower case. */
export function adviseUnknownWord(known: readonly string[], what: string, fallback: string) {
  return (value: unknown): string | undefined =>
    typeof value === 'string' && value !== '' && !known.includes(value.toLowerCase())
      ? `${describeValue(value)} is not ${what}; V2Ray reads it as "${fallback}", and so does tsray`
      : undefined
}

export function protocolReader<T extends string>(
  supported: readonly T[],
  known: readonly string[],
  kind: 'inbound' | 'outbound',
) {
  const list = supported.join(', ')
  return (value: unknown): T | Failure => {
    if (value === undefined) return fail(`is required (supported: ${list})`)
    if (typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
    // V2Ray looks protocol names up in lower case.
    const name = value.toLowerCase()
    const match = supported.find((protocol) => protocol === name)
    if (match !== undefined) return match
    if (known.includes(name)) return fail(`${describeValue(value)} is not supported (supported: ${list})`)
    return fail(`${describeValue(value)} is not a V2Ray ${kind} protocol (supported: ${list})`)
  }
}
