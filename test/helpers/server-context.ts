import { LegacyAuthTable } from '../../src/protocol/legacy-auth.js'
import { AuthIdReplayFilter, SessionHistory } from '../../src/protocol/replay-filter.js'
import type { ServerHandshakeContext } from '../../src/protocol/server-handshake.js'
import { UserDirectory } from '../../src/protocol/user-directory.js'
import type { VmessUser } from '../../src/protocol/user.js'

/** A fresh server handshake context over `users` with a clock fixed at `now` (changeable via the result). */
export function serverContext(
  users: VmessUser[],
  options: { now: number; legacy?: boolean },
): ServerHandshakeContext & { clock: { now: number } } {
  const clock = { now: options.now }
  return {
    clock,
    users: new UserDirectory(users),
    legacy: options.legacy === false ? undefined : new LegacyAuthTable(users),
    authIds: new AuthIdReplayFilter(),
    sessions: new SessionHistory(),
    now: () => clock.now,
  }
}
