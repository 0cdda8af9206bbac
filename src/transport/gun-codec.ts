// The "gun" framing of the gRPC transport (Qv2ray's gun, V2Ray 4.36+ and Xray), pure: Buffers in, Buffers out.
// A byte stream rides a bidirectional gRPC stream of protobuf messages, `Hunk { bytes data = 1; }` (method
// `Tun`) or Xray's `MultiHunk { repeated bytes data = 1; }` (method `TunMulti`). Each message is a gRPC
// Length-Prefixed-Message: a compressed flag byte (0), a 4-byte big-endian length, the message. The decoder
// streams the data field out as it arrives, so a large message costs no more memory than a small one.
import { ProtocolError } from '../errors.js'

/** Largest gRPC message accepted (grpc-go's and grpc-js's default receive limit); a longer prefix fails the stream. */
export const MAX_GRPC_MESSAGE_BYTES = 4 * 1024 * 1024

/** Largest message we send; a longer write is split. A sealed VMess write (≤ ~66 KiB) fits one message. */
export const GUN_SEND_BYTES = 128 * 1024

const PREFIX_BYTES = 5
/** Field 1, wire type 2 (length-delimited): the tag byte of `data` in Hunk and MultiHunk. */
const DATA_TAG = 0x0a
const WIRE_VARINT = 0
const WIRE_FIXED64 = 1
const WIRE_LENGTH_DELIMITED = 2
const WIRE_FIXED32 = 5
/** A 64-bit varint never takes more than 10 bytes. */
const MAX_VARINT_BYTES = 10

/** Bytes of the protobuf varint for `value` (below 2^32 here). */
function varintLength(value: number): number {
  let bytes = 1
  while (value >= 0x80) {
    value = Math.floor(value / 128)
    bytes += 1
  }
  return bytes
}

function writeVarint(target: Buffer, offset: number, value: number): number {
  while (value >= 0x80) {
    target.writeUInt8((value & 0x7f) | 0x80, offset++)
    value = Math.floor(value / 128)
  }
  target.writeUInt8(value, offset++)
  return offset
}

/**
 * One gRPC message carrying `data` as a Hunk (or a MultiHunk with one entry: the same bytes on the wire),
 * in a single buffer: prefix, tag, length, data. `data` must be at most GUN_SEND_BYTES.
 */
export function encodeGunMessage(data: Buffer): Buffer {
  const messageLength = 1 + varintLength(data.length) + data.length
  const out = Buffer.allocUnsafe(PREFIX_BYTES + messageLength)
  out.writeUInt8(0, 0)
  out.writeUInt32BE(messageLength, 1)
  out.writeUInt8(DATA_TAG, PREFIX_BYTES)
  const start = writeVarint(out, PREFIX_BYTES + 1, data.length)
  data.copy(out, start)
  return out
}

type DecoderState =
  | 'prefix' // reading the 5-byte prefix
  | 'tag' // reading a field tag (varint)
  | 'length' // reading a length-delimited field's length (varint)
  | 'data' // passing a data field's bytes through
  | 'skip' // skipping another field's bytes
  | 'skip-varint' // skipping a varint field

/**
 * Push decoder of gun messages (Hunk or MultiHunk: both are field 1, repeated or not). `push(bytes)` gives
 * back the data bytes completed so far as views into `bytes`; unknown fields are skipped; a compressed
 * message, a message over MAX_GRPC_MESSAGE_BYTES or a field that overruns its message throws a ProtocolError.
 * It holds no more than a few header bytes between pushes.
 */
export class GunDecoder {
  #state: DecoderState = 'prefix'
  /** Prefix bytes read so far, or the varint being read. */
  #prefix = Buffer.alloc(PREFIX_BYTES)
  #prefixRead = 0
  #varint = 0
  #varintBytes = 0
  #wireType = 0
  #fieldNumber = 0
  /** Bytes of the current message still to come. */
  #messageLeft = 0
  /** Bytes of the current field (data or skipped) still to come. */
  #fieldLeft = 0

  /** True between messages: a stream that ends here ended cleanly. */
  get atBoundary(): boolean {
    return this.#state === 'prefix' && this.#prefixRead === 0
  }

  /** The data bytes in `bytes`, in order (views, never copies). */
  push(bytes: Buffer): Buffer[] {
    const out: Buffer[] = []
    let offset = 0
    while (offset < bytes.length) {
      switch (this.#state) {
        case 'prefix': {
          const take = Math.min(PREFIX_BYTES - this.#prefixRead, bytes.length - offset)
          bytes.copy(this.#prefix, this.#prefixRead, offset, offset + take)
          this.#prefixRead += take
          offset += take
          if (this.#prefixRead === PREFIX_BYTES) this.#startMessage()
          break
        }
        case 'tag':
        case 'length':
        case 'skip-varint':
          offset = this.#readVarintByte(bytes, offset)
          break
        case 'data':
        case 'skip': {
          const take = Math.min(this.#fieldLeft, bytes.length - offset)
          if (this.#state === 'data' && take > 0) out.push(bytes.subarray(offset, offset + take))
          offset += take
          this.#fieldLeft -= take
          this.#messageLeft -= take
          if (this.#fieldLeft === 0) this.#endField()
          break
        }
      }
    }
    return out
  }

  #startMessage(): void {
    this.#prefixRead = 0
    const flag = this.#prefix.readUInt8(0)
    const length = this.#prefix.readUInt32BE(1)
    if (flag !== 0) {
      throw new ProtocolError('GRPC_COMPRESSED', `Cannot read a gRPC message: compressed flag is ${flag}`)
    }
    if (length > MAX_GRPC_MESSAGE_BYTES) {
      throw new ProtocolError(
        'GRPC_MESSAGE_TOO_LONG',
        `Cannot read a gRPC message: length is ${length}, limit is ${MAX_GRPC_MESSAGE_BYTES}`,
      )
    }
    this.#messageLeft = length
    this.#state = length === 0 ? 'prefix' : 'tag'
    this.#resetVarint()
  }

  #resetVarint(): void {
    this.#varint = 0
    this.#varintBytes = 0
  }

  #readVarintByte(bytes: Buffer, offset: number): number {
    if (this.#messageLeft === 0) {
      throw new ProtocolError('GRPC_FIELD_OVERRUN', 'Cannot read a gun message: a field runs past its end')
    }
    const byte = bytes.readUInt8(offset)
    this.#messageLeft -= 1
    // Lengths and tags above 2^32 are refused below, so plain arithmetic stays exact.
    this.#varint += (byte & 0x7f) * 2 ** (7 * this.#varintBytes)
    this.#varintBytes += 1
    if (byte & 0x80) {
      if (this.#varintBytes >= MAX_VARINT_BYTES) {
        throw new ProtocolError('GRPC_BAD_VARINT', 'Cannot read a gun message: a varint is too long')
      }
      return offset + 1
    }
    const value = this.#varint
    this.#resetVarint()
    switch (this.#state) {
      case 'tag':
        this.#startField(value)
        break
      case 'length':
        if (value > this.#messageLeft) {
          throw new ProtocolError(
            'GRPC_FIELD_OVERRUN',
            `Cannot read a gun message: a field of ${value} bytes overruns its message (${this.#messageLeft} left)`,
          )
        }
        this.#fieldLeft = value
        this.#state = this.#fieldNumber === 1 ? 'data' : 'skip'
        if (value === 0) this.#endField()
        break
      case 'skip-varint':
        this.#endField()
        break
      case 'prefix':
      case 'data':
      case 'skip':
        break
    }
    return offset + 1
  }

  #startField(tag: number): void {
    this.#fieldNumber = Math.floor(tag / 8)
    this.#wireType = tag % 8
    switch (this.#wireType) {
      case WIRE_LENGTH_DELIMITED:
        this.#state = 'length'
        return
      case WIRE_VARINT:
        this.#state = 'skip-varint'
        return
      case WIRE_FIXED64:
      case WIRE_FIXED32:
        this.#fieldLeft = this.#wireType === WIRE_FIXED64 ? 8 : 4
        if (this.#fieldLeft > this.#messageLeft) {
          throw new ProtocolError(
            'GRPC_FIELD_OVERRUN',
            'Cannot read a gun message: a field runs past its end',
          )
        }
        this.#state = 'skip'
        return
      default:
        throw new ProtocolError(
          'GRPC_BAD_FIELD',
          `Cannot read a gun message: wire type ${this.#wireType} is not one a Hunk can hold`,
        )
    }
  }

  #endField(): void {
    this.#state = this.#messageLeft === 0 ? 'prefix' : 'tag'
  }
}
