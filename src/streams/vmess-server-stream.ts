import { ProtocolError } from '../errors.js'
import { Duplex } from 'node:stream'
import { ByteQueue } from '../protocol/byte-queue.js'
import { ChunkOpener } from '../protocol/chunk-opener.js'
import { ChunkSealer, SING_CHUNK_LENGTH, TCP_CHUNK_LENGTH, wireBufferPool } from '../protocol/chunk-sealer.js'
import { Security } from '../protocol/constants.js'
import type { RequestHeader } from '../protocol/request-header.js'
import {
  deriveResponseKeys,
  encodeAeadResponseHeader,
  encodeLegacyResponseHeader,
  type HeaderKind,
} from '../protocol/response-header.js'
import { requestBodyParams, responseBodyParams, transferOf } from '../protocol/session-keys.js'
import { pushPayloads } from './push-payloads.js'

/**
 * The server's view of an accepted VMess connection as a Duplex of plaintext: reads are the
 * request body, writes become the response (header with the first bytes, as V2Ray does, PROTOCOL §6.3).
 * For UDP (packet transfer) it is in object mode: one Buffer per datagram each way.
 */
export class VmessServerStream extends Duplex {
  readonly header: RequestHeader
  readonly #socket: Duplex
  readonly #kind: HeaderKind
  readonly #opener: ChunkOpener
  #sealer: ChunkSealer | undefined
  /** Ceiling of the response's TCP chunks; undefined for packets (their 2,048-byte rule holds). */
  readonly #maxChunkLength: number | undefined
  /** The response's current chunk limit: it follows the client's own largest chunk up to the ceiling. */
  #chunkLength = 0
  #onData = (bytes: Buffer): void => this.#receive(bytes)
  // A close inside a chunk is a truncated body, not an end: fail the tunnel so nothing answers it.
  #onEnd = (): void => {
    if (this.#opener.atChunkBoundary) this.#finishReading()
    else
      this.destroy(
        new ProtocolError('CHUNK_TRUNCATED', 'Cannot end the request body: the client closed inside a chunk'),
      )
  }
  /** Pool buffers handed to socket writes, in write order; each write's callback gives one back. */
  readonly #inFlight: Buffer[] = []
  readonly #onWireWritten = (): void => {
    const wire = this.#inFlight.shift()
    if (wire !== undefined) wireBufferPool.give(wire)
  }

  constructor(
    socket: Duplex,
    options: {
      header: RequestHeader
      kind: HeaderKind
      buffered: ByteQueue
      /**
       * Ceiling of the response body's whole chunks over TCP: TCP_CHUNK_LENGTH by default. Below it the
       * response never uses larger chunks than the client has sent (at least SING_CHUNK_LENGTH): a client
       * reads what it writes, and sing-box or mihomo clients cannot read 64 KiB chunks (PROTOCOL §7.3).
       */
      maxChunkLength?: number
    },
  ) {
    const packet = transferOf(options.header) === 'packet'
    super({ allowHalfOpen: true, objectMode: packet })
    this.header = ownHeader(options.header)
    this.#socket = socket
    this.#kind = options.kind
    this.#maxChunkLength = packet ? undefined : (options.maxChunkLength ?? TCP_CHUNK_LENGTH)
    this.#opener = new ChunkOpener(requestBodyParams(options.header))
    socket.on('data', this.#onData)
    socket.on('end', this.#onEnd)
    socket.on('close', () => this.destroy())
    const buffered = options.buffered.drain()
    for (const bytes of buffered) this.#receive(bytes)
  }

  #receive(bytes: Buffer): void {
    if (this.destroyed) return
    let payloads: Buffer[]
    try {
      payloads = this.#opener.push(bytes)
    } catch (error) {
      this.destroy(error as Error)
      return
    }
    if (!pushPayloads(this, payloads)) this.#socket.pause()
    if (this.#opener.ended) this.#finishReading()
  }

  #finishReading(): void {
    if (this.readableEnded || this.destroyed) return
    this.#socket.off('data', this.#onData)
    this.#socket.off('end', this.#onEnd)
    this.push(null)
  }

  override _read(): void {
    this.#socket.resume()
  }

  #responseStart(): Buffer {
    const header = { responseV: this.header.responseV, options: 0, command: 0, commandBytes: Buffer.alloc(0) }
    const keys = deriveResponseKeys(this.#kind, this.header.bodyKey, this.header.bodyIv)
    if (this.#maxChunkLength !== undefined)
      this.#chunkLength = this.#responseChunkLength(this.#maxChunkLength)
    const sealerOptions = this.#maxChunkLength === undefined ? {} : { maxChunkLength: this.#chunkLength }
    if (this.#kind === 'legacy') {
      const { wire, cipher } = encodeLegacyResponseHeader(header, keys)
      const continueCfb = this.header.security === Security.Aes128Cfb ? cipher : undefined
      this.#sealer = new ChunkSealer(responseBodyParams(this.header, this.#kind, continueCfb), sealerOptions)
      return wire
    }
    this.#sealer = new ChunkSealer(responseBodyParams(this.header, this.#kind), sealerOptions)
    return encodeAeadResponseHeader(header, keys)
  }

  /** SING_CHUNK_LENGTH, or the client's largest chunk so far when larger, within `ceiling`. */
  #responseChunkLength(ceiling: number): number {
    return Math.min(ceiling, Math.max(SING_CHUNK_LENGTH, this.#opener.largestChunkLength))
  }

  /** Raises the response's chunk limit once the client has sent larger chunks. */
  #followClientChunks(): void {
    if (this.#maxChunkLength === undefined || this.#sealer === undefined) return
    const next = this.#responseChunkLength(this.#maxChunkLength)
    if (next <= this.#chunkLength) return
    this.#chunkLength = next
    this.#sealer.setMaxChunkLength(next)
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let wire: Buffer
    try {
      this.#followClientChunks()
      const start = this.#sealer === undefined ? this.#responseStart() : undefined
      wire =
        start === undefined
          ? this.#sealer!.seal(chunk, takeWire)
          : Buffer.concat([start, this.#sealer!.seal(chunk)])
    } catch (error) {
      callback(error as Error)
      return
    }
    this.#send(wire, callback)
  }

  /** What queued while the socket was busy leaves as one write (STYLE §8): one chunk, or a datagram each. */
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    let wire: Buffer
    try {
      this.#followClientChunks()
      const start = this.#sealer === undefined ? this.#responseStart() : undefined
      const sealer = this.#sealer!
      const sealed = this.writableObjectMode
        ? Buffer.concat(chunks.map(({ chunk }) => sealer.seal(chunk)))
        : sealer.seal(Buffer.concat(chunks.map(({ chunk }) => chunk)))
      wire = start === undefined ? sealed : Buffer.concat([start, sealed])
    } catch (error) {
      callback(error as Error)
      return
    }
    this.#send(wire, callback)
  }

  #send(wire: Buffer, callback: (error?: Error | null) => void): void {
    if (wire.length === 0) {
      callback()
      return
    }
    // One socket write per input write (STYLE §8); the pool buffer returns when the write completes.
    this.#inFlight.push(wire)
    if (this.#socket.write(wire, this.#onWireWritten)) callback()
    else this.#socket.once('drain', () => callback())
  }

  override _final(callback: (error?: Error | null) => void): void {
    const start = this.#sealer === undefined ? this.#responseStart() : undefined
    const end = this.#sealer!.end()
    this.#socket.end(start === undefined ? end : Buffer.concat([start, end]))
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy()
    // The cipher contexts go now, not at garbage collection.
    this.#opener.dispose()
    this.#sealer?.dispose()
    callback(error)
  }
}

const takeWire = (length: number): Buffer => wireBufferPool.take(length)

/**
 * The header with its buffers copied into one allocation of its own: the parser's are slices of
 * Node's shared 8 KiB pool, and a tunnel holding them would keep whole pool slabs alive for its
 * lifetime (measured ~4.5 KiB of RSS per idle tunnel).
 */
function ownHeader(header: RequestHeader): RequestHeader {
  const store = Buffer.allocUnsafeSlow(header.bodyIv.length + header.bodyKey.length + header.padding.length)
  const bodyIv = store.subarray(0, header.bodyIv.length)
  const bodyKey = store.subarray(bodyIv.length, bodyIv.length + header.bodyKey.length)
  const padding = store.subarray(bodyIv.length + bodyKey.length)
  bodyIv.set(header.bodyIv)
  bodyKey.set(header.bodyKey)
  padding.set(header.padding)
  return { ...header, bodyIv, bodyKey, padding }
}
