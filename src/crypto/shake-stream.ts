import { createHash } from 'node:crypto'

/** 16 chunks' draws (two values each with padding); a tunnel's whole life for short ones. */
const FIRST_BLOCK_BYTES = 64
const MAX_BLOCK_BYTES = 1 << 20

/**
 * SHAKE128(seed) read as consecutive big-endian 16-bit values (docs/protocol.md §7.4). node:crypto has no
 * incremental XOF, but SHAKE output is prefix-stable, so the stream is regenerated in growing blocks
 * and read from where it left off (docs/protocol.md §13).
 */
export class ShakeStream {
  readonly #seed: Buffer
  #block: Buffer
  #position = 0
  #produced = 0

  constructor(seed: Uint8Array) {
    // Its own small allocation: a slice of Node's shared pool would pin an 8 KiB slab per stream.
    this.#seed = Buffer.allocUnsafeSlow(seed.length)
    this.#seed.set(seed)
    this.#block = this.#generate(FIRST_BLOCK_BYTES)
  }

  /** The next 16-bit value of the stream. */
  nextUint16(): number {
    if (this.#position + 2 > this.#block.length) this.#refill()
    const value = this.#block.readUInt16BE(this.#position)
    this.#position += 2
    return value
  }

  #refill(): void {
    // Double the output each time, capped, so a long stream costs O(n) hashing overall.
    const consumed = this.#produced - this.#block.length + this.#position
    const nextLength = Math.min(
      Math.max(this.#produced * 2, FIRST_BLOCK_BYTES),
      this.#produced + MAX_BLOCK_BYTES,
    )
    const whole = createHash('shake128', { outputLength: nextLength }).update(this.#seed).digest()
    this.#block = whole.subarray(consumed)
    this.#position = 0
    this.#produced = nextLength
  }

  #generate(length: number): Buffer {
    this.#produced = length
    return createHash('shake128', { outputLength: length }).update(this.#seed).digest()
  }
}
