import type { RandomSource } from '../crypto/random.js'
import { Command, type CommandValue, Option, Security, type SecurityName } from './constants.js'
import { legacyAuth } from './legacy-auth.js'
import {
  encodeLegacyRequestHeader,
  encodeRequestHeader,
  type RequestHeader,
  sealAeadRequestHeader,
} from './request-header.js'
import { deriveResponseKeys, type HeaderKind } from './response-header.js'
import type { VmessUser } from './user.js'

/** A configured security word resolved to the wire: value and the option bits V2Ray sends (docs/protocol.md §10). */
export function resolveSecurity(
  name: SecurityName,
  options?: { preferAes?: boolean; udp?: boolean },
): { security: number; options: number } {
  const smp = Option.ChunkStream | Option.ChunkMasking | Option.GlobalPadding
  switch (name) {
    case 'aes-128-gcm':
      return { security: Security.Aes128Gcm, options: smp }
    case 'chacha20-poly1305':
      return { security: Security.Chacha20Poly1305, options: smp }
    case 'auto':
      // V2Ray picks GCM on amd64, arm64 and s390x (docs/protocol.md §5).
      return {
        security: (options?.preferAes ?? true) ? Security.Aes128Gcm : Security.Chacha20Poly1305,
        options: smp,
      }
    case 'none':
      return { security: Security.None, options: Option.ChunkStream | Option.ChunkMasking }
    case 'zero':
      // Without S a UDP body has no datagram boundaries; keep S there, as sing-box does (docs/protocol.md §8).
      return { security: Security.None, options: options?.udp === true ? Option.ChunkStream : 0 }
    case 'aes-128-cfb':
      return { security: Security.Aes128Cfb, options: Option.ChunkStream }
  }
}

/** A client's request: the header it sent, its first wire bytes, and the keys of the response. */
export interface ClientRequest {
  readonly kind: HeaderKind
  readonly header: RequestHeader
  readonly wire: Buffer
  readonly responseKeys: { key: Buffer; iv: Buffer }
}

/**
 * Builds a request header and its wire form: AEAD unless `legacy` is set, in which case it is signed
 * with a random alter ID (or the primary when the user has none), as V2Ray does (docs/protocol.md §3.1, §10).
 */
export function createClientRequest(
  user: VmessUser,
  options: {
    readonly legacy: boolean
    readonly security: number
    readonly options: number
    readonly command: CommandValue
    readonly host: string
    readonly port: number
    /** Unix seconds. */
    readonly now: number
    readonly random: RandomSource
  },
): ClientRequest {
  const random = options.random
  const entropy = random(16 + 16 + 1 + 1)
  const paddingLength = entropy.readUInt8(33) & 0x0f
  const header: RequestHeader = {
    version: 1,
    bodyIv: Buffer.from(entropy.subarray(0, 16)),
    bodyKey: Buffer.from(entropy.subarray(16, 32)),
    responseV: entropy.readUInt8(32),
    options: options.options,
    security: options.security,
    command: options.command,
    host: options.command === Command.Mux ? '' : options.host,
    port: options.command === Command.Mux ? 0 : options.port,
    padding: Buffer.from(random(paddingLength)),
  }
  const plain = encodeRequestHeader(header)
  const kind: HeaderKind = options.legacy ? 'legacy' : 'aead'
  let wire: Buffer
  if (kind === 'aead') {
    wire = sealAeadRequestHeader(plain, {
      cmdKey: user.cmdKey,
      authIdKey: user.authIdKey,
      time: options.now,
      random,
    })
  } else {
    // V2Ray signs with now + uniform[−30, +29] and a random alter ID a₁…a_N (docs/protocol.md §3.1).
    const time = options.now + (random(1).readUInt8(0) % 60) - 30
    const alterIndex = user.alterIds.length > 0 ? random(2).readUInt16BE(0) % user.alterIds.length : -1
    const signingId = alterIndex < 0 ? user.id : user.alterIds[alterIndex]!
    wire = encodeLegacyRequestHeader(plain, { cmdKey: user.cmdKey, auth: legacyAuth(signingId, time), time })
  }
  return { kind, header, wire, responseKeys: deriveResponseKeys(kind, header.bodyKey, header.bodyIv) }
}
