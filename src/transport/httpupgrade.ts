// HTTPUpgrade (`network: "httpupgrade"`, Xray / v2fly 5 / sing-box): an HTTP/1.1 Upgrade handshake with
// `Upgrade: websocket`, answered 101, then raw bytes with no WebSocket framing. Byte for byte as Xray's
// transport/internet/httpupgrade: the client writes a Go http.Request, the server a Go http.Response.
import type { HttpUpgradeConfig } from '../config/types.js'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { TransportError } from '../errors.js'
import type { Logger } from '../types.js'
import {
  errorCode,
  fieldOf,
  forwardedPeer,
  hasToken,
  hostOf,
  HTTP_HEAD_TIMEOUT_MS,
  HttpHeadStream,
  MAX_HTTP_HEAD_BYTES,
  parseRequestHead,
  parseResponseHead,
  readHttpHead,
  refuseWithHead,
  requestPath,
} from './http-header.js'
import { formatHostPort } from './tcp.js'
import type { PeerInfo, StreamHandler } from './transport.js'

/** `httpupgradeSettings`. */
export type HttpUpgradeSettings = HttpUpgradeConfig

/** What Xray's server writes (Go's Response.Write adds Content-Length: 0 to a response without a request). */
export const UPGRADE_RESPONSE =
  'HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'

const NOT_FOUND = 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'

/** The User-Agent a client sends unless configured: a browser's, as Xray sends one (Go's own gives the tool away). */
export const HTTP_UPGRADE_USER_AGENT =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'

/** The request head a client sends, as Go's Request.Write orders it: Host, User-Agent, then the rest sorted. */
export function encodeUpgradeRequest(settings: HttpUpgradeSettings, host: string): Buffer {
  const fields = new Map<string, string>([
    ['Connection', 'Upgrade'],
    ['Upgrade', 'websocket'],
  ])
  let userAgent = HTTP_UPGRADE_USER_AGENT
  for (const [name, value] of settings.headers) {
    const lower = name.toLowerCase()
    if (lower === 'host') continue
    if (lower === 'user-agent') userAgent = value
    else if (lower !== 'connection' && lower !== 'upgrade') fields.set(name, value)
  }
  const sorted = [...fields].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const lines = [`GET ${settings.path} HTTP/1.1`, `Host: ${host}`, `User-Agent: ${userAgent}`]
  for (const [name, value] of sorted) lines.push(`${name}: ${value}`)
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
}

/** Undefined when `head` is the server's 101 with `Upgrade: websocket` and `Connection: upgrade`, as Xray checks. */
export function checkUpgradeResponse(head: Buffer): TransportError | undefined {
  const response = parseResponseHead(head)
  if (
    response !== undefined &&
    response.startLine[1] === '101' &&
    fieldOf(response, 'upgrade')?.toLowerCase() === 'websocket' &&
    hasToken(fieldOf(response, 'connection'), 'upgrade')
  ) {
    return undefined
  }
  const status = head.subarray(0, Math.max(0, head.indexOf('\r\n'))).toString('latin1')
  return new TransportError(
    'HTTP_UPGRADE_REFUSED',
    `Cannot upgrade: the server answered ${JSON.stringify(status)}`,
  )
}

/**
 * Serves HTTPUpgrade on an accepted socket: a GET upgrade to websocket on the configured path (and Host, when
 * configured) is answered 101 and handed to `onStream` with the bytes that came after the head; anything else
 * gets a 404 (400 for an unreadable head).
 */
export function acceptHttpUpgrade(
  socket: Duplex,
  peer: PeerInfo,
  options: { settings: HttpUpgradeSettings; onStream: StreamHandler; logger?: Logger },
): void {
  const { settings, logger } = options
  const configuredPath = settings.path.split('?')[0] ?? '/'
  readHttpHead(socket, { maxBytes: MAX_HTTP_HEAD_BYTES, timeoutMs: HTTP_HEAD_TIMEOUT_MS }).then(
    ({ head, rest }) => {
      const request = parseRequestHead(head)
      if (request === undefined) {
        refuseWithHead(socket, Buffer.from(BAD_REQUEST, 'latin1'))
        return
      }
      const reason =
        requestPath(request.startLine[1]) !== configuredPath
          ? 'path'
          : settings.host !== undefined && hostOf(fieldOf(request, 'host') ?? '') !== hostOf(settings.host)
            ? 'host'
            : !hasToken(fieldOf(request, 'connection'), 'upgrade') ||
                fieldOf(request, 'upgrade')?.toLowerCase() !== 'websocket'
              ? 'not an upgrade'
              : undefined
      if (reason !== undefined) {
        logger?.debug({ peer: peer.remoteAddress, reason }, 'HTTPUpgrade: refused; answered 404')
        refuseWithHead(socket, Buffer.from(NOT_FOUND, 'latin1'))
        return
      }
      socket.write(UPGRADE_RESPONSE)
      if (rest.length > 0) socket.unshift(rest)
      // Flowing starts on the next tick, after onStream has put its listeners on.
      socket.resume()
      options.onStream(socket, forwardedPeer(peer, fieldOf(request, 'x-forwarded-for')))
    },
    (error: unknown) => {
      logger?.debug({ peer: peer.remoteAddress, err: errorCode(error) }, 'HTTPUpgrade: no request head')
      if (error instanceof TransportError) refuseWithHead(socket, Buffer.from(BAD_REQUEST, 'latin1'))
      else socket.destroy()
    },
  )
}

/**
 * A dialer of HTTPUpgrade streams over `dialSocket` (TCP or TLS). The Host is the configured one, else the
 * TLS serverName, else the address (Xray's order). Without early data it resolves after the 101; with it,
 * at once, and the 101 is checked when the first bytes arrive.
 */
export function createHttpUpgradeDialer(
  settings: HttpUpgradeSettings,
  options: {
    dialSocket: (host: string, port: number) => Promise<Socket>
    serverName: string | undefined
    timeoutMs: number
  },
): (host: string, port: number) => Promise<Duplex> {
  return async (host, port) => {
    const socket = await options.dialSocket(host, port)
    socket.write(encodeUpgradeRequest(settings, settings.host ?? options.serverName ?? host))
    if (settings.earlyData) {
      const stream = new HttpHeadStream(socket, { checkIncomingHead: checkUpgradeResponse })
      stream.on('error', () => undefined)
      return stream
    }
    try {
      const { head, rest } = await readHttpHead(socket, {
        maxBytes: MAX_HTTP_HEAD_BYTES,
        timeoutMs: options.timeoutMs,
      })
      const problem = checkUpgradeResponse(head)
      if (problem !== undefined) throw problem
      if (rest.length > 0) socket.unshift(rest)
      // A fresh stream over the paused socket: whoever reads it first resumes it, so no byte is emitted unheard.
      const stream = new HttpHeadStream(socket)
      stream.on('error', () => undefined)
      return stream
    } catch (error) {
      socket.destroy()
      throw error instanceof TransportError
        ? new TransportError(error.code, `${formatHostPort(host, port)}: ${error.message}`, { cause: error })
        : error
    }
  }
}
