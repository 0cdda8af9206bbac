import type { Duplex } from 'node:stream'
import { contained } from '../streams/contain.js'
import type { PacketChannel } from '../outbound/outbound.js'
import { encodePacketAddrDatagram, parsePacketAddrDatagram } from '../protocol/udp-packet.js'

/**
 * Largest packetaddr datagram (prefix included) sent back: what one 2 KiB UDP chunk carries with a
 * 16-byte tag and 64 bytes of global padding, the most any security needs (docs/protocol.md §8).
 */
export const MAX_PACKET_ADDR_REPLY = 2046 - 16 - 64
/** Replies waiting to be sealed beyond this many datagrams are dropped (UDP is lossy). */
export const MAX_PACKET_ADDR_BACKLOG_DATAGRAMS = 256

/**
 * Serves a VMess UDP request to `sp.packet-addr.v2fly.arpa` (docs/protocol.md §8): each datagram names its own
 * peer in a type ‖ address ‖ port prefix, and each reply carries its source the same way, so one
 * tunnel reaches many peers from one outbound socket. `stream` is in object mode, one datagram per
 * chunk; a malformed datagram is dropped, as is a reply from a peer that has no IP address.
 */
export function servePacketAddr(stream: Duplex, channel: PacketChannel): void {
  stream.on(
    'data',
    contained(
      (datagram: Buffer) => {
        let parsed: ReturnType<typeof parsePacketAddrDatagram>
        try {
          parsed = parsePacketAddrDatagram(datagram)
        } catch {
          return
        }
        if (parsed.payload.length > 0) {
          channel.send(parsed.payload, { network: 'udp', host: parsed.host, port: parsed.port })
        }
      },
      (error) => stream.destroy(error as Error),
    ),
  )
  channel.onPacket((payload, from) => {
    if (stream.writableEnded || stream.destroyed) return
    if (stream.writableLength >= MAX_PACKET_ADDR_BACKLOG_DATAGRAMS) return
    let datagram: Buffer
    try {
      datagram = encodePacketAddrDatagram(from, payload)
    } catch {
      return
    }
    if (datagram.length > MAX_PACKET_ADDR_REPLY) return
    stream.write(datagram, (error) => error && stream.destroy())
  })
  channel.onClose(() => stream.destroy())
  // The client's end chunk closes nothing: replies may still come until the channel idles out.
  stream.on('end', () => undefined)
  stream.on('close', () => channel.close())
}
