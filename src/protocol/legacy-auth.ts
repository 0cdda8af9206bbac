import { createHmac } from 'node:crypto'
import { TIME_WINDOW_SECONDS } from './constants.js'
import { legacyTimeBytes } from './request-header.js'
import type { VmessUser } from './user.js'

/** HMAC-MD5(signing ID, BE64(t)): the 16 cleartext bytes that open a legacy request (PROTOCOL §3.1). */
export function legacyAuth(signingId: Uint8Array, time: number): Buffer {
  return createHmac('md5', signingId).update(legacyTimeBytes(time)).digest()
}

/** What a legacy auth value maps to. */
export interface LegacyAuthEntry {
  readonly user: VmessUser
  readonly time: number
  /** Burnt by a replay or a bad header under this auth (PROTOCOL §3.2 taint). */
  tainted: boolean
}

/** Most table entries: (1 + alterId) × 241 per user; refuse configs beyond this. */
export const MAX_LEGACY_TABLE_ENTRIES = 4_000_000
/** How often the table is rolled forward, in seconds (as V2Ray does). */
const REFRESH_SECONDS = 10

/**
 * The server's legacy time-window table: auth value → (user, t) for every ID of every user and
 * every second t in [now − 120, now + 120] (PROTOCOL §3.2), refreshed as the clock moves.
 */
export class LegacyAuthTable {
  readonly #users: readonly VmessUser[]
  readonly #entries = new Map<string, LegacyAuthEntry>()
  readonly #byTime = new Map<number, string[]>()
  #from = 0
  #to = -1
  #lastRefresh = -Infinity

  constructor(users: readonly VmessUser[]) {
    this.#users = users
  }

  /** Number of auth values in the table. */
  get size(): number {
    return this.#entries.size
  }

  /** Finds an auth value valid at `now`: |t − now| ≤ 120. Untainted and tainted entries both return. */
  lookup(auth: Buffer, now: number): LegacyAuthEntry | undefined {
    this.refresh(now)
    const entry = this.#entries.get(auth.toString('hex'))
    if (entry === undefined || Math.abs(entry.time - now) > TIME_WINDOW_SECONDS) return undefined
    return entry
  }

  /** Rolls the window forward to `now` (at most every 10 s, unless the clock jumped back). */
  refresh(now: number): void {
    if (now - this.#lastRefresh < REFRESH_SECONDS && now >= this.#lastRefresh) return
    this.#lastRefresh = now
    const from = now - TIME_WINDOW_SECONDS - REFRESH_SECONDS
    const to = now + TIME_WINDOW_SECONDS
    for (const [time, keys] of this.#byTime) {
      if (time >= from && time <= to) continue
      for (const key of keys) this.#entries.delete(key)
      this.#byTime.delete(time)
    }
    for (let time = from; time <= to; time++) {
      if (this.#byTime.has(time)) continue
      const keys: string[] = []
      for (const user of this.#users) {
        for (const id of [user.id, ...user.alterIds]) {
          const key = legacyAuth(id, time).toString('hex')
          this.#entries.set(key, { user, time, tainted: false })
          keys.push(key)
        }
      }
      this.#byTime.set(time, keys)
    }
    this.#from = from
    this.#to = to
  }

  /** The seconds the table currently covers. */
  get window(): { from: number; to: number } {
    return { from: this.#from, to: this.#to }
  }
}
