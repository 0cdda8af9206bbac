// Every queue a peer can fill, its limit and the policy when the limit is reached, in one place.
// Streams pause their source (back-pressure); datagrams are dropped and counted; a connection that
// has not authenticated gets no more memory than the VMess drain threshold needs.

/**
 * Bytes of datagrams waiting to be written into one tunnel's stream (a VMess UDP session, a SOCKS
 * association's VMess session) or to one UDP socket; past it new datagrams are dropped and counted.
 */
export const MAX_QUEUED_DATAGRAM_BYTES = 256 * 1024

/**
 * Datagrams waiting to be sealed into one VMess UDP stream (replies on a server, a SOCKS
 * association's datagrams on a client); past it new datagrams are dropped and counted.
 */
export const MAX_QUEUED_DATAGRAMS_PER_TUNNEL = 256

/**
 * Raw WebSocket bytes a connection may send before its first message is complete; past it the
 * connection is closed. ws hands over whole messages only, so this cannot be the VMess drain threshold:
 * it is the largest first message a genuine client sends (tsray's client: 128 KiB messages).
 */
export const MAX_WEBSOCKET_FIRST_MESSAGE_BYTES = 132 * 1024

/**
 * Raw WebSocket bytes held by all connections whose first message is still incomplete, on one
 * listener; past it the connection whose bytes would exceed it is closed.
 */
export const MAX_WEBSOCKET_UNAUTHENTICATED_BYTES = 16 * 1024 * 1024

/** An idle keep-alive connection of the HTTP inbound is closed after this long (V2Ray: 60 s). */
export const HTTP_INBOUND_IDLE_MS = 60_000

/** Datagrams dropped by a budget since start, by the budget's name (read by the metrics). */
export const droppedDatagrams = { udpQueue: 0 }

/** Counts one datagram dropped by the UDP queue budget. */
export function countDroppedDatagram(): void {
  droppedDatagrams.udpQueue++
}
