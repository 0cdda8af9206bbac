import type { Duplex } from 'node:stream'
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
 * closed with a FIN and no byte (as refused handshakes are) and `onRefused` is told; the others are
 * counted until they close.
 */
export function admit(
  limits: AdmissionLimits | undefined,
  handler: (stream: Duplex, peer: PeerInfo) => void,
  onRefused: (peer: PeerInfo) => void,
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
      closeGracefully(stream)
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
