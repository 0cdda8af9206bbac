// The WebSocket transport (`network: "ws"`) of V2Ray 4.34, with both spellings of early data: Xray's `?ed=N`
// (base64url in Sec-WebSocket-Protocol, echoed by the server) and v2fly's `maxEarlyData` with
// `earlyDataHeaderName` (a named header, or appended to the path when no name is given).
import type { WebSocketConfig, WebSocketEarlyData } from '../config/types.js'
import { createServer, type IncomingMessage } from 'node:http'
import { createRequire } from 'node:module'
import type { Socket } from 'node:net'
import { Duplex } from 'node:stream'
import type WebSocket from 'ws'
import type { WebSocketServer } from 'ws'
import { TransportError } from '../errors.js'
import type { Logger } from '../types.js'
import { forwardedPeer, hostOf, MAX_HTTP_HEAD_BYTES, REFUSAL_LINGER_MS, requestPath } from './http-header.js'
import { formatHostPort } from './tcp.js'
import type { PeerInfo, StreamHandler, WholeCloseStream } from './transport.js'

/** The close code ws reports when the connection ended without a close frame (RFC 6455 §7.1.5). */
const ABNORMAL_CLOSURE = 1006

/** ws is loaded on first use: a process whose config has no WebSocket transport never pays its memory. */
let wsModule: { WebSocket: typeof WebSocket; WebSocketServer: typeof WebSocketServer } | undefined
function wsLibrary(): { WebSocket: typeof WebSocket; WebSocketServer: typeof WebSocketServer } {
  wsModule ??= createRequire(import.meta.url)('ws') as typeof wsModule & object
  return wsModule
}

/**
 * Largest WebSocket message either side accepts (ws `maxPayload`); a bigger one closes the connection with 1009.
 * V2Ray writes a message per buffer of a few KiB, so this only bounds what one peer can make us hold.
 */
export const MAX_WEBSOCKET_MESSAGE_BYTES = 1024 * 1024

/**
 * Largest message we send; a longer write is split. One sealed VMess write (up to ~66 KiB: a 65,535-byte
 * chunk) fits one message: V2Ray, Xray, sing-box and mihomo read messages as streams with no size limit,
 * and ours stop at MAX_WEBSOCKET_MESSAGE_BYTES. Each message costs a frame and a masked copy on a client.
 */
export const WEBSOCKET_SEND_BYTES = 128 * 1024

/** How long the opening handshake may take: V2Ray's upgrader HandshakeTimeout (server side). */
export const WEBSOCKET_HANDSHAKE_TIMEOUT_MS = 4_000

/** After our close frame, how long the peer has to answer before the TCP connection is dropped. */
export const WEBSOCKET_CLOSE_TIMEOUT_MS = 2_000

export type { WebSocketEarlyData }

/** `wsSettings`. */
export type WebSocketSettings = WebSocketConfig

function messageBytes(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
}

/** Base64 as Xray's server reads it: standard or URL alphabet, padding optional (its replacer maps one to the other). */
function decodeEarlyData(text: string): Buffer | undefined {
  const url = text.trim().replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
  if (url === '' || !/^[A-Za-z0-9_-]+$/.test(url) || url.length % 4 === 1) return undefined
  return Buffer.from(url, 'base64url')
}

/**
 * A WebSocket as a Duplex of bytes: each write goes out as binary messages of at most WEBSOCKET_SEND_BYTES,
 * every message (binary or text) is read as bytes. Ending the writable side sends nothing: WebSocket has no half-close, and V2Ray closes only when
 * both directions are done, so the close frame goes out when the stream is destroyed (after both ends, or on
 * error) or in answer to the peer's. A client with early data connects at its first write.
 */
class WebSocketStream extends Duplex implements WholeCloseStream {
  readonly halfClose = false
  #ws: WebSocket | undefined
  readonly #connect: ((earlyData: Buffer) => Promise<WebSocket>) | undefined
  readonly #maxEarlyData: number

  constructor(
    source: WebSocket | ((earlyData: Buffer) => Promise<WebSocket>),
    options: { earlyData?: Buffer; maxEarlyData?: number } = {},
  ) {
    super({ allowHalfOpen: true })
    if (options.earlyData !== undefined && options.earlyData.length > 0) this.push(options.earlyData)
    this.#maxEarlyData = options.maxEarlyData ?? 0
    if (typeof source === 'function') this.#connect = source
    else this.#attach(source)
  }

  #attach(ws: WebSocket): void {
    this.#ws = ws
    ws.on('message', (data: WebSocket.RawData) => {
      const bytes = messageBytes(data)
      if (bytes.length > 0 && !this.push(bytes)) ws.pause()
    })
    // The peer's close frame, or the connection gone: nothing more will be read, nor can be written, so the
    // stream closes once its reader has had everything. Gone without a close frame (1006) is a cut, not an end.
    ws.on('close', (code: number) => {
      if (code === ABNORMAL_CLOSURE) {
        this.destroy(
          new TransportError(
            'WEBSOCKET_CUT',
            'Cannot read on: the WebSocket connection closed without a close frame',
          ),
        )
        return
      }
      this.push(null)
      if (this.readableEnded) this.destroy()
      else this.once('end', () => this.destroy())
    })
    ws.on('error', (error: Error) => this.destroy(error))
  }

  override _read(): void {
    if (this.#ws?.isPaused === true) this.#ws.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const ws = this.#ws
    if (ws === undefined) this.#connectWith(chunk, callback)
    else this.#send(ws, chunk, callback)
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    this._write(Buffer.concat(chunks.map((entry) => entry.chunk)), 'binary', callback)
  }

  /** Sends `chunk` as messages of at most WEBSOCKET_SEND_BYTES; only the last one waits for the socket. */
  #send(ws: WebSocket, chunk: Buffer, callback: (error?: Error | null) => void): void {
    if (ws.readyState === ws.CONNECTING) {
      ws.once('open', () => this.#send(ws, chunk, callback))
      return
    }
    for (let offset = 0; offset < chunk.length; offset += WEBSOCKET_SEND_BYTES) {
      const last = offset + WEBSOCKET_SEND_BYTES >= chunk.length
      const message = chunk.subarray(offset, offset + WEBSOCKET_SEND_BYTES)
      if (last) ws.send(message, { binary: true }, (error) => callback(error ?? null))
      else ws.send(message, { binary: true })
    }
    if (chunk.length === 0) callback()
  }

  #connectWith(chunk: Buffer, callback: (error?: Error | null) => void): void {
    const connect = this.#connect
    if (connect === undefined) {
      callback(new TransportError('WEBSOCKET_CLOSED', 'Cannot write: the WebSocket is gone'))
      return
    }
    const earlyData = chunk.subarray(0, this.#maxEarlyData)
    connect(earlyData).then(
      (ws) => {
        if (this.destroyed) {
          ws.on('error', () => undefined)
          ws.terminate()
          return
        }
        this.#attach(ws)
        const rest = chunk.subarray(earlyData.length)
        if (rest.length > 0) this.#send(ws, rest, callback)
        else callback()
      },
      (error: Error) => callback(error),
    )
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const ws = this.#ws
    if (ws !== undefined) closeWebSocket(ws, error !== null)
    callback(error)
  }
}

/** Sends a close frame (or drops the connection on error or while connecting), then drops it if the peer does not answer. */
function closeWebSocket(ws: WebSocket, abort: boolean): void {
  if (ws.readyState === ws.CLOSED) return
  if (abort || ws.readyState === ws.CONNECTING) {
    ws.terminate()
    return
  }
  if (ws.readyState === ws.OPEN) ws.close(1000)
  const timer = setTimeout(() => ws.terminate(), WEBSOCKET_CLOSE_TIMEOUT_MS)
  timer.unref()
  ws.once('close', () => clearTimeout(timer))
}

const NOT_FOUND = 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'

/**
 * Serves WebSocket connections on sockets accepted by a TCP or TLS server: an upgrade on the configured path
 * (and Host, when required) becomes a stream for `onStream`; anything else is an ordinary 404, never a VMess
 * reaction. Early data is read from the configured header or path suffix, else from Sec-WebSocket-Protocol
 * (Xray, echoed). Returns the function to call with each accepted socket.
 */
export function createWebSocketAcceptor(
  settings: WebSocketSettings,
  options: { onStream: StreamHandler; logger?: Logger },
): (socket: Socket, peer: PeerInfo) => void {
  const { logger } = options
  const configuredPath = settings.path.split('?')[0] ?? '/'
  const earlyDataInPath = settings.earlyData !== undefined && settings.earlyData.headerName === undefined
  const earlyDataHeader = settings.earlyData?.headerName?.toLowerCase()
  const peers = new WeakMap<object, PeerInfo>()
  const deadlines = new WeakMap<object, NodeJS.Timeout>()
  const echoedProtocols = new WeakMap<IncomingMessage, string>()

  const wss = new (wsLibrary().WebSocketServer)({
    noServer: true,
    maxPayload: MAX_WEBSOCKET_MESSAGE_BYTES,
    perMessageDeflate: false,
    clientTracking: false,
    skipUTF8Validation: true,
  })
  wss.on('headers', (headers: string[], request: IncomingMessage) => {
    const echoed = echoedProtocols.get(request)
    if (echoed !== undefined) headers.push(`Sec-WebSocket-Protocol: ${echoed}`)
  })

  const http = createServer({ maxHeaderSize: MAX_HTTP_HEAD_BYTES }, (request, response) => {
    logger?.debug({ url: request.url }, 'WebSocket: not an upgrade; answered 404')
    response.writeHead(404, { 'Content-Length': 0, Connection: 'close' }).end()
  })

  /** Why an upgrade is not for us, or the early data it carries in its path or configured header. */
  const admit = (request: IncomingMessage): { refused: string } | { earlyData: Buffer | undefined } => {
    const target = request.url ?? ''
    let earlyData: Buffer | undefined
    if (earlyDataInPath) {
      if (!target.startsWith(settings.path)) return { refused: 'path' }
      const suffix = target.slice(settings.path.length)
      earlyData = suffix === '' ? undefined : decodeEarlyData(suffix)
      if (suffix !== '' && earlyData === undefined) return { refused: 'path' }
    } else if (requestPath(target) !== configuredPath) {
      return { refused: 'path' }
    }
    if (settings.requireHost && hostOf(request.headers.host ?? '') !== hostOf(settings.host ?? '')) {
      return { refused: 'host' }
    }
    if (earlyDataHeader !== undefined && earlyDataHeader !== 'sec-websocket-protocol') {
      const value = request.headers[earlyDataHeader]
      earlyData = typeof value === 'string' ? decodeEarlyData(value) : undefined
    }
    return { earlyData }
  }

  http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    clearTimeout(deadlines.get(socket))
    const admitted = admit(request)
    if ('refused' in admitted) {
      logger?.debug(
        { url: request.url, reason: admitted.refused },
        'WebSocket: refused upgrade; answered 404',
      )
      socket.on('error', () => undefined)
      socket.end(NOT_FOUND)
      const timer = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS)
      socket.once('close', () => clearTimeout(timer))
      return
    }
    let earlyData = admitted.earlyData
    const protocol = request.headers['sec-websocket-protocol']
    if (earlyData === undefined && protocol !== undefined) {
      earlyData = decodeEarlyData(protocol)
      if (earlyData !== undefined) {
        // Not a list of subprotocols for ws to check: the client's bytes, answered with the same value.
        delete request.headers['sec-websocket-protocol']
        echoedProtocols.set(request, protocol.trim())
      }
    }
    const forwardedFor = request.headers['x-forwarded-for']
    const peer = forwardedPeer(
      peers.get(socket) ?? { remoteAddress: '', remotePort: 0 },
      Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor,
    )
    wss.handleUpgrade(request, socket, head, (ws) => {
      const stream = new WebSocketStream(ws, earlyData === undefined ? {} : { earlyData })
      stream.on('error', () => undefined)
      options.onStream(stream, peer)
    })
  })

  return (socket, peer) => {
    peers.set(socket, peer)
    // However slowly it trickles in, a request must be complete by then; an upgrade stops the clock.
    const deadline = setTimeout(() => socket.destroy(), WEBSOCKET_HANDSHAKE_TIMEOUT_MS)
    deadlines.set(socket, deadline)
    socket.once('close', () => clearTimeout(deadline))
    http.emit('connection', socket)
  }
}

/** Something that opens the byte stream a WebSocket runs on: TCP or TLS. */
export type SocketDialer = (host: string, port: number) => Promise<Socket>

/**
 * A dialer of WebSocket streams over `dialSocket` (TCP, or TLS when `secure`). Without early data it resolves
 * once the server accepted the upgrade; with early data it resolves at once and connects at the first write,
 * carrying up to `maxBytes` of it in the handshake.
 */
export function createWebSocketDialer(
  settings: WebSocketSettings,
  options: { dialSocket: SocketDialer; secure: boolean; timeoutMs: number },
): (host: string, port: number) => Promise<Duplex> {
  const open = (host: string, port: number, earlyData: Buffer | undefined): Promise<WebSocket> =>
    openWebSocket(host, port, earlyData, { settings, ...options })
  return async (host, port) => {
    const earlyData = settings.earlyData
    if (earlyData !== undefined) {
      return new WebSocketStream((bytes) => open(host, port, bytes), { maxEarlyData: earlyData.maxBytes })
    }
    const ws = await open(host, port, undefined)
    return new Promise<Duplex>((resolve, reject) => {
      // The stream takes the socket inside 'open', before ws can emit a message.
      ws.once('open', () => {
        ws.off('error', onError)
        resolve(new WebSocketStream(ws))
      })
      const onError = (error: Error): void =>
        reject(
          new TransportError(
            'WEBSOCKET_HANDSHAKE',
            `Cannot open a WebSocket to ${formatHostPort(host, port)}${settings.path}: ${error.message}`,
            { cause: error },
          ),
        )
      ws.once('error', onError)
    })
  }
}

/** Dials the socket and starts the opening handshake; the WebSocket is still connecting when it resolves. */
async function openWebSocket(
  host: string,
  port: number,
  earlyData: Buffer | undefined,
  options: { settings: WebSocketSettings; dialSocket: SocketDialer; secure: boolean; timeoutMs: number },
): Promise<WebSocket> {
  const { settings } = options
  const socket = await options.dialSocket(host, port)
  // The Host header as gorilla/websocket writes it for V2Ray: with the port unless it is the scheme's own.
  const address = formatHostPort(host, port)
  const hostHeader =
    settings.host ??
    (port === (options.secure ? 443 : 80) ? address.slice(0, address.lastIndexOf(':')) : address)
  const encoded =
    earlyData === undefined || earlyData.length === 0 ? undefined : earlyData.toString('base64url')
  const headerName = settings.earlyData?.headerName
  const inPath = encoded !== undefined && headerName === undefined
  const headers: Record<string, string> = { Host: hostHeader }
  for (const [name, value] of settings.headers) headers[name] = value
  if (encoded !== undefined && headerName !== undefined) headers[headerName] = encoded
  let ws: WebSocket
  try {
    ws = new (wsLibrary().WebSocket)(
      `ws://${address}${inPath ? `${settings.path}${encoded}` : settings.path}`,
      {
        createConnection: () => socket,
        headers,
        perMessageDeflate: false,
        maxPayload: MAX_WEBSOCKET_MESSAGE_BYTES,
        handshakeTimeout: options.timeoutMs,
        skipUTF8Validation: true,
        followRedirects: false,
      },
    )
  } catch (error) {
    socket.destroy()
    throw new TransportError('WEBSOCKET_URL', `Cannot open a WebSocket: ${(error as Error).message}`, {
      cause: error,
    })
  }
  ws.on('error', () => undefined)
  // We never give ws a subprotocol list, so it would refuse the echo of early data that Xray's server sends
  // back in Sec-WebSocket-Protocol (v2fly's sends none). Either is fine: drop it before ws checks.
  ws.on('upgrade', (response: IncomingMessage) => {
    delete response.headers['sec-websocket-protocol']
  })
  return ws
}
