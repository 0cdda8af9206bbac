import { secureRandom } from '../crypto/random.js'
import { SESSION_HISTORY_SECONDS, TIME_WINDOW_SECONDS } from './constants.js'

/** A table is rebuilt once this share of its slots has been written (live or expired entries). */
const MAX_LOAD = 0.75
/** A rebuilt table holds its live entries at this load: 20 B / 0.4 = 50 B per 16-byte key at most. */
const REBUILD_LOAD = 0.4
/** Smallest table, in slots; it is allocated with the first key. */
const MIN_CAPACITY = 256
/** Expiry seconds are stored + 1 in a Uint32Array, 0 meaning a slot never written. */
const MAX_EXPIRY = 0xffff_fffe

/**
 * A set of fixed-length byte keys, each remembered until its own expiry second has passed: an
 * open-addressing hash table packed in typed arrays (key words and expiry second per slot), so a
 * remembered key costs 4 B per key word + 4 B over the load factor, and nothing on the JS heap.
 * Expired slots are reused in place and dropped when the table is rebuilt; live counts are kept
 * per expiry second, so `size` is exact.
 */
export class ExpiringSet {
  readonly #words: number
  readonly #limit: number
  readonly #seed: number
  #capacity = 0
  #keys = new Uint32Array(0)
  #expiry = new Uint32Array(0)
  /** Slots written since the last rebuild, live or expired. */
  #used = 0
  #live = 0
  readonly #liveByExpiry = new Map<number, number>()
  #oldestExpiry = Infinity
  readonly #scratch: Uint32Array

  constructor(options: { keyLength: number; limit: number }) {
    if (!Number.isInteger(options.keyLength) || options.keyLength <= 0 || options.keyLength % 4 !== 0) {
      throw new RangeError(
        `Cannot create ExpiringSet: keyLength is ${options.keyLength}, expected a multiple of 4`,
      )
    }
    this.#words = options.keyLength / 4
    this.#limit = options.limit
    this.#seed = secureRandom(4).readUInt32LE(0)
    this.#scratch = new Uint32Array(this.#words)
  }

  /** Keys remembered now (as of the last call that gave a time). */
  get size(): number {
    return this.#live
  }

  /** Bytes held by the table (its typed arrays). */
  get byteLength(): number {
    return this.#keys.byteLength + this.#expiry.byteLength
  }

  /**
   * Remembers `key` until `expiresAt` (Unix seconds) and returns true, or returns false when it is
   * already remembered or the set is full (full means refuse: forgetting early would admit replays).
   */
  add(key: Uint8Array, expiresAt: number, now: number): boolean {
    this.#forget(now)
    if (this.#capacity === 0) this.#rebuild(now)
    const words = this.#load(key)
    const slot = this.#find(words, now)
    if (slot.live) return false
    if (this.#live >= this.#limit) return false
    const expiry = Math.min(Math.max(Math.floor(expiresAt), 0), MAX_EXPIRY)
    let index = slot.reusable
    if (index < 0) {
      index = slot.empty
      this.#used++
    }
    this.#keys.set(words, index * this.#words)
    this.#expiry[index] = expiry + 1
    this.#live++
    this.#liveByExpiry.set(expiry, (this.#liveByExpiry.get(expiry) ?? 0) + 1)
    if (expiry < this.#oldestExpiry) this.#oldestExpiry = expiry
    if (this.#used > this.#capacity * MAX_LOAD) this.#rebuild(now)
    return true
  }

  /** Whether `key` is remembered at `now`. */
  has(key: Uint8Array, now: number): boolean {
    this.#forget(now)
    if (this.#capacity === 0) return false
    return this.#find(this.#load(key), now).live
  }

  #load(key: Uint8Array): Uint32Array {
    if (key.length !== this.#words * 4) {
      throw new RangeError(`Cannot look up key: it is ${key.length} bytes, expected ${this.#words * 4}`)
    }
    const view = new DataView(key.buffer, key.byteOffset, key.length)
    const words = this.#scratch
    for (let i = 0; i < words.length; i++) words[i] = view.getUint32(i * 4, true)
    return words
  }

  #hash(words: Uint32Array): number {
    // murmur3-style mixing with a per-set random seed: keys chosen by a client cannot aim at one chain.
    let h = this.#seed
    for (let i = 0; i < words.length; i++) {
      let k = Math.imul(words[i]!, 0xcc9e2d51)
      k = Math.imul((k << 15) | (k >>> 17), 0x1b873593)
      h ^= k
      h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64
    }
    h ^= h >>> 16
    h = Math.imul(h, 0x85ebca6b)
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35)
    h ^= h >>> 16
    return (h >>> 0) % this.#capacity
  }

  /** Probes for `words`: whether a live copy exists, the first reusable (expired) slot, or the empty slot that ends the chain. */
  #find(words: Uint32Array, now: number): { live: boolean; reusable: number; empty: number } {
    const keys = this.#keys
    const expiry = this.#expiry
    const width = this.#words
    let reusable = -1
    for (let index = this.#hash(words), probes = 0; probes < this.#capacity; probes++) {
      const stored = expiry[index]!
      if (stored === 0) return { live: false, reusable, empty: index }
      const base = index * width
      let same = true
      for (let i = 0; i < width; i++) {
        if (keys[base + i] !== words[i]) {
          same = false
          break
        }
      }
      const alive = stored - 1 >= now
      // Keys are unique in the table, so an expired copy of this key is the slot to reuse.
      if (same)
        return alive ? { live: true, reusable: -1, empty: -1 } : { live: false, reusable: index, empty: -1 }
      if (!alive && reusable < 0) reusable = index
      index = index + 1 === this.#capacity ? 0 : index + 1
    }
    // Unreachable while the load stays below MAX_LOAD: a rebuild always leaves empty slots.
    return { live: false, reusable, empty: -1 }
  }

  #forget(now: number): void {
    if (this.#oldestExpiry >= now) return
    let oldest = Infinity
    for (const [expiry, count] of this.#liveByExpiry) {
      if (expiry < now) {
        this.#live -= count
        this.#liveByExpiry.delete(expiry)
      } else if (expiry < oldest) {
        oldest = expiry
      }
    }
    this.#oldestExpiry = oldest
  }

  /** Copies the live entries into a table sized for them at REBUILD_LOAD. */
  #rebuild(now: number): void {
    const oldKeys = this.#keys
    const oldExpiry = this.#expiry
    const oldCapacity = this.#capacity
    const width = this.#words
    this.#capacity = Math.max(MIN_CAPACITY, Math.ceil(this.#live / REBUILD_LOAD))
    this.#keys = new Uint32Array(this.#capacity * width)
    this.#expiry = new Uint32Array(this.#capacity)
    this.#used = 0
    const words = this.#scratch
    for (let old = 0; old < oldCapacity; old++) {
      const stored = oldExpiry[old]!
      if (stored === 0 || stored - 1 < now) continue
      for (let i = 0; i < width; i++) words[i] = oldKeys[old * width + i]!
      let index = this.#hash(words)
      while (this.#expiry[index] !== 0) index = index + 1 === this.#capacity ? 0 : index + 1
      this.#keys.set(words, index * width)
      this.#expiry[index] = stored
      this.#used++
    }
  }
}

/** Most AuthIDs remembered at once; beyond it new handshakes are refused, never forgotten early. */
export const MAX_REMEMBERED_AUTH_IDS = 2_000_000
/** Most (user, key, IV) tuples remembered at once. */
export const MAX_REMEMBERED_SESSIONS = 2_000_000

const AUTH_ID_LENGTH = 16
const SESSION_KEY_LENGTH = 16 + 16 + 16

/**
 * The AEAD replay filter: each AuthID is remembered until its own t + 120 s has passed, which is
 * exactly as long as the time check could accept it again (docs/protocol.md §4.3, exact instead of V2Ray's
 * cuckoo filters, so it never refuses a fresh AuthID).
 */
export class AuthIdReplayFilter {
  readonly #seen: ExpiringSet

  constructor(options?: { limit?: number }) {
    this.#seen = new ExpiringSet({
      keyLength: AUTH_ID_LENGTH,
      limit: options?.limit ?? MAX_REMEMBERED_AUTH_IDS,
    })
  }

  /** Number of AuthIDs remembered. */
  get size(): number {
    return this.#seen.size
  }

  /** Bytes the filter's table holds. */
  get byteLength(): number {
    return this.#seen.byteLength
  }

  /** Records a fresh AuthID and returns true; false for a replay (or when the filter is full). */
  accept(authId: Buffer, time: number, now: number): boolean {
    return this.#seen.add(authId, Math.max(time, now) + TIME_WINDOW_SECONDS, now)
  }
}

/** The (user, body key, body IV) history of the last 180 s (docs/protocol.md §3.2). */
export class SessionHistory {
  readonly #seen: ExpiringSet
  readonly #key = Buffer.alloc(SESSION_KEY_LENGTH)

  constructor(options?: { limit?: number }) {
    this.#seen = new ExpiringSet({
      keyLength: SESSION_KEY_LENGTH,
      limit: options?.limit ?? MAX_REMEMBERED_SESSIONS,
    })
  }

  /** Number of sessions remembered. */
  get size(): number {
    return this.#seen.size
  }

  /** Records a new session and returns true; false for a duplicate within 180 s. */
  accept(userId: Buffer, bodyKey: Buffer, bodyIv: Buffer, now: number): boolean {
    // A scratch key: the set copies its words at once.
    userId.copy(this.#key, 0, 0, 16)
    bodyKey.copy(this.#key, 16, 0, 16)
    bodyIv.copy(this.#key, 32, 0, 16)
    return this.#seen.add(this.#key, now + SESSION_HISTORY_SECONDS, now)
  }
}
