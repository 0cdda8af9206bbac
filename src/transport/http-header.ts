// HTTP heads on a byte stream: V2Ray's TCP header obfuscation (`tcpSettings.header.type: "http"`, as
// transport/internet/headers/http in V2Ray 4.34), and the head reading, parsing and X-Forwarded-For rules that
// the WebSocket and HTTPUpgrade transports share.
import type {
  HttpHeaderConfig,
  HttpHeaderField,
  HttpHeaderRequest,
  HttpHeaderResponse,
} from '../config/types.js'
import { randomInt } from 'node:crypto'
import { isIP } from 'node:net'
import { Duplex } from 'node:stream'
import { TransportError } from '../errors.js'
import type { Logger } from '../types.js'
import type { PeerInfo, StreamHandler } from './transport.js'

/** Longest HTTP head read before giving up; V2Ray's `maxHeaderLength` for the obfuscation header. */
export const MAX_HTTP_HEAD_BYTES = 8192

/** How long a server waits for a client's HTTP head: V2Ray's WebSocket ReadHeaderTimeout, Xray's HTTPUpgrade deadline. */
export const HTTP_HEAD_TIMEOUT_MS = 4_000

/** How long a refused connection may linger after our answer before it is destroyed. */
export const REFUSAL_LINGER_MS = 2_000

const HEAD_END = '\r\n\r\n'

/** `tcpSettings.header` with `type: "http"`. */
export type HttpHeaderSettings = HttpHeaderConfig
export type { HttpHeaderField, HttpHeaderRequest, HttpHeaderResponse }

const CLOSE_HEADERS: readonly HttpHeaderField[] = [
  { name: 'Connection', values: ['close'] },
  { name: 'Cache-Control', values: ['private'] },
  { name: 'Content-Length', values: ['0'] },
]

/** What a V2Ray server answers a request whose path it does not know (`resp404` in resp.go). */
export const NOT_FOUND_RESPONSE: HttpHeaderResponse = {
  version: '1.1',
  status: '404',
  reason: 'Not Found',
  headers: CLOSE_HEADERS,
}

/** What a V2Ray server answers a head it cannot read, or sends on close when it never answered (`resp400`). */
export const BAD_REQUEST_RESPONSE: HttpHeaderResponse = {
  version: '1.1',
  status: '400',
  reason: 'Bad Request',
  headers: CLOSE_HEADERS,
}

/** Picks one entry at random, as V2Ray's `pickString`; "" for none. */
export function pickAtRandom(values: readonly string[]): string {
  return values.length <= 1 ? (values[0] ?? '') : (values[randomInt(values.length)] ?? '')
}

function encodeFields(
  fields: readonly HttpHeaderField[],
  pick: (values: readonly string[]) => string,
): string {
  return fields.map((field) => `${field.name}: ${pick(field.values)}\r\n`).join('')
}

/**
 * The request head a V2Ray client sends before its first bytes (`GetClientWriter`): method, one of the paths
 * and HTTP version, then each header with one of its values.
 */
export function encodeRequestHead(
  request: HttpHeaderRequest,
  options: { pick?: (values: readonly string[]) => string } = {},
): Buffer {
  const pick = options.pick ?? pickAtRandom
  const line = `${request.method} ${pick(request.paths)} HTTP/${request.version}\r\n`
  return Buffer.from(`${line}${encodeFields(request.headers, pick)}\r\n`, 'latin1')
}

/** The response head a V2Ray server sends before its first bytes (`formResponseHeader`): a Date is added unless configured. */
export function encodeResponseHead(
  response: HttpHeaderResponse,
  options: { pick?: (values: readonly string[]) => string; now?: Date } = {},
): Buffer {
  const pick = options.pick ?? pickAtRandom
  const hasDate = response.headers.some((field) => field.name.toLowerCase() === 'date')
  // Go's http.TimeFormat is what toUTCString writes: "Mon, 02 Jan 2006 15:04:05 GMT".
  const date = hasDate ? '' : `Date: ${(options.now ?? new Date()).toUTCString()}\r\n`
  const line = `HTTP/${response.version} ${response.status} ${response.reason}\r\n`
  return Buffer.from(`${line}${encodeFields(response.headers, pick)}${date}\r\n`, 'latin1')
}

/** A parsed HTTP/1.x head: the three parts of its start line and its fields by lower-case name. */
export interface HttpHead {
  readonly startLine: readonly [string, string, string]
  readonly fields: ReadonlyMap<string, readonly string[]>
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
const REQUEST_LINE = new RegExp(`^(${TOKEN}) ([\\x21-\\x7e]+) (HTTP/\\d\\.\\d)$`)
const STATUS_LINE = /^(HTTP\/\d\.\d) (\d{3})(?: ([\t\x20-\x7e]*))?$/
const FIELD_LINE = new RegExp(`^(${TOKEN}):[ \\t]*(.*?)[ \\t]*$`)

function parseHead(head: Buffer, startLine: RegExp): HttpHead | undefined {
  const lines = head.toString('latin1').split('\r\n')
  const start = startLine.exec(lines[0] ?? '')
  if (start === null) return undefined
  const fields = new Map<string, string[]>()
  for (const line of lines.slice(1)) {
    if (line === '') break
    const field = FIELD_LINE.exec(line)
    if (field === null) return undefined
    const name = (field[1] ?? '').toLowerCase()
    fields.set(name, [...(fields.get(name) ?? []), field[2] ?? ''])
  }
  return { startLine: [start[1] ?? '', start[2] ?? '', start[3] ?? ''], fields }
}

/** Parses a request head (ending with an empty line): `[method, target, version]`, or undefined when malformed. */
export function parseRequestHead(head: Buffer): HttpHead | undefined {
  return parseHead(head, REQUEST_LINE)
}

/** Parses a response head: `[version, status code, reason]`, or undefined when malformed. */
export function parseResponseHead(head: Buffer): HttpHead | undefined {
  return parseHead(head, STATUS_LINE)
}

/** A field's values joined as one list, as an HTTP server reads a repeated field. */
export function fieldOf(head: HttpHead, name: string): string | undefined {
  return head.fields.get(name.toLowerCase())?.join(', ')
}

/** Whether a comma-separated field (Connection, Upgrade) holds `token`, ignoring case. */
export function hasToken(value: string | undefined, token: string): boolean {
  return (value ?? '').split(',').some((part) => part.trim().toLowerCase() === token)
}

/** The decoded path of a request target (origin or absolute form), as Go's `URL.Path`; undefined when malformed. */
export function requestPath(target: string): string | undefined {
  try {
    return decodeURIComponent(new URL(target, 'http://host.invalid').pathname)
  } catch {
    return undefined
  }
}

/** The host part of a Host field, lower case, without port or IPv6 brackets. */
export function hostOf(hostField: string): string {
  const host = hostField.trim().toLowerCase()
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']') < 0 ? undefined : host.indexOf(']'))
  const colon = host.lastIndexOf(':')
  return colon >= 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host
}

function isLoopback(address: string): boolean {
  const bare = address.startsWith('::ffff:') ? address.slice(7) : address
  return bare === '::1' || (isIP(bare) === 4 && bare.startsWith('127.'))
}

/**
 * The client a request came from: the last X-Forwarded-For entry when the TCP peer is a proxy on this host
 * (loopback), else the TCP peer. Only the nearest hop is trusted, so the entry our own proxy appended is used,
 * never one the client wrote; V2Ray takes the first entry from anyone, which lets clients spoof it.
 */
export function forwardedPeer(peer: PeerInfo, forwardedFor: string | undefined): PeerInfo {
  if (forwardedFor === undefined || !isLoopback(peer.remoteAddress)) return peer
  const last = forwardedFor.split(',').at(-1)?.trim() ?? ''
  const address = last.startsWith('[') && last.endsWith(']') ? last.slice(1, -1) : last
  return isIP(address) === 0 ? peer : { remoteAddress: address, remotePort: 0 }
}

/**
 * Reads one HTTP head (up to and including the empty line) from a socket and pauses it; the bytes after the
 * head come back as `rest`. Rejects with a TransportError when the head is longer than `maxBytes`, the peer
 * closes first, or `timeoutMs` passes.
 */
export function readHttpHead(
  socket: Duplex,
  options: { maxBytes: number; timeoutMs: number },
): Promise<{ head: Buffer; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0)
    const finish = (): void => {
      socket.pause()
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('close', onEnd)
      socket.off('error', onError)
    }
    const fail = (code: string, reason: string): void => {
      finish()
      reject(new TransportError(code, `Cannot read HTTP head: ${reason}`))
    }
    const onData = (bytes: Buffer): void => {
      const searchFrom = Math.max(0, buffered.length - HEAD_END.length + 1)
      buffered = buffered.length === 0 ? bytes : Buffer.concat([buffered, bytes])
      const end = buffered.indexOf(HEAD_END, searchFrom, 'latin1')
      if (end >= 0 && end + HEAD_END.length <= options.maxBytes) {
        finish()
        resolve({
          head: buffered.subarray(0, end + HEAD_END.length),
          rest: buffered.subarray(end + HEAD_END.length),
        })
      } else if (buffered.length >= options.maxBytes) {
        fail('HTTP_HEAD_TOO_LONG', `no empty line in the first ${options.maxBytes} bytes`)
      }
    }
    const onEnd = (): void => fail('HTTP_HEAD_TRUNCATED', `the peer closed after ${buffered.length} bytes`)
    const onError = (error: Error): void => {
      finish()
      reject(error)
    }
    const timer = setTimeout(
      () => fail('HTTP_HEAD_TIMEOUT', `no complete head in ${options.timeoutMs} ms`),
      options.timeoutMs,
    )
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('close', onEnd)
    socket.on('error', onError)
    socket.resume()
  })
}

/** Answers with `head` and a FIN, discards what the client still sends, and destroys after a short linger. */
export function refuseWithHead(socket: Duplex, head: Buffer | undefined): void {
  if (socket.destroyed) return
  socket.on('data', () => undefined)
  socket.resume()
  if (socket.writable) socket.end(head)
  const timer = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS)
  socket.once('close', () => clearTimeout(timer))
}

/** Options of an HttpHeadStream; each is optional, none gives a plain pass-through. */
export interface HttpHeadStreamOptions {
  /** Written in front of the first bytes (V2Ray's one-time writer), so both leave in one segment. */
  readonly outgoingHead?: Buffer
  /** Written instead when the stream ends before it wrote anything (V2Ray answers 400 on such a close). */
  readonly closingHead?: Buffer
  /** The peer's first bytes are a head: it is read (up to MAX_HTTP_HEAD_BYTES), checked and dropped. */
  readonly checkIncomingHead?: (head: Buffer) => Error | undefined
}

/**
 * A socket with an HTTP head in front of each direction, as a Duplex of the bytes after them. Half-close is
 * passed on; the socket's errors destroy the stream.
 */
export class HttpHeadStream extends Duplex {
  readonly #socket: Duplex
  #outgoingHead: Buffer | undefined
  readonly #closingHead: Buffer | undefined
  #incomingHead: { buffered: Buffer; check: (head: Buffer) => Error | undefined } | undefined

  constructor(socket: Duplex, options: HttpHeadStreamOptions = {}) {
    super({ allowHalfOpen: true })
    this.#socket = socket
    this.#outgoingHead = options.outgoingHead
    this.#closingHead = options.closingHead
    this.#incomingHead =
      options.checkIncomingHead === undefined
        ? undefined
        : { buffered: Buffer.alloc(0), check: options.checkIncomingHead }
    socket.on('data', (bytes: Buffer) => this.#receive(bytes))
    socket.on('end', () => {
      if (this.#incomingHead === undefined) this.push(null)
      else
        this.destroy(
          new TransportError('HTTP_HEAD_TRUNCATED', 'Cannot read HTTP head: the peer closed first'),
        )
    })
    socket.on('error', (error: Error) => this.destroy(error))
    // After a clean end, what was pushed but not yet read must still reach the reader before 'close'.
    socket.on('close', () => {
      if (!socket.readableEnded || this.readableEnded) this.destroy()
      else this.once('end', () => this.destroy())
    })
  }

  #receive(bytes: Buffer): void {
    if (this.destroyed) return
    let payload = bytes
    const pending = this.#incomingHead
    if (pending !== undefined) {
      const searchFrom = Math.max(0, pending.buffered.length - HEAD_END.length + 1)
      const buffered = pending.buffered.length === 0 ? bytes : Buffer.concat([pending.buffered, bytes])
      const end = buffered.indexOf(HEAD_END, searchFrom, 'latin1')
      if (end < 0 || end + HEAD_END.length > MAX_HTTP_HEAD_BYTES) {
        if (buffered.length >= MAX_HTTP_HEAD_BYTES) {
          this.destroy(
            new TransportError(
              'HTTP_HEAD_TOO_LONG',
              `Cannot read HTTP head: no empty line in the first ${MAX_HTTP_HEAD_BYTES} bytes`,
            ),
          )
        } else pending.buffered = buffered
        return
      }
      this.#incomingHead = undefined
      const problem = pending.check(buffered.subarray(0, end + HEAD_END.length))
      if (problem !== undefined) {
        this.destroy(problem)
        return
      }
      payload = buffered.subarray(end + HEAD_END.length)
      if (payload.length === 0) return
    }
    if (!this.push(payload)) this.#socket.pause()
  }

  override _read(): void {
    this.#socket.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const head = this.#outgoingHead
    this.#outgoingHead = undefined
    const wire = head === undefined ? chunk : Buffer.concat([head, chunk])
    if (this.#socket.write(wire)) callback()
    else this.#socket.once('drain', () => callback())
  }

  override _final(callback: (error?: Error | null) => void): void {
    const last = this.#outgoingHead === undefined ? undefined : this.#closingHead
    this.#outgoingHead = undefined
    this.#socket.end(last)
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy()
    callback(error)
  }
}

/**
 * Serves V2Ray's HTTP header obfuscation on an accepted socket: reads the client's fake request, answers 404
 * to an unknown path and 400 to an unreadable head (as V2Ray does), and hands the rest to `onStream` with the
 * fake response in front of the first bytes written.
 */
export function acceptHttpHeaderStream(
  socket: Duplex,
  peer: PeerInfo,
  options: { settings: HttpHeaderSettings; onStream: StreamHandler; logger?: Logger },
): void {
  const { settings, logger } = options
  readHttpHead(socket, { maxBytes: MAX_HTTP_HEAD_BYTES, timeoutMs: HTTP_HEAD_TIMEOUT_MS }).then(
    ({ head, rest }) => {
      const request = parseRequestHead(head)
      const path = request === undefined ? undefined : requestPath(request.startLine[1])
      if (request === undefined || path === undefined) {
        logger?.debug({ peer: peer.remoteAddress }, 'HTTP header obfuscation: unreadable request head')
        refuseWithHead(socket, encodeResponseHead(BAD_REQUEST_RESPONSE))
        return
      }
      if (!settings.request.paths.includes(path)) {
        logger?.debug({ peer: peer.remoteAddress, path }, 'HTTP header obfuscation: unknown path')
        refuseWithHead(socket, encodeResponseHead(NOT_FOUND_RESPONSE))
        return
      }
      if (rest.length > 0) socket.unshift(rest)
      const stream = new HttpHeadStream(socket, {
        outgoingHead: encodeResponseHead(settings.response),
        closingHead: encodeResponseHead(BAD_REQUEST_RESPONSE),
      })
      stream.on('error', () => undefined)
      options.onStream(stream, peer)
    },
    (error: unknown) => {
      logger?.debug(
        { peer: peer.remoteAddress, err: errorCode(error) },
        'HTTP header obfuscation: no request head',
      )
      if (error instanceof TransportError) refuseWithHead(socket, encodeResponseHead(BAD_REQUEST_RESPONSE))
      else socket.destroy()
    },
  )
}

/** A client socket with V2Ray's HTTP header obfuscation: the fake request goes with the first bytes, the fake response is dropped. */
export function wrapHttpHeaderClient(socket: Duplex, settings: HttpHeaderSettings): HttpHeadStream {
  // V2Ray's client reads any head up to the empty line without looking at it.
  return new HttpHeadStream(socket, {
    outgoingHead: encodeRequestHead(settings.request),
    checkIncomingHead: () => undefined,
  })
}

/** The `code` of an error for a log line. */
export function errorCode(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : String(error)
}
