import { ProtocolError } from '../errors.js'
import { classifyHost, formatIp, parseIpv4, parseIpv6 } from './address.js'
import type { ByteQueue } from './byte-queue.js'
import { AddressType, MAX_DOMAIN_LENGTH } from './constants.js'

/** The SOCKS protocol version byte (RFC 1928). */
export const SOCKS_VERSION = 0x05
/** The version byte of the username/password sub-negotiation (RFC 1929). */
export const SOCKS_PASSWORD_AUTH_VERSION = 0x01
/** Longest username or password: its length is one byte (RFC 1929). */
export const MAX_SOCKS_CREDENTIAL_LENGTH = 255

/** Authentication methods offered in the greeting and chosen in the method selection (RFC 1928 §3). */
export const SocksMethod = {
  NoAuth: 0x00,
  Gssapi: 0x01,
  UsernamePassword: 0x02,
  NoAcceptable: 0xff,
} as const
export type SocksMethodValue = (typeof SocksMethod)[keyof typeof SocksMethod]

/** Request commands (RFC 1928 §4). */
export const SocksCommand = {
  Connect: 0x01,
  Bind: 0x02,
  UdpAssociate: 0x03,
} as const
export type SocksCommandValue = (typeof SocksCommand)[keyof typeof SocksCommand]

/** Address types in SOCKS numbering, which differs from VMess numbering (RFC 1928 §5). */
export const SocksAddressType = {
  Ipv4: 0x01,
  Domain: 0x03,
  Ipv6: 0x04,
} as const

/** Reply codes (RFC 1928 §6). */
export const SocksReply = {
  Succeeded: 0x00,
  GeneralFailure: 0x01,
  NotAllowed: 0x02,
  NetworkUnreachable: 0x03,
  HostUnreachable: 0x04,
  ConnectionRefused: 0x05,
  TtlExpired: 0x06,
  CommandNotSupported: 0x07,
  AddressTypeNotSupported: 0x08,
} as const
export type SocksReplyValue = (typeof SocksReply)[keyof typeof SocksReply]

/** A host (IP literal without brackets, or domain) and a port. */
export interface SocksEndpoint {
  readonly host: string
  readonly port: number
}

/** The client's greeting: the methods it offers. */
export interface SocksGreeting {
  readonly methods: number[]
}

/** The client's RFC 1929 credentials. */
export interface SocksPasswordAuth {
  readonly username: string
  readonly password: string
}

/** A request: BIND is returned too, so the caller can refuse it with `CommandNotSupported`. */
export interface SocksRequest extends SocksEndpoint {
  readonly command: SocksCommandValue
}

/** A datagram of a UDP association, without its SOCKS header. */
export interface SocksUdpDatagram extends SocksEndpoint {
  readonly payload: Buffer
}

// The same character rule as docs/protocol.md §5, so a parsed host can go into a VMess header as it is.
const DOMAIN_PATTERN = /^[A-Za-z0-9\-._]+$/

function checkVersion(version: number, what: string): void {
  if (version !== SOCKS_VERSION) {
    throw new ProtocolError(
      'SOCKS_INVALID',
      `Cannot read SOCKS ${what}: version is ${version}, expected ${SOCKS_VERSION}`,
    )
  }
}

/** Bytes taken by ATYP ‖ address ‖ port when ATYP is `type`, or undefined until the length byte is there. */
function addressLength(type: number, domainLength: () => number | undefined): number | undefined {
  switch (type) {
    case SocksAddressType.Ipv4:
      return 1 + 4 + 2
    case SocksAddressType.Ipv6:
      return 1 + 16 + 2
    case SocksAddressType.Domain: {
      const length = domainLength()
      return length === undefined ? undefined : 1 + 1 + length + 2
    }
    default:
      throw new ProtocolError(
        'SOCKS_ADDRESS_UNSUPPORTED',
        `Cannot read SOCKS address: type ${type} is not 1, 3 or 4`,
      )
  }
}

/** Reads ATYP ‖ address ‖ port at `offset`; `bytes` must hold all of it (see `addressLength`). */
function readAddress(bytes: Buffer, offset: number): SocksEndpoint & { end: number } {
  const type = bytes.readUInt8(offset)
  let host: string
  let end: number
  if (type === SocksAddressType.Ipv4) {
    host = formatIp(bytes.subarray(offset + 1, offset + 5))
    end = offset + 5
  } else if (type === SocksAddressType.Ipv6) {
    host = formatIp(bytes.subarray(offset + 1, offset + 17))
    end = offset + 17
  } else {
    const length = bytes.readUInt8(offset + 1)
    const name = bytes.toString('latin1', offset + 2, offset + 2 + length)
    if (length === 0 || !DOMAIN_PATTERN.test(name)) {
      throw new ProtocolError(
        'SOCKS_ADDRESS_INVALID',
        `Cannot read SOCKS address: domain "${name}" is not valid`,
      )
    }
    // A domain that is an IP literal is that IP (docs/protocol.md §5).
    host = classifyHost(name).host
    end = offset + 2 + length
  }
  return { host, port: bytes.readUInt16BE(end), end: end + 2 }
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new ProtocolError(
      'SOCKS_ADDRESS_INVALID',
      `Cannot encode SOCKS ${what}: port ${port} is out of range`,
    )
  }
}

/** ATYP ‖ address ‖ port in SOCKS numbering. */
function encodeAddress(endpoint: SocksEndpoint, what: string): Buffer {
  checkPort(endpoint.port, what)
  const wire = classifyHost(endpoint.host)
  let head: Buffer
  switch (wire.type) {
    case AddressType.Ipv4:
      head = Buffer.concat([Buffer.of(SocksAddressType.Ipv4), parseIpv4(wire.host)!])
      break
    case AddressType.Ipv6:
      head = Buffer.concat([Buffer.of(SocksAddressType.Ipv6), parseIpv6(wire.host)!])
      break
    case AddressType.Domain: {
      const name = Buffer.from(wire.host, 'latin1')
      if (name.length === 0 || name.length > MAX_DOMAIN_LENGTH || !DOMAIN_PATTERN.test(wire.host)) {
        throw new ProtocolError(
          'SOCKS_ADDRESS_INVALID',
          `Cannot encode SOCKS ${what}: "${endpoint.host}" is not a valid domain`,
        )
      }
      head = Buffer.concat([Buffer.of(SocksAddressType.Domain, name.length), name])
      break
    }
  }
  const out = Buffer.allocUnsafe(head.length + 2)
  head.copy(out, 0)
  out.writeUInt16BE(endpoint.port, head.length)
  return out
}

/**
 * Parses the greeting VER ‖ NMETHODS ‖ METHODS, or returns undefined until it is all there.
 * @example
 * const greeting = parseSocksGreeting(queue)
 * if (greeting?.methods.includes(SocksMethod.NoAuth)) socket.write(encodeSocksMethodSelection(SocksMethod.NoAuth))
 */
export function parseSocksGreeting(queue: ByteQueue): SocksGreeting | undefined {
  if (queue.length < 1) return undefined
  checkVersion(queue.byteAt(0), 'greeting')
  if (queue.length < 2) return undefined
  const count = queue.byteAt(1)
  if (queue.length < 2 + count) return undefined
  const bytes = queue.consume(2 + count)
  return { methods: Array.from(bytes.subarray(2)) }
}

/** The server's method selection VER ‖ METHOD (`SocksMethod.NoAcceptable` refuses every method). */
export function encodeSocksMethodSelection(method: SocksMethodValue): Buffer {
  return Buffer.of(SOCKS_VERSION, method)
}

/** Parses VER ‖ ULEN ‖ UNAME ‖ PLEN ‖ PASSWD (RFC 1929), or returns undefined until it is all there. */
export function parseSocksPasswordAuth(queue: ByteQueue): SocksPasswordAuth | undefined {
  if (queue.length < 1) return undefined
  const version = queue.byteAt(0)
  if (version !== SOCKS_PASSWORD_AUTH_VERSION) {
    throw new ProtocolError(
      'SOCKS_INVALID',
      `Cannot read SOCKS password auth: version is ${version}, expected ${SOCKS_PASSWORD_AUTH_VERSION}`,
    )
  }
  if (queue.length < 2) return undefined
  // One-byte lengths: both are ≤ MAX_SOCKS_CREDENTIAL_LENGTH by construction.
  const userLength = queue.byteAt(1)
  if (queue.length < 2 + userLength + 1) return undefined
  const passLength = queue.byteAt(2 + userLength)
  const total = 2 + userLength + 1 + passLength
  if (queue.length < total) return undefined
  const bytes = queue.consume(total)
  return {
    username: bytes.toString('utf8', 2, 2 + userLength),
    password: bytes.toString('utf8', 3 + userLength, total),
  }
}

/** The RFC 1929 status reply: VER 1 ‖ STATUS (0 success, 1 failure). */
export function encodeSocksAuthReply(success: boolean): Buffer {
  return Buffer.of(SOCKS_PASSWORD_AUTH_VERSION, success ? 0x00 : 0x01)
}

/**
 * Parses VER ‖ CMD ‖ RSV ‖ ATYP ‖ DST.ADDR ‖ DST.PORT, or returns undefined until it is all there.
 * Throws `SOCKS_COMMAND_UNSUPPORTED` or `SOCKS_ADDRESS_UNSUPPORTED` for unknown values; answer them
 * with `socksReplyForError`.
 */
export function parseSocksRequest(queue: ByteQueue): SocksRequest | undefined {
  if (queue.length < 1) return undefined
  checkVersion(queue.byteAt(0), 'request')
  if (queue.length < 2) return undefined
  const command = queue.byteAt(1)
  if (
    command !== SocksCommand.Connect &&
    command !== SocksCommand.Bind &&
    command !== SocksCommand.UdpAssociate
  ) {
    throw new ProtocolError(
      'SOCKS_COMMAND_UNSUPPORTED',
      `Cannot read SOCKS request: command ${command} is unknown`,
    )
  }
  if (queue.length < 4) return undefined
  const length = addressLength(queue.byteAt(3), () => (queue.length < 5 ? undefined : queue.byteAt(4)))
  if (length === undefined || queue.length < 3 + length) return undefined
  const bytes = queue.peek(3 + length)
  const { host, port } = readAddress(bytes, 3)
  queue.skip(3 + length)
  return { command, host, port }
}

/** The reply to send when `parseSocksRequest` threw `error` (RFC 1928 §6). */
export function socksReplyForError(error: unknown): SocksReplyValue {
  if (error instanceof ProtocolError) {
    if (error.code === 'SOCKS_COMMAND_UNSUPPORTED') return SocksReply.CommandNotSupported
    if (error.code === 'SOCKS_ADDRESS_UNSUPPORTED') return SocksReply.AddressTypeNotSupported
  }
  return SocksReply.GeneralFailure
}

/**
 * The reply VER ‖ REP ‖ RSV ‖ ATYP ‖ BND.ADDR ‖ BND.PORT; the bound address defaults to 0.0.0.0:0.
 * @example
 * socket.write(encodeSocksReply(SocksReply.Succeeded, { host: '127.0.0.1', port: 1080 }))
 */
export function encodeSocksReply(reply: SocksReplyValue, bound?: SocksEndpoint): Buffer {
  const address = encodeAddress(bound ?? { host: '0.0.0.0', port: 0 }, 'reply')
  const out = Buffer.allocUnsafe(3 + address.length)
  out.writeUInt8(SOCKS_VERSION, 0)
  out.writeUInt8(reply, 1)
  out.writeUInt8(0x00, 2)
  address.copy(out, 3)
  return out
}

/**
 * Parses one UDP-association datagram RSV ‖ FRAG ‖ ATYP ‖ DST.ADDR ‖ DST.PORT ‖ DATA (RFC 1928 §7).
 * Throws `SOCKS_UDP_FRAGMENTED` when FRAG ≠ 0 (no reassembly: callers drop the datagram).
 */
export function parseSocksUdpDatagram(datagram: Buffer): SocksUdpDatagram {
  if (datagram.length < 4) {
    throw new ProtocolError(
      'SOCKS_UDP_INVALID',
      `Cannot read SOCKS datagram: ${datagram.length} bytes is too short`,
    )
  }
  const fragment = datagram.readUInt8(2)
  if (fragment !== 0) {
    throw new ProtocolError(
      'SOCKS_UDP_FRAGMENTED',
      `Cannot read SOCKS datagram: fragment is ${fragment}, expected 0`,
    )
  }
  const length = addressLength(datagram.readUInt8(3), () =>
    datagram.length < 5 ? undefined : datagram.readUInt8(4),
  )
  if (length === undefined || datagram.length < 3 + length) {
    throw new ProtocolError(
      'SOCKS_UDP_INVALID',
      `Cannot read SOCKS datagram: ${datagram.length} bytes end inside the address`,
    )
  }
  const { host, port, end } = readAddress(datagram, 3)
  return { host, port, payload: datagram.subarray(end) }
}

/** One UDP-association datagram: RSV 0 ‖ FRAG 0 ‖ address of `endpoint` ‖ `payload`. */
export function encodeSocksUdpDatagram(endpoint: SocksEndpoint, payload: Buffer): Buffer {
  const address = encodeAddress(endpoint, 'datagram')
  const out = Buffer.allocUnsafe(3 + address.length + payload.length)
  out.fill(0, 0, 3)
  address.copy(out, 3)
  payload.copy(out, 3 + address.length)
  return out
}
