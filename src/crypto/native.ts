import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/**
 * The native cipher addon (native/tsray_native.c), loaded once with node-gyp-build from the
 * prebuilds shipped in the package. Everything in it has a node:crypto fallback, used when the addon
 * cannot load (another platform, a Node without OpenSSL 3's symbols, Electron, Bun) or when
 * TSRAY_NATIVE=0 turns it off.
 */
export interface NativeAddon {
  /** algorithm 0 is aes-128-gcm, 1 chacha20-poly1305. */
  aeadCreate(algorithm: number, key: Uint8Array, encrypt: boolean): NativeHandle
  aeadFree(handle: NativeHandle): void
  aeadSeal(
    handle: NativeHandle,
    nonce: Uint8Array,
    source: Uint8Array,
    start: number,
    end: number,
    out: Uint8Array,
    at: number,
    aad?: Uint8Array,
  ): void
  aeadOpen(
    handle: NativeHandle,
    nonce: Uint8Array,
    sealed: Uint8Array,
    start: number,
    end: number,
    tag: Uint8Array,
    tagAt: number,
    aad?: Uint8Array,
  ): boolean
  authKeysCreate(keys: Uint8Array): NativeHandle
  authScan(handle: NativeHandle, block: Uint8Array, word: number, from: number, to: number): number
  authDecrypt(handle: NativeHandle, index: number, block: Uint8Array, out: Uint8Array): void
  readonly aesni: boolean
  readonly openssl: string
}

/** An opaque native object; the addon frees it on garbage collection if nobody did before. */
export type NativeHandle = object & { readonly __native: unique symbol }

/** Which cipher path this process uses, and why: `tsray version` and the debug log show it. */
export interface CryptoBackend {
  readonly native: boolean
  /** The addon's OpenSSL, or why node:crypto is used instead. */
  readonly detail: string
}

/** The environment switch: TSRAY_NATIVE=0 (or false/off) keeps every cipher on node:crypto. */
export const NATIVE_SWITCH = 'TSRAY_NATIVE'

let addon: NativeAddon | undefined
let backend: CryptoBackend | undefined

function load(): void {
  const setting = process.env[NATIVE_SWITCH]?.trim().toLowerCase()
  if (setting === '0' || setting === 'false' || setting === 'off') {
    backend = { native: false, detail: `node:crypto (${NATIVE_SWITCH}=${setting})` }
    return
  }
  try {
    const require = createRequire(import.meta.url)
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeAddon
    // dist/src/crypto/native.js → the package root, where prebuilds/ lies.
    const loaded = nodeGypBuild(fileURLToPath(new URL('../../../', import.meta.url)))
    if (typeof loaded.aeadSeal !== 'function') throw new Error('the addon lacks aeadSeal')
    addon = loaded
    backend = { native: true, detail: `native addon, ${loaded.openssl}${loaded.aesni ? ', AES-NI' : ''}` }
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error)
    backend = { native: false, detail: `node:crypto (native addon not loaded: ${reason})` }
  }
}

/** The addon, or undefined when node:crypto serves instead. Loaded on first use. */
export function nativeAddon(): NativeAddon | undefined {
  if (backend === undefined) load()
  return addon
}

/** The active cipher path. */
export function cryptoBackend(): CryptoBackend {
  if (backend === undefined) load()
  return backend!
}
