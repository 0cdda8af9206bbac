import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ConnectionContext } from '../outbound/outbound.js'
import type { Dispatcher } from '../outbound/outbound.js'
import { relay, type RelayTimeouts } from '../streams/relay.js'
import type { Destination, Logger } from '../types.js'
import { formatHostPort } from '../transport/tcp.js'

/** What every proxy inbound shares. */
export interface ProxyInboundOptions {
  readonly tag: string
  readonly listen: string
  readonly port: number
  readonly dispatcher: Dispatcher
  readonly handshakeTimeoutMs: number
  readonly timeouts: RelayTimeouts
  readonly logger: Logger
  readonly onAccess?: (record: {
    source: string
    destination: string
    status: 'accepted' | 'rejected'
    user: string
    reason?: string
  }) => void
}

/** "ip:port" of a socket's peer. */
export function sourceOf(socket: Socket): string {
  return formatHostPort(socket.remoteAddress ?? '', socket.remotePort ?? 0)
}

/** Relays `socket` (with `early` bytes already read from it) to `target`. */
export function relaySocket(
  socket: Socket,
  early: Buffer[],
  target: Duplex,
  timeouts: RelayTimeouts,
): Promise<unknown> {
  target.on('error', () => undefined)
  for (const bytes of early) target.write(bytes)
  return relay(socket, target, { timeouts })
}

/** Dials through the dispatcher and logs the access line. */
export async function dialFor(
  options: ProxyInboundOptions,
  destination: Destination,
  context: ConnectionContext,
): Promise<Duplex> {
  const label = `tcp:${formatHostPort(destination.host, destination.port)}`
  try {
    const target = await options.dispatcher.dialTcp(destination, context)
    options.onAccess?.({ source: context.source, destination: label, status: 'accepted', user: context.user })
    return target
  } catch (error) {
    const reason =
      typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'ERROR'
    options.onAccess?.({
      source: context.source,
      destination: label,
      status: 'rejected',
      user: context.user,
      reason,
    })
    options.logger.info({ source: context.source, destination: label, reason }, 'cannot reach target')
    throw error
  }
}
