import { ProtocolError } from '../errors.js'
import { classifyHost, parseIpv6, formatIp } from './address.js'
import type { ByteQueue } from './byte-queue.js'
import { MAX_DOMAIN_LENGTH } from './constants.js'

/** Longest request head (request line, headers and the blank line) a proxy reads. */
export const MAX_HTTP_HEAD_BYTES = 16 * 1024
/** Port of an absolute `http://` URI without one. */
export const HTTP_DEFAULT_PORT = 80
/** Realm of the `Proxy-Authenticate` challenge sent with 407. */
export const PROXY_AUTH_REALM = 'tsray'

/** One header field as received: name (case kept) and value (surrounding whitespace removed). */
export type HttpHeader = readonly [name: string, value: string]

/** A proxy request head: a CONNECT or an absolute-URI request. */
export interface HttpProxyRequest {
  readonly method: string
  /** The request-target as received. */
  readonly target: string
  /** `HTTP/1.0` or `HTTP/1.1`. */
  readonly version: string
  readonly headers: HttpHeader[]
  /** IP literal (no brackets) or domain. */
  readonly host: string
  readonly port: number
  readonly isConnect: boolean
  /** Origin-form path and query for the origin server; empty for CONNECT. */
  readonly path: string
}

/** Options of `encodeHttpResponse`. */
export interface HttpResponseOptions {
  /** Reason phrase; defaults to the usual one for the status. */
  readonly reason?: string
  /** Header fields, written after the defaults; one named like a default replaces it. */
  readonly headers?: readonly HttpHeader[]
}

const REASONS: Readonly<Record<number, string>> = {
  200: 'Connection established',
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  407: 'Proxy Authentication Required',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
}

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1')
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const TARGET = /^[\x21-\x7e]+$/
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
const VERSION = /^HTTP\/1\.[01]$/
// The same character rule as docs/protocol.md §5, so a parsed host can go into a VMess header as it is.
const DOMAIN_PATTERN = /^[A-Za-z0-9\-._]+$/
const PORT_PATTERN = /^\d{1,5}$/

function invalid(message: string): ProtocolError {
  return new ProtocolError('HTTP_INVALID', `Cannot read HTTP proxy request: ${message}`)
}

function isTokenByte(byte: number): boolean {
  return TOKEN.test(String.fromCharCode(byte))
}

/** Parses `host[:port]` (IPv6 in brackets); `defaultPort` undefined means the port is required. */
function parseAuthority(text: string, defaultPort: number | undefined): { host: string; port: number } {
  let hostText: string
  let portText: string | undefined
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close < 0) throw invalid(`authority "${text}" has no closing bracket`)
    const v6 = parseIpv6(text.slice(1, close))
    if (v6 === undefined) throw invalid(`authority "${text}" does not hold an IPv6 address`)
    hostText = formatIp(v6)
    const rest = text.slice(close + 1)
    if (rest !== '') {
      if (!rest.startsWith(':')) throw invalid(`authority "${text}" has bytes after the bracket`)
      portText = rest.slice(1)
    }
  } else {
    const colon = text.indexOf(':')
    if (colon !== text.lastIndexOf(':'))
      throw invalid(`authority "${text}" has an IPv6 address without brackets`)
    hostText = colon < 0 ? text : text.slice(0, colon)
    portText = colon < 0 ? undefined : text.slice(colon + 1)
    if (hostText === '' || hostText.length > MAX_DOMAIN_LENGTH || !DOMAIN_PATTERN.test(hostText)) {
      throw invalid(`host "${hostText}" is not valid`)
    }
    // A domain that is an IP literal is that IP (docs/protocol.md §5).
    hostText = classifyHost(hostText).host
  }
  if (portText === undefined || portText === '') {
    if (defaultPort === undefined) throw invalid(`authority "${text}" has no port`)
    return { host: hostText, port: defaultPort }
  }
  const port = Number(portText)
  if (!PORT_PATTERN.test(portText) || port < 1 || port > 0xffff)
    throw invalid(`port "${portText}" is not valid`)
  return { host: hostText, port }
}

/** host and origin-form path of an absolute `http://` URI. */
function parseAbsoluteUri(target: string): { host: string; port: number; path: string } {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(target)
  if (scheme === null) {
    throw new ProtocolError(
      'HTTP_NOT_PROXY_REQUEST',
      `Cannot read HTTP proxy request: target "${target}" is not an absolute URI`,
    )
  }
  if (scheme[1]!.toLowerCase() !== 'http') throw invalid(`scheme "${scheme[1]}" is not supported`)
  const rest = target.slice(scheme[0].length)
  const authorityEnd = rest.search(/[/?#]/)
  let authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd)
  // Userinfo in an http URI is deprecated (RFC 9110 §4.2.4); it is not part of the destination.
  authority = authority.slice(authority.lastIndexOf('@') + 1)
  let path = authorityEnd < 0 ? '' : rest.slice(authorityEnd)
  const hash = path.indexOf('#')
  if (hash >= 0) path = path.slice(0, hash)
  if (!path.startsWith('/')) path = `/${path}`
  return { ...parseAuthority(authority, HTTP_DEFAULT_PORT), path }
}

function parseHeaderLine(line: string): HttpHeader {
  const colon = line.indexOf(':')
  if (colon <= 0) {
    // Also refuses obsolete line folding (a line starting with whitespace), as RFC 9112 §5.2 allows.
    throw invalid(`header line "${line.slice(0, 64)}" has no field name`)
  }
  const name = line.slice(0, colon)
  const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')
  if (!TOKEN.test(name)) throw invalid(`header name "${name.slice(0, 64)}" is not a token`)
  if (!FIELD_VALUE.test(value)) throw invalid(`header "${name}" has a control character in its value`)
  return [name, value]
}

/**
 * Parses a proxy request head, or returns undefined until CRLF CRLF has arrived. Consumes only the head:
 * what follows (a body, or the first tunnel bytes after CONNECT) stays in `queue`.
 * @example
 * const request = parseHttpProxyRequest(queue)
 * if (request?.isConnect) socket.write(encodeHttpResponse(200))
 */
export function parseHttpProxyRequest(queue: ByteQueue): HttpProxyRequest | undefined {
  if (queue.length === 0) return undefined
  // Fail fast on bytes that cannot start a method, e.g. a TLS ClientHello sent to the HTTP port.
  if (!isTokenByte(queue.byteAt(0))) throw invalid(`first byte is 0x${queue.byteAt(0).toString(16)}`)
  // Resume the search for the end of the head where the last call on this queue stopped, so a head
  // arriving in many reads is searched once (linear), not from its start on every read.
  const scan = headScans.get(queue)
  const from = scan !== undefined && scan.removed === queue.removed ? Math.max(0, scan.searched - 3) : 0
  const found = queue.indexOf(HEAD_END, from)
  const end = found >= 0 && found + HEAD_END.length <= MAX_HTTP_HEAD_BYTES ? found : -1
  if (end < 0) {
    if (queue.length >= MAX_HTTP_HEAD_BYTES) {
      headScans.delete(queue)
      throw new ProtocolError(
        'HTTP_HEAD_TOO_LARGE',
        `Cannot read HTTP proxy request: no end of head in ${MAX_HTTP_HEAD_BYTES} bytes, limit is ${MAX_HTTP_HEAD_BYTES}`,
      )
    }
    headScans.set(queue, { removed: queue.removed, searched: queue.length })
    return undefined
  }
  headScans.delete(queue)
  const lines = queue.peek(end).toString('latin1').split('\r\n')
  const requestLine = lines[0]!
  const parts = requestLine.split(' ')
  if (parts.length !== 3) throw invalid(`request line "${requestLine.slice(0, 64)}" does not have 3 parts`)
  const [method, target, version] = parts as [string, string, string]
  if (!TOKEN.test(method)) throw invalid(`method "${method.slice(0, 64)}" is not a token`)
  if (!TARGET.test(target)) throw invalid('request target has a control or non-ASCII character')
  if (!VERSION.test(version)) throw invalid(`version "${version.slice(0, 16)}" is not HTTP/1.0 or HTTP/1.1`)
  const headers = lines.slice(1).map(parseHeaderLine)
  const isConnect = method === 'CONNECT'
  const destination = isConnect
    ? { ...parseAuthority(target, undefined), path: '' }
    : parseAbsoluteUri(target)
  queue.skip(end + HEAD_END.length)
  return { method, target, version, headers, isConnect, ...destination }
}

/** How far the search for the end of a head got in a queue, and the queue's `removed` count then. */
const headScans = new WeakMap<ByteQueue, { readonly removed: number; readonly searched: number }>()

/** The value of the first header named `name` (case-insensitive), or undefined. */
export function findHttpHeader(headers: readonly HttpHeader[], name: string): string | undefined {
  const lower = name.toLowerCase()
  return headers.find(([key]) => key.toLowerCase() === lower)?.[1]
}

// Hop-by-hop fields a proxy must not forward (RFC 9110 §7.6.1). Transfer-Encoding and Trailer stay:
// the body is relayed byte for byte, so its framing must reach the origin unchanged.
const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'upgrade',
])
// Never dropped even when Connection lists them: losing the body framing invites request smuggling.
const FRAMING = new Set(['transfer-encoding', 'content-length', 'host'])

/**
 * The head to send to the origin server for an absolute-URI request: origin-form target, Host from
 * the URI (RFC 9112 §3.2.2), hop-by-hop fields removed, and `Connection: close`, because the bytes
 * after the head are relayed as they are, one request per connection. An upgrade the client asked
 * for (`Connection: upgrade` with `Upgrade`) is kept.
 */
export function encodeForwardedRequestHead(request: HttpProxyRequest): Buffer {
  if (request.isConnect) {
    throw new ProtocolError('HTTP_INVALID', 'Cannot encode forwarded request: a CONNECT request is tunnelled')
  }
  const listed = new Set<string>()
  for (const [name, value] of request.headers) {
    const lower = name.toLowerCase()
    if (lower !== 'connection' && lower !== 'proxy-connection') continue
    for (const token of value.split(',')) listed.add(token.trim().toLowerCase())
  }
  const upgrade = findHttpHeader(request.headers, 'upgrade')
  const upgrading = listed.has('upgrade') && upgrade !== undefined
  const hostValue = request.host.includes(':') ? `[${request.host}]` : request.host
  const authority = request.port === HTTP_DEFAULT_PORT ? hostValue : `${hostValue}:${request.port}`
  const lines = [`${request.method} ${request.path} ${request.version}`, `Host: ${authority}`]
  for (const [name, value] of request.headers) {
    const lower = name.toLowerCase()
    if (lower === 'host' || HOP_BY_HOP.has(lower) || (listed.has(lower) && !FRAMING.has(lower))) continue
    lines.push(`${name}: ${value}`)
  }
  if (upgrading) lines.push(`Upgrade: ${upgrade}`, 'Connection: Upgrade')
  else lines.push('Connection: close')
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
}

/** The Basic credentials of a `Proxy-Authorization` header, or undefined when absent or malformed. */
export function parseProxyAuthorization(
  headers: readonly HttpHeader[],
): { user: string; pass: string } | undefined {
  const value = findHttpHeader(headers, 'proxy-authorization')
  if (value === undefined) return undefined
  const match = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(value)
  if (match === null) return undefined
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  return { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) }
}

/**
 * A status response head. 2xx responses get no extra fields (a CONNECT success must not carry a body
 * length, RFC 9110 §9.3.6); others get `Content-Length: 0` and `Connection: close`, and 407 a Basic
 * challenge.
 * @example
 * socket.end(encodeHttpResponse(407))
 */
export function encodeHttpResponse(status: number, options?: HttpResponseOptions): Buffer {
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new ProtocolError('HTTP_INVALID', `Cannot encode HTTP response: status ${status} is not valid`)
  }
  const reason = options?.reason ?? REASONS[status] ?? 'Unknown'
  const extra = options?.headers ?? []
  const defaults: HttpHeader[] = []
  if (status === 407) defaults.push(['Proxy-Authenticate', `Basic realm="${PROXY_AUTH_REALM}"`])
  if (status < 200 || status >= 300) defaults.push(['Content-Length', '0'], ['Connection', 'close'])
  // A field the caller gives replaces the default of the same name.
  const headers = [...defaults.filter(([name]) => findHttpHeader(extra, name) === undefined), ...extra]
  if (!FIELD_VALUE.test(reason)) {
    throw new ProtocolError('HTTP_INVALID', 'Cannot encode HTTP response: reason has a control character')
  }
  const lines = [`HTTP/1.1 ${status} ${reason}`]
  for (const [name, value] of headers) {
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) {
      throw new ProtocolError('HTTP_INVALID', `Cannot encode HTTP response: header "${name}" is not valid`)
    }
    lines.push(`${name}: ${value}`)
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
}
