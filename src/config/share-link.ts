// Share links in: v2rayN base64 JSON, the standard URI, Shadowrocket and Quantumult forms, read into one VmessLink.
import { ProtocolError } from '../errors.js'
import { idTextProblem } from './vmess-id.js'
import { MAX_DOMAIN_LENGTH, SECURITY_NAMES, type SecurityName } from '../protocol/constants.js'
import { NETWORK_IDS, type NetworkId, NETWORKS, uriFieldNames } from './networks.js'

/** Longest link text read, so a pasted blob cannot make the parser chew on megabytes. */
export const MAX_VMESS_LINK_LENGTH = 16 * 1024
/** Longest non-UUID `id` (Xray and sing-box map such strings to a UUIDv5, PROTOCOL §1). */
export const MAX_ID_TEXT_BYTES = 30

/** Transports a link can name (peers.md §3.1), in v2rayN's spelling (`h2` for HTTP/2): the table's rows with links. */
export const VMESS_NETWORKS = NETWORK_IDS.filter((id) => NETWORKS[id].link !== undefined) as VmessNetwork[]
export type VmessNetwork = Exclude<NetworkId, 'domainsocket'>

/**
 * A VMess server as a share link describes it. `host` and `path` mean what v2rayN's fields mean for the
 * network: HTTP Host and path for ws/h2/httpupgrade/xhttp/tcp-http, seed (path) for kcp, serviceName
 * (path) and authority (host) for grpc, security (host) and key (path) for quic. `headerType` is the
 * tcp/kcp/quic header type or the grpc mode; `none` when absent.
 */
export interface VmessLink {
  readonly remark: string
  readonly address: string
  readonly port: number
  readonly id: string
  readonly alterId: number
  readonly security: SecurityName
  readonly network: VmessNetwork
  readonly headerType: string
  readonly host: string
  readonly path: string
  readonly tls: boolean
  readonly sni?: string
  /** Comma-separated ALPN list. */
  readonly alpn?: string
  readonly fingerprint?: string
  readonly allowInsecure?: boolean
}

/** Options of `formatVmessLink`. */
export interface FormatVmessLinkOptions {
  /** `v2rayn` (default): base64 JSON "ver 2", the widest support. `uri`: the standard URI, AEAD only. */
  readonly form?: 'v2rayn' | 'uri'
}

/** A V2Ray v4 JSON outbound for one VMess server. */
export interface VmessOutboundJson {
  readonly protocol: 'vmess'
  readonly settings: {
    readonly vnext: [
      {
        readonly address: string
        readonly port: number
        readonly users: [{ readonly id: string; readonly alterId: number; readonly security: SecurityName }]
      },
    ]
  }
  readonly streamSettings: {
    readonly network: string
    readonly security: 'tls' | 'none'
    readonly [settings: string]: unknown
  }
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const DOMAIN_PATTERN = /^[A-Za-z0-9\-._]+$/
const IPV6_PATTERN = /^[0-9A-Fa-f:.]+$/
const DECIMAL_PATTERN = /^\d{1,5}$/
const UTF8 = new TextDecoder('utf-8', { fatal: true })

function invalid(message: string): ProtocolError {
  return new ProtocolError('LINK_INVALID', `Cannot read vmess link: ${message}`)
}

function parsePort(text: string): number {
  const port = Number(text)
  if (!DECIMAL_PATTERN.test(text) || port < 1 || port > 0xffff)
    throw invalid(`port "${text}" is not 1 to 65535`)
  return port
}

function parseAlterId(text: string): number {
  if (text === '') return 0
  const alterId = Number(text)
  if (!DECIMAL_PATTERN.test(text) || alterId > 0xffff) throw invalid(`alterId "${text}" is not 0 to 65535`)
  return alterId
}

function parseSecurity(text: string): SecurityName {
  const lower = text.toLowerCase()
  if (lower === '') return 'auto'
  // Clash and Quantumult spell it the IETF way.
  if (lower === 'chacha20-ietf-poly1305') return 'chacha20-poly1305'
  const found = SECURITY_NAMES.find((name) => name === lower)
  if (found === undefined) throw invalid(`security "${text}" is unknown`)
  return found
}

/** The network and header type of v2rayN's `net` and `type` (peers.md §3.1: `http` is h2 unless type is http). */
function parseNetwork(net: string, type: string): { network: VmessNetwork; headerType: string } {
  const headerType = type === '' ? 'none' : type
  const lower = net.toLowerCase()
  switch (lower) {
    case 'http':
      return headerType === 'http' ? { network: 'tcp', headerType } : { network: 'h2', headerType }
    default: {
      const found = VMESS_NETWORKS.find(
        (name) => name === lower || (NETWORKS[name].link?.aliases.includes(lower) ?? false),
      )
      if (found === undefined) throw invalid(`network "${net}" is unknown`)
      return { network: found, headerType }
    }
  }
}

/** TLS on or off; readers treat anything ending in `tls` as TLS (peers.md §3.1). */
function parseTls(text: string): boolean {
  const lower = text.toLowerCase()
  if (lower === '' || lower === 'none' || lower === '0' || lower === 'false') return false
  if (lower === '1' || lower === 'true' || lower.endsWith('tls')) return true
  if (lower === 'reality') throw invalid('security "reality" is not supported')
  throw invalid(`tls "${text}" is unknown`)
}

function parseFlag(text: string | undefined): boolean | undefined {
  const lower = text?.toLowerCase()
  if (lower === '1' || lower === 'true') return true
  if (lower === '0' || lower === 'false') return false
  return undefined
}

function emptyToUndefined(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text
}

/** The fields every form yields, optional ones possibly undefined; checks them and drops the undefined ones. */
interface LinkFields extends Omit<VmessLink, 'sni' | 'alpn' | 'fingerprint' | 'allowInsecure'> {
  readonly sni: string | undefined
  readonly alpn: string | undefined
  readonly fingerprint: string | undefined
  readonly allowInsecure: boolean | undefined
}

function buildLink(fields: LinkFields): VmessLink {
  const { sni, alpn, fingerprint, allowInsecure, ...base } = fields
  const address =
    base.address.startsWith('[') && base.address.endsWith(']') ? base.address.slice(1, -1) : base.address
  const validAddress = address.includes(':')
    ? IPV6_PATTERN.test(address)
    : DOMAIN_PATTERN.test(address) && address.length <= MAX_DOMAIN_LENGTH
  if (!validAddress) throw invalid(`address "${address}" is not a domain or an IP address`)
  const idBytes = Buffer.byteLength(base.id)
  if (!UUID_PATTERN.test(base.id) && (idBytes === 0 || idBytes > MAX_ID_TEXT_BYTES)) {
    throw invalid(`id "${base.id}" is not a UUID`)
  }
  const idProblem = UUID_PATTERN.test(base.id) ? undefined : idTextProblem(base.id)
  if (idProblem !== undefined) throw invalid(`id ${idProblem}`)
  return {
    ...base,
    address,
    ...(sni === undefined ? {} : { sni }),
    ...(alpn === undefined ? {} : { alpn }),
    ...(fingerprint === undefined ? {} : { fingerprint }),
    ...(allowInsecure === undefined ? {} : { allowInsecure }),
  }
}

/** Decodes standard or URL-safe base64, padded or not, whitespace ignored, as UTF-8. */
function decodeBase64Text(text: string): string {
  const compact = text.replace(/\s+/g, '').replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/')
  if (compact === '' || !/^[A-Za-z0-9+/]+$/.test(compact) || compact.length % 4 === 1) {
    throw invalid('the part after vmess:// is neither base64 nor a URI')
  }
  try {
    return UTF8.decode(Buffer.from(compact, 'base64'))
  } catch (cause) {
    throw new ProtocolError('LINK_INVALID', 'Cannot read vmess link: the base64 text is not UTF-8', { cause })
  }
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch (cause) {
    throw new ProtocolError('LINK_INVALID', `Cannot read vmess link: "${text}" has a broken %-escape`, {
      cause,
    })
  }
}

/** Query parameters, %-decoded (`+` stays `+`: values are encodeURIComponent-escaped). A repeated name is refused. */
function parseQuery(query: string): Map<string, string> {
  const params = new Map<string, string>()
  for (const pair of query.split('&')) {
    if (pair === '') continue
    const equals = pair.indexOf('=')
    const name = decodeComponent(equals < 0 ? pair : pair.slice(0, equals))
    const value = equals < 0 ? '' : decodeComponent(pair.slice(equals + 1))
    if (params.has(name)) throw invalid(`field "${name}" is repeated`)
    params.set(name, value)
  }
  return params
}

/** Splits `host:port` (IPv6 in brackets). */
function splitHostPort(text: string): { address: string; port: number } {
  const match = /^(\[[^\]]*\]|[^:[\]]*):(\d+)$/.exec(text)
  if (match === null) throw invalid(`"${text}" is not host:port`)
  return { address: match[1]!, port: parsePort(match[2]!) }
}

/** Reads a v2rayN JSON value: strings as they are, numbers and booleans as text, absent as ''. */
function jsonField(json: Record<string, unknown>, key: string): string {
  const value = json[key]
  if (value === undefined || value === null) return ''
  if (typeof value === 'string') return value
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean')
    return String(value)
  throw invalid(`field "${key}" is not a string or a number`)
}

function fromV2raynJson(text: string): VmessLink {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (cause) {
    throw new ProtocolError('LINK_INVALID', 'Cannot read vmess link: the base64 text is not JSON', { cause })
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw invalid('the JSON is not an object')
  const record = json as Record<string, unknown>
  const field = (key: string): string => jsonField(record, key).trim()
  return buildLink({
    remark: jsonField(record, 'ps'),
    address: field('add'),
    port: parsePort(field('port')),
    id: field('id'),
    alterId: parseAlterId(field('aid')),
    security: parseSecurity(field('scy')),
    ...parseNetwork(field('net'), field('type')),
    host: field('host'),
    path: field('path'),
    tls: parseTls(field('tls')),
    sni: emptyToUndefined(field('sni')),
    alpn: emptyToUndefined(field('alpn')),
    fingerprint: emptyToUndefined(field('fp')),
    allowInsecure: parseFlag(field('insecure') || field('allowInsecure')),
  })
}

/** Host, path and header type of the standard URI, whose names depend on the transport (peers.md §3.2). */
function uriTransport(
  network: VmessNetwork,
  params: Map<string, string>,
): { host: string; path: string; headerType: string } {
  const get = (...names: string[]): string => {
    for (const name of names) {
      const value = params.get(name)
      if (value !== undefined) return value
    }
    return ''
  }
  const names = uriFieldNames(network)
  return { host: get(...names.host), path: get(...names.path), headerType: get(...names.headerType) }
}

function fromStandardUri(body: string): VmessLink {
  const hash = body.indexOf('#')
  const remark = hash < 0 ? '' : decodeComponent(body.slice(hash + 1))
  const beforeHash = hash < 0 ? body : body.slice(0, hash)
  const question = beforeHash.indexOf('?')
  const authority = question < 0 ? beforeHash : beforeHash.slice(0, question)
  const params = parseQuery(question < 0 ? '' : beforeHash.slice(question + 1))
  const at = authority.lastIndexOf('@')
  const { address, port } = splitHostPort(authority.slice(at + 1).replace(/\/$/, ''))
  // In the URI, `http` is HTTP/2 (there is no tcp-http spelling besides type=tcp&headerType=http).
  const type = params.get('type') ?? 'tcp'
  const { network } = parseNetwork(type === 'http' ? 'h2' : type, '')
  const transport = uriTransport(network, params)
  return buildLink({
    remark,
    address,
    port,
    id: decodeComponent(authority.slice(0, at)),
    alterId: parseAlterId(params.get('aid') ?? params.get('alterId') ?? ''),
    security: parseSecurity(params.get('encryption') ?? ''),
    network,
    headerType: transport.headerType === '' ? 'none' : transport.headerType,
    host: transport.host,
    path: transport.path,
    tls: parseTls(params.get('security') ?? ''),
    sni: emptyToUndefined(params.get('sni')),
    alpn: emptyToUndefined(params.get('alpn')),
    fingerprint: emptyToUndefined(params.get('fp')),
    allowInsecure: parseFlag(params.get('allowInsecure') ?? params.get('insecure')),
  })
}

/** Shadowrocket: base64(`cipher:uuid@host:port`) then a plain query (peers.md §3.3). */
function fromShadowrocket(decoded: string, query: string): VmessLink {
  const match = /^([^:]*):([^@]+)@(.+)$/.exec(decoded.trim())
  if (match === null) throw invalid('the base64 text is not JSON or cipher:uuid@host:port')
  const { address, port } = splitHostPort(match[3]!)
  const params = parseQuery(query)
  const obfs = (params.get('obfs') ?? 'none').toLowerCase()
  let obfsHost = params.get('obfsParam') ?? ''
  if (obfsHost.startsWith('{')) {
    try {
      const parsed = JSON.parse(obfsHost) as unknown
      obfsHost =
        typeof parsed === 'object' && parsed !== null
          ? jsonField(parsed as Record<string, unknown>, 'Host')
          : ''
    } catch (cause) {
      throw new ProtocolError('LINK_INVALID', 'Cannot read vmess link: obfsParam is not JSON', { cause })
    }
  }
  const transports: Record<string, { network: VmessNetwork; headerType: string }> = {
    none: { network: 'tcp', headerType: 'none' },
    websocket: { network: 'ws', headerType: 'none' },
    ws: { network: 'ws', headerType: 'none' },
    http: { network: 'tcp', headerType: 'http' },
    h2: { network: 'h2', headerType: 'none' },
    grpc: { network: 'grpc', headerType: 'none' },
  }
  const transport = transports[obfs]
  if (transport === undefined) throw invalid(`obfs "${obfs}" is unknown`)
  return buildLink({
    remark: params.get('remarks') ?? '',
    address,
    port,
    id: match[2]!,
    alterId: parseAlterId(params.get('alterId') ?? params.get('aid') ?? ''),
    security: parseSecurity(match[1]!),
    ...transport,
    host: obfsHost,
    path: params.get('path') ?? '',
    tls: parseTls(params.get('tls') ?? ''),
    sni: emptyToUndefined(params.get('peer')),
    alpn: emptyToUndefined(params.get('alpn')),
    fingerprint: emptyToUndefined(params.get('fp')),
    allowInsecure: parseFlag(params.get('allowInsecure')),
  })
}

/** Quantumult: base64(`name = vmess, host, port, cipher, "uuid", key=value, …`) (peers.md §3.3). */
function fromQuantumult(decoded: string): VmessLink {
  const [head, ...rest] = decoded.trim().split(',')
  const positional = rest.slice(0, 4).map((part) => part.trim())
  if (positional.length < 4) throw invalid('the Quantumult line has fewer than 4 fields after "vmess"')
  const [address, port, cipher, quotedId] = positional as [string, string, string, string]
  const options = new Map<string, string>()
  for (const part of rest.slice(4)) {
    const equals = part.indexOf('=')
    if (equals < 0) continue
    options.set(
      part.slice(0, equals).trim().toLowerCase(),
      part
        .slice(equals + 1)
        .trim()
        .replace(/^"|"$/g, ''),
    )
  }
  const obfs = (options.get('obfs') ?? '').toLowerCase()
  const headerLines = (options.get('obfs-header') ?? '').split('[Rr][Nn]')
  const hostLine = headerLines.find((line) => /^host:/i.test(line.trim()))
  return buildLink({
    remark: head!.slice(0, head!.indexOf('=')).trim(),
    address,
    port: parsePort(port),
    id: quotedId.replace(/^"|"$/g, ''),
    alterId: 0,
    security: parseSecurity(cipher),
    network: obfs === 'ws' || obfs === 'wss' ? 'ws' : 'tcp',
    headerType: obfs === 'http' ? 'http' : 'none',
    host: hostLine === undefined ? '' : hostLine.trim().slice('host:'.length).trim(),
    path: options.get('obfs-path') ?? '',
    tls: obfs === 'wss' || parseFlag(options.get('over-tls')) === true,
    sni: emptyToUndefined(options.get('tls-host')),
    alpn: undefined,
    fingerprint: undefined,
    allowInsecure: options.has('certificate') ? options.get('certificate') === '0' : undefined,
  })
}

/**
 * Reads a `vmess://` share link: v2rayN base64 JSON, the standard URI, or the Shadowrocket and
 * Quantumult shapes (peers.md §3). Throws `LINK_INVALID` for anything else.
 * @example
 * const link = parseVmessLink('vmess://b831381d-6324-4d53-ad4f-8cda48b30811@example.com:443?security=tls#demo')
 * link.tls // true
 */
export function parseVmessLink(text: string): VmessLink {
  const trimmed = text.trim()
  if (trimmed.length > MAX_VMESS_LINK_LENGTH) {
    throw invalid(`it is ${trimmed.length} characters long, limit is ${MAX_VMESS_LINK_LENGTH}`)
  }
  if (!/^vmess:\/\//i.test(trimmed)) throw invalid('it does not start with vmess://')
  const body = trimmed.slice('vmess://'.length)
  const end = body.search(/[?#]/)
  const encoded = end < 0 ? body : body.slice(0, end)
  // Base64 has no `@`, so an `@` before the query means the URI form.
  if (encoded.includes('@')) return fromStandardUri(body)
  const decoded = decodeBase64Text(encoded)
  if (decoded.trimStart().startsWith('{')) return fromV2raynJson(decoded)
  if (/^[^=,]*=\s*vmess\s*,/i.test(decoded)) return fromQuantumult(decoded)
  const query = end < 0 ? '' : body.slice(end + 1).replace(/#.*$/, '')
  return fromShadowrocket(decoded, query)
}

export { formatVmessLink, vmessLinkToOutbound } from './share-link-format.js'
