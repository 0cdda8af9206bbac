import { Duplex } from 'node:stream'
import { ProtocolError } from '../errors.js'
import { ByteQueue } from '../protocol/byte-queue.js'
import { ChunkOpener } from '../protocol/chunk-opener.js'
import { ChunkSealer, TCP_CHUNK_LENGTH, wireBufferPool } from '../protocol/chunk-sealer.js'
import type { ClientRequest } from '../protocol/client-request.js'
import { Security } from '../protocol/constants.js'
import { ResponseHeaderParser } from '../protocol/response-header.js'
import { requestBodyParams, responseBodyParams, transferOf } from '../protocol/session-keys.js'
import { pushPayloads } from './push-payloads.js'

/** How long the header waits for first data so both leave in one write, as V2Ray waits (PROTOCOL §2). */
export const FIRST_DATA_WAIT_MS = 100

/** Options of a VMess stream's writer. */
export interface VmessStreamOptions {
  /**
   * Whole-chunk limit of the TCP body this side writes: TCP_CHUNK_LENGTH (65,535) by default, which
   * V2Ray and Xray read; SING_CHUNK_LENGTH for a sing-box peer (PROTOCOL §7.3). UDP keeps 2,048.
   */
  readonly maxChunkLength?: number
}

/**
 * The client's VMess connection as a Duplex of plaintext: writes become the request (the header
 * leaves with the first data), reads are the response body. Object mode for UDP, one datagram each.
 */
export class VmessClientStream extends Duplex {
  readonly #socket: Duplex
  /**
   * The request and the response parser are dropped once the header is out and the response in:
   * their buffers are slices of Node's shared pool, and a tunnel holding them would keep whole
   * 8 KiB pool slabs alive for its lifetime (measured ~4 KiB of RSS per idle tunnel).
   */
  #request: ClientRequest | undefined
  #responseParser: ResponseHeaderParser | undefined
  readonly #sealer: ChunkSealer
  readonly #queue = new ByteQueue()
  #opener: ChunkOpener | undefined
  #headerSent = false
  #headerTimer: NodeJS.Timeout | undefined
  /** Pool buffers handed to socket writes, in write order; each write's callback gives one back. */
  readonly #inFlight: Buffer[] = []
  readonly #onWireWritten = (): void => {
    const wire = this.#inFlight.shift()
    if (wire !== undefined) wireBufferPool.give(wire)
  }

  constructor(socket: Duplex, request: ClientRequest, options: VmessStreamOptions = {}) {
    const packet = transferOf(request.header) === 'packet'
    super({ allowHalfOpen: true, objectMode: packet })
    this.#socket = socket
    this.#request = request
    this.#sealer = new ChunkSealer(
      requestBodyParams(request.header),
      packet ? {} : { maxChunkLength: options.maxChunkLength ?? TCP_CHUNK_LENGTH },
    )
    this.#responseParser = new ResponseHeaderParser(request.kind, request.responseKeys)
    socket.on('data', (bytes: Buffer) => this.#receive(bytes))
    socket.on('end', () => this.#onSocketEnd())
    socket.on('close', () => this.destroy())
    // Protocols where the server speaks first need the header sent without client data.
    this.#headerTimer = setTimeout(() => this.#sendHeaderAlone(), FIRST_DATA_WAIT_MS)
  }

  /** Largest datagram one write may carry in object (UDP) mode. */
  get maxDatagram(): number {
    return this.#sealer.maxPayload
  }

  #sendHeaderAlone(): void {
    if (this.#headerSent || this.destroyed) return
    const wire = this.#takeHeader()
    if (wire !== undefined) this.#socket.write(wire)
  }

  #takeHeader(): Buffer | undefined {
    clearTimeout(this.#headerTimer)
    const request = this.#request
    if (this.#headerSent || request === undefined) return undefined
    this.#headerSent = true
    if (this.#opener !== undefined) this.#request = undefined
    return request.wire
  }

  #receive(bytes: Buffer): void {
    if (this.destroyed) return
    try {
      let payloads: Buffer[]
      if (this.#opener === undefined) {
        const request = this.#request!
        const parser = this.#responseParser!
        this.#queue.push(bytes)
        const response = parser.parse(this.#queue)
        if (response === undefined) return
        if (response.responseV !== request.header.responseV) {
          throw new ProtocolError('RESPONSE_MISMATCH', 'Cannot accept response: V does not echo the request')
        }
        const cfb = request.header.security === Security.Aes128Cfb ? parser.cfbDecipher : undefined
        const opener = new ChunkOpener(responseBodyParams(request.header, request.kind, cfb))
        this.#opener = opener
        this.#responseParser = undefined
        if (this.#headerSent) this.#request = undefined
        // The server accepted the user: the outbound's silent-server watch stops here.
        this.emit('response')
        payloads = this.#queue.drain().flatMap((rest) => opener.push(rest))
      } else {
        payloads = this.#opener.push(bytes)
      }
      if (!pushPayloads(this, payloads)) this.#socket.pause()
      if (this.#opener.ended) this.#finishReading()
    } catch (error) {
      this.destroy(error as Error)
    }
  }

  #finishReading(): void {
    if (this.readableEnded || this.destroyed) return
    this.push(null)
  }

  // An EOF before the response header or inside a chunk is a truncated response, not an end: fail,
  // so the relay resets the app side instead of passing a cut-short body on as complete.
  #onSocketEnd(): void {
    const opener = this.#opener
    if (opener !== undefined && (opener.ended || opener.atChunkBoundary)) {
      this.#finishReading()
      return
    }
    const error =
      opener === undefined
        ? new ProtocolError('RESPONSE_TRUNCATED', 'Cannot read the response header: the server closed first')
        : new ProtocolError(
            'CHUNK_TRUNCATED',
            'Cannot end the response body: the server closed inside a chunk',
          )
    this.destroy(error)
  }

  override _read(): void {
    this.#socket.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let wire: Buffer
    try {
      const header = this.#takeHeader()
      wire =
        header === undefined
          ? this.#sealer.seal(chunk, takeWire)
          : Buffer.concat([header, this.#sealer.seal(chunk)])
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
      const header = this.#takeHeader()
      const sealed = this.writableObjectMode
        ? Buffer.concat(chunks.map(({ chunk }) => this.#sealer.seal(chunk)))
        : this.#sealer.seal(Buffer.concat(chunks.map(({ chunk }) => chunk)))
      wire = header === undefined ? sealed : Buffer.concat([header, sealed])
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
    const header = this.#takeHeader()
    const end = this.#sealer.end()
    this.#socket.end(header === undefined ? end : Buffer.concat([header, end]))
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#headerTimer)
    this.#socket.destroy()
    // The cipher contexts go now, not at garbage collection.
    this.#sealer.dispose()
    this.#opener?.dispose()
    callback(error)
  }
}

const takeWire = (length: number): Buffer => wireBufferPool.take(length)
