import { createHmac } from 'node:crypto'
import { TIME_WINDOW_SECONDS } from './constants.js'
import { legacyTimeBytes } from './request-header.js'
import type { VmessUser } from './user.js'

/** HMAC-MD5(signing ID, BE64(t)): the 16 cleartext bytes that open a legacy request (docs/protocol.md §3.1). */
export function legacyAuth(signingId: Uint8Array, time: number): Buffer {
  return createHmac('md5', signingId).update(legacyTimeBytes(time)).digest()
}

/** What a legacy auth value maps to. */
export interface LegacyAuthEntry {
  readonly user: VmessUser
  readonly time: number
  /** Burnt by a replay or a bad header under this auth (docs/protocol.md §3.2 taint). */
  tainted: boolean
}

/** Most table entries: (1 + alterId) × 241 per user; refuse configs beyond this. */
export const MAX_LEGACY_TABLE_ENTRIES = 4_000_000
/** Seconds computed ahead of the window's upper edge, so a table refreshed now stays complete this long. */
export const LEGACY_LOOKAHEAD_SECONDS = 10
/** Seconds the ring of per-second blocks can hold: the window (241) plus the lookahead, rounded up. */
const RING_SECONDS = 256
const AUTH_LENGTH = 16
/** The index is kept at most half full, so probes stay short. */
const INDEX_LOAD = 0.5
const EMPTY_SECOND = -1

/**
 * The server's legacy time-window table: auth value → (user, t) for every ID of every user and
 * every second t in [now − 120, now + 120] (docs/protocol.md §3.2), with a taint bit per entry.
 *
 * It is packed, so 10,000 users cost ≈ 24 B per entry instead of a JS object each: one block of
 * 16-byte auth values per second (in a ring of 256 seconds) and an open-addressing index of
 * 4-byte references. It is filled incrementally: `refresh(now, budget)` computes at most `budget`
 * HMACs, nearest seconds first, so a caller can spread the (1 + alterId) × 241 × users HMACs over
 * many turns of its event loop. Once a caller refreshes with a budget, `lookup` stops refreshing by
 * itself; otherwise every lookup first completes the table (the simple, synchronous use).
 */
export class LegacyAuthTable {
  readonly #users: readonly VmessUser[]
  /** Every signing ID (primary and alter IDs of every user) and its user. */
  readonly #ids: Buffer[] = []
  readonly #owners: VmessUser[] = []
  readonly #perSecond: number
  readonly #blocks: (Buffer | undefined)[] = new Array<Buffer | undefined>(RING_SECONDS).fill(undefined)
  readonly #taints: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(RING_SECONDS).fill(
    undefined,
  )
  readonly #blockTime = new Float64Array(RING_SECONDS).fill(EMPTY_SECOND)
  readonly #filled = new Uint32Array(RING_SECONDS)
  readonly #index: Uint32Array
  readonly #timeBytes = Buffer.alloc(8)
  #entries = 0
  readonly #retired = new Set<VmessUser>()
  #driven = false
  /** The `now` for which the table was last found complete. */
  #completeAt = Number.NaN

  constructor(users: readonly VmessUser[]) {
    this.#users = users
    for (const user of users) {
      for (const id of [user.id, ...user.alterIds]) {
        this.#ids.push(id)
        this.#owners.push(user)
      }
    }
    this.#perSecond = this.#ids.length
    this.#index = new Uint32Array(Math.max(16, Math.ceil((RING_SECONDS * this.#perSecond) / INDEX_LOAD)))
  }

  /**
   * Stops matching `user` at once: a user removed at runtime is refused by this table until it is
   * replaced by one built without them (rebuilding costs (1 + alterId) × 241 HMACs per user).
   */
  retire(user: VmessUser): void {
    this.#retired.add(user)
  }

  /** Number of auth values in the table. */
  get size(): number {
    return this.#entries
  }

  /** The users the table was built from. */
  get users(): readonly VmessUser[] {
    return this.#users
  }

  /** Bytes the table holds (auth blocks, taint bits and index). */
  get byteLength(): number {
    let total = this.#index.byteLength
    for (const block of this.#blocks) total += block?.length ?? 0
    for (const taint of this.#taints) total += taint?.length ?? 0
    return total
  }

  /** Finds an auth value valid at `now`: |t − now| ≤ 120. Untainted and tainted entries both return. */
  lookup(auth: Buffer, now: number): LegacyAuthEntry | undefined {
    if (auth.length !== AUTH_LENGTH) return undefined
    if (!this.#driven) this.refresh(now)
    const index = this.#index
    const perSecond = this.#perSecond
    for (let position = this.#home(auth, 0), probes = 0; probes < index.length; probes++) {
      const ref = index[position]!
      if (ref === 0) return undefined
      const slot = Math.floor((ref - 1) / perSecond)
      const id = (ref - 1) % perSecond
      const block = this.#blocks[slot]!
      if (block.compare(auth, 0, AUTH_LENGTH, id * AUTH_LENGTH, id * AUTH_LENGTH + AUTH_LENGTH) === 0) {
        const time = this.#blockTime[slot]!
        if (Math.abs(time - now) > TIME_WINDOW_SECONDS) return undefined
        if (this.#retired.size > 0 && this.#retired.has(this.#owners[id]!)) return undefined
        return this.#entry(slot, id, time)
      }
      position = position + 1 === index.length ? 0 : position + 1
    }
    return undefined
  }

  /**
   * Rolls the window forward to cover [now − 120, now + 120 + lookahead], computing at most
   * `budget` HMACs, nearest seconds first. Returns true when the table is complete for `now`.
   * Calling it with a finite budget hands the refresh to the caller: `lookup` no longer refreshes.
   */
  refresh(now: number, budget = Infinity): boolean {
    if (budget !== Infinity) this.#driven = true
    if (now === this.#completeAt) return true
    const from = now - TIME_WINDOW_SECONDS
    const to = now + TIME_WINDOW_SECONDS + LEGACY_LOOKAHEAD_SECONDS
    let left = budget
    // Forgetting a second costs an index removal per entry: it counts against the budget too.
    for (let slot = 0; slot < RING_SECONDS && left > 0; slot++) {
      const time = this.#blockTime[slot]!
      if (time !== EMPTY_SECOND && (time < from || time > to)) left = this.#drop(slot, left)
    }
    if (left <= 0) return false
    // Nearest seconds first: genuine clients sign with now + [−30, +29] (docs/protocol.md §3.1).
    for (let distance = 0; distance <= to - now || distance <= now - from; distance++) {
      for (const time of distance === 0 ? [now] : [now - distance, now + distance]) {
        if (time < from || time > to || time < 0) continue
        left = this.#fill(time, left)
        if (left <= 0 && !this.#isComplete(time)) return false
      }
    }
    this.#completeAt = now
    return true
  }

  /** Whether every auth value valid at `now` (|t − now| ≤ 120) is in the table. */
  covers(now: number): boolean {
    for (let time = now - TIME_WINDOW_SECONDS; time <= now + TIME_WINDOW_SECONDS; time++) {
      if (time >= 0 && !this.#isComplete(time)) return false
    }
    return true
  }

  /** The seconds the table currently covers completely (from > to when none). */
  get window(): { from: number; to: number } {
    let from = Infinity
    let to = -Infinity
    for (let slot = 0; slot < RING_SECONDS; slot++) {
      const time = this.#blockTime[slot]!
      if (time === EMPTY_SECOND || this.#filled[slot] !== this.#perSecond) continue
      from = Math.min(from, time)
      to = Math.max(to, time)
    }
    return { from, to }
  }

  #isComplete(time: number): boolean {
    const slot = time % RING_SECONDS
    return this.#blockTime[slot] === time && this.#filled[slot] === this.#perSecond
  }

  /** Computes up to `budget` of second `time`'s auth values; returns the budget left. */
  #fill(time: number, budget: number): number {
    const perSecond = this.#perSecond
    const slot = time % RING_SECONDS
    if (this.#blockTime[slot] !== time) {
      if (this.#blockTime[slot] !== EMPTY_SECOND) budget = this.#drop(slot, budget)
      if (this.#blockTime[slot] !== EMPTY_SECOND) return budget
      this.#blockTime[slot] = time
      this.#filled[slot] = 0
      this.#blocks[slot] ??= Buffer.alloc(perSecond * AUTH_LENGTH)
      this.#taints[slot] ??= new Uint8Array(Math.ceil(perSecond / 8))
      this.#taints[slot].fill(0)
    }
    let filled = this.#filled[slot]!
    if (filled === perSecond || budget <= 0) return budget
    const block = this.#blocks[slot]!
    const message = this.#timeBytes
    message.writeBigUInt64BE(BigInt(time))
    let left = budget
    while (filled < perSecond && left > 0) {
      const auth = createHmac('md5', this.#ids[filled]!).update(message).digest()
      auth.copy(block, filled * AUTH_LENGTH)
      this.#insert(slot * perSecond + filled + 1, block, filled)
      filled++
      left--
    }
    this.#filled[slot] = filled
    return left
  }

  #home(bytes: Buffer, offset: number): number {
    // Auth values are HMAC outputs, unknown to anyone without the IDs: their first word is a fair hash.
    return bytes.readUInt32LE(offset) % this.#index.length
  }

  #insert(ref: number, block: Buffer, id: number): void {
    const index = this.#index
    let position = this.#home(block, id * AUTH_LENGTH)
    while (index[position] !== 0) position = position + 1 === index.length ? 0 : position + 1
    index[position] = ref
    this.#entries++
  }

  /**
   * Forgets the second held by `slot`, removing up to `budget` of its entries from the index (the
   * last first); the slot is free once all are gone. Returns the budget left.
   */
  #drop(slot: number, budget: number): number {
    const block = this.#blocks[slot]!
    const perSecond = this.#perSecond
    let filled = this.#filled[slot]!
    let left = budget
    this.#completeAt = Number.NaN
    while (filled > 0 && left > 0) {
      filled--
      left--
      this.#remove(slot * perSecond + filled + 1, block, filled)
    }
    this.#filled[slot] = filled
    if (filled === 0) this.#blockTime[slot] = EMPTY_SECOND
    return left
  }

  /** Linear-probing deletion with backward shift, so no tombstones build up. */
  #remove(ref: number, block: Buffer, id: number): void {
    const index = this.#index
    const size = index.length
    let hole = this.#home(block, id * AUTH_LENGTH)
    while (index[hole] !== ref) {
      if (index[hole] === 0) return
      hole = hole + 1 === size ? 0 : hole + 1
    }
    index[hole] = 0
    this.#entries--
    for (
      let next = hole + 1 === size ? 0 : hole + 1;
      index[next] !== 0;
      next = next + 1 === size ? 0 : next + 1
    ) {
      const other = index[next]! - 1
      const otherBlock = this.#blocks[Math.floor(other / this.#perSecond)]!
      const home = this.#home(otherBlock, (other % this.#perSecond) * AUTH_LENGTH)
      // Move the entry back into the hole unless its home lies cyclically in (hole, next].
      const between = hole <= next ? home > hole && home <= next : home > hole || home <= next
      if (!between) {
        index[hole] = index[next]!
        index[next] = 0
        hole = next
      }
    }
  }

  #entry(slot: number, id: number, time: number): LegacyAuthEntry {
    const taints = this.#taints
    const blockTime = this.#blockTime
    const byte = id >> 3
    const bit = 1 << (id & 7)
    // The entry writes through to the table while its second is still held there.
    return {
      user: this.#owners[id]!,
      time,
      get tainted(): boolean {
        return blockTime[slot] === time && (taints[slot]![byte]! & bit) !== 0
      },
      set tainted(value: boolean) {
        if (blockTime[slot] !== time) return
        const bits = taints[slot]!
        bits[byte] = value ? bits[byte]! | bit : bits[byte]! & ~bit
      },
    }
  }
}
