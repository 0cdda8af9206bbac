import { SHA256_BLOCK_LENGTH, SHA256_EMPTY, sha256Absorb, sha256Finish, type Sha256State } from './sha256.js'

const ROOT_KEY = Buffer.from('VMess AEAD KDF')
const IPAD = 0x36
const OPAD = 0x5c

/**
 * A hash over a list of parts, optionally after fixed 64-byte blocks: each KDF level is HMAC built
 * on the level below (PROTOCOL §4.1), and an HMAC's first input block is its key pad. `prefixed`
 * returns the same hash with one more fixed block in front, computed once: a level's pads are
 * absorbed into the SHA-256 states at the bottom, so evaluating a level hashes only its short parts.
 */
interface NestedHash {
  digest(parts: readonly Uint8Array[]): Buffer
  prefixed(block: Uint8Array): NestedHash
}

/** HMAC-SHA256 with the root key: SHA(opad ‖ SHA(ipad ‖ prefix ‖ parts)), resumed from saved states. */
class RootHash implements NestedHash {
  readonly #inner: Sha256State
  readonly #outer: Sha256State

  constructor(inner: Sha256State, outer: Sha256State) {
    this.#inner = inner
    this.#outer = outer
  }

  digest(parts: readonly Uint8Array[]): Buffer {
    return sha256Finish(this.#outer, [sha256Finish(this.#inner, parts)])
  }

  prefixed(block: Uint8Array): NestedHash {
    return new RootHash(sha256Absorb(this.#inner, block), this.#outer)
  }
}

/** HMAC built on `inner` with a key: inner(opad ‖ inner(ipad ‖ parts)), its two pads pre-absorbed. */
class LevelHash implements NestedHash {
  readonly #ipadHash: NestedHash
  readonly #opadHash: NestedHash

  constructor(ipadHash: NestedHash, opadHash: NestedHash) {
    this.#ipadHash = ipadHash
    this.#opadHash = opadHash
  }

  digest(parts: readonly Uint8Array[]): Buffer {
    return this.#opadHash.digest([this.#ipadHash.digest(parts)])
  }

  prefixed(block: Uint8Array): NestedHash {
    // The block goes in front of this level's input, which is the ipad side's (after its pad).
    return new LevelHash(this.#ipadHash.prefixed(block), this.#opadHash)
  }
}

function pad(key: Uint8Array, value: number): Buffer {
  const block = Buffer.alloc(SHA256_BLOCK_LENGTH, value)
  for (let i = 0; i < key.length; i++) block[i] = block[i]! ^ key[i]!
  return block
}

function nest(inner: NestedHash, label: Uint8Array): NestedHash {
  // VMess labels are at most 64 bytes; longer ones would be hashed first (RFC 2104).
  const key = label.length > SHA256_BLOCK_LENGTH ? inner.digest([label]) : label
  return new LevelHash(inner.prefixed(pad(key, IPAD)), inner.prefixed(pad(key, OPAD)))
}

const rootHash: NestedHash = new RootHash(
  sha256Absorb(SHA256_EMPTY, pad(ROOT_KEY, IPAD)),
  sha256Absorb(SHA256_EMPTY, pad(ROOT_KEY, OPAD)),
)

// Hash chains for fixed label paths are cached; per-connection bytes (AuthID, nonce) are nested anew.
const chainCache = new Map<string, NestedHash>()
const MAX_CACHED_CHAINS = 64

function hashChain(path: readonly (string | Uint8Array)[]): NestedHash {
  let labels = 0
  while (labels < path.length && typeof path[labels] === 'string') labels++
  const cacheKey = path.slice(0, labels).join('\u0000')
  let hash = chainCache.get(cacheKey)
  if (hash === undefined) {
    hash = rootHash
    for (let i = 0; i < labels; i++) hash = nest(hash, Buffer.from(path[i] as string))
    if (chainCache.size < MAX_CACHED_CHAINS) chainCache.set(cacheKey, hash)
  }
  for (let i = labels; i < path.length; i++) {
    const element = path[i]!
    hash = nest(hash, typeof element === 'string' ? Buffer.from(element) : element)
  }
  return hash
}

/** The VMessAEAD KDF: 32 bytes of KDF(key, path…) (PROTOCOL §4.1). Strings are ASCII labels. */
export function kdf(key: Uint8Array, ...path: (string | Uint8Array)[]): Buffer {
  return hashChain(path).digest([key])
}

/** The first 16 bytes of KDF(key, path…). */
export function kdf16(key: Uint8Array, ...path: (string | Uint8Array)[]): Buffer {
  return kdf(key, ...path).subarray(0, 16)
}

/** The first 12 bytes of KDF(key, path…). */
export function kdf12(key: Uint8Array, ...path: (string | Uint8Array)[]): Buffer {
  return kdf(key, ...path).subarray(0, 12)
}
