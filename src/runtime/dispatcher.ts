import type { Duplex } from 'node:stream'
import type { ConnectionContext, PacketChannel } from '../outbound/outbound.js'
import type { Destination } from '../types.js'

/** What inbounds hand their traffic to: routing plus the chosen outbound. */
export interface Dispatcher {
  /** Routes and opens a TCP stream to `destination`. */
  dialTcp(destination: Destination, context: ConnectionContext): Promise<Duplex>
  /** Opens a datagram channel whose datagrams are routed one by one. */
  openUdp(context: ConnectionContext): PacketChannel
}
