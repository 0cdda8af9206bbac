// TLS under any transport (`security: "tls"`), with V2Ray 4.34's `tlsSettings` semantics: served certificates,
// trusted certificates on a client, SNI, ALPN and allowInsecure.
import type { PemSource, TlsCertificateConfig, TlsConfig } from '../config/types.js'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isIP, type Socket } from 'node:net'
import {
  connect as connectTls,
  createSecureContext,
  createServer as createTlsServer,
  rootCertificates,
  type ConnectionOptions,
  type SecureContext,
  type Server as TlsServer,
  type TLSSocket,
} from 'node:tls'
import { TransportError } from '../errors.js'
import type { Logger } from '../types.js'
import { dialTcp, formatHostPort } from './tcp.js'
import type { PeerInfo } from './transport.js'

/** How long a TLS handshake may take on either side before the connection is dropped. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000

export type { PemSource }

/** One `tlsSettings.certificates[]` entry: `encipherment` certificates are served, every one is trusted by a client. */
export type TlsCertificateSettings = TlsCertificateConfig

/** `tlsSettings`. */
export type TlsSettings = TlsConfig

/**
 * V2Ray's ALPN when none is configured: `h2, http/1.1` for TCP, `h2` for h2 and gRPC, `http/1.1` under the
 * other HTTP-based transports (WithNextProto).
 */
export function defaultAlpn(network: string): readonly string[] {
  if (network === 'h2' || network === 'grpc') return ['h2']
  return network === 'tcp' ? ['h2', 'http/1.1'] : ['http/1.1']
}

function readPem(source: PemSource, what: string): string {
  if ('inline' in source) return source.inline
  try {
    return readFileSync(source.file, 'utf8')
  } catch (error) {
    throw new TransportError(
      'TLS_FILE_UNREADABLE',
      `Cannot read the TLS ${what} file ${source.file}: ${(error as Error).message}`,
      { cause: error },
    )
  }
}

interface ServedIdentity {
  readonly context: SecureContext
  readonly certificate: X509Certificate
  readonly pem: { readonly cert: string; readonly key: string }
}

function loadServedIdentities(settings: TlsSettings): ServedIdentity[] {
  const identities: ServedIdentity[] = []
  for (const entry of settings.certificates) {
    if (entry.usage !== 'encipherment' || entry.key === undefined) continue
    const pem = { cert: readPem(entry.certificate, 'certificate'), key: readPem(entry.key, 'key') }
    try {
      identities.push({ context: createSecureContext(pem), certificate: new X509Certificate(pem.cert), pem })
    } catch (error) {
      throw new TransportError(
        'TLS_CERTIFICATE_INVALID',
        `Cannot use a TLS certificate: ${(error as Error).message}`,
        { cause: error },
      )
    }
  }
  if (identities.length === 0) {
    throw new TransportError(
      'TLS_NO_CERTIFICATE',
      'Cannot serve TLS: tlsSettings.certificates has no certificate with a key',
    )
  }
  return identities
}

/**
 * A TLS server (not yet listening) that hands each connection to `onSocket` once its handshake is done. With
 * several certificates the one whose names match the client's SNI is served, else the first (as Go does).
 * Throws a TransportError when a certificate cannot be read.
 */
export function createTlsSocketServer(
  settings: TlsSettings,
  options: {
    alpn: readonly string[]
    onSocket: (socket: Socket, peer: PeerInfo) => void
    onConnection: (socket: Socket) => void
    logger?: Logger
  },
): TlsServer {
  const identities = loadServedIdentities(settings)
  const first = identities[0]!
  const server = createTlsServer({
    ...first.pem,
    allowHalfOpen: true,
    noDelay: true,
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    ALPNProtocols: [...(settings.alpn ?? options.alpn)],
    ...(identities.length > 1
      ? {
          SNICallback: (name: string, callback: (error: Error | null, context?: SecureContext) => void) => {
            const match = identities.find((identity) => identity.certificate.checkHost(name) !== undefined)
            callback(null, (match ?? first).context)
          },
        }
      : {}),
  })
  // Raw TCP connections, tracked so that close() can end the ones still in their handshake.
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => socket.destroy())
    options.onConnection(socket)
  })
  server.on('tlsClientError', (error: Error, socket: TLSSocket) => {
    options.logger?.debug({ peer: socket.remoteAddress, err: error.message }, 'TLS handshake failed')
    socket.destroy()
  })
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.on('error', () => socket.destroy())
    options.onSocket(socket, {
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
    })
  })
  return server
}

/** Connects TLS over TCP and resolves after the handshake; trust, SNI and ALPN as V2Ray 4.34 sets them. */
export type TlsDialer = (host: string, port: number) => Promise<TLSSocket>

/**
 * A dialer that opens TLS connections with `settings`: the system roots plus every configured certificate are
 * trusted (only the certificates with `disableSystemRoot`), the certificate must name `serverName` or else the
 * address, unless `allowInsecure`. Certificate files are read at the first dial.
 */
export function createTlsDialer(
  settings: TlsSettings,
  options: { alpn: readonly string[]; timeoutMs: number; localAddress?: string | undefined },
): TlsDialer {
  let trusted: string[] | undefined
  const trustedRoots = (): string[] | undefined => {
    if (settings.certificates.length === 0 && !settings.disableSystemRoot) return undefined
    trusted ??= [
      ...(settings.disableSystemRoot ? [] : rootCertificates),
      ...settings.certificates.map((entry) => readPem(entry.certificate, 'certificate')),
    ]
    return trusted
  }
  return async (host, port) => {
    const ca = trustedRoots()
    const started = Date.now()
    const socket = await dialTcp(host, port, {
      timeoutMs: options.timeoutMs,
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    })
    const name = settings.serverName ?? host
    return new Promise<TLSSocket>((resolve, reject) => {
      // tls.connect hands allowHalfOpen to the TLSSocket (the typings omit it): the VMess client half-closes.
      const connection: ConnectionOptions & { allowHalfOpen: boolean } = {
        socket,
        host: name,
        // SNI carries names only; an IP address is checked against the certificate without it.
        ...(isIP(name) === 0 ? { servername: name } : {}),
        ALPNProtocols: [...(settings.alpn ?? options.alpn)],
        rejectUnauthorized: !settings.allowInsecure,
        allowHalfOpen: true,
        ...(ca !== undefined ? { ca } : {}),
      }
      const secure = connectTls(connection)
      const fail = (error: Error & { code?: string }): void => {
        clearTimeout(timer)
        secure.destroy()
        reject(
          new TransportError(
            error.code ?? 'TLS_HANDSHAKE',
            `Cannot connect to ${formatHostPort(host, port)} over TLS: ${error.message}`,
            { cause: error },
          ),
        )
      }
      const timer = setTimeout(
        () => fail(new TransportError('ETIMEDOUT', `no TLS handshake in ${options.timeoutMs} ms`)),
        Math.max(1, options.timeoutMs - (Date.now() - started)),
      )
      secure.once('error', fail)
      secure.once('secureConnect', () => {
        clearTimeout(timer)
        secure.off('error', fail)
        resolve(secure)
      })
    })
  }
}
