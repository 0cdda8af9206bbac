// HTTP/2 sessions under the h2 and gRPC transports, with their budgets and deadlines in one place: a server
// that takes sockets already accepted by the TCP or TLS listener (h2 over TLS, or h2c with prior knowledge),
// and a client pool that keeps one session per server and opens a stream per dial, as V2Ray's and Xray's
// clients do.
import {
  connect as connectHttp2,
  constants,
  createServer as createHttp2Server,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
  type Settings,
} from 'node:http2'
import type { Socket } from 'node:net'
import { TransportError } from '../errors.js'
import type { Logger } from '../types.js'
import { formatHostPort } from './tcp.js'
import type { PeerInfo } from './transport.js'

/**
 * Streams one session may have open at once (Go's HTTP/2 server allows 250, grpc-go no limit); a client that
 * wants more waits for one to close. With the stream window it bounds what one session can make us hold.
 */
export const H2_MAX_CONCURRENT_STREAMS = 128

/**
 * The flow-control window of each stream (HTTP/2's default): what a peer may send on a stream we are not
 * reading. Before the VMess header is authenticated the inbound reads every byte as it comes and keeps at
 * most its drain threshold, so the window only holds bytes while an authenticated tunnel is paused.
 */
export const H2_STREAM_WINDOW_BYTES = 65_535

/** The connection-level window we grant: room for several streams in flight at once. */
export const H2_SESSION_WINDOW_BYTES = 1024 * 1024

/** Largest header block (HPACK-decoded) accepted; gRPC and V2Ray's h2 send a few hundred bytes. */
export const H2_MAX_HEADER_LIST_BYTES = 16 * 1024

/** Node's own cap on what a session may allocate (frames queued, headers, nghttp2 state), in MB. */
export const H2_MAX_SESSION_MEMORY_MB = 10

/** A server session must open its first stream within this time (the preface, SETTINGS and HEADERS). */
export const H2_FIRST_STREAM_TIMEOUT_MS = 10_000

/** A server session with no open stream for this long is closed with GOAWAY. */
export const H2_IDLE_SESSION_MS = 30_000

/** After our GOAWAY, how long a peer has to close its side before the connection is dropped. */
export const H2_GOAWAY_LINGER_MS = 5_000

/** A pooled client session with no open stream for this long is closed; meanwhile it does not hold the process. */
export const H2_CLIENT_IDLE_SESSION_MS = 30_000

const LOCAL_SETTINGS: Settings = {
  enablePush: false,
  initialWindowSize: H2_STREAM_WINDOW_BYTES,
  maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS,
  maxHeaderListSize: H2_MAX_HEADER_LIST_BYTES,
}

/** Receives each stream a client opens, with its request headers and the connection's peer. */
export type Http2StreamHandler = (
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  peer: PeerInfo,
) => void

/**
 * Serves HTTP/2 on sockets accepted elsewhere: a TLS socket that negotiated h2, or a plain one speaking h2c
 * with prior knowledge (a TLS socket without ALPN h2 is closed). Every stream reaches `onStream` with an
 * `error` listener on it. Returns the function to call with each accepted socket.
 */
export function createHttp2Acceptor(options: {
  onStream: Http2StreamHandler
  logger?: Logger
}): (socket: Socket, peer: PeerInfo) => void {
  const server = createHttp2Server({
    settings: LOCAL_SETTINGS,
    maxSessionMemory: H2_MAX_SESSION_MEMORY_MB,
    maxHeaderListPairs: 64,
  })
  let arriving: PeerInfo | undefined
  server.on('sessionError', () => undefined)
  server.on('unknownProtocol', (socket: Socket) => {
    options.logger?.debug({ peer: socket.remoteAddress }, 'HTTP/2: TLS without ALPN h2; closed')
    socket.destroy()
  })
  // Emitted inside emit('connection'), so `arriving` is the peer of this very socket.
  server.on('session', (session: ServerHttp2Session) => {
    const peer = arriving ?? { remoteAddress: '', remotePort: 0 }
    superviseServerSession(session, peer, options)
  })
  return (socket, peer) => {
    // The listener keeps half-open sockets for VMess; HTTP/2 has no use for one whose peer stopped sending.
    socket.once('end', () => socket.destroy())
    arriving = peer
    try {
      server.emit('connection', socket)
    } finally {
      arriving = undefined
    }
  }
}

function superviseServerSession(
  session: ServerHttp2Session,
  peer: PeerInfo,
  options: { onStream: Http2StreamHandler; logger?: Logger },
): void {
  let open = 0
  let timer: NodeJS.Timeout | undefined
  const closeIdle = (): void => {
    options.logger?.debug({ peer: peer.remoteAddress }, 'HTTP/2: session idle; closed')
    session.close()
    // GOAWAY sent; a peer that never closes its side loses the connection.
    setTimeout(() => session.destroy(), H2_GOAWAY_LINGER_MS).unref()
  }
  const arm = (ms: number): void => {
    clearTimeout(timer)
    timer = setTimeout(closeIdle, ms)
  }
  arm(H2_FIRST_STREAM_TIMEOUT_MS)
  session.on('error', () => session.destroy())
  session.once('close', () => clearTimeout(timer))
  session.once('remoteSettings', () => {
    if (!session.destroyed) session.setLocalWindowSize(H2_SESSION_WINDOW_BYTES)
  })
  session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', () => undefined)
    open += 1
    clearTimeout(timer)
    stream.once('close', () => {
      open -= 1
      if (open === 0 && !session.closed) arm(H2_IDLE_SESSION_MS)
    })
    try {
      options.onStream(stream, headers, peer)
    } catch {
      // A stream the peer reset while it was being answered (ERR_HTTP2_INVALID_STREAM) fails alone.
      stream.close(H2_CODES.internalError)
    }
  })
}

/** Opens the connection a session runs on: TCP, or TLS offering ALPN h2. */
export type Http2SocketDialer = (host: string, port: number) => Promise<Socket>

interface PooledSession {
  readonly session: ClientHttp2Session
  open: number
  idle: NodeJS.Timeout | undefined
}

/**
 * One HTTP/2 client session per server, opened at the first dial and shared by every stream to it; a session
 * that fails, receives GOAWAY or closes is replaced at the next dial. Over TLS the server must choose h2.
 */
export class Http2SessionPool {
  readonly #dialSocket: Http2SocketDialer
  readonly #secure: boolean
  readonly #timeoutMs: number
  readonly #sessions = new Map<string, Promise<PooledSession>>()

  constructor(options: { dialSocket: Http2SocketDialer; secure: boolean; timeoutMs: number }) {
    this.#dialSocket = options.dialSocket
    this.#secure = options.secure
    this.#timeoutMs = options.timeoutMs
  }

  /** Opens a stream to `host:port` with `headers`; it counts as open until it closes. */
  async request(host: string, port: number, headers: OutgoingHttpHeaders): Promise<ClientHttp2Stream> {
    const pooled = await this.#session(host, port)
    const stream = pooled.session.request(headers, { endStream: false })
    stream.on('error', () => undefined)
    pooled.open += 1
    clearTimeout(pooled.idle)
    pooled.session.ref()
    stream.once('close', () => {
      pooled.open -= 1
      if (pooled.open > 0 || pooled.session.closed) return
      // An idle session keeps neither the process nor the pool's caller waiting.
      pooled.session.unref()
      pooled.idle = setTimeout(() => pooled.session.close(), H2_CLIENT_IDLE_SESSION_MS)
      pooled.idle.unref()
    })
    return stream
  }

  #session(host: string, port: number): Promise<PooledSession> {
    const key = formatHostPort(host, port)
    const existing = this.#sessions.get(key)
    if (existing !== undefined) return existing
    const opening = this.#open(host, port)
    this.#sessions.set(key, opening)
    const forget = (): void => {
      if (this.#sessions.get(key) === opening) this.#sessions.delete(key)
    }
    opening.then((pooled) => {
      const session = pooled.session
      session.once('close', forget)
      session.once('goaway', forget)
      session.once('error', forget)
      if (session.closed || session.destroyed) forget()
    }, forget)
    return opening
  }

  async #open(host: string, port: number): Promise<PooledSession> {
    const started = Date.now()
    const socket = await this.#dialSocket(host, port)
    const address = formatHostPort(host, port)
    if (this.#secure && (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol !== 'h2') {
      socket.destroy()
      throw new TransportError(
        'H2_ALPN',
        `Cannot open HTTP/2 to ${address}: the TLS server did not choose ALPN "h2"`,
      )
    }
    const session = connectHttp2(`${this.#secure ? 'https' : 'http'}://${address}`, {
      createConnection: () => socket,
      settings: LOCAL_SETTINGS,
      maxSessionMemory: H2_MAX_SESSION_MEMORY_MB,
    })
    session.on('error', () => undefined)
    // The dialled socket allows half-open (for VMess over TCP); a server's FIN ends the session here.
    socket.once('end', () => session.destroy())
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error): void => {
        clearTimeout(timer)
        session.destroy()
        reject(
          new TransportError('H2_CONNECT', `Cannot open HTTP/2 to ${address}: ${error.message}`, {
            cause: error,
          }),
        )
      }
      const timer = setTimeout(
        () => fail(new Error(`no SETTINGS in ${this.#timeoutMs} ms`)),
        Math.max(1, this.#timeoutMs - (Date.now() - started)),
      )
      const closed = (): void => fail(new Error('the connection closed'))
      session.once('error', fail)
      session.once('close', closed)
      session.once('remoteSettings', () => {
        clearTimeout(timer)
        session.off('error', fail)
        session.off('close', closed)
        resolve()
      })
    })
    session.setLocalWindowSize(H2_SESSION_WINDOW_BYTES)
    return { session, open: 0, idle: undefined }
  }
}

/** RST_STREAM codes the transports send. */
export const H2_CODES = {
  noError: constants.NGHTTP2_NO_ERROR,
  cancel: constants.NGHTTP2_CANCEL,
  protocolError: constants.NGHTTP2_PROTOCOL_ERROR,
  internalError: constants.NGHTTP2_INTERNAL_ERROR,
} as const
