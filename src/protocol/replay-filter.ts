import { SESSION_HISTORY_SECONDS, TIME_WINDOW_SECONDS } from './constants.js'

/**
 * A set of keys, each remembered until its own expiry second has passed. Keys sit in per-second
 * buckets, so forgetting costs nothing per lookup and memory is one Map entry per live key.
 */
export class ExpiringSet {
  readonly #expiryByKey = new Map<string, number>()
  readonly #buckets = new Map<number, string[]>()
  readonly #limit: number
  #oldestBucket = Infinity

  constructor(limit: number) {
    this.#limit = limit
  }

  /** Keys remembered now. */
  get size(): number {
    return this.#expiryByKey.size
  }

  /**
   * Remembers `key` until `expiresAt` (Unix seconds) and returns true, or returns false when it is
   * already remembered or the set is full (full means refuse: forgetting early would admit replays).
   */
  add(key: string, expiresAt: number, now: number): boolean {
    this.#forget(now)
    if (this.#expiryByKey.has(key)) return false
    if (this.#expiryByKey.size >= this.#limit) return false
    this.#expiryByKey.set(key, expiresAt)
    let bucket = this.#buckets.get(expiresAt)
    if (bucket === undefined) {
      bucket = []
      this.#buckets.set(expiresAt, bucket)
      if (expiresAt < this.#oldestBucket) this.#oldestBucket = expiresAt
    }
    bucket.push(key)
    return true
  }

  /** Whether `key` is remembered at `now`. */
  has(key: string, now: number): boolean {
    this.#forget(now)
    return this.#expiryByKey.has(key)
  }

  #forget(now: number): void {
    if (this.#oldestBucket >= now) return
    let oldest = Infinity
    for (const [expiresAt, keys] of this.#buckets) {
      if (expiresAt < now) {
        for (const key of keys) this.#expiryByKey.delete(key)
        this.#buckets.delete(expiresAt)
      } else if (expiresAt < oldest) {
        oldest = expiresAt
      }
    }
    this.#oldestBucket = oldest
  }
}

/** Most AuthIDs remembered at once; beyond it new handshakes are refused, never forgotten early. */
export const MAX_REMEMBERED_AUTH_IDS = 2_000_000
/** Most (user, key, IV) tuples remembered at once. */
export const MAX_REMEMBERED_SESSIONS = 2_000_000

/**
 * The AEAD replay filter: each AuthID is remembered until its own t + 120 s has passed, which is
 * exactly as long as the time check could accept it again (PROTOCOL §4.3, exact instead of V2Ray's
 * cuckoo filters).
 */
export class AuthIdReplayFilter {
  readonly #seen: ExpiringSet

  constructor(options?: { limit?: number }) {
    this.#seen = new ExpiringSet(options?.limit ?? MAX_REMEMBERED_AUTH_IDS)
  }

  /** Number of AuthIDs remembered. */
  get size(): number {
    return this.#seen.size
  }

  /** Records a fresh AuthID and returns true; false for a replay (or when the filter is full). */
  accept(authId: Buffer, time: number, now: number): boolean {
    return this.#seen.add(authId.toString('latin1'), Math.max(time, now) + TIME_WINDOW_SECONDS, now)
  }
}

/** The (user, body key, body IV) history of the last 180 s (PROTOCOL §3.2). */
export class SessionHistory {
  readonly #seen: ExpiringSet

  constructor(options?: { limit?: number }) {
    this.#seen = new ExpiringSet(options?.limit ?? MAX_REMEMBERED_SESSIONS)
  }

  /** Number of sessions remembered. */
  get size(): number {
    return this.#seen.size
  }

  /** Records a new session and returns true; false for a duplicate within 180 s. */
  accept(userId: Buffer, bodyKey: Buffer, bodyIv: Buffer, now: number): boolean {
    const key = Buffer.concat([userId, bodyKey, bodyIv]).toString('latin1')
    return this.#seen.add(key, now + SESSION_HISTORY_SECONDS, now)
  }
}
