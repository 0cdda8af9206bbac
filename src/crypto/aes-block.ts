/**
 * AES-128 single-block decryption in JavaScript, for the server's AuthID scan (PROTOCOL §4.3): one
 * 16-byte block tried against the keys of every user. node:crypto costs about 1 µs per call (a
 * cipher object, a native call, an output buffer); this costs about 0.1 µs per key.
 *
 * Timing. The rounds look up four 1 KiB tables and a 256-byte inverse S-box by bytes of the state,
 * which depend on the key: the textbook cache-timing channel (Bernstein 2005). It cannot leak here
 * because every scan first reads every cache line of every table (`#warmTables`), so the
 * key-dependent lookups that follow all hit L1 (5 KiB of tables against a 32 KiB L1) and take the
 * same time whichever line they touch; nothing evicts a line within the few microseconds of one
 * key's rounds except an interrupt, whose timing the client does not control. What a client can
 * observe, the time until the server closes a refused connection, also sums every user's rounds
 * and the drain, and carries milliseconds of event-loop jitter. The key schedule indexes the S-box
 * by key bytes, but it runs once per configured user, never on a client's input.
 */

/** 11 round keys of 4 words. */
const ROUND_KEY_WORDS = 44
const ROUNDS = 10
/** 64-byte cache lines hold 16 table words. */
const WORDS_PER_CACHE_LINE = 16
const BYTES_PER_CACHE_LINE = 64

// Tables, computed once from GF(2^8) arithmetic (FIPS 197 §5.1.1, §5.3).
const SBOX = new Uint8Array(256)
const INV_SBOX = new Uint8Array(256)
/** The four decryption T-tables in one array (Td0 at 0, Td1 at 256, Td2 at 512, Td3 at 768): one base register. */
const TD = new Int32Array(1024)
const TD0 = TD.subarray(0, 256)
const TD1 = TD.subarray(256, 512)
const TD2 = TD.subarray(512, 768)
const TD3 = TD.subarray(768, 1024)
const RCON = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36]

function gfMultiply(a: number, b: number): number {
  let product = 0
  for (let i = 0; i < 8; i++) {
    if ((b & 1) !== 0) product ^= a
    const carry = a & 0x80
    a = (a << 1) & 0xff
    if (carry !== 0) a ^= 0x1b
    b >>= 1
  }
  return product
}

function buildTables(): void {
  // Walk the multiplicative group with generator 3 for inverses, then apply the affine map.
  const exp = new Uint8Array(256)
  const log = new Uint8Array(256)
  for (let i = 0, x = 1; i < 255; i++) {
    exp[i] = x
    log[x] = i
    x = gfMultiply(x, 3)
  }
  for (let x = 0; x < 256; x++) {
    const inverse = x === 0 ? 0 : exp[(255 - log[x]!) % 255]!
    let s = inverse
    for (let shift = 1; shift <= 4; shift++) s ^= ((inverse << shift) | (inverse >> (8 - shift))) & 0xff
    s ^= 0x63
    SBOX[x] = s
    INV_SBOX[s] = x
  }
  for (let x = 0; x < 256; x++) {
    const s = INV_SBOX[x]!
    const word =
      (gfMultiply(s, 0x0e) << 24) |
      (gfMultiply(s, 0x09) << 16) |
      (gfMultiply(s, 0x0d) << 8) |
      gfMultiply(s, 0x0b)
    TD0[x] = word
    TD1[x] = (word >>> 8) | (word << 24)
    TD2[x] = (word >>> 16) | (word << 16)
    TD3[x] = (word >>> 24) | (word << 8)
  }
}
buildTables()

function subWord(w: number): number {
  return (
    (SBOX[w >>> 24]! << 24) |
    (SBOX[(w >>> 16) & 0xff]! << 16) |
    (SBOX[(w >>> 8) & 0xff]! << 8) |
    SBOX[w & 0xff]!
  )
}

/** InvMixColumns of one word, for the equivalent inverse cipher's round keys (FIPS 197 §5.3.5). */
function invMixColumn(w: number): number {
  return (
    TD0[SBOX[w >>> 24]!]! ^
    TD1[SBOX[(w >>> 16) & 0xff]!]! ^
    TD2[SBOX[(w >>> 8) & 0xff]!]! ^
    TD3[SBOX[w & 0xff]!]!
  )
}

/** Writes key's decryption round keys (equivalent inverse cipher order) at `at` in `out`. */
function expandDecryptionKey(key: Uint8Array, out: Int32Array, at: number): void {
  if (key.length !== 16)
    throw new RangeError(`Cannot expand AES-128 key: length is ${key.length}, expected 16`)
  const w = new Int32Array(ROUND_KEY_WORDS)
  for (let i = 0; i < 4; i++) {
    w[i] = (key[4 * i]! << 24) | (key[4 * i + 1]! << 16) | (key[4 * i + 2]! << 8) | key[4 * i + 3]!
  }
  for (let i = 4; i < ROUND_KEY_WORDS; i++) {
    let t = w[i - 1]!
    if (i % 4 === 0) t = subWord((t << 8) | (t >>> 24)) ^ (RCON[i / 4 - 1]! << 24)
    w[i] = w[i - 4]! ^ t
  }
  // Round keys in reverse; the inner ones pass through InvMixColumns.
  for (let round = 0; round <= ROUNDS; round++) {
    for (let j = 0; j < 4; j++) {
      const word = w[4 * (ROUNDS - round) + j]!
      out[at + 4 * round + j] = round === 0 || round === ROUNDS ? word : invMixColumn(word)
    }
  }
}

/**
 * The decryption round keys of many AES-128 keys, and the scan over them. Keys are added at the end
 * and removed by moving the last one into the gap; `firstWordEquals` and `decrypt` allocate nothing.
 */
export class AesBlockDecryptors {
  #count: number
  #keys: Int32Array

  constructor(keys: readonly Uint8Array[]) {
    this.#count = keys.length
    this.#keys = new Int32Array(keys.length * ROUND_KEY_WORDS)
    keys.forEach((key, i) => expandDecryptionKey(key, this.#keys, i * ROUND_KEY_WORDS))
  }

  get count(): number {
    return this.#count
  }

  /** Appends a key at index `count`; the storage doubles when full, so n additions cost O(n). */
  add(key: Uint8Array): void {
    if ((this.#count + 1) * ROUND_KEY_WORDS > this.#keys.length) {
      const grown = new Int32Array(Math.max(16, this.#count * 2) * ROUND_KEY_WORDS)
      grown.set(this.#keys.subarray(0, this.#count * ROUND_KEY_WORDS))
      this.#keys = grown
    }
    expandDecryptionKey(key, this.#keys, this.#count * ROUND_KEY_WORDS)
    this.#count++
  }

  /** Removes key `index`: the last key takes its place (the caller moves its own records the same way). */
  removeAt(index: number): void {
    const last = this.#count - 1
    if (index < 0 || index > last) throw new RangeError(`no key at ${index}: there are ${this.#count}`)
    if (index !== last)
      this.#keys.copyWithin(index * ROUND_KEY_WORDS, last * ROUND_KEY_WORDS, (last + 1) * ROUND_KEY_WORDS)
    this.#count = last
  }

  /**
   * The first index in [from, to) whose key decrypts `block` to a plaintext whose first 4 bytes,
   * big-endian, equal `word`; -1 if none. Only the first word of each plaintext is computed.
   */
  firstWordEquals(block: Uint8Array, word: number, from: number, to: number): number {
    warmTables()
    const c0 = readWord(block, 0)
    const c1 = readWord(block, 4)
    const c2 = readWord(block, 8)
    const c3 = readWord(block, 12)
    const rk = this.#keys
    const T = TD
    const want = word | 0
    const end = Math.min(to, this.count)
    for (let i = Math.max(0, from); i < end; i++) {
      const k = i * ROUND_KEY_WORDS
      let s0 = c0 ^ rk[k]!
      let s1 = c1 ^ rk[k + 1]!
      let s2 = c2 ^ rk[k + 2]!
      let s3 = c3 ^ rk[k + 3]!
      let t0: number, t1: number, t2: number
      // Rounds 1–9, one line per column; a helper function or a loop here measured 30–80 % slower.
      // prettier-ignore
      {
        t0 = T[s0 >>> 24]! ^ T[256 + ((s3 >>> 16) & 0xff)]! ^ T[512 + ((s2 >>> 8) & 0xff)]! ^ T[768 + (s1 & 0xff)]! ^ rk[k + 4]!
        t1 = T[s1 >>> 24]! ^ T[256 + ((s0 >>> 16) & 0xff)]! ^ T[512 + ((s3 >>> 8) & 0xff)]! ^ T[768 + (s2 & 0xff)]! ^ rk[k + 5]!
        t2 = T[s2 >>> 24]! ^ T[256 + ((s1 >>> 16) & 0xff)]! ^ T[512 + ((s0 >>> 8) & 0xff)]! ^ T[768 + (s3 & 0xff)]! ^ rk[k + 6]!
        s3 = T[s3 >>> 24]! ^ T[256 + ((s2 >>> 16) & 0xff)]! ^ T[512 + ((s1 >>> 8) & 0xff)]! ^ T[768 + (s0 & 0xff)]! ^ rk[k + 7]!
        s0 = t0; s1 = t1; s2 = t2
        t0 = T[s0 >>> 24]! ^ T[256 + ((s3 >>> 16) & 0xff)]! ^ T[512 + ((s2 >>> 8) & 0xff)]! ^ T[768 + (s1 & 0xff)]! ^ rk[k + 8]!
        t1 = T[s1 >>> 24]! ^ T[256 + ((s0 >>> 16) & 0xff)]! ^ T[512 + ((s3 >>> 8) & 0xff)]! ^ T[768 + (s2 & 0xff)]! ^ rk[k + 9]!
        t2 = T[s2 >>> 24]! ^ T[256 + ((s1 >>> 16) & 0xff)]! ^ T[512 + ((s0 >>> 8) & 0xff)]! ^ T[768 + (s3 & 0xff)]! ^ rk[k + 10]!
        s3 = T[s3 >>> 24]! ^ T[256 + ((s2 >>> 16) & 0xff)]! ^ T[512 + ((s1 >>> 8) & 0xff)]! ^ T[768 + (s0 & 0xff)]! ^ rk[k + 11]!
        s0 = t0; s1 = t1; s2 = t2
        t0 = T[s0 >>> 24]! ^ T[256 + ((s3 >>> 16) & 0xff)]! ^ T[512 + ((s2 >>> 8) & 0xff)]! ^ T[768 + (s1 & 0xff)]! ^ rk[k + 12]!
        t1 = T[s1 >>> 24]! ^ T[256 + ((s0 >>> 16) & 0xff)]! ^ T[512 + ((s3 >>> 8) & 0xff)]! ^ T[768 + (s2 & 0xff)]! ^ rk[k + 13]!
        t2 = T[s2 >>> 24]! ^ T[256 + ((s1 >>> 16) & 0xff)]! ^ T[512 + ((s0 >>> 8) & 0xff)]! ^ T[768 + (s3 & 0xff)]! ^ rk[k + 14]!
        s3 = T[s3 >>> 24]! ^ T[256 + ((s2 >>> 16) & 0xff)]! ^ T[512 + ((s1 >>> 8) & 0xff)]! ^ T[768 + (s0 & 0xff)]! ^ rk[k + 15]!
        s0 = t0; s1 = t1; s2 = t2
        t0 = T[s0 >>> 24]! ^ T[256 + ((s3 >>> 16) & 0xff)]! ^ T[512 + ((s2 >>> 8) & 0xff)]! ^ T[768 + (s1 & 0xff)]! ^ rk[k + 16]!
        t1 = T[s1 >>> 24]! ^ T[256 + ((s0 >>> 16) & 0xff)]! ^ T[512 + ((s3 >>> 8) & 0xff)]! ^ T[768 + (s2 & 0xff)]! ^ rk[k + 17]!
        t2 = T[s2 >>> 24]! ^ T[256 + ((s1 >>> 16) & 0xff)]! ^ T[512 + ((s0 >>> 8) & 0xff)]! ^ T[768 + (s3 & 0xff)]! ^ rk[k + 18]!
        s3 = T[s3 >>> 24]! ^ T[256 + ((s2 >>> 16) & 0xff)]! ^ T[512 + ((s1 >>> 8) & 0xff)]! ^ T[768 + (s0 & 0xff)]! ^ rk[k + 19]!
        s0 = t0; s1 = t1; s2 = t2
        t0 = T[s0 >>> 24]! ^ T[256 + ((s3 >>> 16) & 0xff)]! ^ T[512 + ((s2 >>> 8) & 0xff)]! ^ T[768 + (s1 & 0xff)]! ^ rk[k + 20]!
        t1 = T[s1 >>> 24]! ^ T[256 + ((s0 >>> 16) & 0xff)]! ^ T[512 + ((s3 >>> 8) & 0xff)]! ^ T[768 + (s2 & 0xff)]! ^ rk[k + 21]!
        t2 = T[s2 >>> 24]! ^ T[256 + ((s1 >>> 16) & 0xff)]! ^ T[512 + ((s0 >>> 8) & 0xff)]! ^ T[768 + (s3 & 0xff)]! ^ rk[k + 22]!
        s3 = T[s3 >>> 24]! ^ T[256 + ((s2 >>> 16) & 0xff)]! ^ T[512 + ((s1 >>> 8) & 0xff)]! ^ T[768 + (s0 & 0xff)]! ^ rk[k + 23]!
        s0 = t0; s1 = t1; s2 = t2
        t0 = T[s0 >>> 24]! ^ T[256 + ((s3 >>> 16) & 0xff)]! ^ T[512 + ((s2 >>> 8) & 0xff)]! ^ T[768 + (s1 & 0xff)]! ^ rk[k + 24]!
        t1 = T[s1 >>> 24]! ^ T[256 + ((s0 >>> 16) & 0xff)]! ^ T[512 + ((s3 >>> 8) & 0xff)]! ^ T[768 + (s2 & 0xff)]! ^ rk[k + 25]!
        t2 = T[s2 >>> 24]! ^ T[256 + ((s1 >>> 16) & 0xff)]! ^ T[512 + ((s0 >>> 8) & 0xff)]! ^ T[768 + (s3 & 0xff)]! ^ rk[k + 26]!
        s3 = T[s3 >>> 24]! ^ T[256 + ((s2 >>> 16) & 0xff)]! ^ T[512 + ((s1 >>> 8) & 0xff)]! ^ T[768 + (s0 & 0xff)]! ^ rk[k + 27]!
        s0 = t0; s1 = t1; s2 = t2
        t0 = T[s0 >>> 24]! ^ T[256 + ((s3 >>> 16) & 0xff)]! ^ T[512 + ((s2 >>> 8) & 0xff)]! ^ T[768 + (s1 & 0xff)]! ^ rk[k + 28]!
        t1 = T[s1 >>> 24]! ^ T[256 + ((s0 >>> 16) & 0xff)]! ^ T[512 + ((s3 >>> 8) & 0xff)]! ^ T[768 + (s2 & 0xff)]! ^ rk[k + 29]!
        t2 = T[s2 >>> 24]! ^ T[256 + ((s1 >>> 16) & 0xff)]! ^ T[512 + ((s0 >>> 8) & 0xff)]! ^ T[768 + (s3 & 0xff)]! ^ rk[k + 30]!
        s3 = T[s3 >>> 24]! ^ T[256 + ((s2 >>> 16) & 0xff)]! ^ T[512 + ((s1 >>> 8) & 0xff)]! ^ T[768 + (s0 & 0xff)]! ^ rk[k + 31]!
        s0 = t0; s1 = t1; s2 = t2
        t0 = T[s0 >>> 24]! ^ T[256 + ((s3 >>> 16) & 0xff)]! ^ T[512 + ((s2 >>> 8) & 0xff)]! ^ T[768 + (s1 & 0xff)]! ^ rk[k + 32]!
        t1 = T[s1 >>> 24]! ^ T[256 + ((s0 >>> 16) & 0xff)]! ^ T[512 + ((s3 >>> 8) & 0xff)]! ^ T[768 + (s2 & 0xff)]! ^ rk[k + 33]!
        t2 = T[s2 >>> 24]! ^ T[256 + ((s1 >>> 16) & 0xff)]! ^ T[512 + ((s0 >>> 8) & 0xff)]! ^ T[768 + (s3 & 0xff)]! ^ rk[k + 34]!
        s3 = T[s3 >>> 24]! ^ T[256 + ((s2 >>> 16) & 0xff)]! ^ T[512 + ((s1 >>> 8) & 0xff)]! ^ T[768 + (s0 & 0xff)]! ^ rk[k + 35]!
        s0 = t0; s1 = t1; s2 = t2
        t0 = T[s0 >>> 24]! ^ T[256 + ((s3 >>> 16) & 0xff)]! ^ T[512 + ((s2 >>> 8) & 0xff)]! ^ T[768 + (s1 & 0xff)]! ^ rk[k + 36]!
        t1 = T[s1 >>> 24]! ^ T[256 + ((s0 >>> 16) & 0xff)]! ^ T[512 + ((s3 >>> 8) & 0xff)]! ^ T[768 + (s2 & 0xff)]! ^ rk[k + 37]!
        t2 = T[s2 >>> 24]! ^ T[256 + ((s1 >>> 16) & 0xff)]! ^ T[512 + ((s0 >>> 8) & 0xff)]! ^ T[768 + (s3 & 0xff)]! ^ rk[k + 38]!
        s3 = T[s3 >>> 24]! ^ T[256 + ((s2 >>> 16) & 0xff)]! ^ T[512 + ((s1 >>> 8) & 0xff)]! ^ T[768 + (s0 & 0xff)]! ^ rk[k + 39]!
        s0 = t0; s1 = t1; s2 = t2
      }
      if ((lastRound(s0, s3, s2, s1) ^ rk[k + 40]!) === want) return i
    }
    return -1
  }

  /** Decrypts one 16-byte `block` with key `index` into `out` (16 bytes). */
  decrypt(index: number, block: Uint8Array, out: Uint8Array): void {
    warmTables()
    const rk = this.#keys
    const k = index * ROUND_KEY_WORDS
    let s0 = readWord(block, 0) ^ rk[k]!
    let s1 = readWord(block, 4) ^ rk[k + 1]!
    let s2 = readWord(block, 8) ^ rk[k + 2]!
    let s3 = readWord(block, 12) ^ rk[k + 3]!
    for (let r = k + 4; r < k + 40; r += 4) {
      const t0 =
        TD0[s0 >>> 24]! ^ TD1[(s3 >>> 16) & 0xff]! ^ TD2[(s2 >>> 8) & 0xff]! ^ TD3[s1 & 0xff]! ^ rk[r]!
      const t1 =
        TD0[s1 >>> 24]! ^ TD1[(s0 >>> 16) & 0xff]! ^ TD2[(s3 >>> 8) & 0xff]! ^ TD3[s2 & 0xff]! ^ rk[r + 1]!
      const t2 =
        TD0[s2 >>> 24]! ^ TD1[(s1 >>> 16) & 0xff]! ^ TD2[(s0 >>> 8) & 0xff]! ^ TD3[s3 & 0xff]! ^ rk[r + 2]!
      s3 = TD0[s3 >>> 24]! ^ TD1[(s2 >>> 16) & 0xff]! ^ TD2[(s1 >>> 8) & 0xff]! ^ TD3[s0 & 0xff]! ^ rk[r + 3]!
      s0 = t0
      s1 = t1
      s2 = t2
    }
    writeWord(out, 0, lastRound(s0, s3, s2, s1) ^ rk[k + 40]!)
    writeWord(out, 4, lastRound(s1, s0, s3, s2) ^ rk[k + 41]!)
    writeWord(out, 8, lastRound(s2, s1, s0, s3) ^ rk[k + 42]!)
    writeWord(out, 12, lastRound(s3, s2, s1, s0) ^ rk[k + 43]!)
  }
}

/** InvShiftRows and InvSubBytes of one output word, before its round key. */
function lastRound(a: number, b: number, c: number, d: number): number {
  return (
    (INV_SBOX[a >>> 24]! << 24) |
    (INV_SBOX[(b >>> 16) & 0xff]! << 16) |
    (INV_SBOX[(c >>> 8) & 0xff]! << 8) |
    INV_SBOX[d & 0xff]!
  )
}

function readWord(block: Uint8Array, at: number): number {
  return (block[at]! << 24) | (block[at + 1]! << 16) | (block[at + 2]! << 8) | block[at + 3]!
}

function writeWord(out: Uint8Array, at: number, word: number): void {
  out[at] = word >>> 24
  out[at + 1] = (word >>> 16) & 0xff
  out[at + 2] = (word >>> 8) & 0xff
  out[at + 3] = word & 0xff
}

/** Where the warm-up's loads go, so no engine drops them as dead code. */
const warmth = { sink: 0 }

/** Reads one word of every cache line of every table, so the lookups that follow all hit L1. */
function warmTables(): void {
  let sum = 0
  for (let i = 0; i < TD.length; i += WORDS_PER_CACHE_LINE) sum ^= TD[i]!
  for (let i = 0; i < 256; i += BYTES_PER_CACHE_LINE) sum ^= INV_SBOX[i]!
  warmth.sink = sum
}
