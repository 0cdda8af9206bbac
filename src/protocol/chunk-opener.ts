import type { Cipher, Decipher } from 'node:crypto'
import { AEAD_TAG_LENGTH, createAeadDecipher, fnv1a32, ShakeStream } from '../crypto/index.js'
import { ProtocolError } from '../errors.js'
import { bodyCfb, resolveBodyFraming, type AeadKey, type BodyFraming, type BodyParams } from './body-framing.js'
import { ByteQueue } from './byte-queue.js'
import { MAX_CHUNK_LENGTH } from './constants.js'

const PADDING_MODULUS = 64
const COUNTER_MASK = 0xffff
const FNV_LENGTH = 4
/** #chunkLength while the next length field has not been read. */
const AWAITING_LENGTH = -1

/**
 * Turns one direction's VMess body bytes back into plaintext (PROTOCOL §7): a push parser that
 * accepts input split anywhere and returns every payload completed so far.
 * @example
 * const opener = new ChunkOpener({ security: 3, options: 0x0d, transfer: 'stream', key, iv, requestKey: key, requestIv: iv })
 * socket.on('data', (bytes) => { for (const payload of opener.push(bytes)) target.write(payload) })
 */
export class ChunkOpener {
  readonly #framing: BodyFraming
  readonly #maxChunkLength: number
  readonly #queue = new ByteQueue()
  readonly #shake: ShakeStream | undefined
  readonly #cfb: Cipher | Decipher | undefined
  readonly #payloadKey: AeadKey | undefined
  readonly #lengthKey: AeadKey | undefined
  // Scratch for values consumed at once by createDecipheriv (STYLE §8).
  readonly #nonce: Buffer
  readonly #lengthNonce: Buffer
  #counter = 0
  #lengthCounter = 0
  /** L of the chunk whose length field was read, or AWAITING_LENGTH. */
  #chunkLength = AWAITING_LENGTH
  #paddingLength = 0
  #ended = false

  constructor(params: BodyParams, options: { maxChunkLength?: number } = {}) {
    const framing = resolveBodyFraming(params)
    const maxChunkLength = options.maxChunkLength ?? MAX_CHUNK_LENGTH
    if (!Number.isInteger(maxChunkLength) || maxChunkLength < 1 || maxChunkLength > MAX_CHUNK_LENGTH) {
      throw new RangeError(
        `Cannot open body: maxChunkLength is ${maxChunkLength}, expected 1..${MAX_CHUNK_LENGTH}`,
      )
    }
    this.#framing = framing
    this.#maxChunkLength = maxChunkLength
    this.#shake = framing.shakeSeed === undefined ? undefined : new ShakeStream(framing.shakeSeed)
    this.#cfb = framing.cfb ? bodyCfb(params, 'open') : undefined
    this.#payloadKey = framing.payloadKey
    this.#lengthKey = framing.lengthKey
    this.#nonce = Buffer.from(framing.payloadKey?.iv ?? [])
    this.#lengthNonce = Buffer.from(framing.lengthKey?.iv ?? [])
  }

  /** True once the end-of-stream chunk was read; later bytes are ignored (PROTOCOL §7.7). */
  get ended(): boolean {
    return this.#ended
  }

  /** Bytes received and not yet opened (part of a chunk). */
  get buffered(): number {
    return this.#queue.length
  }

  /**
   * Feeds received bytes (the opener keeps a reference: do not reuse `wire`). Returns every payload
   * completed so far, never an empty one; for packets each is one datagram (PROTOCOL §8).
   */
  push(wire: Buffer): Buffer[] {
    if (this.#ended || wire.length === 0) return []
    // The whole direction is one CFB stream, length fields included, so decrypt as it arrives (PROTOCOL §7.2).
    const bytes = this.#cfb === undefined ? wire : this.#cfb.update(wire)
    if (this.#framing.kind === 'raw') return bytes.length === 0 ? [] : [bytes]
    const queue = this.#queue
    queue.push(bytes)
    const payloads: Buffer[] = []
    for (;;) {
      if (this.#chunkLength === AWAITING_LENGTH) {
        if (queue.length < this.#framing.lengthFieldLength) break
        this.#readLength()
        if (this.#ended) break
      }
      if (queue.length < this.#chunkLength) break
      const chunk = queue.consume(this.#chunkLength)
      this.#chunkLength = AWAITING_LENGTH
      payloads.push(this.#openChunk(chunk))
    }
    return payloads
  }

  #readLength(): void {
    const framing = this.#framing
    const queue = this.#queue
    const shake = this.#shake
    // The receiver draws in the sender's order: padding length, then mask (PROTOCOL §7.3).
    const padding = framing.padding && shake !== undefined ? shake.nextUint16() % PADDING_MODULUS : 0
    let length: number
    if (this.#lengthKey === undefined) {
      const mask = framing.masking && shake !== undefined ? shake.nextUint16() : 0
      length = queue.uint16At(0) ^ mask
      queue.skip(2)
    } else {
      length = this.#openLength(this.#lengthKey, queue.consume(framing.lengthFieldLength)) + AEAD_TAG_LENGTH
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
      queue.drain()
      return
    }
    if (length > this.#maxChunkLength) {
      throw new ProtocolError(
        'CHUNK_TOO_LONG',
        `Cannot open chunk: length is ${length}, limit is ${this.#maxChunkLength}`,
      )
    }
    this.#chunkLength = length
    this.#paddingLength = padding
  }

  #openChunk(chunk: Buffer): Buffer {
    const framing = this.#framing
    // Padding follows the sealed payload and is not authenticated: drop it (PROTOCOL §7.3).
    const payloadLength = chunk.length - this.#paddingLength - framing.tagLength
    switch (framing.sealing) {
      case 'aead':
        if (this.#payloadKey === undefined) break
        return this.#openPayload(this.#payloadKey, chunk, payloadLength)
      case 'fnv':
        if (fnv1a32(chunk, FNV_LENGTH, FNV_LENGTH + payloadLength) !== chunk.readUInt32BE(0)) {
          throw new ProtocolError('CHUNK_AUTH_FAILED', 'Cannot open chunk: FNV-1a checksum does not match')
        }
        return chunk.subarray(FNV_LENGTH, FNV_LENGTH + payloadLength)
      case 'plain':
        break
    }
    return chunk.subarray(0, payloadLength)
  }

  #openPayload(key: AeadKey, chunk: Buffer, payloadLength: number): Buffer {
    const counter = this.#counter
    this.#nonce.writeUInt16BE(counter, 0)
    // Counters wrap silently at 65,536, as every core does (PROTOCOL §7.1).
    this.#counter = (counter + 1) & COUNTER_MASK
    const decipher = createAeadDecipher(key.algorithm, key.key, this.#nonce)
    decipher.setAuthTag(chunk.subarray(payloadLength, payloadLength + AEAD_TAG_LENGTH))
    const plaintext = decipher.update(chunk.subarray(0, payloadLength))
    try {
      decipher.final()
    } catch (error) {
      throw new ProtocolError('CHUNK_AUTH_FAILED', `Cannot open chunk: tag does not match (counter ${counter})`, {
        cause: error,
      })
    }
    // Released only now that the tag is verified.
    return plaintext
  }

  #openLength(key: AeadKey, field: Buffer): number {
    const counter = this.#lengthCounter
    this.#lengthNonce.writeUInt16BE(counter, 0)
    this.#lengthCounter = (counter + 1) & COUNTER_MASK
    // Both directions seal the length with the request key and IV (PROTOCOL §7.6).
    const decipher = createAeadDecipher(key.algorithm, key.key, this.#lengthNonce)
    decipher.setAuthTag(field.subarray(2))
    const value = decipher.update(field.subarray(0, 2))
    try {
      decipher.final()
    } catch (error) {
      throw new ProtocolError(
        'CHUNK_AUTH_FAILED',
        `Cannot open chunk length: tag does not match (counter ${counter})`,
        { cause: error },
      )
    }
    return value.readUInt16BE(0)
  }
}
