import { createCipheriv } from 'node:crypto'
import { ProtocolError } from '../errors.js'
import { aeadSeal } from '../crypto/aead.js'
import { fnv1a32, md5 } from '../crypto/hash.js'
import { kdf12, kdf16 } from '../crypto/kdf.js'
import type { RandomSource } from '../crypto/random.js'
import { decodeVmessAddress, encodeVmessAddress } from './address.js'
import { AddressType, Command, type CommandValue, Option, Security } from './constants.js'
import { createAuthId } from './auth-id.js'

/** The request header's plaintext fields (docs/protocol.md §5). */
export interface RequestHeader {
  readonly version: number
  readonly bodyIv: Buffer
  readonly bodyKey: Buffer
  /** The byte V the response must echo. */
  readonly responseV: number
  readonly options: number
  /** Wire security value; the parser reads 0 as 1 (aes-128-cfb), as V2Ray does. */
  readonly security: number
  readonly command: CommandValue
  /** Target host (IP text or domain); empty for Mux. */
  readonly host: string
  /** Target port; 0 for Mux. */
  readonly port: number
  /** Random bytes before the checksum, 0–15 of them. */
  readonly padding: Buffer
}

/** Fixed part of the header: Ver, IV, key, V, Opt, P‖Sec, reserved, Cmd. */
const FIXED_LENGTH = 38
const CHECKSUM_LENGTH = 4
/** Most header padding the P nibble can ask for. */
export const MAX_HEADER_PADDING = 15
/** Longest possible plaintext header: a 255-byte domain and 15 padding bytes. */
export const MAX_REQUEST_HEADER_LENGTH = FIXED_LENGTH + 2 + 2 + 255 + MAX_HEADER_PADDING + CHECKSUM_LENGTH

/** The header plaintext with its FNV-1a checksum (docs/protocol.md §5). */
export function encodeRequestHeader(header: RequestHeader): Buffer {
  if (header.padding.length > MAX_HEADER_PADDING) {
    throw new ProtocolError(
      'HEADER_INVALID',
      `Cannot encode header: padding is ${header.padding.length} bytes`,
    )
  }
  const address =
    header.command === Command.Mux
      ? Buffer.alloc(0)
      : Buffer.concat([portBytes(header.port), encodeVmessAddress(header.host)])
  const out = Buffer.alloc(FIXED_LENGTH + address.length + header.padding.length + CHECKSUM_LENGTH)
  out.writeUInt8(header.version, 0)
  header.bodyIv.copy(out, 1)
  header.bodyKey.copy(out, 17)
  out.writeUInt8(header.responseV, 33)
  out.writeUInt8(header.options, 34)
  out.writeUInt8((header.padding.length << 4) | (header.security & 0x0f), 35)
  out.writeUInt8(0, 36)
  out.writeUInt8(header.command, 37)
  address.copy(out, FIXED_LENGTH)
  header.padding.copy(out, FIXED_LENGTH + address.length)
  const end = out.length - CHECKSUM_LENGTH
  out.writeUInt32BE(fnv1a32(out, 0, end), end)
  return out
}

function portBytes(port: number): Buffer {
  const out = Buffer.alloc(2)
  out.writeUInt16BE(port)
  return out
}

/**
 * The whole header length once enough of `bytes` is known, else undefined. Used where the header
 * arrives as a stream (legacy CFB). An unknown command or address type throws HEADER_INVALID.
 */
export function requestHeaderLength(bytes: Buffer): number | undefined {
  if (bytes.length < FIXED_LENGTH) return undefined
  const padding = bytes.readUInt8(35) >> 4
  const command = bytes.readUInt8(37)
  if (command === Command.Mux) return FIXED_LENGTH + padding + CHECKSUM_LENGTH
  if (command !== Command.Tcp && command !== Command.Udp) {
    throw new ProtocolError('HEADER_INVALID', `Cannot read header: command ${command} is unknown`)
  }
  if (bytes.length < FIXED_LENGTH + 3) return undefined
  const type = bytes.readUInt8(FIXED_LENGTH + 2)
  let addressLength: number
  if (type === AddressType.Ipv4) addressLength = 4
  else if (type === AddressType.Ipv6) addressLength = 16
  else if (type === AddressType.Domain) {
    if (bytes.length < FIXED_LENGTH + 4) return undefined
    addressLength = 1 + bytes.readUInt8(FIXED_LENGTH + 3)
  } else {
    throw new ProtocolError('HEADER_INVALID', `Cannot read header: address type ${type} is unknown`)
  }
  return FIXED_LENGTH + 3 + addressLength + padding + CHECKSUM_LENGTH
}

/** Whether the FNV-1a checksum at the end of a whole header plaintext matches. */
export function verifyRequestHeaderChecksum(plain: Buffer): boolean {
  if (plain.length < FIXED_LENGTH + CHECKSUM_LENGTH) return false
  const end = plain.length - CHECKSUM_LENGTH
  return fnv1a32(plain, 0, end) === plain.readUInt32BE(end)
}

/**
 * Parses a whole header plaintext whose checksum has been verified. Throws ProtocolError for an
 * unknown command, a security refused on the wire, P without M, or a bad address (docs/protocol.md §5, §9).
 */
export function parseRequestHeader(plain: Buffer): RequestHeader {
  if (plain.length < FIXED_LENGTH + CHECKSUM_LENGTH) {
    throw new ProtocolError('HEADER_INVALID', `Cannot read header: ${plain.length} bytes is too short`)
  }
  const options = plain.readUInt8(34)
  const paddingLength = plain.readUInt8(35) >> 4
  let security = plain.readUInt8(35) & 0x0f
  if (security === Security.Legacy0) security = Security.Aes128Cfb
  if (
    security !== Security.Aes128Cfb &&
    security !== Security.Aes128Gcm &&
    security !== Security.Chacha20Poly1305 &&
    security !== Security.None
  ) {
    throw new ProtocolError('SECURITY_UNSUPPORTED', `Cannot accept header: security ${security} is refused`)
  }
  if ((options & Option.GlobalPadding) !== 0 && (options & Option.ChunkMasking) === 0) {
    throw new ProtocolError('PADDING_WITHOUT_MASK', 'Cannot accept header: option P is set without M')
  }
  const command = plain.readUInt8(37)
  let host = ''
  let port = 0
  let offset = FIXED_LENGTH
  if (command === Command.Tcp || command === Command.Udp) {
    if (plain.length < offset + 2) throw new ProtocolError('HEADER_INVALID', 'Cannot read header: no port')
    port = plain.readUInt16BE(offset)
    const address = decodeVmessAddress(plain, offset + 2)
    if (address === undefined)
      throw new ProtocolError('ADDRESS_INVALID', 'Cannot read header: address cut short')
    host = address.host
    offset = address.end
  } else if (command !== Command.Mux) {
    throw new ProtocolError('COMMAND_UNKNOWN', `Cannot accept header: command ${command} is unknown`)
  }
  if (offset + paddingLength + CHECKSUM_LENGTH !== plain.length) {
    throw new ProtocolError(
      'HEADER_INVALID',
      `Cannot read header: its length ${plain.length} does not match its fields`,
    )
  }
  return {
    version: plain.readUInt8(0),
    bodyIv: Buffer.from(plain.subarray(1, 17)),
    bodyKey: Buffer.from(plain.subarray(17, 33)),
    responseV: plain.readUInt8(33),
    options,
    security,
    command,
    host,
    port,
    padding: Buffer.from(plain.subarray(offset, offset + paddingLength)),
  }
}

/** Length of the AEAD header's fixed prefix: AuthID, sealed length, connection nonce (docs/protocol.md §4.3). */
export const AEAD_HEADER_PREFIX_LENGTH = 16 + 18 + 8

/** The GCM key and nonce that seal an AEAD request header's length field (docs/protocol.md §4.3). */
export function deriveAeadLengthKeys(cmdKey: Uint8Array, authId: Uint8Array, nonce: Uint8Array) {
  return {
    lengthKey: kdf16(cmdKey, 'VMess Header AEAD Key_Length', authId, nonce),
    lengthNonce: kdf12(cmdKey, 'VMess Header AEAD Nonce_Length', authId, nonce),
  }
}

/** The GCM key and nonce that seal an AEAD request header's payload (docs/protocol.md §4.3). */
export function deriveAeadPayloadKeys(cmdKey: Uint8Array, authId: Uint8Array, nonce: Uint8Array) {
  return {
    headerKey: kdf16(cmdKey, 'VMess Header AEAD Key', authId, nonce),
    headerNonce: kdf12(cmdKey, 'VMess Header AEAD Nonce', authId, nonce),
  }
}

/** The four GCM keys and nonces that seal an AEAD request header (docs/protocol.md §4.3). */
export function deriveAeadHeaderKeys(cmdKey: Uint8Array, authId: Uint8Array, nonce: Uint8Array) {
  return { ...deriveAeadLengthKeys(cmdKey, authId, nonce), ...deriveAeadPayloadKeys(cmdKey, authId, nonce) }
}

/** AuthID ‖ sealed length ‖ nonce ‖ sealed header: what an AEAD client writes first (docs/protocol.md §4.3). */
export function sealAeadRequestHeader(
  plain: Buffer,
  options: { cmdKey: Uint8Array; authIdKey: Uint8Array; time: number; random: RandomSource },
): Buffer {
  const authId = createAuthId(options.authIdKey, { time: options.time, random: options.random })
  const nonce = Buffer.from(options.random(8))
  const keys = deriveAeadHeaderKeys(options.cmdKey, authId, nonce)
  const length = Buffer.alloc(2)
  length.writeUInt16BE(plain.length)
  return Buffer.concat([
    authId,
    aeadSeal('aes-128-gcm', keys.lengthKey, keys.lengthNonce, length, authId),
    nonce,
    aeadSeal('aes-128-gcm', keys.headerKey, keys.headerNonce, plain, authId),
  ])
}

/** BE64(t) as the legacy HMAC message. */
export function legacyTimeBytes(time: number): Buffer {
  const out = Buffer.alloc(8)
  out.writeBigUInt64BE(BigInt(time))
  return out
}

/** MD5(t ‖ t ‖ t ‖ t): the legacy header's CFB IV (docs/protocol.md §3.1). */
export function legacyHeaderIv(time: number): Buffer {
  const t = legacyTimeBytes(time)
  return md5(t, t, t, t)
}

/** Auth ‖ CFB(cmdKey(primary), IV(t)) of the header: what a legacy client writes first (docs/protocol.md §3.1). */
export function encodeLegacyRequestHeader(
  plain: Buffer,
  options: { cmdKey: Uint8Array; auth: Buffer; time: number },
): Buffer {
  const cipher = createCipheriv('aes-128-cfb', options.cmdKey, legacyHeaderIv(options.time))
  return Buffer.concat([options.auth, cipher.update(plain)])
}
