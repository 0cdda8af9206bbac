import type { Cipher, Decipher } from 'node:crypto'
import {
  AEAD_TAG_LENGTH,
  fnv1a32,
  type AeadContext,
  secureRandom,
  ShakeStream,
  type RandomSource,
} from '../crypto/index.js'
import { ProtocolError } from '../errors.js'
import {
  chunkOverhead,
  checkMaxChunkLength,
  bodyCfb,
  resolveBodyFraming,
  aeadContext,
  type BodyFraming,
  type BodyParams,
} from './body-framing.js'
import { MAX_UDP_CHUNK_LENGTH } from './constants.js'

/**
 * Default whole-chunk size for streams: a GCM/ChaCha cipher object costs the same whatever the chunk
 * size, so larger chunks are cheaper, and V2Ray 4.34 accepts them (PROTOCOL §7.3).
 */
export const STREAM_CHUNK_LENGTH = 16_384

/**
 * Whole-chunk size for TCP tunnels: one chunk per 64 KiB socket read. V2Ray and Xray read chunks of
 * up to 65,535 bytes (PROTOCOL §7.3); measured with bench/e2e.ts, see README "Performance".
 */
export const TCP_CHUNK_LENGTH = 65_535

/**
 * Whole-chunk size a sing-vmess peer (sing-box, mihomo) can read: its chunk readers
 * (`AEADChunkReader.Read`, `StreamChunkReader.Read`) fail with io.ErrShortBuffer when a chunk's
 * payload and tag exceed the caller's buffer: sing's `buf.BufferSize` (32 KiB, 16 KiB in low-memory
 * builds), mihomo's `pool.RelayBufferSize` (20 KiB, 16 KiB). 2 + 16,384 + 64 reserved padding fits all.
 */
export const SING_CHUNK_LENGTH = 2 + 16_384 + 64

/**
 * Free lists of wire buffers, so sealing a socket write allocates nothing: `take` one for
 * `ChunkSealer.seal`, hand the result to `write`, and `give` it back in the write's callback, once
 * the socket is done with it. Blocks are sized to the write: one size class per power of two from
 * `minBlockLength` up to `blockLength`, so a few-byte write never holds a 64 KiB block (a peer that
 * provokes thousands of tiny writes at once would otherwise pin thousands of them). Writes below the
 * smallest class and above the largest are plain allocations and never kept.
 */
export class WireBufferPool {
  readonly blockLength: number
  readonly minBlockLength: number
  readonly #maxFree: number
  /** Free blocks per size class, smallest class first. */
  readonly #free: ArrayBuffer[][] = []
  readonly #sizes: number[] = []
  readonly #own = new WeakSet<ArrayBufferLike>()

  constructor(options: { blockLength: number; maxFree: number; minBlockLength?: number }) {
    this.blockLength = options.blockLength
    this.minBlockLength = Math.min(options.minBlockLength ?? MIN_POOLED_WRITE, options.blockLength)
    this.#maxFree = options.maxFree
    for (let size = this.minBlockLength; ; size *= 2) {
      this.#sizes.push(Math.min(size, this.blockLength))
      this.#free.push([])
      if (size >= this.blockLength) break
    }
  }

  /** A buffer of exactly `length` bytes, from the free list of the smallest class it fits. */
  take(length: number): Buffer {
    if (length > this.blockLength || length < this.minBlockLength) return Buffer.allocUnsafe(length)
    const sizes = this.#sizes
    let index = 0
    while (sizes[index]! < length) index++
    let block = this.#free[index]!.pop()
    if (block === undefined) {
      block = new ArrayBuffer(sizes[index]!)
      this.#own.add(block)
    }
    return Buffer.from(block, 0, length)
  }

  /** Returns a buffer from `take` whose write has completed; anything else is ignored. */
  give(buffer: Buffer): void {
    const block = buffer.buffer
    if (!(block instanceof ArrayBuffer) || !this.#own.has(block)) return
    const index = this.#sizes.indexOf(block.byteLength)
    const free = this.#free[index]
    if (free !== undefined && free.length < this.#maxFree) free.push(block)
  }
}

/**
 * Writes below this are plain allocations: Node carves them from its shared 8 KiB slabs, so they
 * hold about their own size.
 */
const MIN_POOLED_WRITE = 2_048

/**
 * The pool the VMess streams seal into: its largest blocks fit one 64 KiB socket read sealed as
 * TCP_CHUNK_LENGTH chunks; up to 16 free blocks per class (about 2 MiB in all) serve many busy
 * tunnels, and idle ones hold none.
 */
export const wireBufferPool = new WireBufferPool({ blockLength: 66 * 1024, maxFree: 16 })

const EMPTY = Buffer.alloc(0)
const PADDING_MODULUS = 64
const allocateWire = (length: number): Buffer => Buffer.allocUnsafe(length)
/**
 * Scratch shared by every sealer, consumed within one `seal` or `end` call (STYLE §8): the SHAKE
 * draws of the current write (padding length, length mask per chunk) and a plaintext length field.
 */
let draws = new Uint16Array(64)
const lengthPlain = Buffer.alloc(2)
const COUNTER_MASK = 0xffff

/**
 * Largest payload per chunk (per datagram for packets) when whole chunks, length field and padding
 * included, stay ≤ maxChunkLength (PROTOCOL §7.3, §8); Infinity for raw bodies.
 */
export function maxPayloadFor(params: BodyParams, maxChunkLength: number): number {
  const framing = resolveBodyFraming(params)
  if (framing.kind === 'raw') return Number.POSITIVE_INFINITY
  checkMaxChunkLength(framing, maxChunkLength)
  return maxChunkLength - chunkOverhead(framing)
}

/**
 * Turns one direction's plaintext into VMess body bytes (PROTOCOL §7): `seal` per write, `end` once.
 * @example
 * const sealer = new ChunkSealer({ security: 3, options: 0x0d, transfer: 'stream', key, iv, requestKey: key, requestIv: iv })
 * socket.write(sealer.seal(data))
 * socket.end(sealer.end())
 */
export class ChunkSealer {
  #maxPayload: number
  readonly #framing: BodyFraming
  readonly #packet: boolean
  readonly #random: RandomSource
  readonly #shake: ShakeStream | undefined
  readonly #cfb: Cipher | Decipher | undefined
  readonly #payloadCipher: AeadContext | undefined
  readonly #lengthCipher: AeadContext | undefined
  // The framing's own nonce templates, written in place per chunk and consumed at once by the cipher.
  readonly #nonce: Buffer
  readonly #lengthNonce: Buffer
  #counter = 0
  #lengthCounter = 0
  #ended = false

  constructor(params: BodyParams, options: { maxChunkLength?: number; random?: RandomSource } = {}) {
    const framing = resolveBodyFraming(params)
    this.#framing = framing
    this.#packet = params.transfer === 'packet'
    this.#random = options.random ?? secureRandom
    if (framing.kind === 'raw') {
      this.#maxPayload = Number.POSITIVE_INFINITY
    } else {
      const maxChunkLength =
        options.maxChunkLength ?? (this.#packet ? MAX_UDP_CHUNK_LENGTH : STREAM_CHUNK_LENGTH)
      checkMaxChunkLength(framing, maxChunkLength)
      this.#maxPayload = maxChunkLength - chunkOverhead(framing)
    }
    this.#shake = framing.shakeSeed === undefined ? undefined : new ShakeStream(framing.shakeSeed)
    this.#cfb = framing.cfb ? bodyCfb(params, 'seal') : undefined
    this.#payloadCipher = aeadContext(framing.payloadKey, 'seal')
    this.#lengthCipher = aeadContext(framing.lengthKey, 'seal')
    this.#nonce = framing.payloadKey?.iv ?? EMPTY
    this.#lengthNonce = framing.lengthKey?.iv ?? EMPTY
  }

  /** Largest payload of one chunk, and so of one datagram for packets; Infinity for raw bodies. */
  get maxPayload(): number {
    return this.#maxPayload
  }

  /**
   * Changes the whole-chunk limit for the chunks sealed from now on (streams only: a datagram's limit
   * is fixed). The reader sees each chunk's length, so the size may change at any chunk.
   */
  setMaxChunkLength(maxChunkLength: number): void {
    if (this.#framing.kind === 'raw' || this.#packet) return
    checkMaxChunkLength(this.#framing, maxChunkLength)
    this.#maxPayload = maxChunkLength - chunkOverhead(this.#framing)
  }

  /**
   * The wire bytes for `plaintext`: as many chunks as it needs, in one buffer from `allocate` (a
   * `WireBufferPool`'s `take`, for instance). A packet is one datagram, so exactly one chunk; an
   * empty datagram is skipped (PROTOCOL §8). A raw none body returns `plaintext` itself.
   */
  seal(plaintext: Buffer, allocate: (length: number) => Buffer = allocateWire): Buffer {
    if (this.#ended) throw new ProtocolError('BODY_ENDED', 'Cannot seal body: the end chunk was sent')
    // An empty chunk would be the end marker (PROTOCOL §7.3).
    if (plaintext.length === 0) return EMPTY
    if (this.#framing.kind === 'raw') return this.#cfb === undefined ? plaintext : this.#cfb.update(plaintext)
    const maxPayload = this.#maxPayload
    if (this.#packet && plaintext.length > maxPayload) {
      throw new ProtocolError(
        'DATAGRAM_TOO_LARGE',
        `Cannot seal datagram: length is ${plaintext.length}, limit is ${maxPayload}`,
      )
    }
    // Size first (the SHAKE draws fix each chunk's padding), allocate once, write in place (STYLE §8).
    const count = Math.ceil(plaintext.length / maxPayload)
    const out = allocate(plaintext.length + this.#draw(count))
    let offset = 0
    for (let i = 0, start = 0; i < count; i++, start += maxPayload) {
      offset = this.#writeChunk(
        out,
        offset,
        i,
        plaintext,
        start,
        Math.min(start + maxPayload, plaintext.length),
      )
    }
    return this.#finish(out)
  }

  /**
   * Releases the cipher contexts now rather than at garbage collection (the stream closed); later
   * `seal` calls throw BODY_ENDED.
   */
  dispose(): void {
    this.#ended = true
    this.#payloadCipher?.free()
    this.#lengthCipher?.free()
  }

  /** The end-of-stream chunk when option S is set, else empty (the transport close ends it, PROTOCOL §7.7). */
  end(): Buffer {
    if (this.#ended) return EMPTY
    this.#ended = true
    if (!this.#framing.endMarker) return EMPTY
    const out = Buffer.allocUnsafe(this.#draw(1))
    this.#writeChunk(out, 0, 0, EMPTY, 0, 0)
    return this.#finish(out)
  }

  #finish(chunks: Buffer): Buffer {
    // With cfb the whole chunk, length field included, goes through the direction's stream (PROTOCOL §7.2).
    return this.#cfb === undefined ? chunks : this.#cfb.update(chunks)
  }

  /**
   * Draws the SHAKE values of the next `count` chunks into `draws`, in the order of PROTOCOL §7.3
   * (padding length, then mask, per chunk), and returns the bytes they add around the payloads.
   */
  #draw(count: number): number {
    const framing = this.#framing
    const shake = this.#shake
    if (draws.length < 2 * count) draws = new Uint16Array(2 * count)
    let padding = 0
    for (let i = 0; i < count; i++) {
      const p = framing.padding && shake !== undefined ? shake.nextUint16() % PADDING_MODULUS : 0
      draws[2 * i] = p
      draws[2 * i + 1] = framing.masking && shake !== undefined ? shake.nextUint16() : 0
      padding += p
    }
    return count * (framing.lengthFieldLength + framing.tagLength) + padding
  }

  #writeChunk(
    out: Buffer,
    offset: number,
    index: number,
    plaintext: Buffer,
    start: number,
    end: number,
  ): number {
    const framing = this.#framing
    const payloadLength = end - start
    const padding = draws[2 * index] ?? 0
    let at = offset
    if (this.#lengthCipher === undefined) {
      const mask = draws[2 * index + 1] ?? 0
      out.writeUInt16BE((payloadLength + framing.tagLength + padding) ^ mask, at)
      at += 2
    } else {
      at = this.#sealLength(this.#lengthCipher, out, at, payloadLength + padding)
    }
    switch (framing.sealing) {
      case 'aead':
        if (this.#payloadCipher !== undefined) {
          at = this.#sealPayload(this.#payloadCipher, out, at, plaintext, start, end)
        }
        break
      case 'fnv':
        // The checksum comes first (PROTOCOL §7.3).
        out.writeUInt32BE(fnv1a32(plaintext, start, end), at)
        at += plaintext.copy(out, at + 4, start, end) + 4
        break
      case 'plain':
        at += plaintext.copy(out, at, start, end)
        break
    }
    if (padding > 0) {
      out.set(this.#random(padding), at)
      at += padding
    }
    return at
  }

  #sealPayload(
    cipher: AeadContext,
    out: Buffer,
    at: number,
    plaintext: Buffer,
    start: number,
    end: number,
  ): number {
    this.#nonce.writeUInt16BE(this.#counter, 0)
    // Counters wrap silently at 65,536, as every core does (PROTOCOL §7.1).
    this.#counter = (this.#counter + 1) & COUNTER_MASK
    cipher.seal(this.#nonce, plaintext, start, end, out, at)
    return at + end - start + AEAD_TAG_LENGTH
  }

  #sealLength(cipher: AeadContext, out: Buffer, at: number, value: number): number {
    // The stored value is L − 16 = n + p, sealed with the request key and IV (PROTOCOL §7.6).
    lengthPlain.writeUInt16BE(value, 0)
    this.#lengthNonce.writeUInt16BE(this.#lengthCounter, 0)
    this.#lengthCounter = (this.#lengthCounter + 1) & COUNTER_MASK
    cipher.seal(this.#lengthNonce, lengthPlain, 0, 2, out, at)
    return at + 2 + AEAD_TAG_LENGTH
  }
}
