import { randomBytes, randomInt } from 'node:crypto'

/** A source of cryptographically secure random bytes; injectable so tests can fix the bytes. */
export type RandomSource = (length: number) => Buffer

const POOL_SIZE = 16 * 1024
const MAX_POOLED_REQUEST = 1024
let pool = Buffer.alloc(0)
let poolOffset = 0

/**
 * Random bytes from node:crypto, drawn from a pool so small requests (nonces, padding) avoid a
 * system call each. A fresh pool is allocated when one runs out, so handed-out views stay valid.
 */
export const secureRandom: RandomSource = (length) => {
  if (length > MAX_POOLED_REQUEST) return randomBytes(length)
  if (poolOffset + length > pool.length) {
    pool = randomBytes(POOL_SIZE)
    poolOffset = 0
  }
  const view = pool.subarray(poolOffset, poolOffset + length)
  poolOffset += length
  return view
}

/** A uniform integer in [min, max) from node:crypto. */
export function secureRandomInt(min: number, max: number): number {
  return randomInt(min, max)
}
