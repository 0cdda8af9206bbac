// The typed result of reading a V2Ray v4 JSON config: what the loader gives back and the runtime and
// transports consume. Types only, so every layer may import them.
import type { OperateConfig } from './operate.js'
import type { LogFormat } from './log-format.js'
import { type SecurityName } from '../protocol/constants.js'

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
  /** `log.format`, a tsray key; text when absent. */
  readonly format?: LogFormat
}

/** One header line of the HTTP header obfuscation: a name and the values one is picked from per connection. */
export interface HttpHeaderField {
  readonly name: string
  readonly values: readonly string[]
}

/** The fake request a client sends (`tcpSettings.header.request`, V2Ray's defaults applied). */
export interface HttpHeaderRequest {
  readonly version: string
  readonly method: string
  /** A client picks one at random; a server accepts any of them. */
  readonly paths: readonly string[]
  readonly headers: readonly HttpHeaderField[]
}

/** The fake response a server sends (`tcpSettings.header.response`, V2Ray's defaults applied). */
export interface HttpHeaderResponse {
  readonly version: string
  readonly status: string
  readonly reason: string
  readonly headers: readonly HttpHeaderField[]
}

/** `tcpSettings.header` with `type: "http"`, V2Ray's defaults applied (infra/conf/transport_authenticators.go). */
export interface HttpHeaderConfig {
  readonly request: HttpHeaderRequest
  readonly response: HttpHeaderResponse
}

/** WebSocket early data (0-RTT): the first bytes ride on the handshake. */
export interface WebSocketEarlyData {
  /** At most this many bytes of the first write; the rest follows as a message. */
  readonly maxBytes: number
  /** The request header carrying them (base64url); undefined appends them to the path (v2fly). */
  readonly headerName: string | undefined
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
  readonly earlyData: WebSocketEarlyData | undefined
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

/** `httpSettings` (h2), normalised: hosts (empty: V2Ray's "www.example.com"), a path starting with "/", the method. */
export interface H2Config {
  /** The `:authority` values a server accepts and a client picks from. */
  readonly hosts: readonly string[]
  /** A server accepts every path that starts with it. */
  readonly path: string
  /** What a client sends (Xray's `method`; V2Ray always sends PUT). */
  readonly method: string
}

/** `grpcSettings`, normalised (transport/grpc.ts derives the request paths from `serviceName`). */
export interface GrpcConfig {
  /** A name (`/<name>/Tun`) or Xray's custom path form "/a/b/tun|multi". */
  readonly serviceName: string
  /** The client calls TunMulti (Xray's `multiMode`). */
  readonly multiMode: boolean
  /** The client's `:authority`; undefined: the TLS server name, else the address. */
  readonly authority: string | undefined
  /** The client's `user-agent`; undefined sends none. */
  readonly userAgent: string | undefined
}

/**
 * `streamSettings`, normalised: the transport and the settings it uses. Plain TCP is exactly
 * `{ network: 'tcp', security: 'none' }`. transport/stream-settings.ts builds servers and dialers from it.
 */
export type StreamConfig =
  | (StreamSecurityConfig & { readonly network: 'tcp'; readonly httpHeader?: HttpHeaderConfig })
  | (StreamSecurityConfig & { readonly network: 'ws'; readonly ws: WebSocketConfig })
  | (StreamSecurityConfig & { readonly network: 'httpupgrade'; readonly httpUpgrade: HttpUpgradeConfig })
  | (StreamSecurityConfig & { readonly network: 'h2'; readonly h2: H2Config })
  | (StreamSecurityConfig & { readonly network: 'grpc'; readonly grpc: GrpcConfig })

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
  /** `admission` (a tsray key): concurrent connections accepted, in all and per source IP. */
  readonly admission?: {
    readonly maxConnections?: number | undefined
    readonly maxConnectionsPerSource?: number | undefined
  }
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
   * Xray and tsray servers read; a sing-box or mihomo server needs 16,450 (docs/protocol.md §7.3).
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

/** `dns.hosts` entry: a domain matcher (routing's syntax) and its IPs, or one domain resolved in its place. */
export interface DnsHostConfig {
  readonly matcher: string
  readonly addresses: readonly string[]
}

/** `dns.servers[]`: plain DNS to an IP and port, or "localhost" (the system resolver). */
export interface DnsServerConfig {
  readonly address: string
  readonly port: number
  /** Domain matchers this server is asked first for. */
  readonly domains: readonly string[]
  /** CIDRs an answer must fall in, else the next server is asked; empty: any answer. */
  readonly expectIps: readonly string[]
  /** Not asked for domains that no server's `domains` names. */
  readonly skipFallback: boolean
}

/** `dns.queryStrategy`: which address families a lookup asks for. */
export type DnsQueryStrategy = 'UseIP' | 'UseIPv4' | 'UseIPv6'

/** `dns`. No servers: the system resolver answers what `hosts` does not. */
export interface DnsConfig {
  readonly hosts: readonly DnsHostConfig[]
  readonly servers: readonly DnsServerConfig[]
  /** Servers whose `domains` do not match are not asked. */
  readonly disableFallback: boolean
  readonly queryStrategy: DnsQueryStrategy
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
  /** Absent: names are resolved by the system resolver. */
  readonly dns?: DnsConfig
  /** `stats`, the stats switches of `policy`, and `api` (src/config/operate.ts). */
  readonly operate?: OperateConfig
}
