import { createCipheriv, createDecipheriv } from 'node:crypto'
import { md5 } from './hash.js'
import { nativeAddon } from './native.js'

/** The two AEAD ciphers VMess uses, by their node:crypto names. */
export type AeadAlgorithm = 'aes-128-gcm' | 'chacha20-poly1305'

/** Size of the authentication tag of both AEAD ciphers. */
export const AEAD_TAG_LENGTH = 16

/** VMess turns a 16-byte key into ChaCha20's 32 bytes as MD5(k) ‖ MD5(MD5(k)) (PROTOCOL §7.1). */
export function expandChachaKey(key16: Uint8Array): Buffer {
  const first = md5(key16)
  return Buffer.concat([first, md5(first)])
}

/** Encrypts and authenticates `plaintext`: returns ciphertext ‖ tag. */
export function aeadSeal(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad?: Uint8Array,
): Buffer {
  const addon = nativeAddon()
  if (addon !== undefined) {
    // One OpenSSL context for this message, freed at once: no node:crypto cipher object.
    const handle = addon.aeadCreate(algorithm === 'aes-128-gcm' ? 0 : 1, key, true)
    const sealed = Buffer.allocUnsafe(plaintext.length + AEAD_TAG_LENGTH)
    try {
      addon.aeadSeal(handle, nonce, plaintext, 0, plaintext.length, sealed, 0, aad)
    } finally {
      addon.aeadFree(handle)
    }
    return sealed
  }
  const cipher = createAeadCipher(algorithm, key, nonce)
  if (aad !== undefined) cipher.setAAD(aad, { plaintextLength: plaintext.length })
  const head = cipher.update(plaintext)
  cipher.final()
  return Buffer.concat([head, cipher.getAuthTag()])
}

/** Verifies and decrypts ciphertext ‖ tag; returns undefined when authentication fails. */
export function aeadOpen(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad?: Uint8Array,
): Buffer | undefined {
  if (sealed.length < AEAD_TAG_LENGTH) return undefined
  const textLength = sealed.length - AEAD_TAG_LENGTH
  const addon = nativeAddon()
  if (addon !== undefined) {
    // Opened in a copy of its own: `sealed` may be a view of received bytes the caller keeps.
    const plaintext = Buffer.from(sealed.subarray(0, textLength))
    const handle = addon.aeadCreate(algorithm === 'aes-128-gcm' ? 0 : 1, key, false)
    try {
      return addon.aeadOpen(handle, nonce, plaintext, 0, textLength, sealed, textLength, aad)
        ? plaintext
        : undefined
    } finally {
      addon.aeadFree(handle)
    }
  }
  const decipher = createAeadDecipher(algorithm, key, nonce)
  decipher.setAuthTag(sealed.subarray(textLength))
  if (aad !== undefined) decipher.setAAD(aad, { plaintextLength: textLength })
  const plaintext = decipher.update(sealed.subarray(0, textLength))
  try {
    decipher.final()
  } catch {
    return undefined
  }
  return plaintext
}

const TAG_OPTIONS = { authTagLength: AEAD_TAG_LENGTH }

/** A node:crypto cipher for one AEAD message (node's overloads need the literal algorithm name). */
export function createAeadCipher(algorithm: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array) {
  return algorithm === 'aes-128-gcm'
    ? createCipheriv(algorithm, key, nonce, TAG_OPTIONS)
    : createCipheriv(algorithm, key, nonce, TAG_OPTIONS)
}

/** A node:crypto decipher for one AEAD message. */
export function createAeadDecipher(algorithm: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array) {
  return algorithm === 'aes-128-gcm'
    ? createDecipheriv(algorithm, key, nonce, TAG_OPTIONS)
    : createDecipheriv(algorithm, key, nonce, TAG_OPTIONS)
}
