import type { Duplex } from 'node:stream'
import type { Destination } from '../types.js'

/** Who asked for a connection: for routing, logs and the access log. */
export interface ConnectionContext {
  readonly inboundTag: string
  /** The client's address as "ip:port". */
  readonly source: string
  /** The authenticated user (VMess email or SOCKS/HTTP user name), empty when none. */
  readonly user: string
}

/** Datagrams to and from many destinations; one per UDP association or VMess UDP session. */
export interface PacketChannel {
  /** Sends one datagram; it is dropped when the channel cannot carry it (UDP is lossy by contract). */
  send(payload: Buffer, to: Destination): void
  /** Registers the receiver of datagrams coming back. */
  onPacket(handler: (payload: Buffer, from: Destination) => void): void
  /** Registers a handler for when the channel has closed (error, idle or close()). */
  onClose(handler: (error?: Error) => void): void
  close(): void
}

/** Where traffic leaves: freedom (direct), vmess (to a server), blackhole (nowhere). */
export interface Outbound {
  readonly tag: string
  /** Opens a TCP stream to `destination`; rejects with an Error whose `code` says why. */
  dialTcp(destination: Destination, context: ConnectionContext): Promise<Duplex>
  /** Opens a channel for UDP datagrams. */
  openUdp(context: ConnectionContext): PacketChannel
}

/** What inbounds hand their traffic to: routing plus the chosen outbound. */
export interface Dispatcher {
  /** Routes and opens a TCP stream to `destination`. */
  dialTcp(destination: Destination, context: ConnectionContext): Promise<Duplex>
  /** Opens a datagram channel whose datagrams are routed one by one. */
  openUdp(context: ConnectionContext): PacketChannel
}
