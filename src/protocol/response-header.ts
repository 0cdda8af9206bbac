import { type Cipher, createCipheriv, createDecipheriv, type Decipher } from 'node:crypto'
import { ProtocolError } from '../errors.js'
import { aeadOpen, aeadSeal } from '../crypto/aead.js'
import { fnv1a32, md5, sha256 } from '../crypto/hash.js'
import { kdf12, kdf16 } from '../crypto/kdf.js'
import type { ByteQueue } from './byte-queue.js'
import { formatUuid } from './user.js'

/** Which request header a connection used; it fixes the response keys (docs/protocol.md §6.1). */
export type HeaderKind = 'aead' | 'legacy'

/** The response body key rK and IV rI for a request's body key and IV (docs/protocol.md §6.1). */
export function deriveResponseKeys(
  kind: HeaderKind,
  bodyKey: Buffer,
  bodyIv: Buffer,
): { key: Buffer; iv: Buffer } {
  if (kind === 'legacy') return { key: md5(bodyKey), iv: md5(bodyIv) }
  return { key: sha256(bodyKey).subarray(0, 16), iv: sha256(bodyIv).subarray(0, 16) }
}

/** The response header's plaintext fields (docs/protocol.md §6.2). */
export interface ResponseHeader {
  readonly responseV: number
  readonly options: number
  readonly command: number
  readonly commandBytes: Buffer
}

function encodeResponsePlain(header: ResponseHeader): Buffer {
  if (header.commandBytes.length > 255) {
    throw new ProtocolError(
      'HEADER_INVALID',
      `Cannot encode response: command is ${header.commandBytes.length} bytes`,
    )
  }
  return Buffer.concat([
    Buffer.of(header.responseV, header.options, header.command, header.commandBytes.length),
    header.commandBytes,
  ])
}

/** Two GCM seals under keys derived from rK and rI (docs/protocol.md §6.3): 38 bytes with no command. */
export function encodeAeadResponseHeader(header: ResponseHeader, keys: { key: Buffer; iv: Buffer }): Buffer {
  const plain = encodeResponsePlain(header)
  const length = Buffer.alloc(2)
  length.writeUInt16BE(plain.length)
  return Buffer.concat([
    aeadSeal(
      'aes-128-gcm',
      kdf16(keys.key, 'AEAD Resp Header Len Key'),
      kdf12(keys.iv, 'AEAD Resp Header Len IV'),
      length,
    ),
    aeadSeal(
      'aes-128-gcm',
      kdf16(keys.key, 'AEAD Resp Header Key'),
      kdf12(keys.iv, 'AEAD Resp Header IV'),
      plain,
    ),
  ])
}

/**
 * CFB(rK, rI) over the plaintext. Returns the cipher too: with security aes-128-cfb the response
 * body continues the same CFB stream (docs/protocol.md §6.3).
 */
export function encodeLegacyResponseHeader(
  header: ResponseHeader,
  keys: { key: Buffer; iv: Buffer },
): { wire: Buffer; cipher: Cipher } {
  const cipher = createCipheriv('aes-128-cfb', keys.key, keys.iv)
  return { wire: cipher.update(encodeResponsePlain(header)), cipher }
}

const AEAD_LENGTH_FIELD = 18
const TAG_LENGTH = 16

/**
 * The client's push parser for the response header. `parse` returns the header once complete,
 * undefined until then; afterwards `cfbDecipher` is the legacy CFB stream to continue into a cfb body.
 */
export class ResponseHeaderParser {
  readonly #kind: HeaderKind
  readonly #keys: { key: Buffer; iv: Buffer }
  #decipher: Decipher | undefined
  #legacyPlain: Buffer = Buffer.alloc(0)
  #aeadLength: number | undefined

  constructor(kind: HeaderKind, keys: { key: Buffer; iv: Buffer }) {
    this.#kind = kind
    this.#keys = keys
    if (kind === 'legacy') this.#decipher = createDecipheriv('aes-128-cfb', keys.key, keys.iv)
  }

  /** The legacy CFB stream, positioned after the header. */
  get cfbDecipher(): Decipher | undefined {
    return this.#decipher
  }

  /** Consumes the response header from `queue`; throws ProtocolError when it fails to open. */
  parse(queue: ByteQueue): ResponseHeader | undefined {
    return this.#kind === 'aead' ? this.#parseAead(queue) : this.#parseLegacy(queue)
  }

  #parseAead(queue: ByteQueue): ResponseHeader | undefined {
    if (this.#aeadLength === undefined) {
      if (queue.length < AEAD_LENGTH_FIELD) return undefined
      const length = aeadOpen(
        'aes-128-gcm',
        kdf16(this.#keys.key, 'AEAD Resp Header Len Key'),
        kdf12(this.#keys.iv, 'AEAD Resp Header Len IV'),
        queue.consume(AEAD_LENGTH_FIELD),
      )
      if (length === undefined)
        throw new ProtocolError('RESPONSE_INVALID', 'Cannot open response header length')
      this.#aeadLength = length.readUInt16BE(0)
      if (this.#aeadLength < 4)
        throw new ProtocolError('RESPONSE_INVALID', 'Cannot read response header: too short')
    }
    if (queue.length < this.#aeadLength + TAG_LENGTH) return undefined
    const plain = aeadOpen(
      'aes-128-gcm',
      kdf16(this.#keys.key, 'AEAD Resp Header Key'),
      kdf12(this.#keys.iv, 'AEAD Resp Header IV'),
      queue.consume(this.#aeadLength + TAG_LENGTH),
    )
    if (plain === undefined) throw new ProtocolError('RESPONSE_INVALID', 'Cannot open response header')
    if (4 + plain.readUInt8(3) !== plain.length) {
      throw new ProtocolError(
        'RESPONSE_INVALID',
        'Cannot read response header: command length does not match',
      )
    }
    return readResponsePlain(plain)
  }

  #parseLegacy(queue: ByteQueue): ResponseHeader | undefined {
    // Decrypt byte-exactly what the header needs, so the CFB stream stays aligned for a cfb body.
    const decipher = this.#decipher!
    while (true) {
      const have = this.#legacyPlain.length
      const need = have < 4 ? 4 : 4 + this.#legacyPlain.readUInt8(3)
      if (have >= need) return readResponsePlain(this.#legacyPlain)
      if (queue.length === 0) return undefined
      const take = Math.min(need - have, queue.length)
      this.#legacyPlain = Buffer.concat([this.#legacyPlain, decipher.update(queue.consume(take))])
    }
  }
}

function readResponsePlain(plain: Buffer): ResponseHeader {
  return {
    responseV: plain.readUInt8(0),
    options: plain.readUInt8(1),
    command: plain.readUInt8(2),
    commandBytes: Buffer.from(plain.subarray(4, 4 + plain.readUInt8(3))),
  }
}

/** The response command 0x01: the server asks the client to move to another user or port (docs/protocol.md §6.2). */
export interface SwitchAccountCommand {
  /** Empty: keep the current server address. */
  readonly host: string
  readonly port: number
  readonly id: string
  readonly alterId: number
  readonly level: number
  readonly validMinutes: number
}

/** Parses a switch-account command's bytes (FNV-1a ‖ payload); throws ProtocolError when malformed. */
export function parseSwitchAccountCommand(bytes: Buffer): SwitchAccountCommand {
  if (bytes.length < 4 + 1)
    throw new ProtocolError('RESPONSE_INVALID', 'Cannot read switch-account: too short')
  if (fnv1a32(bytes, 4) !== bytes.readUInt32BE(0)) {
    throw new ProtocolError('RESPONSE_INVALID', 'Cannot read switch-account: checksum does not match')
  }
  const hostLength = bytes.readUInt8(4)
  const rest = 5 + hostLength
  if (bytes.length < rest + 2 + 16 + 2 + 1 + 1) {
    throw new ProtocolError('RESPONSE_INVALID', 'Cannot read switch-account: cut short')
  }
  return {
    host: bytes.toString('latin1', 5, rest),
    port: bytes.readUInt16BE(rest),
    id: formatUuid(bytes.subarray(rest + 2, rest + 18)),
    alterId: bytes.readUInt16BE(rest + 18),
    level: bytes.readUInt8(rest + 20),
    validMinutes: bytes.readUInt8(rest + 21),
  }
}

/** Encodes a switch-account command's bytes (for tests and servers that offer it). */
export function encodeSwitchAccountCommand(command: SwitchAccountCommand, id: Buffer): Buffer {
  const host = Buffer.from(command.host, 'latin1')
  const payload = Buffer.alloc(1 + host.length + 2 + 16 + 2 + 1 + 1)
  payload.writeUInt8(host.length, 0)
  host.copy(payload, 1)
  const offset = 1 + host.length
  payload.writeUInt16BE(command.port, offset)
  id.copy(payload, offset + 2)
  payload.writeUInt16BE(command.alterId, offset + 18)
  payload.writeUInt8(command.level, offset + 20)
  payload.writeUInt8(command.validMinutes, offset + 21)
  const out = Buffer.alloc(4 + payload.length)
  out.writeUInt32BE(fnv1a32(payload), 0)
  payload.copy(out, 4)
  return out
}
