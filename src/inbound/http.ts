import {
  createServer,
  type IncomingMessage,
  request as httpRequest,
  type RequestOptions,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { encodeHttpResponse, type HttpHeader, parseProxyAuthorization } from '../protocol/http-proxy.js'
import { admit, logAdmissionRefusal, peerOf } from './admission.js'
import { closeGracefully } from './close.js'
import { dialFor, type ProxyInboundOptions, relaySocket, sourceOf } from './common.js'
import { closeServer, listenServer } from '../transport/tcp.js'
import { HTTP_INBOUND_IDLE_MS } from '../budgets.js'

/** HTTP proxy inbound settings (V2Ray's `http` inbound). */
export interface HttpInboundOptions extends ProxyInboundOptions {
  /** user → password; empty means no authentication. */
  readonly accounts: ReadonlyMap<string, string>
}

/** Most bytes of request head Node's parser accepts for one request. */
export const MAX_HTTP_HEADER_BYTES = 16 * 1024

// Hop-by-hop fields are for this proxy only (RFC 9110 §7.6.1).
const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

function statusForDialError(error: unknown): number {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : ''
  return code === 'ETIMEDOUT' ? 504 : 502
}

/**
 * An HTTP proxy: CONNECT tunnels, and absolute-URI requests forwarded with keep-alive towards the
 * client (node:http parses and frames both sides; each request gets its own outbound connection).
 */
export class HttpInbound {
  readonly #options: HttpInboundOptions
  readonly #server: Server
  readonly #connections = new Set<Socket>()

  constructor(options: HttpInboundOptions) {
    this.#options = options
    this.#server = createServer({
      maxHeaderSize: MAX_HTTP_HEADER_BYTES,
      // The head must come within the handshake timeout; a body may take as long as it keeps moving
      // (an upload of minutes): the socket's idle limit below cuts one that stalls.
      requestTimeout: 0,
      headersTimeout: options.handshakeTimeoutMs,
      keepAliveTimeout: HTTP_INBOUND_IDLE_MS,
    })
    this.#server.timeout = options.timeouts.connIdleMs
    // Runs before node:http's own listener: a connection over the limits is closed before any byte is read.
    const admitted = admit(
      options.admission,
      () => undefined,
      (peer) => logAdmissionRefusal(options.logger, peer),
      (socket) => socket.destroy(),
    )
    this.#server.prependListener('connection', (socket: Socket) => admitted(socket, peerOf(socket)))
    this.#server.on('connection', (socket: Socket) => {
      this.#connections.add(socket)
      socket.setNoDelay(true)
      socket.on('close', () => this.#connections.delete(socket))
    })
    this.#server.on('clientError', (_error, socket: Duplex) => {
      if (socket.writable) socket.end(encodeHttpResponse(400))
      else socket.destroy()
    })
    this.#server.on('connect', (request: IncomingMessage, socket: Socket, head: Buffer) =>
      this.#tunnel(request, socket, head),
    )
    this.#server.on('request', (request: IncomingMessage, response: ServerResponse) =>
      this.#forward(request, response),
    )
  }

  listen(): Promise<number> {
    return listenServer(this.#server, this.#options.listen, this.#options.port)
  }

  close(graceMs: number): Promise<void> {
    return closeServer(this.#server, this.#connections, graceMs)
  }

  /** The authenticated user ('' without accounts), or undefined when credentials are missing or wrong. */
  #authenticate(request: IncomingMessage): string | undefined {
    if (this.#options.accounts.size === 0) return ''
    const headers: HttpHeader[] = []
    for (let i = 0; i + 1 < request.rawHeaders.length; i += 2)
      headers.push([request.rawHeaders[i]!, request.rawHeaders[i + 1]!])
    const credentials = parseProxyAuthorization(headers)
    if (credentials === undefined || this.#options.accounts.get(credentials.user) !== credentials.pass)
      return undefined
    return credentials.user
  }

  #tunnel(request: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy())
    const user = this.#authenticate(request)
    if (user === undefined) {
      socket.write(encodeHttpResponse(407))
      closeGracefully(socket)
      return
    }
    let url: URL
    try {
      url = new URL(`http://${request.url ?? ''}`)
      if (url.port === '') throw new Error('no port')
    } catch {
      socket.write(encodeHttpResponse(400))
      closeGracefully(socket)
      return
    }
    const destination = { network: 'tcp' as const, host: stripBrackets(url.hostname), port: Number(url.port) }
    const context = { inboundTag: this.#options.tag, source: sourceOf(socket), user }
    socket.pause()
    dialFor(this.#options, destination, context).then(
      (target) => {
        if (socket.destroyed) {
          target.destroy()
          return
        }
        socket.write('HTTP/1.1 200 Connection established\r\n\r\n')
        socket.resume()
        void relaySocket(socket, head.length > 0 ? [head] : [], target, this.#options.timeouts)
      },
      (error: unknown) => {
        socket.write(encodeHttpResponse(statusForDialError(error)))
        closeGracefully(socket)
      },
    )
  }

  #forward(request: IncomingMessage, response: ServerResponse): void {
    const user = this.#authenticate(request)
    if (user === undefined) {
      response.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="tsray"', 'Content-Length': '0' }).end()
      return
    }
    let url: URL
    try {
      url = new URL(request.url ?? '')
      if (url.protocol !== 'http:') throw new Error('not http')
    } catch {
      response.writeHead(400, { 'Content-Length': '0', Connection: 'close' }).end()
      return
    }
    const destination = {
      network: 'tcp' as const,
      host: stripBrackets(url.hostname),
      port: Number(url.port || 80),
    }
    const socket = request.socket
    const context = { inboundTag: this.#options.tag, source: sourceOf(socket), user }
    const headers: [string, string][] = []
    for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
      const name = request.rawHeaders[i]!
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push([name, request.rawHeaders[i + 1]!])
    }
    const chunked = request.headers['transfer-encoding'] !== undefined
    if (chunked) headers.push(['Transfer-Encoding', 'chunked'])
    headers.push(['Connection', 'close'])
    const upstream = httpRequest({
      method: request.method ?? 'GET',
      path: `${url.pathname}${url.search}`,
      headers: headers.flat(),
      setHost: false,
      // The outbound stream stands in for the socket; node:http only needs a Duplex.
      createConnection: (_options, done) => {
        dialFor(this.#options, destination, context).then(
          (target) => done(null, target as Socket),
          (error: unknown) => done(error as Error, undefined as unknown as Socket),
        )
        return undefined
      },
    } satisfies RequestOptions)
    upstream.on('response', (upstreamResponse) => {
      const responseHeaders: string[] = []
      for (let i = 0; i + 1 < upstreamResponse.rawHeaders.length; i += 2) {
        const name = upstreamResponse.rawHeaders[i]!
        if (!HOP_BY_HOP.has(name.toLowerCase()))
          responseHeaders.push(name, upstreamResponse.rawHeaders[i + 1]!)
      }
      upstreamResponse.on('error', () => response.destroy())
      // A target's status line and fields reach Node's writer, which throws on what it would not send
      // itself (a control character in the reason, a bad field value): answer 502 instead.
      const reason = upstreamResponse.statusMessage ?? ''
      try {
        response.writeHead(
          upstreamResponse.statusCode ?? 502,
          VALID_REASON.test(reason) ? reason : undefined,
          responseHeaders,
        )
      } catch {
        upstreamResponse.destroy()
        if (!response.headersSent) {
          response.removeHeader('Content-Length')
          response.writeHead(502, { 'Content-Length': '0', Connection: 'close' }).end()
        } else response.destroy()
        return
      }
      upstreamResponse.pipe(response)
    })
    // A 101 to a request that asked for no upgrade (Upgrade is hop-by-hop, never forwarded): a bad gateway.
    upstream.on('upgrade', (_upgradeResponse, upgradeSocket: Duplex) => {
      upgradeSocket.destroy()
      if (!response.headersSent) response.writeHead(502, { 'Content-Length': '0', Connection: 'close' }).end()
      else response.destroy()
    })
    upstream.on('error', (error) => {
      if (!response.headersSent) {
        response.writeHead(statusForDialError(error), { 'Content-Length': '0', Connection: 'close' }).end()
      } else {
        response.destroy()
      }
    })
    request.pipe(upstream)
    response.on('close', () => upstream.destroy())
  }
}

/** A reason phrase Node writes as is (RFC 9112 §4: HTAB, SP, VCHAR, obs-text). */
const VALID_REASON = /^[\t\x20-\x7e\x80-\xff]*$/

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}
