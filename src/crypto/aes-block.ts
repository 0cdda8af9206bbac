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
 *
 * Keys are added at the end and removed by moving the last key into the gap (users added and
 * removed at runtime). The native key schedules are rebuilt at the next scan after a change, so a
 * burst of changes (a panel adding users one call at a time) costs one rebuild.
 */
export class AesBlockDecryptors {
  readonly #keys: Uint8Array[]
  readonly #addon: NativeAddon | undefined
  #native: NativeHandle | undefined
  readonly #deciphers: Decipher[] | undefined

  constructor(keys: readonly Uint8Array[]) {
    for (const key of keys) checkKey(key)
    this.#keys = keys.map((key) => Uint8Array.from(key))
    const addon = nativeAddon()
    if (addon?.aesni === true) this.#addon = addon
    // ECB on whole blocks without final(): each update decrypts one block and the decipher stays usable.
    else this.#deciphers = keys.map(decipherOf)
  }

  get count(): number {
    return this.#keys.length
  }

  /** Appends a key at index `count`. */
  add(key: Uint8Array): void {
    checkKey(key)
    this.#keys.push(Uint8Array.from(key))
    this.#deciphers?.push(decipherOf(key))
    this.#native = undefined
  }

  /** Removes key `index`: the last key takes its place (the caller moves its own records the same way). */
  removeAt(index: number): void {
    const last = this.#keys.length - 1
    if (!Number.isInteger(index) || index < 0 || index > last)
      throw new RangeError(`Cannot remove key ${index}: there are ${this.#keys.length}`)
    const movedKey = this.#keys.pop()!
    if (index < last) this.#keys[index] = movedKey
    const deciphers = this.#deciphers
    if (deciphers !== undefined) {
      const moved = deciphers.pop()!
      if (index < last) deciphers[index] = moved
    }
    this.#native = undefined
  }

  /**
   * The first index in [from, to) whose key decrypts `block` to a plaintext whose first 4 bytes,
   * big-endian, equal `word`; -1 if none.
   */
  firstWordEquals(block: Uint8Array, word: number, from: number, to: number): number {
    const start = Math.max(0, from)
    const end = Math.min(to, this.count)
    if (start >= end) return -1
    if (this.#addon !== undefined)
      return this.#addon.authScan(this.#nativeKeys(this.#addon), block, word >>> 0, start, end)
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
    if (this.#addon !== undefined) this.#addon.authDecrypt(this.#nativeKeys(this.#addon), index, block, out)
    else out.set(this.#deciphers![index]!.update(block).subarray(0, 16))
  }

  /** The native key schedules, rebuilt after a change. */
  #nativeKeys(addon: NativeAddon): NativeHandle {
    if (this.#native !== undefined) return this.#native
    const packed = Buffer.alloc(16 * Math.max(1, this.#keys.length))
    this.#keys.forEach((key, i) => packed.set(key, 16 * i))
    this.#native = addon.authKeysCreate(packed.subarray(0, 16 * this.#keys.length))
    packed.fill(0)
    return this.#native
  }
}

function checkKey(key: Uint8Array): void {
  if (key.length !== 16)
    throw new RangeError(`Cannot expand AES-128 key: length is ${key.length}, expected 16`)
}

function decipherOf(key: Uint8Array): Decipher {
  return createDecipheriv('aes-128-ecb', key, null).setAutoPadding(false)
}

/** The index of the first key in `keys` whose decryption of `authId` opens with BE32 `word` (0 for an AuthID), or -1. */
export function scanAuthIdKeys(authId: Uint8Array, keys: AesBlockDecryptors, word = 0): number {
  return keys.firstWordEquals(authId, word, 0, keys.count)
}
