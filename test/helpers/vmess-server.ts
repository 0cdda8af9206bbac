import { VmessInbound, type VmessInboundOptions } from '../../src/inbound/vmess.js'
import { FreedomOutbound } from '../../src/outbound/freedom.js'
import { LegacyAuthTable } from '../../src/protocol/legacy-auth.js'
import { AuthIdReplayFilter, SessionHistory } from '../../src/protocol/replay-filter.js'
import { UserDirectory } from '../../src/protocol/user-directory.js'
import type { VmessUser } from '../../src/protocol/user.js'
import { Router } from '../../src/runtime/router.js'
import { createTcpStreamServer } from '../../src/transport/tcp.js'
import type { StreamServer } from '../../src/transport/transport.js'
import { memoryLogger } from './logger.js'

const servers = new WeakMap<VmessInbound, StreamServer>()

/** A VMess inbound for `users` that sends everything direct (freedom), legacy accepted; options override. */
export function testVmessInbound(
  users: VmessUser[],
  options: Partial<VmessInboundOptions> = {},
): VmessInbound {
  const freedom = new FreedomOutbound({ tag: 'direct', connectTimeoutMs: 5_000 })
  return new VmessInbound({
    tag: 'vmess-in',
    users: new UserDirectory(users),
    legacy: new LegacyAuthTable(users),
    legacyPolicy: 'accept',
    authIds: new AuthIdReplayFilter(),
    sessions: new SessionHistory(),
    disableInsecureEncryption: false,
    handshakeTimeoutMs: 10_000,
    timeouts: () => ({ connIdleMs: 30_000, uplinkOnlyMs: 2_000, downlinkOnlyMs: 2_000 }),
    dispatcher: new Router({
      rules: [],
      outbounds: new Map([['direct', freedom]]),
      defaultOutbound: freedom,
    }),
    logger: memoryLogger(),
    ...options,
  })
}

/** Serves a VMess inbound over TCP on 127.0.0.1 and resolves with the port. */
export function listenVmess(inbound: VmessInbound, port = 0): Promise<number> {
  const server = createTcpStreamServer({
    listen: '127.0.0.1',
    port,
    onStream: (stream, peer) => inbound.accept(stream, peer),
  })
  servers.set(inbound, server)
  return server.listen()
}

/** Closes what `listenVmess` opened. */
export async function closeVmess(inbound: VmessInbound): Promise<void> {
  await servers.get(inbound)?.close(100)
}
