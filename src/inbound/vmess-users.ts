// The users of one VMess inbound while it runs: added and removed at runtime (the API, a reload)
// without touching open tunnels. A change reaches the next handshake at once: the AuthID directory
// and its shards are updated in place, a removed user is retired from the legacy table on the spot,
// and a legacy table with the new users is rebuilt in the background and swapped in when complete.
import { LegacyAuthTable } from '../protocol/legacy-auth.js'
import { UserDirectory } from '../protocol/user-directory.js'
import type { VmessUser } from '../protocol/user.js'

/** Above this many users the AuthID scan runs in shards of this size, between other work. */
export const AUTH_SCAN_SHARD_USERS = 2048
/** Changes within this long share one legacy table rebuild (a panel adds users one call at a time). */
export const LEGACY_REBUILD_DELAY_MS = 500

/** Why a change was refused, in V2Ray's words (src/api/handler-service.ts sends them). */
export type UserChangeRefusal = 'exists' | 'not-found' | 'no-email'

/** The users of a VMess inbound, by email (V2Ray compares emails without case). */
export class VmessUsers {
  readonly directory: UserDirectory
  /** The users in shards, when there are enough of them that one scan would stall the event loop. */
  shards: UserDirectory[] | undefined
  readonly #byEmail = new Map<string, VmessUser>()
  readonly #legacyEnabled: boolean
  #legacy: LegacyAuthTable | undefined
  #legacyNext: LegacyAuthTable | undefined
  #rebuild: NodeJS.Timeout | undefined
  readonly #onLegacyTable: (table: LegacyAuthTable) => void

  /** Takes over `directory` and `legacy` (undefined: the legacy header is refused); `onLegacyTable` gets each rebuilt table to fill. */
  constructor(
    directory: UserDirectory,
    legacy: LegacyAuthTable | undefined,
    onLegacyTable: (table: LegacyAuthTable) => void = () => undefined,
  ) {
    this.directory = directory
    this.#legacyEnabled = legacy !== undefined
    this.#legacy = legacy
    this.#onLegacyTable = onLegacyTable
    for (const user of directory.users)
      if (user.email !== '' && !this.#byEmail.has(user.email.toLowerCase()))
        this.#byEmail.set(user.email.toLowerCase(), user)
    this.#reshard()
  }

  /** The users now, in scan order. */
  get users(): readonly VmessUser[] {
    return this.directory.users
  }

  /** The user with this email (any case). */
  find(email: string): VmessUser | undefined {
    return this.#byEmail.get(email.toLowerCase())
  }

  /** The legacy table to look up in at `now`: the rebuilt one once it is complete. */
  legacy(now: number): LegacyAuthTable | undefined {
    const next = this.#legacyNext
    if (next !== undefined && next.covers(now)) {
      this.#legacy = next
      this.#legacyNext = undefined
    }
    return this.#legacy
  }

  /** Adds a user; refused when another has the same email. */
  add(user: VmessUser): UserChangeRefusal | undefined {
    const key = user.email.toLowerCase()
    if (key !== '' && this.#byEmail.has(key)) return 'exists'
    if (key !== '') this.#byEmail.set(key, user)
    this.directory.add(user)
    const shards = this.shards
    if (shards === undefined) this.#reshard()
    else {
      const last = shards.at(-1)
      if (last !== undefined && last.users.length < AUTH_SCAN_SHARD_USERS) last.add(user)
      else shards.push(new UserDirectory([user]))
    }
    this.#scheduleLegacyRebuild()
    return undefined
  }

  /** Removes the user with this email; its open tunnels are left to finish. */
  remove(email: string): UserChangeRefusal | VmessUser {
    if (email === '') return 'no-email'
    const user = this.#byEmail.get(email.toLowerCase())
    if (user === undefined) return 'not-found'
    this.removeUser(user)
    return user
  }

  /** Removes this user (with or without an email); false when it is not here. */
  removeUser(user: VmessUser): boolean {
    if (!this.directory.remove(user)) return false
    if (user.email !== '' && this.#byEmail.get(user.email.toLowerCase()) === user)
      this.#byEmail.delete(user.email.toLowerCase())
    for (const shard of this.shards ?? []) if (shard.remove(user)) break
    this.#legacy?.retire(user)
    this.#legacyNext?.retire(user)
    this.#scheduleLegacyRebuild()
    return true
  }

  /** Stops a pending rebuild (the inbound is closing). */
  close(): void {
    clearTimeout(this.#rebuild)
  }

  #reshard(): void {
    const users = this.directory.users
    if (users.length <= AUTH_SCAN_SHARD_USERS) return
    const shards: UserDirectory[] = []
    for (let i = 0; i < users.length; i += AUTH_SCAN_SHARD_USERS)
      shards.push(new UserDirectory(users.slice(i, i + AUTH_SCAN_SHARD_USERS)))
    this.shards = shards
  }

  #scheduleLegacyRebuild(): void {
    if (!this.#legacyEnabled || this.#rebuild !== undefined) return
    this.#rebuild = setTimeout(() => {
      this.#rebuild = undefined
      const table = new LegacyAuthTable([...this.directory.users])
      this.#legacyNext = table
      this.#onLegacyTable(table)
    }, LEGACY_REBUILD_DELAY_MS)
    this.#rebuild.unref()
  }
}
