import { createHmac } from 'node:crypto'

const ROOT_KEY = Buffer.from('VMess AEAD KDF')
const BLOCK_SIZE = 64

/** A hash over a list of parts: each KDF level is HMAC built on the level below (PROTOCOL §4.1). */
type NestedHash = (parts: readonly Uint8Array[]) => Buffer

const rootHash: NestedHash = (parts) => {
  const hmac = createHmac('sha256', ROOT_KEY)
  for (const part of parts) hmac.update(part)
  return hmac.digest()
}

function nestHmac(inner: NestedHash, label: Uint8Array): NestedHash {
  // VMess labels are at most 64 bytes; longer ones would be hashed first (RFC 2104).
  const key = label.length > BLOCK_SIZE ? inner([label]) : label
  const ipad = Buffer.alloc(BLOCK_SIZE, 0x36)
  const opad = Buffer.alloc(BLOCK_SIZE, 0x5c)
  for (let i = 0; i < key.length; i++) {
    ipad[i] = ipad[i]! ^ key[i]!
    opad[i] = opad[i]! ^ key[i]!
  }
  return (parts) => inner([opad, inner([ipad, ...parts])])
}

// Hash chains for fixed label paths are cached; only paths with per-connection bytes are built anew.
const chainCache = new Map<string, NestedHash>()
const MAX_CACHED_CHAINS = 64

function hashChain(path: readonly (string | Uint8Array)[]): NestedHash {
  const cacheable = path.every((p) => typeof p === 'string')
  const cacheKey = cacheable ? path.join('\u0000') : ''
  if (cacheable) {
    const cached = chainCache.get(cacheKey)
    if (cached !== undefined) return cached
  }
  let hash = rootHash
  for (const element of path) {
    hash = nestHmac(hash, typeof element === 'string' ? Buffer.from(element) : element)
  }
  if (cacheable && chainCache.size < MAX_CACHED_CHAINS) chainCache.set(cacheKey, hash)
  return hash
}

/** The VMessAEAD KDF: 32 bytes of KDF(key, path…) (PROTOCOL §4.1). Strings are ASCII labels. */
export function kdf(key: Uint8Array, ...path: (string | Uint8Array)[]): Buffer {
  return hashChain(path)([key])
}

/** The first 16 bytes of KDF(key, path…). */
export function kdf16(key: Uint8Array, ...path: (string | Uint8Array)[]): Buffer {
  return kdf(key, ...path).subarray(0, 16)
}

/** The first 12 bytes of KDF(key, path…). */
export function kdf12(key: Uint8Array, ...path: (string | Uint8Array)[]): Buffer {
  return kdf(key, ...path).subarray(0, 12)
}
