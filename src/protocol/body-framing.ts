import { createCipheriv, createDecipheriv, type Cipher, type Decipher } from 'node:crypto'
import {
  AEAD_TAG_LENGTH,
  createAeadContext,
  expandChachaKey,
  kdf16,
  type AeadAlgorithm,
  type AeadContext,
} from '../crypto/index.js'
import { ProtocolError } from '../errors.js'
import { MAX_CHUNK_LENGTH, Option, Security } from './constants.js'

/** How a body travels: TCP and Mux.Cool are a stream, UDP is packets, one chunk each (PROTOCOL §7.2, §8). */
export type Transfer = 'stream' | 'packet'

/** Everything that decides one direction's body framing (PROTOCOL §7.1, §7.2). */
export interface BodyParams {
  /** Wire value: 1 cfb, 3 gcm, 4 chacha, 5 none (the header parser reads 0 as 1; zero is sent as 5). */
  security: number
  /** Request option bits: S 0x01, M 0x04, P 0x08, A 0x10 (PROTOCOL §5). */
  options: number
  transfer: Transfer
  /** This direction's 16-byte body key and IV: the request's K/I, or the response's rK/rI. */
  key: Buffer
  iv: Buffer
  /** The request's K and I: option A seals both directions' lengths with them (PROTOCOL §7.6). */
  requestKey: Buffer
  requestIv: Buffer
  /** Security 1 only: continue this CFB stream (a legacy response header's, PROTOCOL §6.3). */
  cfb?: Cipher | Decipher
}

/**
 * The body layouts of PROTOCOL §7.2: `raw` bytes (no chunks), `bare` chunks (L ‖ payload, none + S
 * over a stream) and `generic` chunks (L ‖ sealed(payload) ‖ padding, §7.3).
 */
export type FramingKind = 'raw' | 'bare' | 'generic'

/** How a chunk's payload is sealed (PROTOCOL §7.3). */
export type Sealing = 'aead' | 'fnv' | 'plain'

/**
 * An AEAD key plus the 12-byte nonce template: BE16(counter) is written over its first 2 bytes
 * (§7.1). Each framing has its own copy, which its sealer or opener uses as its working nonce.
 */
export interface AeadKey {
  readonly algorithm: AeadAlgorithm
  readonly key: Buffer
  readonly iv: Buffer
}

/** One direction's framing, resolved from PROTOCOL §7.2's table; the sealer and opener both read it. */
export interface BodyFraming {
  readonly kind: FramingKind
  readonly sealing: Sealing
  /** T: bytes that sealing adds to a payload (tag or checksum). */
  readonly tagLength: number
  /** 2, or 18 with an authenticated length (§7.6). */
  readonly lengthFieldLength: number
  /** P: draw p = next() mod 64 per chunk (§7.5). */
  readonly padding: boolean
  /** M without A: XOR the length with next() per chunk (§7.4). */
  readonly masking: boolean
  /** S: the direction ends with an empty chunk (§7.7). */
  readonly endMarker: boolean
  /** The whole direction, length fields included, passes through AES-128-CFB (§7.2). */
  readonly cfb: boolean
  readonly payloadKey: AeadKey | undefined
  readonly lengthKey: AeadKey | undefined
  /** SHAKE128 seed when padding or masking draw from it (§7.4). */
  readonly shakeSeed: Buffer | undefined
}

interface SecurityRow {
  readonly name: string
  readonly sealing: Sealing
  readonly tagLength: number
  readonly algorithm?: AeadAlgorithm
  /** Chunked even without S (gcm and chacha). */
  readonly alwaysChunked: boolean
  /** With S over a stream: bare chunks, no tag and no padding even if P (none only). */
  readonly bareOnStream: boolean
}

// PROTOCOL §7.2 and §7.3 as data: one row per security value as sent on the wire.
const SECURITY_ROWS: ReadonlyMap<number, SecurityRow> = new Map<number, SecurityRow>([
  [
    Security.Aes128Cfb,
    { name: 'aes-128-cfb', sealing: 'fnv', tagLength: 4, alwaysChunked: false, bareOnStream: false },
  ],
  [
    Security.Aes128Gcm,
    {
      name: 'aes-128-gcm',
      sealing: 'aead',
      tagLength: AEAD_TAG_LENGTH,
      algorithm: 'aes-128-gcm',
      alwaysChunked: true,
      bareOnStream: false,
    },
  ],
  [
    Security.Chacha20Poly1305,
    {
      name: 'chacha20-poly1305',
      sealing: 'aead',
      tagLength: AEAD_TAG_LENGTH,
      algorithm: 'chacha20-poly1305',
      alwaysChunked: true,
      bareOnStream: false,
    },
  ],
  [Security.None, { name: 'none', sealing: 'plain', tagLength: 0, alwaysChunked: false, bareOnStream: true }],
])

const AUTH_LENGTH_LABEL = 'auth_len'
const LENGTH_FIELD_LENGTH = 2
const NONCE_LENGTH = 12

function aeadKey(algorithm: AeadAlgorithm, key16: Buffer, iv: Buffer): AeadKey {
  // ChaCha20 needs 32 bytes: MD5(k) ‖ MD5(MD5(k)) (PROTOCOL §7.1).
  const key = algorithm === 'chacha20-poly1305' ? expandChachaKey(key16) : key16
  const [ownKey, ownIv] = ownCopies(key, iv.subarray(0, NONCE_LENGTH))
  return { algorithm, key: ownKey!, iv: ownIv! }
}

/**
 * Copies of small values a tunnel keeps for its lifetime, in one allocation of their own. Slices of
 * Node's shared 8 KiB Buffer pool would each keep a whole pool slab alive for as long as the tunnel
 * lives: measured ~5 KiB of RSS per idle tunnel before.
 */
function ownCopies(...values: readonly Uint8Array[]): Buffer[] {
  let total = 0
  for (const value of values) total += value.length
  const store = Buffer.allocUnsafeSlow(total)
  let at = 0
  return values.map((value) => {
    store.set(value, at)
    at += value.length
    return store.subarray(at - value.length, at)
  })
}

/** Resolves PROTOCOL §7.2's table for one direction; throws ProtocolError for a body no peer can frame. */
export function resolveBodyFraming(params: BodyParams): BodyFraming {
  const row = SECURITY_ROWS.get(params.security)
  if (row === undefined) {
    throw new ProtocolError(
      'SECURITY_UNSUPPORTED',
      `Cannot frame body: security is ${params.security}, expected 1, 3, 4 or 5`,
    )
  }
  const options = params.options
  const stream = (options & Option.ChunkStream) !== 0
  const mask = (options & Option.ChunkMasking) !== 0
  const pad = (options & Option.GlobalPadding) !== 0
  // V2Ray 4.34 crashes on P without M, v5 and Xray refuse it (PROTOCOL §5).
  if (pad && !mask) {
    throw new ProtocolError(
      'PADDING_WITHOUT_MASK',
      `Cannot frame body: options are 0x${options.toString(16).padStart(2, '0')}, P needs M`,
    )
  }
  const kind: FramingKind =
    !stream && !row.alwaysChunked
      ? 'raw'
      : row.bareOnStream && params.transfer === 'stream'
        ? 'bare'
        : 'generic'
  // Raw bytes lose datagram boundaries; UDP needs one chunk per datagram (PROTOCOL §7.2, §8).
  if (kind === 'raw' && params.transfer === 'packet') {
    throw new ProtocolError(
      'FRAMING_UNSUPPORTED',
      `Cannot frame packets: security is ${row.name} without option S, datagrams need chunks`,
    )
  }
  // A is only understood with gcm and chacha; v5 and Xray ignore it for none and cfb (PROTOCOL §7.6).
  const authLength = row.algorithm !== undefined && (options & Option.AuthenticatedLength) !== 0
  const padding = kind === 'generic' && pad
  const masking = kind !== 'raw' && mask && !authLength
  return {
    kind,
    sealing: kind === 'generic' ? row.sealing : 'plain',
    tagLength: kind === 'generic' ? row.tagLength : 0,
    lengthFieldLength: authLength ? LENGTH_FIELD_LENGTH + AEAD_TAG_LENGTH : LENGTH_FIELD_LENGTH,
    padding,
    masking,
    endMarker: kind !== 'raw' && stream,
    cfb: params.security === Security.Aes128Cfb,
    payloadKey: row.algorithm === undefined ? undefined : aeadKey(row.algorithm, params.key, params.iv),
    lengthKey:
      authLength && row.algorithm !== undefined
        ? aeadKey(row.algorithm, kdf16(params.requestKey, AUTH_LENGTH_LABEL), params.requestIv)
        : undefined,
    shakeSeed: padding || masking ? ownCopies(params.iv)[0] : undefined,
  }
}

/** The largest padding a chunk can carry: p = next() mod 64; writers reserve 64 (PROTOCOL §7.3). */
export const PADDING_RESERVE = 64

/**
 * Bytes a chunk adds around its payload at most: length field, tag and reserved padding. Payload
 * per chunk = maxChunkLength − this (PROTOCOL §7.3, §8).
 */
export function chunkOverhead(framing: BodyFraming): number {
  if (framing.kind === 'raw') return 0
  return framing.lengthFieldLength + framing.tagLength + (framing.padding ? PADDING_RESERVE : 0)
}

/** Checks a writer's whole-chunk limit: it must leave room for a payload and fit the 16-bit length. */
export function checkMaxChunkLength(framing: BodyFraming, maxChunkLength: number): void {
  const overhead = chunkOverhead(framing)
  if (!Number.isInteger(maxChunkLength) || maxChunkLength <= overhead || maxChunkLength > MAX_CHUNK_LENGTH) {
    throw new RangeError(
      `Cannot frame body: maxChunkLength is ${maxChunkLength}, expected ${overhead + 1}..${MAX_CHUNK_LENGTH}`,
    )
  }
}

/** The direction's AES-128-CFB stream: the one handed in (legacy response header), else a fresh one. */
export function bodyCfb(params: BodyParams, direction: 'seal' | 'open'): Cipher | Decipher {
  if (params.cfb !== undefined) return params.cfb
  return direction === 'seal'
    ? createCipheriv('aes-128-cfb', params.key, params.iv)
    : createDecipheriv('aes-128-cfb', params.key, params.iv)
}

/** One direction's cipher context for a framing key, the key set once (PROTOCOL §7.1). */
export function aeadContext(key: AeadKey | undefined, mode: 'seal' | 'open'): AeadContext | undefined {
  return key === undefined ? undefined : createAeadContext(key.algorithm, key.key, mode)
}
