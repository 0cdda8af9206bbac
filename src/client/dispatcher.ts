import { isIP, type Socket } from 'node:net'
import { connect as connectTls, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { Agent, type buildConnector } from 'undici'
import type { VmessOutbound } from '../outbound/vmess.js'
import { openTunnel } from './connect.js'
import { createVmessClient, type VmessClientOptions, type VmessServer } from './server-options.js'
import { asSocket } from './tunnel-socket.js'

/** Options of VmessDispatcher: undici Agent's (timeouts, pool sizes …) without `connect`, plus TLS and VMess. */
export interface VmessDispatcherOptions extends Omit<Agent.Options, 'connect'>, VmessClientOptions {
  /** TLS options for https targets (`ca`, `rejectUnauthorized`, `servername` …), as undici's ProxyAgent `requestTls`. */
  readonly requestTls?: ConnectionOptions
}

/** Dials one connection for undici: a tunnel, with TLS over it for https. */
function createConnector(client: VmessOutbound, requestTls: ConnectionOptions): buildConnector.connector {
  return (options, callback) => {
    const host = options.hostname
    const secure = options.protocol === 'https:'
    const port = Number(options.port === '' ? (secure ? 443 : 80) : options.port)
    openTunnel(client, { host, port }).then(
      (tunnel) => {
        if (!secure) {
          callback(null, asSocket(tunnel) as unknown as Socket)
          return
        }
        // SNI carries names only (RFC 6066 §3); an IP address target is checked against the certificate's IPs.
        const servername =
          requestTls.servername ?? options.servername ?? (isIP(host) === 0 ? host : undefined)
        const tls: TLSSocket = connectTls({
          ...requestTls,
          host,
          socket: tunnel,
          ...(servername === undefined ? {} : { servername }),
          ALPNProtocols: ['http/1.1'],
        })
        const onError = (error: Error): void => {
          tls.destroy()
          callback(error, null)
        }
        tunnel.on('error', (error) => tls.destroy(error))
        tls.once('error', onError)
        tls.once('secureConnect', () => {
          tls.off('error', onError)
          callback(null, tls)
        })
      },
      (error: Error) => callback(error, null),
    )
  }
}

/**
 * An undici dispatcher that sends every request through a VMess server: pass it to `fetch` (Node's global
 * one or undici's) or to undici's `request`. https targets get TLS end to end over the tunnel, checked
 * against `requestTls` (the system CAs when absent). Connections are pooled and kept alive per origin as
 * undici's Agent does.
 * @example
 * ```ts
 * import { VmessDispatcher } from 'tsray'
 *
 * const dispatcher = new VmessDispatcher('vmess://…')
 * const response = await fetch('https://example.com/', { dispatcher })
 * console.log(response.status, (await response.text()).length)
 * await dispatcher.close()
 * ```
 */
export class VmessDispatcher extends Agent {
  constructor(server: VmessServer, options: VmessDispatcherOptions = {}) {
    const { requestTls, connectTimeoutMs, onWarning, ...agentOptions } = options
    const client = createVmessClient(server, {
      ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
      ...(onWarning !== undefined ? { onWarning } : {}),
    })
    super({ ...agentOptions, connect: createConnector(client, requestTls ?? {}) })
  }
}
