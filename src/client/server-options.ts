// A VMess server named by a share link or by options → a VmessOutbound the library's connect(), agent and
// dispatcher share. The link and the options both become a V2Ray v4 outbound, checked by the same config
// validator that `tsray run` uses, so a link or a streamSettings tsray cannot run is refused here, not later.
import type { Socket } from 'node:net'
import { validateConfig } from '../config/load.js'
import type { VmessOutboundConfig } from '../config/schema.js'
import { parseVmessLink, vmessLinkToOutbound } from '../config/share-link.js'
import { ConfigError } from '../errors.js'
import { VmessOutbound } from '../outbound/vmess.js'
import type { SecurityName } from '../protocol/constants.js'
import { createUser } from '../protocol/user.js'
import { createStreamDialer } from '../transport/stream-settings.js'
import type { StreamDialer } from '../transport/transport.js'

/** How long the library waits for the transport to a VMess server (TCP, TLS, WebSocket handshake). */
export const LIBRARY_CONNECT_TIMEOUT_MS = 10_000

/**
 * A VMess server as options: the fields of a V2Ray outbound's `vnext[0]` and its user, plus `streamSettings`.
 * @example
 * A WebSocket + TLS server:
 * ```ts
 * import type { VmessServerOptions } from 'tsray'
 *
 * const server: VmessServerOptions = {
 *   address: 'proxy.example.com',
 *   port: 443,
 *   id: 'b831381d-6324-4d53-ad4f-8cda48b30811',
 *   streamSettings: { network: 'ws', security: 'tls', wsSettings: { path: '/ray' } },
 * }
 * ```
 */
export interface VmessServerOptions {
  /** Host name or IP address of the server. */
  readonly address: string
  readonly port: number
  /** The user's UUID (or a short string, mapped to a UUIDv5 as Xray does). */
  readonly id: string
  /** 0 (default): the AEAD header. Above 0: the legacy header, as V2Ray 4.34 sends it. */
  readonly alterId?: number
  /** Body security; `auto` (default) picks AES-128-GCM or ChaCha20-Poly1305 as V2Ray does. */
  readonly security?: SecurityName
  /**
   * The transport as V2Ray v4 JSON `streamSettings`, for example
   * `{ network: 'ws', security: 'tls', wsSettings: { path: '/ray' }, tlsSettings: { serverName: 'example.com' } }`.
   * Plain TCP when absent.
   */
  readonly streamSettings?: Readonly<Record<string, unknown>>
}

/** A VMess server: a `vmess://` link (v2rayN base64 JSON or the standard URI) or options. */
export type VmessServer = string | VmessServerOptions

/** Options shared by connect(), VmessAgent and VmessDispatcher for the VMess side. */
export interface VmessClientOptions {
  /** Transport connect timeout in ms (LIBRARY_CONNECT_TIMEOUT_MS when absent). */
  readonly connectTimeoutMs?: number
  /** Receives the config validator's warnings (ignored keys); Node's process.emitWarning when absent. */
  readonly onWarning?: (message: string) => void
}

function outboundJsonOf(server: VmessServer): unknown {
  if (typeof server === 'string') return vmessLinkToOutbound(parseVmessLink(server.trim()))
  return {
    protocol: 'vmess',
    settings: {
      vnext: [
        {
          address: server.address,
          port: server.port,
          users: [{ id: server.id, alterId: server.alterId ?? 0, security: server.security ?? 'auto' }],
        },
      ],
    },
    ...(server.streamSettings === undefined ? {} : { streamSettings: server.streamSettings }),
  }
}

/** Validates `server` as a V2Ray v4 outbound; a refused value throws a ConfigError naming the field. */
export function resolveVmessServer(
  server: VmessServer,
  options: Pick<VmessClientOptions, 'onWarning'> = {},
): VmessOutboundConfig {
  const what = typeof server === 'string' ? 'link' : 'options'
  let outbound: unknown
  try {
    const { config, warnings } = validateConfig({ outbounds: [outboundJsonOf(server)] }, { env: {} })
    const warn = options.onWarning ?? ((message: string) => process.emitWarning(message, 'TsrayWarning'))
    // The outbound is checked inside a config of its own, whose lack of inbounds is no concern here.
    for (const warning of warnings)
      if (!warning.startsWith('inbounds:')) warn(`VMess server ${what}: ${warning}`)
    outbound = config.outbounds[0]
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause)
    throw new ConfigError('', `Cannot use the VMess server ${what}: ${message}`, { cause })
  }
  return outbound as VmessOutboundConfig
}

/**
 * A dialer that settles once the transport is up, so that a server that cannot be reached rejects the
 * connect() promise (or fails undici's connect) instead of erroring the stream later. The outbound names
 * the server in the error it makes of a failure here.
 */
function dialerUntilConnected(dial: StreamDialer): StreamDialer {
  return async (host, port) => {
    const stream = await dial(host, port)
    if ((stream as Partial<Socket>).connecting !== true) return stream
    await new Promise<void>((resolve, reject) => {
      const onError = (cause: Error): void => {
        stream.off('connect', onConnect)
        reject(cause)
      }
      const onConnect = (): void => {
        stream.off('error', onError)
        resolve()
      }
      stream.once('error', onError)
      stream.once('connect', onConnect)
    })
    return stream
  }
}

/** The VmessOutbound for a server, its transport dialled and waited for before the VMess header leaves. */
export function createVmessClient(server: VmessServer, options: VmessClientOptions = {}): VmessOutbound {
  const config = resolveVmessServer(server, options)
  const timeoutMs = options.connectTimeoutMs ?? LIBRARY_CONNECT_TIMEOUT_MS
  const vnext = config.settings.vnext[0]!
  const user = vnext.users[0]!
  return new VmessOutbound({
    tag: 'library',
    connectTimeoutMs: timeoutMs,
    dial: dialerUntilConnected(createStreamDialer(config.stream, { connectTimeoutMs: timeoutMs })),
    ...(config.settings.maxChunkLength !== undefined
      ? { maxChunkLength: config.settings.maxChunkLength }
      : {}),
    server: {
      host: vnext.address,
      port: vnext.port,
      user: createUser({ id: user.id, alterId: user.alterId, level: user.level }),
      legacy: user.alterId > 0,
      security: user.security,
    },
  })
}
