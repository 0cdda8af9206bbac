/**
 * SHA-256 (FIPS 180-4) in JavaScript, resumable from a saved state. The VMess KDF nests HMAC-SHA256
 * four deep over short inputs (PROTOCOL §4.1): node:crypto costs ~2 µs per HMAC object whatever it
 * hashes, while most of the blocks here are fixed key pads whose state can be computed once and
 * resumed, so a KDF takes a handful of 0.3 µs compressions instead. No table is indexed by data,
 * so the timing does not depend on the (secret) input.
 */

const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
])
const INITIAL_STATE = Int32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
])

/** The block size of SHA-256 in bytes. */
export const SHA256_BLOCK_LENGTH = 64
/** The digest size of SHA-256 in bytes. */
export const SHA256_DIGEST_LENGTH = 32

// Scratch for one message schedule and one padded block; consumed within a call.
const schedule = new Int32Array(64)
const block = new Uint8Array(SHA256_BLOCK_LENGTH)

/** The hash state after some whole blocks: 8 words and how many bytes they covered. */
export interface Sha256State {
  readonly words: Int32Array
  readonly length: number
}

/** The state before any input. */
export const SHA256_EMPTY: Sha256State = { words: INITIAL_STATE, length: 0 }

/** The state after absorbing one more 64-byte block. */
export function sha256Absorb(state: Sha256State, data: Uint8Array): Sha256State {
  if (data.length !== SHA256_BLOCK_LENGTH) {
    throw new RangeError(`Cannot absorb into SHA-256: ${data.length} bytes, expected ${SHA256_BLOCK_LENGTH}`)
  }
  const words = Int32Array.from(state.words)
  compress(words, data, 0)
  return { words, length: state.length + SHA256_BLOCK_LENGTH }
}

// The working state of sha256Finish, copied from the caller's state and consumed within the call.
const working = new Int32Array(8)

/** SHA-256 of (what `state` covered ‖ parts…), without touching `state`. */
export function sha256Finish(state: Sha256State, parts: readonly Uint8Array[]): Buffer {
  const h = working
  h.set(state.words)
  let filled = 0
  let total = state.length
  for (const part of parts) {
    total += part.length
    // Byte by byte: the parts are short (keys, digests), and a subarray per copy costs more.
    for (let at = 0; at < part.length; at++) {
      block[filled++] = part[at]!
      if (filled === SHA256_BLOCK_LENGTH) {
        compress(h, block, 0)
        filled = 0
      }
    }
  }
  // Padding: 0x80, zeros, then the bit length as a 64-bit big-endian number.
  block[filled++] = 0x80
  if (filled > SHA256_BLOCK_LENGTH - 8) {
    block.fill(0, filled)
    compress(h, block, 0)
    filled = 0
  }
  block.fill(0, filled, SHA256_BLOCK_LENGTH - 8)
  const bits = total * 8
  const high = Math.floor(bits / 0x1_0000_0000)
  writeWord(block, SHA256_BLOCK_LENGTH - 8, high)
  writeWord(block, SHA256_BLOCK_LENGTH - 4, bits >>> 0)
  compress(h, block, 0)
  const out = Buffer.allocUnsafe(SHA256_DIGEST_LENGTH)
  for (let i = 0; i < 8; i++) writeWord(out, 4 * i, h[i]!)
  return out
}

function writeWord(out: Uint8Array, at: number, word: number): void {
  out[at] = word >>> 24
  out[at + 1] = (word >>> 16) & 0xff
  out[at + 2] = (word >>> 8) & 0xff
  out[at + 3] = word & 0xff
}

function compress(h: Int32Array, data: Uint8Array, offset: number): void {
  const w = schedule
  for (let i = 0; i < 16; i++) {
    const at = offset + 4 * i
    w[i] = (data[at]! << 24) | (data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15]!
    const y = w[i - 2]!
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0
  }
  let a = h[0]!
  let b = h[1]!
  let c = h[2]!
  let d = h[3]!
  let e = h[4]!
  let f = h[5]!
  let g = h[6]!
  let k = h[7]!
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))
    const t1 = (k + s1 + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0
    k = g
    g = f
    f = e
    e = (d + t1) | 0
    d = c
    c = b
    b = a
    a = (t1 + t2) | 0
  }
  h[0] = (h[0]! + a) | 0
  h[1] = (h[1]! + b) | 0
  h[2] = (h[2]! + c) | 0
  h[3] = (h[3]! + d) | 0
  h[4] = (h[4]! + e) | 0
  h[5] = (h[5]! + f) | 0
  h[6] = (h[6]! + g) | 0
  h[7] = (h[7]! + k) | 0
}
