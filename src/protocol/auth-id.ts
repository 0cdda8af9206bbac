import { createCipheriv, createDecipheriv } from 'node:crypto'
import { crc32 } from '../crypto/hash.js'
import type { RandomSource } from '../crypto/random.js'

/** Length of the AuthID that opens every AEAD request (docs/protocol.md §4.2). */
export const AUTH_ID_LENGTH = 16

/** Encrypts BE64(time) ‖ 4 random bytes ‖ CRC32 under the user's AuthID key (docs/protocol.md §4.2). */
export function createAuthId(authIdKey: Uint8Array, options: { time: number; random: RandomSource }): Buffer {
  const plain = Buffer.alloc(AUTH_ID_LENGTH)
  plain.writeBigUInt64BE(BigInt(options.time), 0)
  options.random(4).copy(plain, 8)
  plain.writeUInt32BE(crc32(plain.subarray(0, 12)), 12)
  const cipher = createCipheriv('aes-128-ecb', authIdKey, null).setAutoPadding(false)
  return Buffer.concat([cipher.update(plain), cipher.final()])
}

/**
 * Decrypts an AuthID with one user's key; returns its time in Unix seconds when the CRC matches,
 * undefined otherwise. The decipher is created per call; the server keeps one per user instead.
 */
export function openAuthId(authIdKey: Uint8Array, authId: Uint8Array): number | undefined {
  const decipher = createDecipheriv('aes-128-ecb', authIdKey, null).setAutoPadding(false)
  return readAuthIdPlaintext(decipher.update(authId))
}

/** The time of a decrypted AuthID block when its CRC32 matches, else undefined. */
export function readAuthIdPlaintext(plain: Buffer): number | undefined {
  if (plain.length !== AUTH_ID_LENGTH) return undefined
  if (crc32(plain.subarray(0, 12)) !== plain.readUInt32BE(12)) return undefined
  const time = plain.readBigInt64BE(0)
  // A negative or absurd time can never be within the window; clamp to keep it a safe number.
  if (time < 0n || time > BigInt(Number.MAX_SAFE_INTEGER)) return -1
  return Number(time)
}
