import { createDecipheriv, type Decipher } from 'node:crypto'
import { nativeAddon, type NativeAddon, type NativeHandle } from './native.js'

/**
 * AES-128 single-block decryption under many keys, for the server's AuthID scan (docs/protocol.md §4.3):
 * one 16-byte block tried against the key of every user.
 *
 * Timing. No path looks anything up by a key- or data-dependent index. The native scan runs AES-NI
 * over every user's key schedule in one call (about 3 ns per key); without the addon (or without
 * AES-NI), each user has a reusable node:crypto aes-128-ecb decipher, which is OpenSSL's own
 * constant-time AES (about 1 µs per key: a junk AuthID costs a server of 10,000 users ~10 ms).
 */
export class AesBlockDecryptors {
  readonly count: number
  readonly #native: { addon: NativeAddon; keys: NativeHandle } | undefined
  readonly #deciphers: Decipher[] | undefined

  constructor(keys: readonly Uint8Array[]) {
    this.count = keys.length
    for (const key of keys) {
      if (key.length !== 16)
        throw new RangeError(`Cannot expand AES-128 key: length is ${key.length}, expected 16`)
    }
    const addon = nativeAddon()
    if (addon?.aesni === true) {
      const packed = Buffer.alloc(16 * keys.length)
      keys.forEach((key, i) => packed.set(key, 16 * i))
      this.#native = { addon, keys: addon.authKeysCreate(packed) }
      packed.fill(0)
    } else {
      // ECB on whole blocks without final(): each update decrypts one block and the decipher stays usable.
      this.#deciphers = keys.map((key) => createDecipheriv('aes-128-ecb', key, null).setAutoPadding(false))
    }
  }

  /**
   * The first index in [from, to) whose key decrypts `block` to a plaintext whose first 4 bytes,
   * big-endian, equal `word`; -1 if none.
   */
  firstWordEquals(block: Uint8Array, word: number, from: number, to: number): number {
    const start = Math.max(0, from)
    const end = Math.min(to, this.count)
    if (start >= end) return -1
    if (this.#native !== undefined)
      return this.#native.addon.authScan(this.#native.keys, block, word >>> 0, start, end)
    const deciphers = this.#deciphers!
    const want = word >>> 0
    for (let i = start; i < end; i++) {
      if (deciphers[i]!.update(block).readUInt32BE(0) === want) return i
    }
    return -1
  }

  /** Decrypts one 16-byte `block` with key `index` into `out` (16 bytes). */
  decrypt(index: number, block: Uint8Array, out: Uint8Array): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) {
      throw new RangeError(`Cannot decrypt: key index ${index} outside 0..${this.count - 1}`)
    }
    if (this.#native !== undefined) this.#native.addon.authDecrypt(this.#native.keys, index, block, out)
    else out.set(this.#deciphers![index]!.update(block).subarray(0, 16))
  }
}

/** The index of the first key in `keys` whose decryption of `authId` opens with BE32 `word` (0 for an AuthID), or -1. */
export function scanAuthIdKeys(authId: Uint8Array, keys: AesBlockDecryptors, word = 0): number {
  return keys.firstWordEquals(authId, word, 0, keys.count)
}
