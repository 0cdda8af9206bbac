// `streamSettings` → a listening StreamServer or a StreamDialer: the one switch on transport and security names.
// Security wraps the TCP connection (TLS), the network runs on top (raw TCP with an optional HTTP header,
// WebSocket, HTTPUpgrade, or a stream of an HTTP/2 session: h2 and gRPC), and whoever uses the result sees a
// plain Duplex of bytes.
import type { StreamConfig, StreamSecurityConfig } from '../config/types.js'
import { createServer as createNetServer, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { TransportError } from '../errors.js'
import type { Logger } from '../types.js'
import { createGrpcDialer, createGrpcStreamHandler } from './grpc.js'
import { createH2Dialer, createH2StreamHandler } from './h2.js'
import { createHttp2Acceptor, Http2SessionPool } from './h2-session.js'
import { acceptHttpHeaderStream, wrapHttpHeaderClient } from './http-header.js'
import { acceptHttpUpgrade, createHttpUpgradeDialer } from './httpupgrade.js'
import { closeServer, connectTcpEagerly, dialTcp, listenServer, trackConnection } from './tcp.js'
import { createTlsDialer, createTlsSocketServer, defaultAlpn, type TlsSettings } from './tls.js'
import type { PeerInfo, StreamDialer, StreamHandler, StreamServer } from './transport.js'
import { createWebSocketAcceptor, createWebSocketDialer } from './websocket.js'

/** The security layer of a stream: none, or TLS with its settings. */
export type StreamSecuritySettings = StreamSecurityConfig

/** A normalised `streamSettings` (config/types.ts). Plain TCP is `{ network: 'tcp', security: 'none' }`. */
export type StreamSettings = StreamConfig

/** Where and how an inbound listens. */
export interface StreamServerOptions {
  readonly listen: string
  readonly port: number
  readonly onStream: StreamHandler
  readonly logger?: Logger
}

type SocketHandler = (socket: Socket, peer: PeerInfo) => void

function tlsOf(settings: StreamSettings): TlsSettings | undefined {
  if (settings.security === 'none') return undefined
  if (settings.tls === undefined) {
    throw new TransportError(
      'TLS_SETTINGS_MISSING',
      'Cannot use TLS: security is "tls" but no tlsSettings were given',
    )
  }
  return settings.tls
}

/** What runs on each accepted connection once its security layer is up. */
function networkHandler(settings: StreamSettings, options: StreamServerOptions): SocketHandler {
  const { onStream, logger } = options
  const common = { onStream, ...(logger !== undefined ? { logger } : {}) }
  switch (settings.network) {
    case 'tcp': {
      const header = settings.httpHeader
      if (header === undefined) return onStream
      return (socket, peer) => acceptHttpHeaderStream(socket, peer, { settings: header, ...common })
    }
    case 'ws':
      return createWebSocketAcceptor(settings.ws, common)
    case 'httpupgrade': {
      const upgrade = settings.httpUpgrade
      return (socket, peer) => acceptHttpUpgrade(socket, peer, { settings: upgrade, ...common })
    }
    case 'h2':
      return createHttp2Acceptor({ ...common, onStream: createH2StreamHandler(settings.h2, common) })
    case 'grpc':
      return createHttp2Acceptor({ ...common, onStream: createGrpcStreamHandler(settings.grpc, common) })
  }
}

/**
 * A server for `streamSettings`: TCP or TLS, then raw bytes, HTTP header obfuscation, WebSocket or
 * HTTPUpgrade; each stream reaches `onStream` with an `error` listener on it. Certificate files are read by
 * `listen()`, which rejects with a TransportError when one is missing.
 * @example
 * const server = createStreamServer(inbound.stream, { listen: '0.0.0.0', port: 443, onStream: (s, peer) => vmess.accept(s, peer) })
 * await server.listen()
 */
export function createStreamServer(settings: StreamSettings, options: StreamServerOptions): StreamServer {
  const onSocket = networkHandler(settings, options)
  const tls = tlsOf(settings)
  const connections = new Set<Duplex>()
  let server: Server | undefined
  return {
    listen: async () => {
      server =
        tls === undefined
          ? createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
              trackConnection(connections, socket)
              socket.on('error', () => socket.destroy())
              onSocket(socket, {
                remoteAddress: socket.remoteAddress ?? '',
                remotePort: socket.remotePort ?? 0,
              })
            })
          : createTlsSocketServer(tls, {
              alpn: defaultAlpn(settings.network),
              onSocket,
              onConnection: (socket) => trackConnection(connections, socket),
              ...(options.logger !== undefined ? { logger: options.logger } : {}),
            })
      return listenServer(server, options.listen, options.port)
    },
    close: (graceMs) =>
      server === undefined ? Promise.resolve() : closeServer(server, connections, graceMs),
  }
}

/**
 * A dialer for `streamSettings`: TCP or TLS to the server, then the network's handshake; it resolves with a
 * Duplex of bytes (or, with early data, at once, connecting at the first write).
 * @example
 * const outbound = new VmessOutbound({ tag, server, connectTimeoutMs, dial: createStreamDialer(stream, { connectTimeoutMs }) })
 */
export function createStreamDialer(
  settings: StreamSettings,
  options: {
    connectTimeoutMs: number
    /** The local address to connect from (`sendThrough`). */ localAddress?: string
  },
): StreamDialer {
  const timeoutMs = options.connectTimeoutMs
  const localAddress = options.localAddress
  const local = localAddress !== undefined ? { localAddress } : {}
  const tls = tlsOf(settings)
  const overHttp2 = settings.network === 'h2' || settings.network === 'grpc'
  const dialSocket: (host: string, port: number) => Promise<Socket> =
    tls === undefined
      ? (host, port) => dialTcp(host, port, { timeoutMs, ...local })
      : // HTTP/2 needs the server to choose h2, whatever else the config offers (Go's http2 transport does the same).
        createTlsDialer(overHttp2 ? { ...tls, alpn: ['h2'] } : tls, {
          alpn: defaultAlpn(settings.network),
          timeoutMs,
          ...local,
        })
  switch (settings.network) {
    case 'tcp': {
      const header = settings.httpHeader
      // Plain TCP needs no handshake of its own: the socket is handed over while it connects.
      if (header === undefined && tls === undefined)
        return (host, port) => connectTcpEagerly(host, port, { timeoutMs, ...local })
      if (header === undefined) return dialSocket
      return async (host, port) => wrapHttpHeaderClient(await dialSocket(host, port), header)
    }
    case 'ws':
      return createWebSocketDialer(settings.ws, { dialSocket, secure: tls !== undefined, timeoutMs })
    case 'httpupgrade':
      return createHttpUpgradeDialer(settings.httpUpgrade, {
        dialSocket,
        serverName: tls?.serverName,
        timeoutMs,
      })
    case 'h2': {
      const pool = new Http2SessionPool({ dialSocket, secure: tls !== undefined, timeoutMs })
      return createH2Dialer(settings.h2, { pool, timeoutMs })
    }
    case 'grpc': {
      const pool = new Http2SessionPool({ dialSocket, secure: tls !== undefined, timeoutMs })
      return createGrpcDialer(settings.grpc, { pool, serverName: tls?.serverName })
    }
  }
}
