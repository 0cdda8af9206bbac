import { AesBlockDecryptors } from '../crypto/aes-block.js'
import { TIME_WINDOW_SECONDS } from './constants.js'
import { AUTH_ID_LENGTH, readAuthIdPlaintext } from './auth-id.js'
import type { VmessUser } from './user.js'

/** The outcome of matching an AuthID against every user. */
export type AuthIdMatch =
  | { readonly status: 'found'; readonly user: VmessUser; readonly time: number }
  /** A user's CRC matched but the time is outside ±120 s: the client clock is off (or a stale replay). */
  | { readonly status: 'clock-skew'; readonly user: VmessUser; readonly time: number }
  | { readonly status: 'unknown' }

const UNKNOWN: AuthIdMatch = { status: 'unknown' }

/**
 * The server's users, with every user's AuthID key expanded once for the scan of docs/protocol.md §4.3
 * step 1. The scan decrypts only the first 4 bytes of each candidate plaintext: an AuthID opens with
 * BE64(time), whose high word is 0 until 2106, so any other value rules the user out (junk passes
 * for one user in 2³²), and only a survivor is decrypted whole and checked (CRC32, time).
 */
export class UserDirectory {
  readonly #users: VmessUser[]
  readonly #decryptors: AesBlockDecryptors
  readonly #plain = Buffer.alloc(AUTH_ID_LENGTH)
  /** The user matched last: a busy client tends to connect again, so it is tried first. */
  #recent = -1

  constructor(users: readonly VmessUser[]) {
    this.#users = [...users]
    this.#decryptors = new AesBlockDecryptors(users.map((user) => user.authIdKey))
  }

  /** The users, in scan order (which changes when a user is removed). */
  get users(): readonly VmessUser[] {
    return this.#users
  }

  /** Adds a user: the next AuthID scan already tries it. */
  add(user: VmessUser): void {
    this.#users.push(user)
    this.#decryptors.add(user.authIdKey)
  }

  /** Removes a user (by identity): the next AuthID scan no longer finds it. False when it is not here. */
  remove(user: VmessUser): boolean {
    const index = this.#users.indexOf(user)
    if (index < 0) return false
    this.#decryptors.removeAt(index)
    const last = this.#users.pop()!
    if (index < this.#users.length) this.#users[index] = last
    this.#recent = -1
    return true
  }

  /** Finds the user whose key opens `authId` with a time within ±120 s of `now` (docs/protocol.md §4.3 step 1). */
  matchAuthId(authId: Buffer, now: number): AuthIdMatch {
    if (authId.length !== AUTH_ID_LENGTH) return UNKNOWN
    const recent = this.#recent
    let skewed = UNKNOWN
    if (recent >= 0) {
      const match = this.#check(recent, authId, now)
      if (match?.status === 'found') return match
      skewed = match ?? skewed
    }
    const decryptors = this.#decryptors
    for (let from = 0; from < decryptors.count;) {
      const index = decryptors.firstWordEquals(authId, 0, from, decryptors.count)
      if (index < 0) break
      from = index + 1
      if (index === recent) continue
      const match = this.#check(index, authId, now)
      // V2Ray moves on to the next user on a time failure (docs/protocol.md §4.3).
      if (match?.status === 'found') {
        this.#recent = index
        return match
      }
      skewed = match ?? skewed
    }
    return skewed
  }

  /** Opens `authId` with user `index`'s key: found, clock-skew (CRC good, time not), or undefined. */
  #check(index: number, authId: Buffer, now: number): AuthIdMatch | undefined {
    this.#decryptors.decrypt(index, authId, this.#plain)
    const time = readAuthIdPlaintext(this.#plain)
    if (time === undefined) return undefined
    const user = this.#users[index]!
    if (time >= 0 && Math.abs(time - now) <= TIME_WINDOW_SECONDS) return { status: 'found', user, time }
    return { status: 'clock-skew', user, time }
  }
}
