// The Protocol Buffers wire format, as far as the API's messages need it: varints, 64-bit integers
// kept as numbers (counters stay far below 2^53), strings, bytes and nested messages.

/** Wire types of the fields the API reads and writes. */
const WireType = { Varint: 0, Fixed64: 1, LengthDelimited: 2, Fixed32: 5 } as const

/** A message larger than this is refused: the API's requests are a few hundred bytes. */
export const MAX_API_MESSAGE_BYTES = 4 * 1024 * 1024

/** A malformed message from an API client. */
export class ProtoWireError extends Error {
  override readonly name = 'ProtoWireError'
}

/** The fields of a decoded message: field number → values, in order (varints as numbers, the rest as bytes). */
export type ProtoFields = ReadonlyMap<number, readonly (number | Buffer)[]>

/** Splits a message into its fields; unknown wire types and truncation throw ProtoWireError. */
export function readFields(bytes: Buffer): ProtoFields {
  if (bytes.length > MAX_API_MESSAGE_BYTES) throw new ProtoWireError(`message of ${bytes.length} bytes`)
  const fields = new Map<number, (number | Buffer)[]>()
  let at = 0
  const varint = (): number => {
    let value = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (at >= bytes.length) throw new ProtoWireError('truncated varint')
      const byte = bytes.readUInt8(at++)
      value += (byte & 0x7f) * scale
      if (byte < 0x80) return value
      scale *= 128
    }
    throw new ProtoWireError('varint longer than 10 bytes')
  }
  while (at < bytes.length) {
    const key = varint()
    const field = Math.floor(key / 8)
    const type = key % 8
    let value: number | Buffer
    if (type === WireType.Varint) value = varint()
    else if (type === WireType.LengthDelimited) {
      const length = varint()
      if (at + length > bytes.length) throw new ProtoWireError('truncated field')
      value = bytes.subarray(at, at + length)
      at += length
    } else if (type === WireType.Fixed64 || type === WireType.Fixed32) {
      const length = type === WireType.Fixed64 ? 8 : 4
      if (at + length > bytes.length) throw new ProtoWireError('truncated field')
      value = bytes.subarray(at, at + length)
      at += length
    } else throw new ProtoWireError(`wire type ${type}`)
    if (field === 0) throw new ProtoWireError('field number 0')
    const list = fields.get(field)
    if (list === undefined) fields.set(field, [value])
    else list.push(value)
  }
  return fields
}

/** The last value of a string field ("" when absent, as proto3). */
export function stringField(fields: ProtoFields, field: number): string {
  const value = fields.get(field)?.at(-1)
  return Buffer.isBuffer(value) ? value.toString('utf8') : ''
}

/** The last value of a bytes or message field (empty when absent). */
export function bytesField(fields: ProtoFields, field: number): Buffer {
  const value = fields.get(field)?.at(-1)
  return Buffer.isBuffer(value) ? value : Buffer.alloc(0)
}

/** Every value of a repeated bytes, string or message field. */
export function repeatedBytes(fields: ProtoFields, field: number): Buffer[] {
  return (fields.get(field) ?? []).filter((value): value is Buffer => Buffer.isBuffer(value))
}

/** The last value of a varint field (0 when absent). */
export function numberField(fields: ProtoFields, field: number): number {
  const value = fields.get(field)?.at(-1)
  return typeof value === 'number' ? value : 0
}

/** Builds a message field by field; default values (0, "", false, empty) are left out, as proto3 does. */
export class ProtoWriter {
  readonly #parts: Buffer[] = []

  #varint(value: number): void {
    const bytes: number[] = []
    let rest = value
    while (rest >= 0x80) {
      bytes.push((rest % 128) | 0x80)
      rest = Math.floor(rest / 128)
    }
    bytes.push(rest)
    this.#parts.push(Buffer.from(bytes))
  }

  /** A uint32, uint64, int64 (≥ 0) or bool field. */
  number(field: number, value: number | boolean): this {
    const n = typeof value === 'boolean' ? (value ? 1 : 0) : value
    if (n === 0) return this
    if (!Number.isSafeInteger(n) || n < 0)
      throw new RangeError(`field ${field}: ${n} is not a safe unsigned integer`)
    this.#varint(field * 8 + WireType.Varint)
    this.#varint(n)
    return this
  }

  /** A string field. */
  string(field: number, value: string): this {
    return value === '' ? this : this.bytes(field, Buffer.from(value, 'utf8'))
  }

  /** A bytes field, or a nested message (written even when empty, so a present message stays present). */
  bytes(field: number, value: Buffer, options?: { keepEmpty?: boolean }): this {
    if (value.length === 0 && options?.keepEmpty !== true) return this
    this.#varint(field * 8 + WireType.LengthDelimited)
    this.#varint(value.length)
    this.#parts.push(value)
    return this
  }

  /** A nested message field. */
  message(field: number, value: Buffer): this {
    return this.bytes(field, value, { keepEmpty: true })
  }

  finish(): Buffer {
    return Buffer.concat(this.#parts)
  }
}
