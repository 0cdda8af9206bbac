import { ProtocolError } from '../errors.js'
import { formatIp, parseIpv4, parseIpv6 } from './address.js'

/** The VMess UDP destination that switches a session to packetaddr datagrams (docs/protocol.md §8). */
export const PACKET_ADDR_DOMAIN = 'sp.packet-addr.v2fly.arpa'
/** The port that goes with `PACKET_ADDR_DOMAIN`. */
export const PACKET_ADDR_PORT = 0

/** Address types of a packetaddr prefix: IP only, no domains (docs/protocol.md §8). */
export const PacketAddrType = {
  Ipv4: 0x01,
  Ipv6: 0x02,
} as const

/** A host (IP literal) and a port. */
export interface PacketAddrEndpoint {
  readonly host: string
  readonly port: number
}

/** One packetaddr datagram, its address prefix read. */
export interface PacketAddrDatagram extends PacketAddrEndpoint {
  readonly payload: Buffer
}

/** Whether `host` names the packetaddr pseudo-destination (domains compare case-insensitively). */
export function isPacketAddrDomain(host: string): boolean {
  return host.toLowerCase() === PACKET_ADDR_DOMAIN
}

/** One datagram: type ‖ address ‖ BE16 port ‖ payload. Throws `PACKET_ADDR_INVALID` for a domain. */
export function encodePacketAddrDatagram(endpoint: PacketAddrEndpoint, payload: Buffer): Buffer {
  const { host, port } = endpoint
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new ProtocolError(
      'PACKET_ADDR_INVALID',
      `Cannot encode packetaddr datagram: port ${port} is out of range`,
    )
  }
  const v4 = parseIpv4(host)
  const address = v4 ?? parseIpv6(host)
  if (address === undefined) {
    throw new ProtocolError(
      'PACKET_ADDR_INVALID',
      `Cannot encode packetaddr datagram: "${host}" is not an IP address (domains are not allowed)`,
    )
  }
  const out = Buffer.allocUnsafe(1 + address.length + 2 + payload.length)
  out.writeUInt8(v4 === undefined ? PacketAddrType.Ipv6 : PacketAddrType.Ipv4, 0)
  address.copy(out, 1)
  out.writeUInt16BE(port, 1 + address.length)
  payload.copy(out, 1 + address.length + 2)
  return out
}

/** Reads the address prefix of one datagram; the payload is a view into `datagram`. */
export function parsePacketAddrDatagram(datagram: Buffer): PacketAddrDatagram {
  if (datagram.length < 1) {
    throw new ProtocolError('PACKET_ADDR_INVALID', 'Cannot read packetaddr datagram: it is empty')
  }
  const type = datagram.readUInt8(0)
  let size: number
  if (type === PacketAddrType.Ipv4) size = 4
  else if (type === PacketAddrType.Ipv6) size = 16
  else {
    throw new ProtocolError(
      'PACKET_ADDR_INVALID',
      `Cannot read packetaddr datagram: address type ${type} is not 1 (IPv4) or 2 (IPv6)`,
    )
  }
  if (datagram.length < 1 + size + 2) {
    throw new ProtocolError(
      'PACKET_ADDR_INVALID',
      `Cannot read packetaddr datagram: ${datagram.length} bytes end inside the address`,
    )
  }
  return {
    host: formatIp(datagram.subarray(1, 1 + size)),
    port: datagram.readUInt16BE(1 + size),
    payload: datagram.subarray(1 + size + 2),
  }
}
