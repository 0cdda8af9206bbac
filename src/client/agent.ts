import { Agent as HttpAgent, type AgentOptions, type ClientRequest, type ClientRequestArgs } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { isIP } from 'node:net'
import type { Duplex } from 'node:stream'
import { connect as connectTls, type ConnectionOptions } from 'node:tls'
import type { VmessOutbound } from '../outbound/vmess.js'
import { openTunnel } from './connect.js'
import { createVmessClient, type VmessClientOptions, type VmessServer } from './server-options.js'
import { asSocket } from './tunnel-socket.js'

/** How long a kept-alive tunnel waits unused in the pool when the agent has no `timeout` (Node's own default). */
export const FREE_TUNNEL_TIMEOUT_MS = 5_000

/** Options of VmessAgent: http.Agent's (keepAlive, maxSockets, timeout …) plus the VMess client's. */
export interface VmessAgentOptions extends AgentOptions, VmessClientOptions {}

/** What http/https hand to an agent: the request's options, TLS ones included for an https request. */
type AgentRequestOptions = ClientRequestArgs &
  ConnectionOptions & { readonly _defaultAgent?: { readonly protocol?: string }; readonly href?: string }

function isSecure(options: AgentRequestOptions): boolean {
  // https.request passes its own global agent as the default; a URL passes the protocol.
  return (options.protocol ?? options._defaultAgent?.protocol) === 'https:'
}

/**
 * The target port of a request. http's ClientRequest fills an absent port with this agent's
 * `defaultPort` (80) even for https, so the URL's own port decides where there is one, and a secure
 * request without it goes to 443.
 */
export function requestPortOf(
  request: ClientRequestArgs & { readonly href?: string },
  secure: boolean,
): number {
  const standard = secure ? 443 : 80
  if (request.href !== undefined) {
    const written = new URL(request.href).port
    return written === '' ? standard : Number(written)
  }
  const port = Number(request.port ?? 0)
  return port === 0 || (secure && port === 80) ? standard : port
}

/** The TLS options of a request that reach tls.connect (https.Agent passes the same ones). */
const TLS_OPTION_NAMES = [
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'ciphers',
  'crl',
  'ecdhCurve',
  'honorCipherOrder',
  'minVersion',
  'maxVersion',
  'rejectUnauthorized',
  'secureOptions',
  'secureProtocol',
  'sigalgs',
  'session',
  'checkServerIdentity',
] as const

function tlsOptionsOf(request: AgentRequestOptions): ConnectionOptions {
  const options: Record<string, unknown> = {}
  for (const name of TLS_OPTION_NAMES) if (request[name] !== undefined) options[name] = request[name]
  return options
}

/**
 * An `http.Agent` that sends every request through a VMess server, for `http` and `https` alike (for https,
 * TLS runs end to end over the tunnel and honours the request's `servername`, `ca`, `rejectUnauthorized` …).
 * With `keepAlive: true` a tunnel carries several requests to the same origin, one after the other.
 * @example
 * ```ts
 * import https from 'node:https'
 * import { VmessAgent } from 'tsray'
 *
 * const agent = new VmessAgent('vmess://…', { keepAlive: true })
 * https.get('https://example.com/', { agent }, (response) => {
 *   console.log(response.statusCode)
 *   response.resume()
 *   response.on('end', () => agent.destroy())
 * })
 * ```
 */
export class VmessAgent extends HttpAgent {
  readonly #client: VmessOutbound
  readonly #freeTimers = new WeakMap<Duplex, NodeJS.Timeout>()
  readonly #freeTimeoutMs: number

  constructor(server: VmessServer, options: VmessAgentOptions = {}) {
    super(options)
    this.#client = createVmessClient(server, options)
    this.#freeTimeoutMs = options.timeout ?? FREE_TUNNEL_TIMEOUT_MS
    // http and https both check a request's protocol against the agent's; with none set, each request
    // keeps its own (this agent serves both).
    Object.defineProperty(this, 'protocol', { value: undefined, writable: true })
  }

  /** A pool key per origin and scheme, with the TLS options of an https request (as https.Agent keys them). */
  override getName(options: ClientRequestArgs = {}): string {
    const request = options as AgentRequestOptions
    if (!isSecure(request)) return `http:${super.getName(options)}`
    return `https:${HttpsAgent.prototype.getName.call(this, options)}`
  }

  override createConnection(
    options: ClientRequestArgs,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): undefined {
    const request = options as AgentRequestOptions
    const secure = isSecure(request)
    const host = request.hostname ?? request.host ?? 'localhost'
    const port = requestPortOf(request, secure)
    const done = callback ?? (() => undefined)
    openTunnel(this.#client, { host, port, signal: request.signal }).then(
      (tunnel) => {
        if (!secure) {
          done(null, asSocket(tunnel))
          return
        }
        const servername = request.servername ?? (isIP(host) === 0 ? host : undefined)
        const tls = connectTls({
          ...tlsOptionsOf(request),
          host,
          port,
          socket: tunnel,
          ...(servername === undefined ? {} : { servername }),
          ALPNProtocols: ['http/1.1'],
        })
        tunnel.on('error', (error) => tls.destroy(error))
        done(null, tls)
      },
      (error: Error) => done(error, undefined as unknown as Duplex),
    )
    return undefined
  }

  /** Keeps a finished tunnel for the next request, closed after `timeout` ms unused (FREE_TUNNEL_TIMEOUT_MS). */
  override keepSocketAlive(socket: Duplex): boolean {
    const timer = setTimeout(() => socket.destroy(), this.#freeTimeoutMs)
    timer.unref()
    this.#freeTimers.set(socket, timer)
    return true
  }

  override reuseSocket(socket: Duplex, request: ClientRequest): void {
    clearTimeout(this.#freeTimers.get(socket))
    this.#freeTimers.delete(socket)
    super.reuseSocket(socket, request)
  }
}
