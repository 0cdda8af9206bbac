import type { AdmissionLimits } from './admission.js'
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
  /** Concurrent connections accepted (SOCKS and HTTP inbounds); none when absent. */
  readonly admission?: AdmissionLimits
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

/** Error codes of a connection that was never made: an operator needs to see them (a server down). */
const CONNECT_FAILURES = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])

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
    // An outbound may hand over a stream that is still connecting (VMess over TCP): a failed
    // connection then shows here, after the client was answered, as it does in V2Ray.
    target.once('error', (error: Error & { code?: unknown }) => {
      const reason = typeof error.code === 'string' ? error.code : 'ERROR'
      const level = CONNECT_FAILURES.has(reason) ? 'warn' : 'debug'
      options.logger[level]({ source: context.source, destination: label, reason }, 'tunnel failed')
    })
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
