import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from '../types.js'
import type { PeerInfo } from '../transport/transport.js'
import { closeGracefully } from './close.js'

/** `inbounds[].admission` (a tsray key): concurrent connections an inbound accepts. */
export interface AdmissionLimits {
  /** Connections open at once on this inbound. */
  readonly maxConnections?: number | undefined
  /** Connections open at once from one source IP. */
  readonly maxConnectionsPerSource?: number | undefined
}

/**
 * Wraps an inbound's stream handler with its admission limits: a connection over either limit is
 * closed by `refuse` (by default with a FIN and no byte, as refused handshakes are) and `onRefused` is
 * told; the others are counted until they close.
 */
export function admit(
  limits: AdmissionLimits | undefined,
  handler: (stream: Duplex, peer: PeerInfo) => void,
  onRefused: (peer: PeerInfo) => void,
  refuse: (stream: Duplex) => void = closeGracefully,
): (stream: Duplex, peer: PeerInfo) => void {
  if (limits?.maxConnections === undefined && limits?.maxConnectionsPerSource === undefined) return handler
  const perSource = new Map<string, number>()
  let open = 0
  return (stream, peer) => {
    const source = peer.remoteAddress
    const fromSource = perSource.get(source) ?? 0
    if (
      (limits.maxConnections !== undefined && open >= limits.maxConnections) ||
      (limits.maxConnectionsPerSource !== undefined && fromSource >= limits.maxConnectionsPerSource)
    ) {
      onRefused(peer)
      refuse(stream)
      return
    }
    open++
    perSource.set(source, fromSource + 1)
    stream.once('close', () => {
      open--
      const left = (perSource.get(source) ?? 1) - 1
      if (left === 0) perSource.delete(source)
      else perSource.set(source, left)
    })
    handler(stream, peer)
  }
}

/** The peer of an accepted TCP socket, as admission counts it. */
export function peerOf(socket: Socket): PeerInfo {
  return { remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 }
}

/** The log line of a connection refused by the admission limits. */
export function logAdmissionRefusal(logger: Logger, peer: PeerInfo): void {
  logger.info({ source: `${peer.remoteAddress}:${peer.remotePort}` }, 'connection over the admission limit')
}

/**
 * The connection handler of a plain TCP inbound (SOCKS, dokodemo-door) under its admission limits: a
 * connection over a limit is logged and closed with a FIN and no byte.
 */
export function admitTcp(
  limits: AdmissionLimits | undefined,
  logger: Logger,
  accept: (socket: Socket) => void,
): (socket: Socket) => void {
  const admitted = admit(
    limits,
    (stream) => accept(stream as Socket),
    (peer) => logAdmissionRefusal(logger, peer),
    (stream) => {
      stream.on('error', () => stream.destroy())
      closeGracefully(stream)
    },
  )
  return (socket) => admitted(socket, peerOf(socket))
}
