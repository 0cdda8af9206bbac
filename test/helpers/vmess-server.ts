import type { VmessInbound } from '../../src/inbound/vmess.js'
import { createTcpStreamServer } from '../../src/transport/tcp.js'
import type { StreamServer } from '../../src/transport/transport.js'

const servers = new WeakMap<VmessInbound, StreamServer>()

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
