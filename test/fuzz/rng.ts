import { createHash } from 'node:crypto'

/**
 * xoshiro128** (Blackman and Vigna), seeded through SHA-256 of a text seed: a small, fast generator
 * whose whole run replays from the seed. Test code only; protocol randomness comes from node:crypto.
 */
export class Rng {
  #a: number
  #b: number
  #c: number
  #d: number

  constructor(seed: string) {
    const state = createHash('sha256').update(seed).digest()
    this.#a = state.readUInt32LE(0)
    this.#b = state.readUInt32LE(4)
    this.#c = state.readUInt32LE(8)
    this.#d = state.readUInt32LE(12) | 1
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0
    const t = this.#b << 9
    this.#c ^= this.#a
    this.#d ^= this.#b
    this.#b ^= this.#c
    this.#a ^= this.#d
    this.#c ^= t
    this.#d = rotl(this.#d, 11)
    return result
  }

  /** A uniform integer in [0, n) (n ≤ 2³²). */
  below(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.next() / 0x1_0000_0000) * n)
  }

  /** A uniform integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.below(max - min + 1)
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p
  }

  /** `length` pseudo-random bytes. */
  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length)
    let i = 0
    for (; i + 4 <= length; i += 4) out.writeUInt32LE(this.next(), i)
    if (i < length) {
      const last = this.next()
      for (let shift = 0; i < length; i++, shift += 8) out[i] = (last >>> shift) & 0xff
    }
    return out
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}
