import type { Cipher, Decipher } from 'node:crypto'
import { AEAD_TAG_LENGTH, fnv1a32, ShakeStream, type AeadContext } from '../crypto/index.js'
import { ProtocolError } from '../errors.js'
import {
  aeadContext,
  bodyCfb,
  resolveBodyFraming,
  type BodyFraming,
  type BodyParams,
} from './body-framing.js'
import { ByteQueue } from './byte-queue.js'
import { MAX_CHUNK_LENGTH } from './constants.js'

const PADDING_MODULUS = 64
const COUNTER_MASK = 0xffff
const FNV_LENGTH = 4
const EMPTY = Buffer.alloc(0)

/** Where the parser stands within a chunk. */
const Phase = {
  /** Waiting for the 2- or 18-byte length field. */
  Length: 0,
  /** Streaming the sealed payload through the decipher as it arrives. */
  Payload: 1,
  /** Waiting for the tag and padding that follow the payload. */
  Trailer: 2,
  /** Waiting for a whole cfb chunk: its checksum comes first, so it is checked at once. */
  Whole: 3,
} as const
type PhaseValue = (typeof Phase)[keyof typeof Phase]

/**
 * Turns one direction's VMess body bytes back into plaintext (PROTOCOL §7): a push parser that
 * accepts input split anywhere and returns every payload completed so far.
 * @example
 * const opener = new ChunkOpener({ security: 3, options: 0x0d, transfer: 'stream', key, iv, requestKey: key, requestIv: iv })
 * socket.on('data', (bytes) => { for (const payload of opener.push(bytes)) target.write(payload) })
 */
export class ChunkOpener {
  readonly #framing: BodyFraming
  readonly #packet: boolean
  readonly #maxChunkLength: number
  /** Holds only fixed-size items split across reads: a length field, a trailer, a cfb chunk. */
  readonly #queue = new ByteQueue()
  readonly #shake: ShakeStream | undefined
  readonly #cfb: Cipher | Decipher | undefined
  readonly #payloadCipher: AeadContext | undefined
  readonly #lengthCipher: AeadContext | undefined
  // Scratch for values consumed at once by the cipher (STYLE §8).
  readonly #nonce: Buffer
  readonly #lengthNonce: Buffer
  #counter = 0
  #lengthCounter = 0
  #phase: PhaseValue = Phase.Length
  /** Sealed payload bytes of the current chunk still to come. */
  #remaining = 0
  /** Size of the item awaited in Phase.Trailer (tag + padding) or Phase.Whole (the chunk). */
  #fixedLength = 0
  /** Padding at the end of the cfb chunk awaited in Phase.Whole. */
  #paddingLength = 0
  /** Sealed payload of the current chunk as it arrived: views of the pushed buffers. */
  readonly #pending: Buffer[] = []
  #pendingLength = 0
  /** The bytes being pushed and how far they are parsed. */
  #input: Buffer = EMPTY
  #offset = 0
  /** The fixed-size item #gather collected: in the input, or copied from the queue. */
  #item: Buffer = EMPTY
  #itemOffset = 0
  #ended = false
  #largestChunkLength = 0

  constructor(params: BodyParams, options: { maxChunkLength?: number } = {}) {
    const framing = resolveBodyFraming(params)
    const maxChunkLength = options.maxChunkLength ?? MAX_CHUNK_LENGTH
    if (!Number.isInteger(maxChunkLength) || maxChunkLength < 1 || maxChunkLength > MAX_CHUNK_LENGTH) {
      throw new RangeError(
        `Cannot open body: maxChunkLength is ${maxChunkLength}, expected 1..${MAX_CHUNK_LENGTH}`,
      )
    }
    this.#framing = framing
    this.#packet = params.transfer === 'packet'
    this.#maxChunkLength = maxChunkLength
    this.#shake = framing.shakeSeed === undefined ? undefined : new ShakeStream(framing.shakeSeed)
    this.#cfb = framing.cfb ? bodyCfb(params, 'open') : undefined
    this.#payloadCipher = aeadContext(framing.payloadKey, 'open')
    this.#lengthCipher = aeadContext(framing.lengthKey, 'open')
    // The framing's own nonce templates, written in place per chunk.
    this.#nonce = framing.payloadKey?.iv ?? EMPTY
    this.#lengthNonce = framing.lengthKey?.iv ?? EMPTY
  }

  /** True once the end-of-stream chunk was read; later bytes are ignored (PROTOCOL §7.7). */
  get ended(): boolean {
    return this.#ended
  }

  /** True when no chunk is partly received, so a transport close here is a clean end (PROTOCOL §7.7). */
  get atChunkBoundary(): boolean {
    return this.#framing.kind === 'raw' || (this.#phase === Phase.Length && this.#queue.length === 0)
  }

  /** The largest whole chunk (length field included) whose length was read so far; 0 before the first. */
  get largestChunkLength(): number {
    return this.#largestChunkLength
  }

  /** Bytes received and not yet returned: part of a chunk, or a payload awaiting its tag and padding. */
  get buffered(): number {
    return this.#queue.length + this.#pendingLength
  }

  /** Releases the cipher contexts now rather than at garbage collection (the stream closed); later pushes return nothing. */
  dispose(): void {
    this.#ended = true
    this.#payloadCipher?.free()
    this.#lengthCipher?.free()
  }

  /**
   * Feeds received bytes (the opener keeps views of `wire` and may decrypt them in place: do not
   * reuse it). Returns every payload
   * completed so far, never an empty one. For packets each is one whole datagram (PROTOCOL §8); for
   * streams a chunk that arrived in pieces may come back in pieces.
   */
  push(wire: Buffer): Buffer[] {
    if (this.#ended || wire.length === 0) return []
    // The whole direction is one CFB stream, length fields included, so decrypt as it arrives (PROTOCOL §7.2).
    const bytes = this.#cfb === undefined ? wire : this.#cfb.update(wire)
    if (this.#framing.kind === 'raw') return bytes.length === 0 ? [] : [bytes]
    const payloads: Buffer[] = []
    this.#input = bytes
    this.#offset = 0
    try {
      while (this.#offset < bytes.length && !this.#ended) {
        switch (this.#phase) {
          case Phase.Length: {
            if (this.#gather(this.#framing.lengthFieldLength)) this.#readLength()
            break
          }
          case Phase.Payload:
            this.#streamPayload(payloads)
            break
          case Phase.Trailer: {
            if (this.#gather(this.#fixedLength)) this.#release(payloads)
            break
          }
          case Phase.Whole: {
            if (this.#gather(this.#fixedLength)) payloads.push(this.#openWhole())
            break
          }
        }
      }
    } finally {
      this.#input = EMPTY
      this.#item = EMPTY
    }
    return payloads
  }

  /**
   * Collects `need` contiguous bytes (queued ones first) into #item at #itemOffset; false when the
   * input ran out first. No view is made: the hot path reads the length and tag in place.
   */
  #gather(need: number): boolean {
    const queue = this.#queue
    const input = this.#input
    const offset = this.#offset
    const available = input.length - offset
    // The common case: the item lies within this read.
    if (queue.length === 0 && available >= need) {
      this.#item = input
      this.#itemOffset = offset
      this.#offset = offset + need
      return true
    }
    const take = Math.min(need - queue.length, available)
    queue.push(input.subarray(offset, offset + take))
    this.#offset = offset + take
    if (queue.length < need) return false
    this.#item = queue.consume(need)
    this.#itemOffset = 0
    return true
  }

  #readLength(): void {
    const framing = this.#framing
    const shake = this.#shake
    // The receiver draws in the sender's order: padding length, then mask (PROTOCOL §7.3).
    const padding = framing.padding && shake !== undefined ? shake.nextUint16() % PADDING_MODULUS : 0
    let length: number
    if (this.#lengthCipher === undefined) {
      const mask = framing.masking && shake !== undefined ? shake.nextUint16() : 0
      length = this.#item.readUInt16BE(this.#itemOffset) ^ mask
    } else {
      length = this.#openLength(this.#lengthCipher) + AEAD_TAG_LENGTH
    }
    const overhead = framing.tagLength + padding
    if (length < overhead) {
      throw new ProtocolError(
        'CHUNK_INVALID',
        `Cannot open chunk: length is ${length}, tag and padding need ${overhead}`,
      )
    }
    if (length === overhead) {
      // V2Ray does not read the end chunk's tag and padding; drop them (PROTOCOL §7.3).
      this.#ended = true
      this.#queue.drain()
      return
    }
    if (length > this.#maxChunkLength) {
      throw new ProtocolError(
        'CHUNK_TOO_LONG',
        `Cannot open chunk: length is ${length}, limit is ${this.#maxChunkLength}`,
      )
    }
    const whole = framing.lengthFieldLength + length
    if (whole > this.#largestChunkLength) this.#largestChunkLength = whole
    if (framing.sealing === 'fnv') {
      this.#phase = Phase.Whole
      this.#fixedLength = length
      this.#paddingLength = padding
      return
    }
    this.#phase = Phase.Payload
    this.#remaining = length - overhead
    this.#fixedLength = overhead
  }

  #streamPayload(payloads: Buffer[]): void {
    const input = this.#input
    const offset = this.#offset
    const take = Math.min(this.#remaining, input.length - offset)
    // Views, no copy: a chunk within one read is opened in place (STYLE §8).
    this.#pending.push(input.subarray(offset, offset + take))
    this.#pendingLength += take
    this.#offset = offset + take
    this.#remaining -= take
    if (this.#remaining > 0) return
    if (this.#fixedLength === 0) this.#release(payloads)
    else this.#phase = Phase.Trailer
  }

  /**
   * Opens the whole sealed payload with one cipher call once its tag is here, and releases it; the
   * padding after the tag is dropped (PROTOCOL §7.3). One call per chunk, not per read: a chunk split
   * across reads would otherwise come out as several buffers, each a write downstream.
   */
  #release(payloads: Buffer[]): void {
    const pending = this.#pending
    const cipher = this.#payloadCipher
    if (cipher !== undefined) {
      const length = this.#pendingLength
      const sealed =
        pending.length === 1
          ? pending[0]!
          : cipher.inPlace
            ? join(pending, length)
            : joinInScratch(pending, length)
      const plaintext = cipher.open(this.#nextNonce(), sealed, 0, length, this.#item, this.#itemOffset)
      if (plaintext === undefined) {
        throw new ProtocolError('CHUNK_AUTH_FAILED', 'Cannot open chunk: tag does not match')
      }
      if (plaintext.length > 0) payloads.push(plaintext)
    } else if (this.#packet && pending.length > 1) {
      // A datagram is returned whole (PROTOCOL §8).
      payloads.push(Buffer.concat(pending, this.#pendingLength))
    } else {
      for (const plaintext of pending) if (plaintext.length > 0) payloads.push(plaintext)
    }
    pending.length = 0
    this.#pendingLength = 0
    this.#phase = Phase.Length
  }

  #openWhole(): Buffer {
    this.#phase = Phase.Length
    // Checksum first, then payload, then padding (PROTOCOL §7.3).
    const chunk = this.#item
    const start = this.#itemOffset
    const payloadEnd = start + this.#fixedLength - this.#paddingLength
    if (fnv1a32(chunk, start + FNV_LENGTH, payloadEnd) !== chunk.readUInt32BE(start)) {
      throw new ProtocolError('CHUNK_AUTH_FAILED', 'Cannot open chunk: FNV-1a checksum does not match')
    }
    return chunk.subarray(start + FNV_LENGTH, payloadEnd)
  }

  #nextNonce(): Buffer {
    // Nonces follow chunk order, which is the order chunks complete in.
    this.#nonce.writeUInt16BE(this.#counter, 0)
    // Counters wrap silently at 65,536, as every core does (PROTOCOL §7.1).
    this.#counter = (this.#counter + 1) & COUNTER_MASK
    return this.#nonce
  }

  #openLength(cipher: AeadContext): number {
    const counter = this.#lengthCounter
    this.#lengthNonce.writeUInt16BE(counter, 0)
    this.#lengthCounter = (counter + 1) & COUNTER_MASK
    // Both directions seal the length with the request key and IV (PROTOCOL §7.6). Opened in place:
    // the field is a view of the input or a copy out of the queue, read once here.
    const field = this.#item
    const start = this.#itemOffset
    const value = cipher.open(this.#lengthNonce, field, start, start + 2, field, start + 2)
    if (value === undefined) {
      throw new ProtocolError(
        'CHUNK_AUTH_FAILED',
        `Cannot open chunk length: tag does not match (counter ${counter})`,
      )
    }
    return value.readUInt16BE(0)
  }
}

/** A chunk's sealed payload that arrived in several reads, joined in a buffer of its own to open in place. */
function join(pieces: readonly Buffer[], length: number): Buffer {
  const whole = Buffer.allocUnsafe(length)
  let at = 0
  for (const piece of pieces) at += piece.copy(whole, at)
  return whole
}

/**
 * A chunk's sealed payload that arrived in several reads, joined for one node:crypto call. The scratch
 * is consumed at once by `update`, which copies it out, so one buffer serves every opener (STYLE §8).
 */
let scratch = Buffer.alloc(0)
function joinInScratch(pieces: readonly Buffer[], length: number): Buffer {
  if (scratch.length < length) scratch = Buffer.allocUnsafeSlow(Math.max(length, MAX_CHUNK_LENGTH))
  let at = 0
  for (const piece of pieces) at += piece.copy(scratch, at)
  return scratch.subarray(0, length)
}
