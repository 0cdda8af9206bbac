// The gRPC transport ("gun": `network: "grpc"`/`"gun"`, Xray's transport/internet/grpc, V2Ray 4.36+): a byte
// stream carried by one bidirectional gRPC call, `POST /<serviceName>/Tun` (Hunk messages) or, in Xray's
// multi mode, `/<serviceName>/TunMulti` (MultiHunk), with `content-type: application/grpc`. The server
// answers both methods; the response ends with the trailer `grpc-status: 0`. The framing is in gun-codec.ts;
// nginx `grpc_pass` forwards exactly this (h2c or TLS to us).
import type { ClientHttp2Stream, Http2Stream, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2'
import { isIP } from 'node:net'
import { Duplex } from 'node:stream'
import type { GrpcConfig } from '../config/types.js'
import { TransportError } from '../errors.js'
import type { Logger } from '../types.js'
import { encodeGunMessage, GUN_SEND_BYTES, GunDecoder } from './gun-codec.js'
import { refuseHttp2Stream } from './h2.js'
import { H2_CODES, type Http2SessionPool, type Http2StreamHandler } from './h2-session.js'
import { forwardedPeer } from './http-header.js'
import { formatHostPort } from './tcp.js'
import type { StreamHandler } from './transport.js'

/** `grpcSettings`, normalised (config/types.ts). */
export type GrpcSettings = GrpcConfig

/** gRPC status codes we send or read. */
const GRPC_STATUS = { ok: '0', unimplemented: '12' } as const

/** Go's url.PathEscape: everything but unreserved characters and `$&+:=@` is percent-encoded. */
function pathEscape(text: string): string {
  return Array.from(Buffer.from(text, 'utf8'))
    .map((byte) => {
      const char = String.fromCharCode(byte)
      return /[A-Za-z0-9\-_.~$&+:=@]/.test(char)
        ? char
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
    })
    .join('')
}

/** The request paths of Tun and TunMulti for a `serviceName`, as Xray derives them (grpc/config.go). */
export function gunPaths(serviceName: string): { tun: string; tunMulti: string } {
  if (!serviceName.startsWith('/')) {
    const service = pathEscape(serviceName)
    return { tun: `/${service}/Tun`, tunMulti: `/${service}/TunMulti` }
  }
  const last = serviceName.lastIndexOf('/')
  const service = serviceName.slice(1, Math.max(last, 1)).split('/').map(pathEscape).join('/')
  const names = serviceName.slice(last + 1).split('|')
  const tun = pathEscape(names[0] ?? '')
  // One name: the client's path to either method; two: the server's Tun and TunMulti.
  const tunMulti = pathEscape(names[1] ?? names[0] ?? '')
  return { tun: `/${service}/${tun}`, tunMulti: `/${service}/${tunMulti}` }
}

/**
 * One gun call as a Duplex of bytes: each write goes out as messages of at most GUN_SEND_BYTES, the data of
 * every message received is read as it arrives. Ending the writable side half-closes the call (a client's
 * END_STREAM, a server's `grpc-status: 0` trailers); a destroy before that, or with an error, resets the
 * stream (RST_STREAM CANCEL), and a reset, a truncated message or a non-zero status from the peer reaches the
 * reader as an error.
 */
export class GunStream extends Duplex {
  readonly #stream: Http2Stream
  readonly #decoder = new GunDecoder()
  /** Server side: whether our `grpc-status` trailers went out, and whether a close waits for them. */
  #trailersSent = false
  #closeAfterTrailers = false

  constructor(stream: Http2Stream, options: { server: boolean }) {
    super({ allowHalfOpen: true })
    this.#stream = stream
    if (options.server) {
      stream.on('wantTrailers', () => {
        ;(stream as ServerHttp2Stream).sendTrailers({ 'grpc-status': GRPC_STATUS.ok })
        this.#trailersSent = true
        if (this.#closeAfterTrailers) stream.close(H2_CODES.noError)
      })
    } else this.#trailersSent = true
    stream.on('data', (chunk: Buffer) => this.#onData(chunk))
    stream.on('end', () => {
      if (this.#decoder.atBoundary) this.push(null)
      else
        this.destroy(
          new TransportError('GRPC_TRUNCATED', 'Cannot read the gRPC stream: it ended inside a message'),
        )
    })
    stream.on('close', () => {
      if (!this.readableEnded && !this.destroyed) {
        this.destroy(
          new TransportError('GRPC_RESET', `The gRPC stream was reset (code ${stream.rstCode ?? 'none'})`),
        )
      }
    })
    stream.on('error', (error: Error) => this.destroy(error))
  }

  #onData(chunk: Buffer): void {
    let pieces: Buffer[]
    try {
      pieces = this.#decoder.push(chunk)
    } catch (error) {
      this.destroy(error as Error)
      return
    }
    let more = true
    for (const piece of pieces) more = this.push(piece)
    if (!more) this.#stream.pause()
  }

  override _read(): void {
    if (this.#stream.isPaused()) this.#stream.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const stream = this.#stream
    if (chunk.length === 0) {
      callback()
      return
    }
    for (let offset = 0; offset < chunk.length; offset += GUN_SEND_BYTES) {
      const message = encodeGunMessage(chunk.subarray(offset, offset + GUN_SEND_BYTES))
      if (offset + GUN_SEND_BYTES >= chunk.length) stream.write(message, (error) => callback(error ?? null))
      else stream.write(message)
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#stream.end(() => callback())
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const stream = this.#stream
    if (stream.closed || stream.destroyed) {
      callback(error)
      return
    }
    if (error !== null || !this.writableFinished) stream.close(H2_CODES.cancel)
    // Both sides ended: the stream closes by itself once our last frame (the trailers) is out.
    else if (stream.readableEnded) return callback(null)
    // The peer still sends after our end (a refusal's linger ran out): reset it with NO_ERROR, as Go does,
    // after the trailers.
    else if (this.#trailersSent) stream.close(H2_CODES.noError)
    else this.#closeAfterTrailers = true
    callback(error)
  }
}

/** The server side: admits calls of Tun and TunMulti at the paths of `settings` and hands them to `onStream`. */
export function createGrpcStreamHandler(
  settings: GrpcSettings,
  options: { onStream: StreamHandler; logger?: Logger },
): Http2StreamHandler {
  const paths = gunPaths(settings.serviceName)
  return (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, peer) => {
    const path = headers[':path']
    // What grpc-go answers: a reset for a method other than POST, 415 for another content type, and
    // UNIMPLEMENTED in a trailers-only response for a path that names no method of ours.
    if (headers[':method'] !== 'POST') {
      stream.close(H2_CODES.protocolError)
      return
    }
    if (!(headers['content-type'] ?? '').startsWith('application/grpc')) {
      refuseHttp2Stream(stream, 415)
      return
    }
    if (path !== paths.tun && path !== paths.tunMulti) {
      options.logger?.debug({ path }, 'gRPC: not our method; answered UNIMPLEMENTED')
      refuseHttp2Stream(stream, {
        ':status': 200,
        'content-type': 'application/grpc',
        'grpc-status': GRPC_STATUS.unimplemented,
        'grpc-message': `unknown method ${path ?? ''}`,
      })
      return
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
    const forwardedFor = headers['x-forwarded-for']
    const gun = new GunStream(stream, { server: true })
    gun.on('error', () => undefined)
    options.onStream(
      gun,
      forwardedPeer(peer, Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor),
    )
  }
}

/** Fails `gun` when the response or its trailers carry a status other than OK. */
function watchStatus(gun: GunStream, stream: ClientHttp2Stream, address: string): void {
  const check = (headers: IncomingHttpHeaders, where: string): void => {
    const status = headers['grpc-status']
    if (status === undefined || status === GRPC_STATUS.ok) return
    const message = headers['grpc-message']
    gun.destroy(
      new TransportError(
        'GRPC_STATUS',
        `The gRPC call to ${address} failed: ${where} status ${String(status)}${message === undefined ? '' : ` (${String(message)})`}`,
      ),
    )
  }
  stream.once('response', (headers: IncomingHttpHeaders) => {
    const type = headers['content-type'] ?? ''
    if (Number(headers[':status']) !== 200 || !type.startsWith('application/grpc')) {
      gun.destroy(
        new TransportError(
          'GRPC_RESPONSE',
          `The gRPC call to ${address} failed: HTTP status ${String(headers[':status'] ?? 'none')}, content-type "${type}"`,
        ),
      )
      return
    }
    check(headers, 'response')
  })
  stream.once('trailers', (trailers: IncomingHttpHeaders) => check(trailers, 'trailer'))
}

/**
 * The client side: each dial is a new call on the pool's session to the server, usable at once (a gRPC server
 * may send its response headers only with its first message, so nothing is awaited).
 */
export function createGrpcDialer(
  settings: GrpcSettings,
  options: { pool: Http2SessionPool; serverName: string | undefined },
): (host: string, port: number) => Promise<Duplex> {
  const paths = gunPaths(settings.serviceName)
  return async (host, port) => {
    const address = formatHostPort(host, port)
    const authority = settings.authority ?? options.serverName ?? (isIP(host) === 0 ? host : address)
    const stream = await options.pool.request(host, port, {
      ':method': 'POST',
      ':path': settings.multiMode ? paths.tunMulti : paths.tun,
      ':authority': authority,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...(settings.userAgent === undefined ? {} : { 'user-agent': settings.userAgent }),
    })
    const gun = new GunStream(stream, { server: false })
    watchStatus(gun, stream, address)
    return gun
  }
}
