import type { Rng } from './rng.js'

/** Most bytes a mutated input grows to: beyond a 64 KiB chunk, so length limits are crossed. */
export const MAX_FUZZ_INPUT = 70 * 1024

/** Byte values that sit on boundaries parsers check. */
const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0f, 0x10, 0x7f, 0x80, 0xfe, 0xff]
/** 16-bit values that sit on length boundaries (big-endian on the wire). */
const INTERESTING_WORDS = [
  0, 1, 2, 15, 16, 17, 18, 255, 256, 512, 513, 2048, 16_384, 32_767, 32_768, 65_534, 65_535,
]

type Mutation = (input: Buffer, rng: Rng, other: Buffer) => Buffer

const MUTATIONS: readonly Mutation[] = [
  // Flip one bit.
  (input, rng) => {
    if (input.length === 0) return input
    const out = Buffer.from(input)
    const i = rng.below(out.length)
    out[i] = out.readUInt8(i) ^ (1 << rng.below(8))
    return out
  },
  // Set a byte to a random or a boundary value.
  (input, rng) => {
    if (input.length === 0) return input
    const out = Buffer.from(input)
    out[rng.below(out.length)] = rng.chance(0.5) ? rng.below(256) : rng.pick(INTERESTING_BYTES)
    return out
  },
  // Write a boundary 16-bit value (a length field, when it lands on one).
  (input, rng) => {
    if (input.length < 2) return input
    const out = Buffer.from(input)
    const value = rng.chance(0.7) ? rng.pick(INTERESTING_WORDS) : rng.below(0x10000)
    out.writeUInt16BE(value, rng.below(out.length - 1))
    return out
  },
  // Cut short.
  (input, rng) => input.subarray(0, rng.below(input.length + 1)),
  // Delete a range.
  (input, rng) => {
    if (input.length === 0) return input
    const start = rng.below(input.length)
    const end = Math.min(input.length, start + 1 + rng.below(16))
    return Buffer.concat([input.subarray(0, start), input.subarray(end)])
  },
  // Insert random bytes.
  (input, rng) => {
    const at = rng.below(input.length + 1)
    return Buffer.concat([
      input.subarray(0, at),
      rng.bytes(1 + rng.below(rng.chance(0.9) ? 16 : 4096)),
      input.subarray(at),
    ])
  },
  // Duplicate a range (repeated fields, repeated chunks).
  (input, rng) => {
    if (input.length === 0) return input
    const start = rng.below(input.length)
    const end = Math.min(input.length, start + 1 + rng.below(64))
    const at = rng.below(input.length + 1)
    return Buffer.concat([input.subarray(0, at), input.subarray(start, end), input.subarray(at)])
  },
  // Splice with another seed.
  (input, rng, other) =>
    Buffer.concat([
      input.subarray(0, rng.below(input.length + 1)),
      other.subarray(rng.below(other.length + 1)),
    ]),
  // Overwrite a range with random bytes.
  (input, rng) => {
    if (input.length === 0) return input
    const out = Buffer.from(input)
    const start = rng.below(out.length)
    rng.bytes(Math.min(out.length - start, 1 + rng.below(32))).copy(out, start)
    return out
  },
  // Append random bytes.
  (input, rng) => Buffer.concat([input, rng.bytes(1 + rng.below(64))]),
]

/** One to four mutations of a seed; sometimes plain random bytes. */
export function mutate(seed: Buffer, rng: Rng, seeds: readonly Buffer[]): Buffer {
  if (rng.chance(0.02)) return rng.bytes(rng.below(600))
  let out = seed
  const count = 1 + rng.below(4)
  for (let i = 0; i < count; i++) out = rng.pick(MUTATIONS)(out, rng, rng.pick(seeds))
  return out.length > MAX_FUZZ_INPUT ? out.subarray(0, MAX_FUZZ_INPUT) : out
}

/** `bytes` cut into random pieces, as reads from a socket arrive. */
export function randomSplits(bytes: Buffer, rng: Rng): Buffer[] {
  if (bytes.length === 0 || rng.chance(0.3)) return [bytes]
  const pieces: Buffer[] = []
  let offset = 0
  while (offset < bytes.length) {
    const size = 1 + rng.below(rng.chance(0.5) ? 8 : 512)
    pieces.push(bytes.subarray(offset, offset + size))
    offset += size
  }
  return pieces
}
