import { createDecipheriv, type Decipher } from 'node:crypto'
import { TIME_WINDOW_SECONDS } from './constants.js'
import { readAuthIdPlaintext } from './auth-id.js'
import type { VmessUser } from './user.js'

/** The outcome of matching an AuthID against every user. */
export type AuthIdMatch =
  | { readonly status: 'found'; readonly user: VmessUser; readonly time: number }
  /** A user's CRC matched but the time is outside ±120 s: the client clock is off (or a stale replay). */
  | { readonly status: 'clock-skew'; readonly user: VmessUser; readonly time: number }
  | { readonly status: 'unknown' }

/**
 * The server's users, with one long-lived AES-128-ECB decipher per user for the AuthID scan
 * (ECB on one block keeps no state between calls, so the object is reused).
 */
export class UserDirectory {
  readonly users: readonly VmessUser[]
  readonly #deciphers: Decipher[]

  constructor(users: readonly VmessUser[]) {
    this.users = users
    this.#deciphers = users.map((user) =>
      createDecipheriv('aes-128-ecb', user.authIdKey, null).setAutoPadding(false),
    )
  }

  /** Finds the user whose key opens `authId` with a time within ±120 s of `now` (PROTOCOL §4.3 step 1). */
  matchAuthId(authId: Buffer, now: number): AuthIdMatch {
    let skewed: AuthIdMatch = { status: 'unknown' }
    for (let i = 0; i < this.users.length; i++) {
      const time = readAuthIdPlaintext(this.#deciphers[i]!.update(authId))
      if (time === undefined) continue
      const user = this.users[i]!
      // V2Ray moves on to the next user on a time failure (PROTOCOL §4.3).
      if (time >= 0 && Math.abs(time - now) <= TIME_WINDOW_SECONDS) return { status: 'found', user, time }
      skewed = { status: 'clock-skew', user, time }
    }
    return skewed
  }
}
