import type { AuthIdMatch, UserDirectory } from '../protocol/user-directory.js'

/** Most AuthID scans waiting for their turn; more are refused as unknown (silently, as any refusal). */
export const MAX_PENDING_AUTH_SCANS = 1024
/** How long one turn of the scan scheduler may run before the event loop gets a turn. */
const AUTH_SCAN_SLICE_MS = 2
/** Most client IPs whose last matching shard is remembered, to try that shard first. */
const MAX_SCAN_HINTS = 10_000

const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/** What a scan refused for lack of room returns: an unknown AuthID, told apart by identity. */
export const SCAN_OVERLOADED: AuthIdMatch = { status: 'unknown' }

/** An AuthID scan still under way; `cancel` stops it before its result is delivered. */
export interface PendingAuthIdScan {
  cancel(): void
}

/** One AuthID being matched shard by shard. */
interface PendingScan extends PendingAuthIdScan {
  readonly authId: Buffer
  readonly now: number
  readonly ip: string
  /** Shard tried first (the client IP's last match), then the others in order. */
  readonly first: number
  next: number
  skewed: AuthIdMatch | undefined
  cancelled: boolean
  readonly done: (match: AuthIdMatch) => void
}

/**
 * Matches AuthIDs against a user set too large for one synchronous scan: in shards, the client IP's
 * last matching shard at once, the rest in turns of the event loop, round-robin with other pending
 * scans, at most MAX_PENDING_AUTH_SCANS waiting. The shards are the users' own (VmessUsers), read
 * afresh at every step, so users added or removed at runtime are scanned from then on; the AES work
 * itself is UserDirectory's.
 */
export class AuthIdScanner {
  readonly #shards: () => readonly UserDirectory[] | undefined
  readonly #hints = new Map<string, number>()
  #scans: PendingScan[] = []
  #scanning = false

  /** `shards` returns the users' shards now, undefined while there are few enough to match in one go. */
  constructor(shards: () => readonly UserDirectory[] | undefined) {
    this.#shards = shards
  }

  /** Whether AuthIDs are matched here, in shards, rather than inline by the handshake. */
  get sharded(): boolean {
    return this.#shards() !== undefined
  }

  /**
   * Returns the match when the first shard decided it (or SCAN_OVERLOADED when no scan can wait),
   * else the pending scan, whose `done` is called later unless it is cancelled. Only while `sharded`.
   */
  start(authId: Buffer, ip: string, done: (match: AuthIdMatch) => void): AuthIdMatch | PendingAuthIdScan {
    const hint = this.#hints.get(ip)
    const scan: PendingScan = {
      authId,
      now: nowSeconds(),
      ip,
      first: hint !== undefined && hint < this.#current().length ? hint : 0,
      next: 0,
      skewed: undefined,
      cancelled: false,
      done,
      cancel() {
        this.cancelled = true
      },
    }
    const result = this.#step(scan)
    if (result !== undefined) return result
    // Refused as unknown, and reported once (by the caller) as AUTH_SCAN_OVERLOAD.
    if (this.#scans.length >= MAX_PENDING_AUTH_SCANS) return SCAN_OVERLOADED
    this.#scans.push(scan)
    if (!this.#scanning) {
      this.#scanning = true
      setImmediate(() => this.#run())
    }
    return scan
  }

  /** Tries the scan's next shard; the match once decided, undefined while shards remain. */
  #step(scan: PendingScan): AuthIdMatch | undefined {
    const shards = this.#current()
    const k = scan.next++
    const index = k === 0 ? scan.first : k - 1 < scan.first ? k - 1 : k
    const result = shards[index]!.matchAuthId(scan.authId, scan.now)
    if (result.status === 'found') {
      if (this.#hints.size >= MAX_SCAN_HINTS) this.#hints.clear()
      this.#hints.set(scan.ip, index)
      return result
    }
    if (result.status === 'clock-skew') scan.skewed ??= result
    if (scan.next < shards.length) return undefined
    return scan.skewed ?? { status: 'unknown' }
  }

  /** The shards now; shards are only ever added while the scanner is in use, never dropped. */
  #current(): readonly UserDirectory[] {
    return this.#shards() ?? []
  }

  #run(): void {
    const until = performance.now() + AUTH_SCAN_SLICE_MS
    while (this.#scans.length > 0 && performance.now() < until) {
      const scan = this.#scans.shift()!
      if (scan.cancelled) continue
      const result = this.#step(scan)
      if (result === undefined) this.#scans.push(scan)
      else scan.done(result)
    }
    if (this.#scans.length > 0) setImmediate(() => this.#run())
    else this.#scanning = false
  }
}

/** Whether `started` is a scan still under way rather than a decided match. */
export function isPendingScan(started: AuthIdMatch | PendingAuthIdScan): started is PendingAuthIdScan {
  return 'cancel' in started
}
