// The HTTP/2 transport of V2Ray 4.34 (`network: "http"` or `"h2"`, transport/internet/http): the byte stream is
// the body of one long-lived request and of its response. The client sends `PUT <path>` with a Host picked
// from `host` (default "www.example.com") and `Accept-Encoding: identity`, and waits for status 200. The
// server answers 404 unless the Host is one of `host` exactly and the path starts with `path`; otherwise it
// answers 200 with `Cache-Control: no-store` at once and streams. V2Ray serves TLS (ALPN h2) or, without TLS,
// h2c; its client dials TLS only (tsray's also dials h2c with prior knowledge).
import type {
  ClientHttp2Stream,
  IncomingHttpHeaders,
  OutgoingHttpHeaders,
  ServerHttp2Stream,
} from 'node:http2'
import type { Duplex } from 'node:stream'
import type { H2Config } from '../config/types.js'
import { TransportError } from '../errors.js'
import type { Logger } from '../types.js'
import { type Http2SessionPool, type Http2StreamHandler } from './h2-session.js'
import { forwardedPeer, pickAtRandom, REFUSAL_LINGER_MS, requestPath } from './http-header.js'
import { formatHostPort } from './tcp.js'
import type { StreamHandler } from './transport.js'

/** `httpSettings`, normalised (config/types.ts). */
export type H2Settings = H2Config

/** V2Ray's Host when `host` is empty, on both ends (config.go getHosts). */
export const DEFAULT_H2_HOST = 'www.example.com'

const hostsOf = (settings: H2Settings): readonly string[] =>
  settings.hosts.length === 0 ? [DEFAULT_H2_HOST] : settings.hosts

const headerText = (value: string | string[] | undefined): string | undefined =>
  Array.isArray(value) ? value.join(',') : value

/** Ends a stream that is not ours with a bare status, and drops it if the client keeps sending. */
export function refuseHttp2Stream(stream: ServerHttp2Stream, response: number | OutgoingHttpHeaders): void {
  if (stream.destroyed || stream.headersSent) return
  stream.respond(typeof response === 'number' ? { ':status': response } : response, { endStream: true })
  stream.resume()
  const timer = setTimeout(() => stream.close(), REFUSAL_LINGER_MS)
  stream.once('close', () => clearTimeout(timer))
}

/** The server side: admits the streams of `settings` and hands them to `onStream` as Duplexes of bytes. */
export function createH2StreamHandler(
  settings: H2Settings,
  options: { onStream: StreamHandler; logger?: Logger },
): Http2StreamHandler {
  const hosts = hostsOf(settings)
  return (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, peer) => {
    const host = headers[':authority'] ?? headers.host ?? ''
    const path = requestPath(headers[':path'] ?? '')
    if (!hosts.includes(host) || path === undefined || !path.startsWith(settings.path)) {
      options.logger?.debug({ host, path: headers[':path'] }, 'h2: not our host or path; answered 404')
      refuseHttp2Stream(stream, 404)
      return
    }
    stream.respond({ ':status': 200, 'cache-control': 'no-store' })
    options.onStream(stream, forwardedPeer(peer, headerText(headers['x-forwarded-for'])))
  }
}

/**
 * The client side: each dial is a new stream on the pool's session to the server, returned once the server
 * answered 200 (as V2Ray's dialer does).
 */
export function createH2Dialer(
  settings: H2Settings,
  options: { pool: Http2SessionPool; timeoutMs: number },
): (host: string, port: number) => Promise<Duplex> {
  const hosts = hostsOf(settings)
  return async (host, port) => {
    const started = Date.now()
    const stream = await options.pool.request(host, port, {
      ':method': settings.method,
      ':path': settings.path,
      ':authority': pickAtRandom(hosts),
      'accept-encoding': 'identity',
    })
    await awaitResponse(stream, {
      address: formatHostPort(host, port),
      timeoutMs: Math.max(1, options.timeoutMs - (Date.now() - started)),
    })
    return stream
  }
}

function awaitResponse(
  stream: ClientHttp2Stream,
  options: { address: string; timeoutMs: number },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (code: string, reason: string): void => {
      clearTimeout(timer)
      stream.off('close', onClose)
      stream.destroy()
      reject(new TransportError(code, `Cannot open an h2 stream to ${options.address}: ${reason}`))
    }
    const onClose = (): void => fail('H2_STREAM_CLOSED', 'the stream closed before a response')
    const timer = setTimeout(
      () => fail('ETIMEDOUT', `no response in ${options.timeoutMs} ms`),
      options.timeoutMs,
    )
    stream.once('close', onClose)
    stream.once('response', (headers: IncomingHttpHeaders) => {
      // Node gives the status as a number, whatever its typings say.
      const status = Number(headers[':status'])
      if (status !== 200) {
        fail('H2_STATUS', `the server answered ${String(headers[':status'] ?? 'no status')}`)
        return
      }
      clearTimeout(timer)
      stream.off('close', onClose)
      resolve()
    })
  })
}
