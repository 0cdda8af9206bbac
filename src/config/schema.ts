// The V2Ray v4 JSON config as tsray reads it: the typed result, the zod schemas of each section, and the
// key-level reading (unknown keys, V2Ray's case-insensitive key matching, ignored and refused features)
// that zod cannot express because it needs the full JSON path of every key.
import { z } from 'zod'
import type { OperateConfig } from './operate.js'
import { SECURITY_NAMES, type SecurityName } from '../protocol/constants.js'
import {
  BUFFER_SIZE_BYTES,
  CONN_IDLE_MS,
  DEFAULT_LEGACY_HEADER_MODE,
  DEFAULT_LISTEN_ADDRESS,
  DEFAULT_LOG_LEVEL,
  DEFAULT_VMESS_SECURITY,
  DOWNLINK_ONLY_MS,
  HANDSHAKE_TIMEOUT_MS,
  MAX_ALTER_ID,
  MAX_NON_UUID_ID_BYTES,
  MAX_USER_LEVEL,
  PRIVATE_IP_RANGES,
  UPLINK_ONLY_MS,
} from './defaults.js'

// ─── The typed result ────────────────────────────────────────────────────────────────────────────

/** Error log verbosity (`log.loglevel`); `none` also turns the access log off, as in V2Ray. */
export type LogLevel = 'debug' | 'info' | 'warning' | 'error' | 'none'

/** Where a log goes: V2Ray writes to the console unless the config names a file or says "none". */
export type LogOutput =
  { readonly to: 'none' } | { readonly to: 'console' } | { readonly to: 'file'; readonly path: string }

/** `log`. Without a `log` section V2Ray keeps no access log; with one, an empty `access` means the console. */
export interface LogConfig {
  readonly level: LogLevel
  readonly access: LogOutput
  readonly error: LogOutput
}

/** One header line of the HTTP header obfuscation: a name and the values one is picked from per connection. */
export interface HttpHeaderField {
  readonly name: string
  readonly values: readonly string[]
}

/** `tcpSettings.header` with `type: "http"`, V2Ray's defaults applied (infra/conf/transport_authenticators.go). */
export interface HttpHeaderConfig {
  readonly request: {
    readonly version: string
    readonly method: string
    readonly paths: readonly string[]
    readonly headers: readonly HttpHeaderField[]
  }
  readonly response: {
    readonly version: string
    readonly status: string
    readonly reason: string
    readonly headers: readonly HttpHeaderField[]
  }
}

/** `wsSettings`. Early data joins Xray's `?ed=N` (header Sec-WebSocket-Protocol) and v2fly's `maxEarlyData`. */
export interface WebSocketConfig {
  /** Starts with "/"; `ed` is taken out of its query. */
  readonly path: string
  /** The Host a client sends: `host` (Xray), else `headers.Host`. */
  readonly host: string | undefined
  /** Set by `host` (Xray): a server answers 404 to another Host. V2Ray never checks `headers.Host`. */
  readonly requireHost: boolean
  /** The other `headers`. */
  readonly headers: readonly (readonly [string, string])[]
  /** `headerName` undefined: v2fly appends the bytes to the path. */
  readonly earlyData: { readonly maxBytes: number; readonly headerName: string | undefined } | undefined
}

/** `httpupgradeSettings` (Xray, v2fly 5, sing-box). */
export interface HttpUpgradeConfig {
  readonly path: string
  /** The Host a client sends and a server requires: `host`, else `headers.Host`. */
  readonly host: string | undefined
  readonly headers: readonly (readonly [string, string])[]
  /** Xray's `?ed=N`: the client writes before the 101 arrives. */
  readonly earlyData: boolean
}

/** PEM text: a file to read when the server starts or the client first dials, or the config's lines joined. */
export type PemSource = { readonly file: string } | { readonly inline: string }

/** `tlsSettings.certificates[]`; `usage: "issue"` is refused. */
export interface TlsCertificateConfig {
  readonly certificate: PemSource
  readonly key: PemSource | undefined
  readonly usage: 'encipherment' | 'verify'
}

/** `tlsSettings` (`fingerprint` is accepted and dropped with a warning: Node cannot imitate a browser's handshake). */
export interface TlsConfig {
  readonly serverName: string | undefined
  readonly alpn: readonly string[] | undefined
  readonly allowInsecure: boolean
  readonly certificates: readonly TlsCertificateConfig[]
  readonly disableSystemRoot: boolean
}

/** The security part of `streamSettings`; `tls` is present when `security` is "tls". */
export interface StreamSecurityConfig {
  readonly security: 'none' | 'tls'
  readonly tls?: TlsConfig
}

/**
 * `streamSettings`, normalised: the transport and the settings it uses. Plain TCP is exactly
 * `{ network: 'tcp', security: 'none' }`. transport/stream-settings.ts `StreamSettings` has the same shape.
 */
export type StreamConfig =
  | (StreamSecurityConfig & { readonly network: 'tcp'; readonly httpHeader?: HttpHeaderConfig })
  | (StreamSecurityConfig & { readonly network: 'ws'; readonly ws: WebSocketConfig })
  | (StreamSecurityConfig & { readonly network: 'httpupgrade'; readonly httpUpgrade: HttpUpgradeConfig })

/** A user name and password of a SOCKS or HTTP inbound. */
export interface Account {
  readonly user: string
  readonly pass: string
}

/** A transport network named in dokodemo-door settings and routing rules. */
export type Network = 'tcp' | 'udp'

/** tsray's `settings.legacyHeader` of a VMess inbound: what to do with MD5-authenticated (alterId) headers. */
export type LegacyHeaderMode = 'accept' | 'warn' | 'refuse'

/** `inbounds[].settings.clients[]` of a VMess inbound. `id` is a lowercase UUID or a 1–30-byte string to map to a UUIDv5. */
export interface VmessClient {
  readonly id: string
  readonly alterId: number
  readonly email: string | undefined
  readonly level: number
}

/** `settings` of a VMess inbound. */
export interface VmessInboundSettings {
  readonly clients: readonly VmessClient[]
  readonly disableInsecureEncryption: boolean
  readonly legacyHeader: LegacyHeaderMode
}

/** `settings` of a SOCKS inbound. `ip` undefined: announce the local address of the client's TCP connection. */
export interface SocksInboundSettings {
  readonly auth: 'noauth' | 'password'
  readonly accounts: readonly Account[]
  readonly udp: boolean
  readonly ip: string | undefined
  /** `timeout`: replaces connIdle when `userLevel` is 0, as in V2Ray; undefined when absent or 0. */
  readonly timeoutMs: number | undefined
  readonly userLevel: number
}

/** `settings` of an HTTP proxy inbound; no accounts means no authentication. */
export interface HttpInboundSettings {
  readonly accounts: readonly Account[]
  /** `timeout`: replaces connIdle when `userLevel` is 0, as in V2Ray; undefined when absent or 0. */
  readonly timeoutMs: number | undefined
  readonly userLevel: number
}

/** `settings` of a dokodemo-door inbound: every connection goes to `address:port`. */
export interface DokodemoInboundSettings {
  readonly address: string
  readonly port: number
  readonly networks: readonly Network[]
  /** `timeout`: replaces connIdle when `userLevel` is 0, as in V2Ray; undefined when absent or 0. */
  readonly timeoutMs: number | undefined
  readonly userLevel: number
}

/** What every inbound has. `tag` is undefined when absent or empty. */
export interface InboundCommon {
  readonly tag: string | undefined
  readonly listen: string
  readonly port: number
  readonly stream: StreamConfig
}

/** A VMess inbound. */
export interface VmessInboundConfig extends InboundCommon {
  readonly protocol: 'vmess'
  readonly settings: VmessInboundSettings
}

/** A SOCKS 4/4a/5 inbound. */
export interface SocksInboundConfig extends InboundCommon {
  readonly protocol: 'socks'
  readonly settings: SocksInboundSettings
}

/** An HTTP proxy inbound. */
export interface HttpInboundConfig extends InboundCommon {
  readonly protocol: 'http'
  readonly settings: HttpInboundSettings
}

/** A dokodemo-door (port forwarding) inbound. */
export interface DokodemoInboundConfig extends InboundCommon {
  readonly protocol: 'dokodemo-door'
  readonly settings: DokodemoInboundSettings
}

/** `inbounds[]`, one variant per protocol. */
export type InboundConfig =
  VmessInboundConfig | SocksInboundConfig | HttpInboundConfig | DokodemoInboundConfig

/** Inbound protocols tsray runs. */
export const INBOUND_PROTOCOLS = ['vmess', 'socks', 'http', 'dokodemo-door'] as const
/** An inbound protocol tsray runs. */
export type InboundProtocol = (typeof INBOUND_PROTOCOLS)[number]

/** `settings.domainStrategy` of a freedom outbound, normalised from V2Ray's spellings. */
export type FreedomDomainStrategy = 'AsIs' | 'UseIP' | 'UseIPv4' | 'UseIPv6'

/** `settings` of a freedom outbound. `redirect` parts left undefined keep the request's host or port. */
export interface FreedomOutboundSettings {
  readonly domainStrategy: FreedomDomainStrategy
  readonly redirect: { readonly host: string | undefined; readonly port: number | undefined } | undefined
  /** `timeout`: replaces connIdle when `userLevel` is 0, as in V2Ray; undefined when absent or 0. */
  readonly timeoutMs: number | undefined
  readonly userLevel: number
}

/** `settings` of a blackhole outbound: close at once, or first answer an HTTP 403. */
export interface BlackholeOutboundSettings {
  readonly response: 'none' | 'http'
}

/** `vnext[].users[]` of a VMess outbound; `security` is normalised (unknown words become "auto", as in V2Ray). */
export interface VmessUser {
  readonly id: string
  readonly alterId: number
  readonly security: SecurityName
  readonly level: number
  readonly email: string | undefined
  /** `experiments` contains "AuthenticatedLength" (v2fly v5 JSON). */
  readonly authenticatedLength: boolean
  /** `experiments` contains "NoTerminationSignal" (v2fly v5 JSON). */
  readonly noTerminationSignal: boolean
}

/** `vnext[]` of a VMess outbound: one server and the users to try on it. */
export interface VmessServer {
  readonly address: string
  readonly port: number
  readonly users: readonly VmessUser[]
}

/** `settings` of a VMess outbound: at least one server with at least one user. */
export interface VmessOutboundSettings {
  readonly vnext: readonly VmessServer[]
  /**
   * tsray's own key: the largest whole chunk the outbound writes over TCP. Absent: 65,535, which V2Ray,
   * Xray and tsray servers read; a sing-box or mihomo server needs 16,450 (PROTOCOL §7.3).
   */
  readonly maxChunkLength?: number
}

/** What every outbound has. `sendThrough` is the local IP to connect from. */
export interface OutboundCommon {
  readonly tag: string | undefined
  readonly stream: StreamConfig
  readonly sendThrough: string | undefined
  /** `mux`: present only when Mux.Cool is enabled (on a VMess outbound). */
  readonly mux?: MuxConfig
}

/** `outbounds[].mux`: Mux.Cool. `concurrency` (1–1024) is the most sub-sessions open at once on one connection. */
export interface MuxConfig {
  readonly enabled: boolean
  readonly concurrency: number
}

/** A freedom (direct) outbound. */
export interface FreedomOutboundConfig extends OutboundCommon {
  readonly protocol: 'freedom'
  readonly settings: FreedomOutboundSettings
}

/** A blackhole outbound. */
export interface BlackholeOutboundConfig extends OutboundCommon {
  readonly protocol: 'blackhole'
  readonly settings: BlackholeOutboundSettings
}

/** A VMess client outbound. */
export interface VmessOutboundConfig extends OutboundCommon {
  readonly protocol: 'vmess'
  readonly settings: VmessOutboundSettings
}

/** `outbounds[]`, one variant per protocol; the first one is the default route. */
export type OutboundConfig = VmessOutboundConfig | FreedomOutboundConfig | BlackholeOutboundConfig

/** Outbound protocols tsray runs. */
export const OUTBOUND_PROTOCOLS = ['vmess', 'freedom', 'blackhole'] as const
/** An outbound protocol tsray runs. */
export type OutboundProtocol = (typeof OUTBOUND_PROTOCOLS)[number]

/** `routing.domainStrategy`, normalised from V2Ray's spellings. */
export type RoutingDomainStrategy = 'AsIs' | 'IPIfNonMatch' | 'IPOnDemand'

/** An inclusive port range; a single port has `from === to`. */
export interface PortRange {
  readonly from: number
  readonly to: number
}

/**
 * `routing.rules[]` (type "field"). Absent conditions are undefined; a rule matches when every present
 * condition matches. `domain` joins `domain` and `domains` and keeps V2Ray's matcher strings (plain
 * substring, `domain:`, `full:`, `regexp:`, `keyword:`, `dotless:`). `ip` and `source` are CIDRs
 * (`addr/prefix`, a plain IP gets /32 or /128; `geoip:private` is expanded).
 */
export interface RoutingRule {
  readonly outboundTag: string
  readonly inboundTag: readonly string[] | undefined
  readonly domain: readonly string[] | undefined
  readonly ip: readonly string[] | undefined
  readonly port: readonly PortRange[] | undefined
  readonly sourcePort: readonly PortRange[] | undefined
  readonly network: readonly Network[] | undefined
  readonly source: readonly string[] | undefined
  readonly user: readonly string[] | undefined
}

/** `routing`. */
export interface RoutingConfig {
  readonly domainStrategy: RoutingDomainStrategy
  readonly rules: readonly RoutingRule[]
}

/** `policy.levels[n]` as configured: seconds (bufferSize in KiB, < 0 = unlimited); undefined = the default. */
export interface LevelPolicy {
  readonly handshake: number | undefined
  readonly connIdle: number | undefined
  readonly uplinkOnly: number | undefined
  readonly downlinkOnly: number | undefined
  readonly bufferSize: number | undefined
}

/** `policy`. */
export interface PolicyConfig {
  readonly levels: ReadonlyMap<number, LevelPolicy>
}

/** The policy a user level gets, defaults applied, in milliseconds and bytes (`Infinity` = unlimited buffer). */
export interface EffectivePolicy {
  readonly handshakeMs: number
  readonly connIdleMs: number
  readonly uplinkOnlyMs: number
  readonly downlinkOnlyMs: number
  readonly bufferBytes: number
}

/** `metrics` (Xray's key): the HTTP endpoint that serves Prometheus text at `GET /metrics`. */
export interface MetricsConfig {
  readonly listen: { readonly address: string; readonly port: number }
}

/** A whole config, validated, defaults applied. */
export interface TsrayConfig {
  readonly log: LogConfig
  readonly inbounds: readonly InboundConfig[]
  readonly outbounds: readonly OutboundConfig[]
  readonly routing: RoutingConfig
  readonly policy: PolicyConfig
  /** Absent: no metrics endpoint. */
  readonly metrics?: MetricsConfig
  /** `stats`, the stats switches of `policy`, and `api` (src/config/operate.ts). */
  readonly operate?: OperateConfig
}

/** The log settings V2Ray uses when the config has no `log` section. */
export const DEFAULT_LOG_CONFIG: LogConfig = {
  level: DEFAULT_LOG_LEVEL,
  access: { to: 'none' },
  error: { to: 'console' },
}

/** A UUID in the form the loader gives back (other VMess ids are 1–30-byte strings to map to a UUIDv5). */
export const CANONICAL_UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** The effective policy of a user level: the configured values of that level, V2Ray's defaults for the rest. */
export function levelPolicy(config: Pick<TsrayConfig, 'policy'>, level: number): EffectivePolicy {
  const configured = config.policy.levels.get(level)
  const ms = (seconds: number | undefined, fallbackMs: number): number =>
    seconds === undefined ? fallbackMs : seconds * 1000
  const bufferSize = configured?.bufferSize
  return {
    handshakeMs: ms(configured?.handshake, HANDSHAKE_TIMEOUT_MS),
    connIdleMs: ms(configured?.connIdle, CONN_IDLE_MS),
    uplinkOnlyMs: ms(configured?.uplinkOnly, UPLINK_ONLY_MS),
    downlinkOnlyMs: ms(configured?.downlinkOnly, DOWNLINK_ONLY_MS),
    bufferBytes: bufferSize === undefined ? BUFFER_SIZE_BYTES : bufferSize < 0 ? Infinity : bufferSize * 1024,
  }
}

// ─── Paths and problems ──────────────────────────────────────────────────────────────────────────

/** A JSON path as segments: object keys and array indexes. */
export type JsonPath = readonly (string | number)[]

/** One error or warning about a config, at a JSON path. */
export interface ConfigProblem {
  readonly path: string
  readonly message: string
}

/** Where the reading of a config collects what it finds. */
export interface ConfigReport {
  readonly errors: ConfigProblem[]
  readonly warnings: ConfigProblem[]
}

/** `inbounds[0].settings.clients[1].id`; keys that are not identifiers are quoted: `policy.levels["0"]`. */
export function formatJsonPath(path: readonly PropertyKey[]): string {
  let text = ''
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`
    else {
      const key = String(segment)
      if (/^[A-Za-z_$][\w$]*$/.test(key)) text += text === '' ? key : `.${key}`
      else text += `[${JSON.stringify(key)}]`
    }
  }
  return text
}

/** A value as a config message quotes it: strings in JSON quotes, shortened; lists and objects by kind. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value)
    return quoted.length > 64 ? `${quoted.slice(0, 60)}…"` : quoted
  }
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object' && value !== null) return 'an object'
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value)
  return typeof value === 'symbol' || typeof value === 'function' ? typeof value : 'null'
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The value of `key` in a JSON object, matched as V2Ray does: exactly, else ignoring case. */
export function lookupKey(object: unknown, key: string): unknown {
  if (!isPlainObject(object)) return undefined
  if (Object.hasOwn(object, key)) return object[key]
  const lower = key.toLowerCase()
  for (const [name, value] of Object.entries(object)) if (name.toLowerCase() === lower) return value
  return undefined
}

// ─── Leaf readers: one value in, the typed value or the problems out ─────────────────────────────

interface LeafProblem {
  readonly message: string
  readonly path: JsonPath
}

/** Why a value cannot be read; `path` is relative to the value. */
class Failure {
  readonly problems: readonly LeafProblem[]

  constructor(problems: readonly LeafProblem[]) {
    this.problems = problems
  }
}

const fail = (message: string, path: JsonPath = []): Failure => new Failure([{ message, path }])

/** A zod schema over any input that runs `read` and reports its problems in our own words. */
function leaf<T>(read: (value: unknown) => T | Failure) {
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
function optional<T, F>(read: (value: unknown) => T | Failure, fallback: F) {
  return (value: unknown): T | F | Failure => (value === undefined ? fallback : read(value))
}

function readString(value: unknown): string | Failure {
  return typeof value === 'string' ? value : fail(`${describeValue(value)} is not a string`)
}

function readRequiredString(value: unknown): string | Failure {
  if (value === undefined) return fail('is required')
  if (typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
  return value === '' ? fail('is empty') : value
}

function readBoolean(value: unknown): boolean | Failure {
  return typeof value === 'boolean' ? value : fail(`${describeValue(value)} is not true or false`)
}

function integerReader(min: number, max: number) {
  return (value: unknown): number | Failure =>
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
      ? value
      : fail(`${describeValue(value)} is not an integer from ${min} to ${max}`)
}

const MAX_UINT32 = 0xffff_ffff
const MAX_INT32 = 0x7fff_ffff
const readUint32 = integerReader(0, MAX_UINT32)
const readUserLevel = optional(integerReader(0, MAX_UINT32), 0)
const readLevel = optional(integerReader(0, MAX_USER_LEVEL), 0)
const readAlterId = optional(integerReader(0, MAX_ALTER_ID), 0)

/** `timeout` in seconds; 0 means "not set" to V2Ray. */
function readTimeoutMs(value: unknown): number | undefined | Failure {
  if (value === undefined) return undefined
  const seconds = readUint32(value)
  if (seconds instanceof Failure) return seconds
  return seconds === 0 ? undefined : seconds * 1000
}

function readPortNumber(value: unknown): number | Failure {
  if (value === undefined) return fail('is required')
  const port = typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : value
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535
    ? port
    : fail(`${describeValue(value)} is not a port number (1–65535)`)
}

/** An inbound `port`: a number, a numeric string, or a range of one port (a set "env:" variable is resolved before). */
function readListenPort(value: unknown): number | Failure {
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
function readEmail(value: unknown): string | undefined | Failure {
  return value === undefined || value === '' ? undefined : readString(value)
}

function readTag(value: unknown): string | undefined | Failure {
  if (value === undefined || value === '') return undefined
  return readString(value)
}

const IPV4_PATTERN = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

/** 4 or 6 for an IP literal (IPv6 without brackets), else 0. */
function ipVersion(text: string): 0 | 4 | 6 {
  if (IPV4_PATTERN.test(text)) return 4
  // The WHATWG URL parser knows every IPv6 text form, embedded IPv4 included.
  if (text.includes(':') && !/[[\]/%]/.test(text) && URL.canParse(`http://[${text}]/`)) return 6
  return 0
}

const DOMAIN_PATTERN = /^[A-Za-z0-9_*]([A-Za-z0-9_.*-]{0,251}[A-Za-z0-9_])?\.?$/

/** A host to connect to: an IP literal (IPv6 brackets removed) or a domain name. */
function readHost(value: unknown): string | Failure {
  const text = readRequiredString(value)
  if (text instanceof Failure) return text
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
  if (ipVersion(bare) !== 0) return bare
  return DOMAIN_PATTERN.test(text) && text.length <= 255
    ? text
    : fail(`${describeValue(value)} is not an IP address or a domain name`)
}

function readIpAddress(value: unknown): string | Failure {
  const text = readRequiredString(value)
  if (text instanceof Failure) return text
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
  return ipVersion(bare) !== 0 ? bare : fail(`${describeValue(value)} is not an IP address`)
}

function readListenAddress(value: unknown): string | Failure {
  if (value === undefined) return DEFAULT_LISTEN_ADDRESS
  if (typeof value === 'string' && (value.startsWith('/') || value.startsWith('@'))) {
    return fail(`${describeValue(value)} is a Unix socket; not supported yet (supported: IP addresses)`)
  }
  if (value === 'localhost') return value
  return readIpAddress(value)
}

/** `metrics.listen`: "host:port" as Go writes a listen address ("[::1]:9100"; ":9100" = every IPv4 address). */
function readMetricsListen(value: unknown): MetricsConfig['listen'] | undefined | Failure {
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
function readVmessId(value: unknown): string | Failure {
  if (value === undefined) return fail('is required')
  if (typeof value === 'string' && UUID_PATTERN.test(value)) {
    const hex = value.replaceAll('-', '').toLowerCase()
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  }
  if (typeof value === 'string' && isShortId(value)) return value
  return fail(`${describeValue(value)} is not a UUID`)
}

function adviseShortId(value: unknown): string | undefined {
  return typeof value === 'string' && !UUID_PATTERN.test(value) && isShortId(value)
    ? `${describeValue(value)} is not a UUID; tsray maps it to a UUIDv5 as Xray does (V2Ray refuses such ids)`
    : undefined
}

/** A list of strings, also written as one comma-separated string (V2Ray's StringList). */
function readStringList(value: unknown): string[] | Failure {
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

function uniqueNetworks(value: unknown): Network[] | Failure {
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
function readPortList(value: unknown): PortRange[] | Failure {
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

const readCidrList = listReader(readCidr)

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

const readDomainList = listReader(readDomainMatcher)

/** Normalises a word against V2Ray's accepted spellings, compared in lower case. */
function spellingReader<T extends string>(spellings: Readonly<Record<string, T>>, fallback: T) {
  return (value: unknown): T | Failure => {
    if (value === undefined || value === '') return fallback
    if (typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
    return spellings[value.toLowerCase()] ?? fallback
  }
}

/** A warning for a word V2Ray reads as its default; `known` holds the accepted spellings in lower case. */
function adviseUnknownWord(known: readonly string[], what: string, fallback: string) {
  return (value: unknown): string | undefined =>
    typeof value === 'string' && value !== '' && !known.includes(value.toLowerCase())
      ? `${describeValue(value)} is not ${what}; V2Ray reads it as "${fallback}", and so does tsray`
      : undefined
}

// ─── Key rules: what the loader does with a key beyond validating its value ──────────────────────

/** What to do with a key besides validating it. */
export interface KeyRule {
  /** A V2Ray feature tsray does without: drop the key with this warning. */
  readonly ignore?: string
  /** A V2Ray feature tsray cannot honour: refuse the config with this message. */
  readonly refuse?: string
  /** A warning about a value the schema accepts. */
  readonly advise?: (value: unknown) => string | undefined
}

/** A key whose value tsray does not read (zod 4 makes a bare z.unknown() key required). */
const anyValue = () => z.unknown().optional()
type AnyValue = ReturnType<typeof anyValue>

const keyRules = new WeakMap<z.ZodType, KeyRule>()

function withRule<T extends z.ZodType>(schema: T, rule: KeyRule): T {
  keyRules.set(schema, rule)
  return schema
}

const ignored = (reason: string): AnyValue => withRule(anyValue(), { ignore: reason })
const refused = (reason: string): AnyValue => withRule(anyValue(), { refuse: reason })
/** A key whose value does not matter to tsray but is warned about when it asks for something. */
const advised = (advise: (value: unknown) => string | undefined): AnyValue => withRule(anyValue(), { advise })

/** The schema under optional/default/pipe wrappers, and the key rule found on the way. */
function unwrapSchema(schema: z.ZodType): { inner: z.ZodType; rule: KeyRule | undefined } {
  let inner = schema
  let rule = keyRules.get(inner)
  for (;;) {
    if (
      inner instanceof z.ZodOptional ||
      inner instanceof z.ZodNullable ||
      inner instanceof z.ZodDefault ||
      inner instanceof z.ZodPrefault
    ) {
      inner = inner.unwrap() as z.ZodType
    } else if (inner instanceof z.ZodPipe) {
      inner = inner.in as z.ZodType
    } else break
    rule ??= keyRules.get(inner)
  }
  return { inner, rule }
}

/**
 * Prepares a JSON value for `schema`: renames keys written in another case (V2Ray's Go decoder matches
 * keys ignoring case), drops null values (Go reads them as "not set"), drops unknown and ignored keys
 * with a warning, reports refused keys, and runs the advice of each key, all with full JSON paths.
 */
export function normaliseKeys(
  schema: z.ZodType,
  value: unknown,
  path: JsonPath,
  report: ConfigReport,
): unknown {
  const { inner } = unwrapSchema(schema)
  if (inner instanceof z.ZodArray && Array.isArray(value)) {
    const element = inner.element as z.ZodType
    return value.map((item, index) => normaliseKeys(element, item, [...path, index], report))
  }
  if (inner instanceof z.ZodRecord && isPlainObject(value)) {
    const valueSchema = inner.valueType as z.ZodType
    const copy: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) {
      if (item === null) continue
      // defineProperty: a "__proto__" key must stay a plain key.
      Object.defineProperty(copy, key, {
        value: normaliseKeys(valueSchema, item, [...path, key], report),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
    return copy
  }
  if (!(inner instanceof z.ZodObject) || !isPlainObject(value)) return value
  const shape = inner.shape as Record<string, z.ZodType>
  const known = Object.keys(shape)
  const copy: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) {
    if (item === null) continue
    const keyPath = formatJsonPath([...path, key])
    let name = Object.hasOwn(shape, key) ? key : undefined
    if (name === undefined) {
      const match = known.find((candidate) => candidate.toLowerCase() === key.toLowerCase())
      if (match === undefined) {
        report.warnings.push({ path: keyPath, message: 'unknown key, ignored' })
        continue
      }
      if (Object.hasOwn(value, match)) {
        report.warnings.push({ path: keyPath, message: `ignored: "${match}" is also set` })
        continue
      }
      report.warnings.push({
        path: keyPath,
        message: `read as "${match}" (V2Ray matches keys ignoring case; write "${match}")`,
      })
      name = match
    }
    const childSchema = shape[name]
    if (childSchema === undefined) continue
    const { rule } = unwrapSchema(childSchema)
    const childPath = [...path, name]
    if (rule?.refuse !== undefined) {
      report.errors.push({ path: formatJsonPath(childPath), message: rule.refuse })
      continue
    }
    if (rule?.ignore !== undefined) {
      report.warnings.push({ path: formatJsonPath(childPath), message: `ignored: ${rule.ignore}` })
      continue
    }
    const advice = rule?.advise?.(item)
    if (advice !== undefined) report.warnings.push({ path: formatJsonPath(childPath), message: advice })
    copy[name] = normaliseKeys(childSchema, item, childPath, report)
  }
  return copy
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
  record: 'an object',
}

/** A zod issue in plain words (the path is added by the caller). */
export function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'custom':
      return issue.message
    case 'invalid_type':
      if (issue.input === undefined) return 'is required'
      return `${describeValue(issue.input)} is not ${TYPE_NAMES[issue.expected] ?? issue.expected}`
    case 'too_small':
      if (issue.origin === 'array') {
        return Number(issue.minimum) <= 1
          ? 'is empty; at least one entry is needed'
          : `needs at least ${issue.minimum} entries`
      }
      return `${describeValue(issue.input)} is less than ${issue.minimum}`
    case 'too_big':
      if (issue.origin === 'array') return `has more than ${issue.maximum} entries`
      return `${describeValue(issue.input)} is more than ${issue.maximum}`
    case 'invalid_value':
      return `${describeValue(issue.input)} is not one of ${issue.values.map((item) => describeValue(item)).join(', ')}`
    case 'invalid_union':
    case 'invalid_format':
    case 'invalid_key':
    case 'invalid_element':
    case 'not_multiple_of':
    case 'unrecognized_keys':
      return `${describeValue(issue.input)} is not valid: ${issue.message}`
  }
}

/**
 * Reads one section of a config: normalises its keys, validates it with `schema`, and reports every
 * problem at its JSON path. Gives undefined when the section has errors.
 */
export function readSection<T>(
  schema: z.ZodType<T>,
  value: unknown,
  options: { readonly path: JsonPath; readonly report: ConfigReport },
): T | undefined {
  const { path, report } = options
  const prepared = normaliseKeys(schema, value, path, report)
  const result = schema.safeParse(prepared, { reportInput: true })
  if (result.success) return result.data
  for (const issue of result.error.issues) {
    report.errors.push({ path: formatJsonPath([...path, ...issue.path]), message: describeIssue(issue) })
  }
  return undefined
}

// ─── Section schemas ─────────────────────────────────────────────────────────────────────────────

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warning', 'error', 'none']

function readLogOutput(value: unknown): LogOutput | Failure {
  if (value === undefined || value === '') return { to: 'console' }
  const path = readString(value)
  if (path instanceof Failure) return path
  return path === 'none' ? { to: 'none' } : { to: 'file', path }
}

/** `log`; an absent section is DEFAULT_LOG_CONFIG. */
export const logSchema = z
  .object({
    loglevel: withRule(
      leaf(spellingReader(Object.fromEntries(LOG_LEVELS.map((level) => [level, level])), DEFAULT_LOG_LEVEL)),
      { advise: adviseUnknownWord(LOG_LEVELS, 'a log level', DEFAULT_LOG_LEVEL) },
    ),
    access: leaf(readLogOutput),
    error: leaf(readLogOutput),
    dnsLog: ignored('tsray does not log DNS queries'),
  })
  .transform((log): LogConfig =>
    log.loglevel === 'none'
      ? { level: 'none', access: { to: 'none' }, error: { to: 'none' } }
      : { level: log.loglevel, access: log.access, error: log.error },
  )

const STREAM_NETWORKS: Readonly<Record<string, StreamConfig['network']>> = {
  tcp: 'tcp',
  ws: 'ws',
  websocket: 'ws',
  httpupgrade: 'httpupgrade',
}
const SUPPORTED_NETWORKS = '"tcp", "ws", "httpupgrade"'
const UNSUPPORTED_TRANSPORTS = [
  'kcp',
  'mkcp',
  'h2',
  'http',
  'quic',
  'ds',
  'domainsocket',
  'grpc',
  'gun',
  'splithttp',
  'xhttp',
]

function readTransportNetwork(value: unknown): StreamConfig['network'] | Failure {
  if (value === undefined) return 'tcp'
  if (typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
  const network = STREAM_NETWORKS[value.toLowerCase()]
  if (network !== undefined) return network
  if (UNSUPPORTED_TRANSPORTS.includes(value.toLowerCase())) {
    return fail(`${describeValue(value)} is not supported yet (supported: ${SUPPORTED_NETWORKS})`)
  }
  return fail(`${describeValue(value)} is not a V2Ray transport (supported: ${SUPPORTED_NETWORKS})`)
}

/** `security`: V2Ray 4.34 turns on TLS for "tls" in any case and reads every other word as none. */
function readStreamSecurity(value: unknown): 'none' | 'tls' | Failure {
  if (value !== undefined && typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
  const security = value?.toLowerCase()
  if (security === 'xtls' || security === 'reality') {
    return fail(`${describeValue(value)} is not supported yet (supported: "none", "tls")`)
  }
  return security === 'tls' ? 'tls' : 'none'
}

function readTcpHeaderType(value: unknown): 'none' | 'http' | Failure {
  const type = typeof value === 'string' ? value.toLowerCase() : value
  if (type === undefined || type === 'none') return 'none'
  if (type === 'http') return 'http'
  return fail(`${describeValue(value)} is not a TCP header type (supported: "none", "http")`)
}

function readOffOnly(feature: string) {
  return (value: unknown): false | Failure => {
    if (value === undefined || value === false) return false
    return value === true
      ? fail(`${feature} is not supported yet`)
      : fail(`${describeValue(value)} is not true or false`)
  }
}

// Header names and values are written into HTTP heads as they are: a line break would let a config inject lines.
const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const HEADER_VALUE_PATTERN = /^[\t\x20-\x7e\x80-\xff]*$/

function readHeaderName(value: unknown): string | Failure {
  const name = readString(value)
  if (name instanceof Failure) return name
  return HEADER_NAME_PATTERN.test(name) ? name : fail(`${describeValue(value)} is not an HTTP header name`)
}

function readHeaderValue(value: unknown): string | Failure {
  const text = readString(value)
  if (text instanceof Failure) return text
  return HEADER_VALUE_PATTERN.test(text)
    ? text
    : fail(`${describeValue(value)} cannot be an HTTP header value (line break or control character)`)
}

/** A word of a request or status line (method, version, path, status): no spaces or control characters. */
function readHeadWord(value: unknown): string | Failure {
  const text = readString(value)
  if (text instanceof Failure) return text
  return /^[\x21-\x7e]*$/.test(text)
    ? text
    : fail(`${describeValue(value)} cannot appear in an HTTP start line`)
}

/** `headers` of the HTTP header obfuscation: name → a value or a list, written in name order as Go sorts map keys. */
function readObfuscationHeaders(value: unknown): HttpHeaderField[] | Failure {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(`${describeValue(value)} is not an object of header names`)
  }
  const problems: LeafProblem[] = []
  const fields: HttpHeaderField[] = []
  for (const name of Object.keys(value).sort()) {
    const item = (value as Record<string, unknown>)[name]
    const nameProblem = readHeaderName(name)
    const values = item === undefined || item === null ? fail('is empty') : readStringList(item)
    if (nameProblem instanceof Failure)
      problems.push({ message: `${describeValue(name)} is not an HTTP header name`, path: [name] })
    if (values instanceof Failure) {
      problems.push(...values.problems.map((problem) => ({ ...problem, path: [name, ...problem.path] })))
      continue
    }
    values.forEach((text, index) => {
      const checked = readHeaderValue(text)
      if (checked instanceof Failure)
        problems.push({ message: checked.problems[0]?.message ?? '', path: [name, index] })
    })
    fields.push({ name, values })
  }
  return problems.length === 0 ? fields : new Failure(problems)
}

/** `wsSettings.headers` / `httpupgradeSettings.headers`: name → one value. */
function readRequestHeaders(value: unknown): [string, string][] | Failure {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(`${describeValue(value)} is not an object of header names`)
  }
  const problems: LeafProblem[] = []
  const headers: [string, string][] = []
  for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
    const checked = readHeaderValue(item)
    if (!HEADER_NAME_PATTERN.test(name)) {
      problems.push({ message: `${describeValue(name)} is not an HTTP header name`, path: [name] })
    } else if (checked instanceof Failure) {
      problems.push({ message: checked.problems[0]?.message ?? '', path: [name] })
    } else headers.push([name, checked])
  }
  return problems.length === 0 ? headers : new Failure(problems)
}

/** A list of start-line words (paths); a plain string is split at commas, as V2Ray's StringList does. */
function readHeadWords(value: unknown): string[] | Failure {
  const list = readStringList(value)
  if (list instanceof Failure) return list
  const problems = list.flatMap((entry, index) => {
    const checked = readHeadWord(entry)
    return checked instanceof Failure
      ? checked.problems.map((problem) => ({ ...problem, path: [index] }))
      : []
  })
  return problems.length === 0 ? list : new Failure(problems)
}

/** V2Ray's default fake request headers (AuthenticatorRequest.Build). */
const DEFAULT_OBFUSCATION_REQUEST_HEADERS: readonly HttpHeaderField[] = [
  { name: 'Host', values: ['www.baidu.com', 'www.bing.com'] },
  {
    name: 'User-Agent',
    values: [
      'Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/53.0.2785.143 Safari/537.36',
      'Mozilla/5.0 (iPhone; CPU iPhone OS 10_0_2 like Mac OS X) AppleWebKit/601.1 (KHTML, like Gecko) CriOS/53.0.2785.109 Mobile/14A456 Safari/601.1.46',
    ],
  },
  { name: 'Accept-Encoding', values: ['gzip, deflate'] },
  { name: 'Connection', values: ['keep-alive'] },
  { name: 'Pragma', values: ['no-cache'] },
]

/** V2Ray's default fake response headers (AuthenticatorResponse.Build). */
const DEFAULT_OBFUSCATION_RESPONSE_HEADERS: readonly HttpHeaderField[] = [
  { name: 'Content-Type', values: ['application/octet-stream', 'video/mpeg'] },
  { name: 'Transfer-Encoding', values: ['chunked'] },
  { name: 'Connection', values: ['keep-alive'] },
  { name: 'Pragma', values: ['no-cache'] },
  { name: 'Cache-Control', values: ['private', 'no-cache'] },
]

const optionalHeadWord = leaf(optional(readHeadWord, ''))

const obfuscationRequestSchema = z
  .object({
    version: optionalHeadWord,
    method: optionalHeadWord,
    path: leaf(optional(readHeadWords, [])),
    headers: leaf(optional(readObfuscationHeaders, [])),
  })
  .transform((request): HttpHeaderConfig['request'] => ({
    version: request.version === '' ? '1.1' : request.version,
    method: request.method === '' ? 'GET' : request.method,
    paths: request.path.length === 0 ? ['/'] : request.path,
    headers: request.headers.length === 0 ? DEFAULT_OBFUSCATION_REQUEST_HEADERS : request.headers,
  }))

const obfuscationResponseSchema = z
  .object({
    version: optionalHeadWord,
    status: optionalHeadWord,
    reason: leaf(optional(readHeaderValue, '')),
    headers: leaf(optional(readObfuscationHeaders, [])),
  })
  .transform((response): HttpHeaderConfig['response'] => ({
    version: response.version === '' ? '1.1' : response.version,
    status: response.status === '' ? '200' : response.status,
    reason: response.reason === '' ? 'OK' : response.reason,
    headers: response.headers.length === 0 ? DEFAULT_OBFUSCATION_RESPONSE_HEADERS : response.headers,
  }))

/** `tcpSettings`: the header obfuscation, undefined for type "none". */
const tcpSettingsSchema = z
  .object({
    header: z
      .object({
        type: leaf(readTcpHeaderType),
        request: obfuscationRequestSchema.optional(),
        response: obfuscationResponseSchema.optional(),
      })
      .optional(),
    acceptProxyProtocol: leaf(readOffOnly('the PROXY protocol')),
  })
  .transform((tcp): HttpHeaderConfig | undefined =>
    tcp.header?.type !== 'http'
      ? undefined
      : {
          request: tcp.header.request ?? obfuscationRequestSchema.parse({}),
          response: tcp.header.response ?? obfuscationResponseSchema.parse({}),
        },
  )

/** A path as V2Ray's GetNormalizedPath writes it, and Xray's `ed` query parameter taken out of it. */
function splitEarlyDataParameter(raw: string): { path: string; ed: number } {
  const path = raw === '' ? '/' : raw.startsWith('/') ? raw : `/${raw}`
  const query = path.indexOf('?')
  if (query < 0) return { path, ed: 0 }
  const parameters = new URLSearchParams(path.slice(query + 1))
  const ed = parameters.get('ed')
  if (ed === null || ed === '') return { path, ed: 0 }
  parameters.delete('ed')
  const rest = parameters.toString()
  // Go's strconv.Atoi: anything but an integer reads as 0 (no early data).
  const bytes = /^\d{1,10}$/.test(ed) ? Math.min(Number(ed), MAX_INT32) : 0
  return { path: `${path.slice(0, query)}${rest === '' ? '' : `?${rest}`}`, ed: bytes }
}

function readRequestPath(value: unknown): string | Failure {
  const path = readString(value)
  if (path instanceof Failure) return path
  return /^[\x21-\x7e]*$/.test(path) && !path.includes('#')
    ? path
    : fail(`${describeValue(value)} is not a request path (no spaces, control characters or "#")`)
}

/** The Host to send: `host`, else a `Host` entry of `headers` (any case), which is then not sent twice. */
function splitHost(
  host: string,
  headers: readonly [string, string][],
): {
  host: string | undefined
  headers: [string, string][]
} {
  const fromHeaders = headers.find(([name]) => name.toLowerCase() === 'host')?.[1]
  return {
    host: host !== '' ? host : fromHeaders,
    headers: headers.filter(([name]) => name.toLowerCase() !== 'host'),
  }
}

const wsSettingsSchema = z
  .object({
    path: leaf(optional(readRequestPath, '')),
    host: leaf(optional(readHeaderValue, '')),
    headers: leaf(optional(readRequestHeaders, [])),
    maxEarlyData: leaf(optional(integerReader(0, MAX_INT32), 0)),
    earlyDataHeaderName: leaf(optional(readHeaderName, '')),
    acceptProxyProtocol: leaf(readOffOnly('the PROXY protocol')),
    useBrowserForwarding: leaf(readOffOnly('browser forwarding (useBrowserForwarding)')),
  })
  .transform((ws): WebSocketConfig => {
    const { path, ed } = splitEarlyDataParameter(ws.path)
    const { host, headers } = splitHost(ws.host, ws.headers)
    const earlyData =
      ws.maxEarlyData > 0
        ? {
            maxBytes: ws.maxEarlyData,
            headerName: ws.earlyDataHeaderName === '' ? undefined : ws.earlyDataHeaderName,
          }
        : ed > 0
          ? { maxBytes: ed, headerName: 'Sec-WebSocket-Protocol' }
          : undefined
    return { path, host, requireHost: ws.host !== '', headers, earlyData }
  })

const httpUpgradeSettingsSchema = z
  .object({
    path: leaf(optional(readRequestPath, '')),
    host: leaf(optional(readHeaderValue, '')),
    headers: leaf(optional(readRequestHeaders, [])),
    acceptProxyProtocol: leaf(readOffOnly('the PROXY protocol')),
  })
  .transform((upgrade): HttpUpgradeConfig => {
    const { path, ed } = splitEarlyDataParameter(upgrade.path)
    return { path, ...splitHost(upgrade.host, upgrade.headers), earlyData: ed > 0 }
  })

/** `certificate` / `key` lines; V2Ray joins them with "\n". */
function readPemLines(value: unknown): string | Failure {
  const lines = typeof value === 'string' ? [value] : readStringList(value)
  if (lines instanceof Failure) return lines
  return lines.join('\n')
}

function readCertificateUsage(value: unknown): 'encipherment' | 'verify' | Failure {
  const usage = typeof value === 'string' ? value.toLowerCase() : value
  if (usage === 'issue') {
    return fail('"issue" is not supported: tsray does not issue certificates on the fly (use "encipherment")')
  }
  if (usage !== undefined && typeof usage !== 'string') return fail(`${describeValue(value)} is not a string`)
  return usage === 'verify' ? 'verify' : 'encipherment'
}

const optionalText = leaf(optional(readString, ''))

const tlsCertificateSchema = z
  .object({
    certificateFile: optionalText,
    certificate: leaf(optional(readPemLines, '')),
    keyFile: optionalText,
    key: leaf(optional(readPemLines, '')),
    usage: withRule(leaf(readCertificateUsage), {
      advise: adviseUnknownWord(['encipherment', 'verify', 'issue'], 'a certificate usage', 'encipherment'),
    }),
  })
  .transform((entry, context): TlsCertificateConfig => {
    // As V2Ray's readFileOrString: the file wins over inline lines.
    const source = (file: string, inline: string): PemSource | undefined =>
      file !== '' ? { file } : inline !== '' ? { inline } : undefined
    const certificate = source(entry.certificateFile, entry.certificate)
    if (certificate === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['certificateFile'],
        message: 'is required (or the certificate lines)',
      })
      return z.NEVER
    }
    return { certificate, key: source(entry.keyFile, entry.key), usage: entry.usage }
  })

const tlsSettingsSchema = z
  .object({
    serverName: optionalText,
    alpn: leaf(optional(readStringList, [])),
    allowInsecure: withRule(leaf(optional(readBoolean, false)), {
      advise: (value) =>
        value === true
          ? 'the server certificate is not checked: anyone on the path can read and change the traffic'
          : undefined,
    }),
    certificates: z.array(tlsCertificateSchema).optional(),
    disableSystemRoot: leaf(optional(readBoolean, false)),
    enableSessionResumption: advised((value) =>
      value === true ? 'ignored: tsray leaves TLS session resumption to Node' : undefined,
    ),
    fingerprint: advised((value) =>
      typeof value === 'string' && value !== ''
        ? `${describeValue(value)} ignored: Node cannot imitate a browser's TLS handshake (uTLS), so tsray sends Node's own`
        : undefined,
    ),
    pinnedPeerCertificateChainSha256: refused('not supported yet: tsray does not pin certificates'),
    pinnedPeerCertSha256: refused('not supported yet: tsray does not pin certificates'),
  })
  .transform((tls): TlsConfig => ({
    serverName: tls.serverName === '' ? undefined : tls.serverName,
    alpn: tls.alpn.length === 0 ? undefined : tls.alpn,
    allowInsecure: tls.allowInsecure,
    certificates: tls.certificates ?? [],
    disableSystemRoot: tls.disableSystemRoot,
  }))

const TCP_STREAM: StreamConfig = { network: 'tcp', security: 'none' }

const DEFAULT_TLS: TlsConfig = {
  serverName: undefined,
  alpn: undefined,
  allowInsecure: false,
  certificates: [],
  disableSystemRoot: false,
}

const onlyFor = (network: string): string => `used only when network is "${network}"`

/** Warns about the settings of a transport or security that `network` and `security` do not select. */
function adviseUnusedStreamSettings(value: unknown): string | undefined {
  const network = readTransportNetwork(lookupKey(value, 'network'))
  const security = readStreamSecurity(lookupKey(value, 'security'))
  if (network instanceof Failure || security instanceof Failure) return undefined
  const unused = [
    ['tcpSettings', 'tcp', network],
    ['wsSettings', 'ws', network],
    ['httpupgradeSettings', 'httpupgrade', network],
  ]
    .filter(([key, wanted, actual]) => actual !== wanted && lookupKey(value, key ?? '') !== undefined)
    .map(([key, wanted]) => `${key} (${onlyFor(wanted ?? '')})`)
  if (security !== 'tls' && lookupKey(value, 'tlsSettings') !== undefined) {
    unused.push('tlsSettings (used only when security is "tls")')
  }
  return unused.length === 0 ? undefined : `ignored: ${unused.join(', ')}`
}

/** `streamSettings` of an inbound or outbound: TCP (with optional HTTP header), WebSocket or HTTPUpgrade, each with optional TLS. */
export const streamSettingsSchema = withRule(
  z
    .object({
      network: leaf(readTransportNetwork),
      security: withRule(leaf(readStreamSecurity), {
        advise: adviseUnknownWord(['', 'none', 'tls', 'xtls', 'reality'], 'a stream security', 'none'),
      }),
      tlsSettings: tlsSettingsSchema.optional(),
      xtlsSettings: ignored('used only when security is "xtls"'),
      realitySettings: ignored('used only when security is "reality"'),
      tcpSettings: tcpSettingsSchema.optional(),
      wsSettings: wsSettingsSchema.optional(),
      httpupgradeSettings: httpUpgradeSettingsSchema.optional(),
      kcpSettings: ignored(onlyFor('kcp')),
      httpSettings: ignored(onlyFor('h2')),
      quicSettings: ignored(onlyFor('quic')),
      dsSettings: ignored(onlyFor('domainsocket')),
      grpcSettings: ignored(onlyFor('grpc')),
      gunSettings: ignored(onlyFor('gun')),
      splithttpSettings: ignored(onlyFor('splithttp')),
      xhttpSettings: ignored(onlyFor('xhttp')),
      sockopt: z
        .object({
          mark: ignored('tsray does not set SO_MARK'),
          tcpFastOpen: ignored('tsray does not set TCP Fast Open'),
          tproxy: leaf((value: unknown): 'off' | Failure =>
            value === undefined || value === 'off'
              ? 'off'
              : fail(`${describeValue(value)} is not supported yet (transparent proxying)`),
          ),
          acceptProxyProtocol: leaf(readOffOnly('the PROXY protocol')),
        })
        .optional(),
    })
    .transform((stream): StreamConfig => {
      const security: StreamSecurityConfig =
        stream.security === 'tls'
          ? { security: 'tls', tls: stream.tlsSettings ?? DEFAULT_TLS }
          : { security: 'none' }
      switch (stream.network) {
        case 'tcp':
          return stream.tcpSettings === undefined
            ? { network: 'tcp', ...security }
            : { network: 'tcp', ...security, httpHeader: stream.tcpSettings }
        case 'ws':
          return { network: 'ws', ...security, ws: stream.wsSettings ?? wsSettingsSchema.parse({}) }
        case 'httpupgrade':
          return {
            network: 'httpupgrade',
            ...security,
            httpUpgrade: stream.httpupgradeSettings ?? httpUpgradeSettingsSchema.parse({}),
          }
      }
    }),
  { advise: adviseUnusedStreamSettings },
)

/**
 * What a stream cannot do on this inbound or outbound: transports other than plain TCP carry VMess only, and
 * a TLS server needs a certificate with its key. Paths are relative to `streamSettings`.
 */
export function streamProblems(
  stream: StreamConfig,
  options: { readonly protocol: string; readonly side: 'inbound' | 'outbound' },
): { readonly path: JsonPath; readonly message: string }[] {
  const problems: { path: JsonPath; message: string }[] = []
  if (options.protocol !== 'vmess') {
    if (stream.network !== 'tcp') {
      problems.push({
        path: ['network'],
        message: `"${stream.network}" is not supported yet (supported: "tcp")`,
      })
    } else if (stream.httpHeader !== undefined) {
      problems.push({
        path: ['tcpSettings', 'header', 'type'],
        message: '"http" is not supported yet (supported: "none")',
      })
    }
    if (stream.security === 'tls') {
      problems.push({ path: ['security'], message: '"tls" is not supported yet (supported: "none")' })
    }
  } else if (
    options.side === 'inbound' &&
    stream.tls !== undefined &&
    !stream.tls.certificates.some((entry) => entry.usage === 'encipherment' && entry.key !== undefined)
  ) {
    problems.push({
      path: ['tlsSettings', 'certificates'],
      message:
        'has no certificate with a key; a TLS server needs one (certificateFile and keyFile, or certificate and key)',
    })
  }
  return problems
}

/** A superRefine for inboundSchema and outboundSchema that reports `streamProblems`. */
function checkStream(side: 'inbound' | 'outbound') {
  return (
    entry: { readonly protocol: string; readonly streamSettings?: StreamConfig | undefined },
    context: { addIssue(issue: { code: 'custom'; path: PropertyKey[]; message: string }): void },
  ): void => {
    for (const problem of streamProblems(entry.streamSettings ?? TCP_STREAM, {
      protocol: entry.protocol,
      side,
    })) {
      context.addIssue({
        code: 'custom',
        path: ['streamSettings', ...problem.path],
        message: problem.message,
      })
    }
  }
}

const MOVE_TO_STREAM_SETTINGS =
  'not supported: tsray reads transport settings only from each streamSettings; move them there'

/** Top-level `transport`: V2Ray's defaults for every streamSettings. tsray refuses the ones that would change a supported transport. */
export const transportSchema = z.object({
  tcpSettings: z
    .object({
      header: z
        .object({ type: leaf(readTcpHeaderType), request: anyValue(), response: anyValue() })
        .optional(),
      acceptProxyProtocol: leaf(readOffOnly('the PROXY protocol')),
    })
    .superRefine((tcp, context) => {
      if (tcp.header?.type === 'http') {
        context.addIssue({
          code: 'custom',
          path: ['header', 'type'],
          message: `"http" is ${MOVE_TO_STREAM_SETTINGS}`,
        })
      }
    })
    .optional(),
  wsSettings: refused(MOVE_TO_STREAM_SETTINGS),
  httpupgradeSettings: refused(MOVE_TO_STREAM_SETTINGS),
  kcpSettings: ignored(onlyFor('kcp')),
  httpSettings: ignored(onlyFor('h2')),
  quicSettings: ignored(onlyFor('quic')),
  dsSettings: ignored(onlyFor('domainsocket')),
  grpcSettings: ignored(onlyFor('grpc')),
})

function protocolReader<T extends string>(
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

const KNOWN_INBOUND_PROTOCOLS = ['shadowsocks', 'vless', 'trojan', 'mtproto', 'hysteria2']
const KNOWN_OUTBOUND_PROTOCOLS = [
  'http',
  'socks',
  'shadowsocks',
  'vless',
  'trojan',
  'mtproto',
  'dns',
  'loopback',
]

/** `inbounds[].protocol`. */
export const inboundProtocolSchema = leaf(
  protocolReader(INBOUND_PROTOCOLS, KNOWN_INBOUND_PROTOCOLS, 'inbound'),
)
/** `outbounds[].protocol`. */
export const outboundProtocolSchema = leaf(
  protocolReader(OUTBOUND_PROTOCOLS, KNOWN_OUTBOUND_PROTOCOLS, 'outbound'),
)

/** `inbounds[]` without its `settings`, which are read by protocol. `port` has had "env:" resolved. */
export const inboundSchema = z
  .object({
    tag: leaf(readTag),
    listen: leaf(readListenAddress),
    port: leaf(readListenPort),
    protocol: inboundProtocolSchema,
    settings: anyValue(),
    streamSettings: streamSettingsSchema.optional(),
    sniffing: advised((value) =>
      lookupKey(value, 'enabled') === true ? 'ignored: tsray does not sniff traffic' : undefined,
    ),
    allocate: ignored('tsray listens on one port per inbound'),
    domainOverride: ignored('tsray does not sniff traffic'),
  })
  .superRefine(checkStream('inbound'))
  .transform((inbound): InboundCommon & { readonly protocol: InboundProtocol } => ({
    tag: inbound.tag,
    listen: inbound.listen,
    port: inbound.port,
    protocol: inbound.protocol,
    stream: inbound.streamSettings ?? TCP_STREAM,
  }))

const vmessClientSchema = z
  .object({
    id: withRule(leaf(readVmessId), { advise: adviseShortId }),
    alterId: leaf(readAlterId),
    email: leaf(readEmail),
    level: leaf(readLevel),
    // Clients choose their own security; a V2Ray server reads this key and ignores it.
    security: anyValue(),
  })
  .transform((client): VmessClient => ({
    id: client.id,
    alterId: client.alterId,
    email: client.email,
    level: client.level,
  }))

const LEGACY_HEADER_MODES: readonly LegacyHeaderMode[] = ['accept', 'warn', 'refuse']

function readLegacyHeaderMode(value: unknown): LegacyHeaderMode | Failure {
  if (value === undefined) return DEFAULT_LEGACY_HEADER_MODE
  const mode = LEGACY_HEADER_MODES.find((candidate) => candidate === value)
  return mode ?? fail(`${describeValue(value)} is not one of "accept", "warn", "refuse"`)
}

/** `settings` of a VMess inbound. */
export const vmessInboundSettingsSchema = z
  .object({
    clients: z.array(vmessClientSchema).optional(),
    disableInsecureEncryption: leaf(optional(readBoolean, false)),
    legacyHeader: leaf(readLegacyHeaderMode),
    // Defaults for users added through V2Ray's API, which tsray does not have.
    default: anyValue(),
    detour: refused('not supported: tsray has no dynamic ports'),
    features: z.object({ detour: refused('not supported: tsray has no dynamic ports') }).optional(),
  })
  .transform((settings): VmessInboundSettings => ({
    clients: settings.clients ?? [],
    disableInsecureEncryption: settings.disableInsecureEncryption,
    legacyHeader: settings.legacyHeader,
  }))

function readAccountField(value: unknown): string | Failure {
  const text = readRequiredString(value)
  if (text instanceof Failure) return text
  return Buffer.byteLength(text, 'utf8') <= 255 ? text : fail('is longer than 255 bytes')
}

const accountSchema = z
  .object({ user: leaf(readAccountField), pass: leaf(readAccountField) })
  .transform((account): Account => ({ user: account.user, pass: account.pass }))

function readSocksAuth(value: unknown): 'noauth' | 'password' | Failure {
  if (value === undefined || value === 'noauth') return 'noauth'
  if (value === 'password') return 'password'
  return fail(`${describeValue(value)} is not a SOCKS auth method (supported: "noauth", "password")`)
}

/** `settings` of a SOCKS inbound. */
export const socksInboundSettingsSchema = z
  .object({
    auth: leaf(readSocksAuth),
    accounts: z.array(accountSchema).optional(),
    udp: leaf(optional(readBoolean, false)),
    ip: leaf(optional(readHost, undefined)),
    timeout: leaf(readTimeoutMs),
    userLevel: leaf(readUserLevel),
  })
  .transform((settings): SocksInboundSettings => ({
    auth: settings.auth,
    accounts: settings.accounts ?? [],
    udp: settings.udp,
    ip: settings.ip,
    timeoutMs: settings.timeout,
    userLevel: settings.userLevel,
  }))

/** `settings` of an HTTP proxy inbound. */
export const httpInboundSettingsSchema = z
  .object({
    accounts: z.array(accountSchema).optional(),
    allowTransparent: advised((value) =>
      value === true ? 'ignored: tsray answers only proxy requests' : undefined,
    ),
    timeout: leaf(readTimeoutMs),
    userLevel: leaf(readUserLevel),
  })
  .transform((settings): HttpInboundSettings => ({
    accounts: settings.accounts ?? [],
    timeoutMs: settings.timeout,
    userLevel: settings.userLevel,
  }))

/** `settings` of a dokodemo-door inbound. */
export const dokodemoInboundSettingsSchema = z
  .object({
    address: leaf(readHost),
    port: leaf(readPortNumber),
    network: leaf(optional(uniqueNetworks, ['tcp'] as Network[])),
    followRedirect: leaf(readOffOnly('followRedirect (transparent proxying)')),
    timeout: leaf(readTimeoutMs),
    userLevel: leaf(readUserLevel),
  })
  .transform((settings): DokodemoInboundSettings => ({
    address: settings.address,
    port: settings.port,
    networks: settings.network,
    timeoutMs: settings.timeout,
    userLevel: settings.userLevel,
  }))

/** The settings schema of each inbound protocol. */
export const inboundSettingsSchemas = {
  vmess: vmessInboundSettingsSchema,
  socks: socksInboundSettingsSchema,
  http: httpInboundSettingsSchema,
  'dokodemo-door': dokodemoInboundSettingsSchema,
} as const

/** V2Ray's `mux.concurrency` when it is 0 or absent. */
const DEFAULT_MUX_CONCURRENCY = 8
/** V2Ray refuses to start with a `mux.concurrency` above this. */
const MAX_MUX_CONCURRENCY = 1024

/** `mux.concurrency` as V2Ray reads it: an int16, 0 meaning 8 and a negative value turning mux off. */
function readMuxConcurrency(value: unknown): number | Failure {
  if (value === undefined) return 0
  const valid = typeof value === 'number' && Number.isInteger(value)
  if (valid && value >= -32768 && value <= MAX_MUX_CONCURRENCY) return value
  return fail(
    `${describeValue(value)} is not a mux concurrency (1–${MAX_MUX_CONCURRENCY}; 0 means ${DEFAULT_MUX_CONCURRENCY}, a negative value turns mux off)`,
  )
}

/** `outbounds[].mux` (Mux.Cool, PROTOCOL §8). */
const muxSchema = z
  .object({
    enabled: leaf(optional(readBoolean, false)),
    concurrency: leaf(readMuxConcurrency),
  })
  .transform((mux): MuxConfig => ({
    enabled: mux.enabled && mux.concurrency >= 0,
    concurrency: mux.concurrency > 0 ? mux.concurrency : DEFAULT_MUX_CONCURRENCY,
  }))

/** `outbounds[]` without its `settings`, which are read by protocol. */
export const outboundSchema = z
  .object({
    tag: leaf(readTag),
    protocol: outboundProtocolSchema,
    settings: anyValue(),
    streamSettings: streamSettingsSchema.optional(),
    sendThrough: leaf(optional(readIpAddress, undefined)),
    mux: muxSchema.optional(),
    proxySettings: refused('not supported yet: tsray does not chain outbounds'),
  })
  .superRefine(checkStream('outbound'))
  .superRefine((outbound, context) => {
    // Only a VMess outbound can carry Mux.Cool; V2Ray would send freedom's sub-sessions to "v1.mux.cool".
    if (outbound.mux?.enabled === true && outbound.protocol !== 'vmess') {
      context.addIssue({
        code: 'custom',
        path: ['mux', 'enabled'],
        message: 'Mux.Cool (mux.enabled) is not supported yet',
      })
    }
  })
  .transform((outbound): OutboundCommon & { readonly protocol: OutboundProtocol } => ({
    tag: outbound.tag,
    protocol: outbound.protocol,
    stream: outbound.streamSettings ?? TCP_STREAM,
    sendThrough: outbound.sendThrough,
    // Present only when on, so outbounds without Mux.Cool read as before.
    ...(outbound.mux?.enabled === true ? { mux: outbound.mux } : {}),
  }))

const FREEDOM_STRATEGIES: Readonly<Record<string, FreedomDomainStrategy>> = {
  asis: 'AsIs',
  useip: 'UseIP',
  use_ip: 'UseIP',
  useip4: 'UseIPv4',
  useipv4: 'UseIPv4',
  use_ipv4: 'UseIPv4',
  use_ip_v4: 'UseIPv4',
  use_ip4: 'UseIPv4',
  useip6: 'UseIPv6',
  useipv6: 'UseIPv6',
  use_ipv6: 'UseIPv6',
  use_ip_v6: 'UseIPv6',
  use_ip6: 'UseIPv6',
}

/** `redirect` of freedom: "host:port" as Go's SplitHostPort reads it; an empty host or port 0 keeps the request's. */
function readRedirect(value: unknown): FreedomOutboundSettings['redirect'] | Failure {
  if (value === undefined || value === '') return undefined
  if (typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(value)
  const port = Number(match?.[3])
  if (match === null || port > 65535) return fail(`${describeValue(value)} is not "host:port"`)
  const host = match[1] ?? match[2] ?? ''
  return { host: host === '' ? undefined : host, port: port === 0 ? undefined : port }
}

/** `settings` of a freedom outbound. */
export const freedomOutboundSettingsSchema = z
  .object({
    domainStrategy: withRule(leaf(spellingReader(FREEDOM_STRATEGIES, 'AsIs')), {
      advise: adviseUnknownWord(Object.keys(FREEDOM_STRATEGIES), 'a freedom domain strategy', 'AsIs'),
    }),
    redirect: leaf(readRedirect),
    timeout: leaf(readTimeoutMs),
    userLevel: leaf(readUserLevel),
  })
  .transform((settings): FreedomOutboundSettings => ({
    domainStrategy: settings.domainStrategy,
    redirect: settings.redirect,
    timeoutMs: settings.timeout,
    userLevel: settings.userLevel,
  }))

function readBlackholeResponse(value: unknown): 'none' | 'http' | Failure {
  if (value === undefined) return 'none'
  const type = typeof value === 'string' ? value.toLowerCase() : value
  if (type === 'none' || type === 'http') return type
  return fail(`${describeValue(value)} is not a blackhole response type (supported: "none", "http")`)
}

/** `settings` of a blackhole outbound. */
export const blackholeOutboundSettingsSchema = z
  .object({ response: z.object({ type: leaf(readBlackholeResponse) }).optional() })
  .transform((settings): BlackholeOutboundSettings => ({ response: settings.response?.type ?? 'none' }))

const SECURITY_SPELLINGS: Readonly<Record<string, SecurityName>> = Object.fromEntries(
  SECURITY_NAMES.map((name) => [name, name]),
)

const EXPERIMENTS = ['AuthenticatedLength', 'NoTerminationSignal']

function adviseExperiments(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  const unknown = value.split(/[|,\s]+/).filter((word) => word !== '' && !EXPERIMENTS.includes(word))
  return unknown.length === 0
    ? undefined
    : `${unknown.map((word) => describeValue(word)).join(', ')} ignored (known: ${EXPERIMENTS.join(', ')})`
}

const vmessUserSchema = z
  .object({
    id: withRule(leaf(readVmessId), { advise: adviseShortId }),
    alterId: leaf(readAlterId),
    security: withRule(leaf(spellingReader(SECURITY_SPELLINGS, DEFAULT_VMESS_SECURITY)), {
      advise: adviseUnknownWord(SECURITY_NAMES, 'a VMess security', DEFAULT_VMESS_SECURITY),
    }),
    level: leaf(readLevel),
    email: leaf(readEmail),
    experiments: withRule(leaf(optional(readString, '')), { advise: adviseExperiments }),
  })
  .transform((user): VmessUser => ({
    id: user.id,
    alterId: user.alterId,
    security: user.security,
    level: user.level,
    email: user.email,
    // v2fly v5 looks for the words anywhere in the string.
    authenticatedLength: user.experiments.includes('AuthenticatedLength'),
    noTerminationSignal: user.experiments.includes('NoTerminationSignal'),
  }))

const vmessServerSchema = z
  .object({
    address: leaf(readHost),
    port: leaf(readPortNumber),
    users: z.array(vmessUserSchema).min(1),
  })
  .transform((server): VmessServer => ({ address: server.address, port: server.port, users: server.users }))

/** Bounds of `maxChunkLength`: the whole chunk, length field included, as a VMess length field holds it. */
const MIN_CHUNK_LENGTH_SETTING = 1_024
const MAX_CHUNK_LENGTH_SETTING = 65_535

/** `settings` of a VMess outbound. */
export const vmessOutboundSettingsSchema = z
  .object({
    vnext: z.array(vmessServerSchema).min(1),
    maxChunkLength: leaf(
      optional(integerReader(MIN_CHUNK_LENGTH_SETTING, MAX_CHUNK_LENGTH_SETTING), undefined),
    ),
  })
  .transform((settings): VmessOutboundSettings => ({
    vnext: settings.vnext,
    ...(settings.maxChunkLength !== undefined ? { maxChunkLength: settings.maxChunkLength } : {}),
  }))

/** The settings schema of each outbound protocol. */
export const outboundSettingsSchemas = {
  vmess: vmessOutboundSettingsSchema,
  freedom: freedomOutboundSettingsSchema,
  blackhole: blackholeOutboundSettingsSchema,
} as const

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
    settings: refused('is the V2Ray v3 layout: move its rules to routing.rules'),
    strategy: ignored('a V2Ray v3 key'),
  })
  .transform((routing): RoutingConfig => ({
    domainStrategy: routing.domainStrategy,
    rules: routing.rules ?? [],
  }))

const optionalSeconds = leaf(optional(readUint32, undefined))
// Read by src/config/operate.ts (counters need a "stats": {} section there).
const adviseStats = (): string | undefined => undefined

const levelPolicySchema = z
  .object({
    handshake: optionalSeconds,
    connIdle: optionalSeconds,
    uplinkOnly: optionalSeconds,
    downlinkOnly: optionalSeconds,
    bufferSize: leaf(optional(integerReader(-MAX_INT32 - 1, MAX_INT32), undefined)),
    statsUserUplink: advised(adviseStats),
    statsUserDownlink: advised(adviseStats),
    statsUserOnline: advised(adviseStats),
  })
  .transform((level): LevelPolicy => ({
    handshake: level.handshake,
    connIdle: level.connIdle,
    uplinkOnly: level.uplinkOnly,
    downlinkOnly: level.downlinkOnly,
    bufferSize: level.bufferSize,
  }))

/** `policy`: levels keyed by the level number as a string. */
export const policySchema = z
  .object({
    levels: z.record(z.string(), levelPolicySchema).optional(),
    system: anyValue(),
  })
  .transform((policy, context): PolicyConfig => {
    const levels = new Map<number, LevelPolicy>()
    for (const [key, level] of Object.entries(policy.levels ?? {})) {
      const number = /^\d{1,10}$/.test(key) ? Number(key) : NaN
      if (number <= MAX_UINT32) levels.set(number, level)
      else
        context.addIssue({ code: 'custom', path: ['levels', key], message: `"${key}" is not a level number` })
    }
    return { levels }
  })

/** `metrics`: Xray's `listen` serves them; its `tag` (metrics through a routed inbound) is not supported. */
export const metricsSchema = z.object({
  listen: leaf(readMetricsListen),
  tag: ignored('tsray serves metrics on metrics.listen only, not through an inbound'),
})

/** `api` is ignored, but its tag names the routing rule and inbound that serve it. */
export const apiSchema = z.object({ tag: leaf(readTag), services: anyValue() })

const V3_LAYOUT = 'is the V2Ray v3 layout: use "inbounds" and "outbounds"'

/** The top level: sections read on their own are `unknown` here. */
export const topLevelSchema = z.object({
  log: anyValue(),
  inbounds: anyValue(),
  outbounds: anyValue(),
  routing: anyValue(),
  policy: anyValue(),
  transport: anyValue(),
  metrics: anyValue(),
  api: anyValue(),
  dns: ignored('tsray resolves names with the system resolver'),
  stats: anyValue(),
  fakedns: ignored('fake DNS needs sniffing, which tsray does not do'),
  observatory: ignored('used only by balancers, which are not supported yet'),
  balancers: ignored('balancers are not supported yet'),
  reverse: refused('not supported yet: tsray has no reverse proxy (bridge/portal)'),
  inbound: refused(V3_LAYOUT),
  outbound: refused(V3_LAYOUT),
  inboundDetour: refused(V3_LAYOUT),
  outboundDetour: refused(V3_LAYOUT),
  port: refused(V3_LAYOUT),
})
