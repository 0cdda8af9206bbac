import { AEAD_TAG_LENGTH, createAeadCipher, createAeadDecipher, type AeadAlgorithm } from './aead.js'
import { nativeAddon, type NativeAddon, type NativeHandle } from './native.js'

/**
 * One direction's AEAD cipher with its key set once; each call takes the chunk's nonce. The native
 * one holds an OpenSSL context (seal into the caller's buffer, open in place); the node:crypto one
 * builds a cipher object per call. Both read and write only the ranges given.
 */
export interface AeadContext {
  /** True when `open` returns a view of the sealed bytes (decrypted in place), not a new buffer. */
  readonly inPlace: boolean
  /** Writes sealed(source[start, end)) ‖ tag into `out` at `at` (end − start + 16 bytes). */
  seal(nonce: Uint8Array, source: Buffer, start: number, end: number, out: Buffer, at: number): void
  /**
   * The plaintext of sealed[start, end) with its tag at tag[tagAt], or undefined when the tag does
   * not match. In place, the sealed bytes are overwritten either way.
   */
  open(
    nonce: Uint8Array,
    sealed: Buffer,
    start: number,
    end: number,
    tag: Buffer,
    tagAt: number,
  ): Buffer | undefined
  /** Releases the native context at once (the stream closed); later calls throw. */
  free(): void
}

/** The context for one direction: the addon's when it loaded, node:crypto's otherwise. */
export function createAeadContext(
  algorithm: AeadAlgorithm,
  key: Uint8Array,
  mode: 'seal' | 'open',
): AeadContext {
  const addon = nativeAddon()
  return addon === undefined
    ? new NodeAeadContext(algorithm, key)
    : new NativeAeadContext(addon, algorithm, key, mode)
}

class NativeAeadContext implements AeadContext {
  readonly inPlace = true
  readonly #addon: NativeAddon
  readonly #algorithm: number
  readonly #key: Uint8Array
  readonly #encrypt: boolean
  /** Made on first use: a tunnel that never sends or receives a chunk holds no OpenSSL context. */
  #handle: NativeHandle | undefined
  #freed = false

  constructor(addon: NativeAddon, algorithm: AeadAlgorithm, key: Uint8Array, mode: 'seal' | 'open') {
    this.#addon = addon
    this.#algorithm = algorithm === 'aes-128-gcm' ? 0 : 1
    this.#key = key
    this.#encrypt = mode === 'seal'
  }

  #context(): NativeHandle {
    if (this.#handle !== undefined) return this.#handle
    if (this.#freed) throw new Error('Cannot use the cipher: a freed context')
    this.#handle = this.#addon.aeadCreate(this.#algorithm, this.#key, this.#encrypt)
    return this.#handle
  }

  seal(nonce: Uint8Array, source: Buffer, start: number, end: number, out: Buffer, at: number): void {
    this.#addon.aeadSeal(this.#context(), nonce, source, start, end, out, at)
  }

  open(
    nonce: Uint8Array,
    sealed: Buffer,
    start: number,
    end: number,
    tag: Buffer,
    tagAt: number,
  ): Buffer | undefined {
    return this.#addon.aeadOpen(this.#context(), nonce, sealed, start, end, tag, tagAt)
      ? sealed.subarray(start, end)
      : undefined
  }

  free(): void {
    this.#freed = true
    if (this.#handle !== undefined) this.#addon.aeadFree(this.#handle)
  }
}

class NodeAeadContext implements AeadContext {
  readonly inPlace = false
  readonly #algorithm: AeadAlgorithm
  readonly #key: Uint8Array

  constructor(algorithm: AeadAlgorithm, key: Uint8Array) {
    this.#algorithm = algorithm
    this.#key = key
  }

  seal(nonce: Uint8Array, source: Buffer, start: number, end: number, out: Buffer, at: number): void {
    const cipher = createAeadCipher(this.#algorithm, this.#key, nonce)
    const whole = start === 0 && end === source.length
    out.set(cipher.update(whole ? source : source.subarray(start, end)), at)
    cipher.final()
    out.set(cipher.getAuthTag(), at + end - start)
  }

  open(
    nonce: Uint8Array,
    sealed: Buffer,
    start: number,
    end: number,
    tag: Buffer,
    tagAt: number,
  ): Buffer | undefined {
    const decipher = createAeadDecipher(this.#algorithm, this.#key, nonce)
    decipher.setAuthTag(tag.subarray(tagAt, tagAt + AEAD_TAG_LENGTH))
    const whole = start === 0 && end === sealed.length
    const plaintext = decipher.update(whole ? sealed : sealed.subarray(start, end))
    try {
      decipher.final()
    } catch {
      return undefined
    }
    return plaintext
  }

  free(): void {
    // Nothing is held between calls.
  }
}
