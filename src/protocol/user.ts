import { createHash } from 'node:crypto'
import { ProtocolError } from '../errors.js'
import { md5 } from '../crypto/hash.js'
import { kdf16 } from '../crypto/kdf.js'

const CMD_KEY_SALT = Buffer.from('c48619fe-8f02-49e0-b9e9-edf763e17e21')
const ALTER_ID_SALT = Buffer.from('16167dc8-16b6-4e6d-b8bb-65dd68113a81')
const ALTER_ID_COLLISION_SALT = Buffer.from('533eff8a-4113-4b10-b5ce-0f5d76b98cd2')
const UUID_PATTERN = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/
/** Xray and sing-box map id strings of 1–30 bytes that are not UUIDs to UUIDv5 (docs/protocol.md §1). */
export const MAX_ID_STRING_BYTES = 30
/** alterId values above this are refused: each alter ID costs 241 table entries (docs/protocol.md §3.2). */
export const MAX_ALTER_ID = 65535

/** A VMess user with every key its headers need, derived once. */
export interface VmessUser {
  /** The primary ID in text form. */
  readonly uuid: string
  /** The 16 primary ID bytes. */
  readonly id: Buffer
  /** MD5(ID ‖ salt): encrypts legacy headers and roots the AEAD keys (docs/protocol.md §1). */
  readonly cmdKey: Buffer
  /** a₁…a_N: the alter IDs that may sign a legacy header. */
  readonly alterIds: readonly Buffer[]
  /** KDF16(cmdKey, "AES Auth ID Encryption") (docs/protocol.md §4.2). */
  readonly authIdKey: Buffer
  readonly email: string
  readonly level: number
}

/** The 16 bytes of a UUID in text form (dashes optional), or undefined when `text` is not one. */
export function parseUuid(text: string): Buffer | undefined {
  if (!UUID_PATTERN.test(text)) return undefined
  return Buffer.from(text.replaceAll('-', ''), 'hex')
}

/** The canonical 8-4-4-4-12 lowercase text of 16 UUID bytes. */
export function formatUuid(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** UUIDv5 with the nil namespace, as Xray and sing-box derive it from a short id string. */
export function uuidV5FromString(text: string): Buffer {
  const digest = createHash('sha1').update(Buffer.alloc(16)).update(text, 'utf8').digest()
  const out = digest.subarray(0, 16)
  out[6] = (out.readUInt8(6) & 0x0f) | 0x50
  out[8] = (out.readUInt8(8) & 0x3f) | 0x80
  return Buffer.from(out)
}

/** The ID bytes of a configured id: a UUID, or a 1–30-byte string mapped to UUIDv5. */
export function idFromConfig(text: string): Buffer {
  const uuid = parseUuid(text)
  if (uuid !== undefined) return uuid
  const length = Buffer.byteLength(text, 'utf8')
  if (length >= 1 && length <= MAX_ID_STRING_BYTES) return uuidV5FromString(text)
  throw new ProtocolError('ID_INVALID', `Cannot read user id: "${text}" is not a UUID nor a 1–30 byte string`)
}

/** MD5(ID ‖ "c48619fe-…") (docs/protocol.md §1). */
export function deriveCmdKey(id: Uint8Array): Buffer {
  return md5(id, CMD_KEY_SALT)
}

/** The alter-ID chain a₁…a_count derived from the primary ID (docs/protocol.md §1). */
export function deriveAlterIds(primary: Uint8Array, count: number): Buffer[] {
  const out: Buffer[] = []
  let previous = Buffer.from(primary)
  for (let i = 0; i < count; i++) {
    const hash = createHash('md5').update(previous).update(ALTER_ID_SALT)
    let next = hash.copy().digest()
    while (next.equals(previous)) {
      hash.update(ALTER_ID_COLLISION_SALT)
      next = hash.copy().digest()
    }
    out.push(next)
    previous = next
  }
  return out
}

/** Builds a user from its configured fields. */
export function createUser(options: {
  id: string
  alterId?: number
  email?: string
  level?: number
}): VmessUser {
  const alterId = options.alterId ?? 0
  if (!Number.isInteger(alterId) || alterId < 0 || alterId > MAX_ALTER_ID) {
    throw new ProtocolError(
      'ID_INVALID',
      `Cannot create user: alterId is ${alterId}, limit is ${MAX_ALTER_ID}`,
    )
  }
  const id = idFromConfig(options.id)
  const cmdKey = deriveCmdKey(id)
  return {
    uuid: formatUuid(id),
    id,
    cmdKey,
    alterIds: deriveAlterIds(id, alterId),
    authIdKey: kdf16(cmdKey, 'AES Auth ID Encryption'),
    email: options.email ?? '',
    level: options.level ?? 0,
  }
}
