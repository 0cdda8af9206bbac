import {
  SHA256_BLOCK_LENGTH,
  SHA256_DIGEST_LENGTH,
  SHA256_INITIAL_WORDS,
  SHA256_STATE_WORDS,
  sha256Compress,
  sha256FinishDigest,
  sha256FinishWords,
  sha256LoadBlock,
  writeSha256Words,
} from './sha256.js'

const ROOT_KEY = Buffer.from('VMess AEAD KDF')
const IPAD = 0x36
const OPAD = 0x5c
const W = SHA256_STATE_WORDS

/*
 * The KDF (docs/protocol.md §4.1) is HMAC-SHA256 keyed "VMess AEAD KDF" (level 0), then one HMAC level per
 * path element, each using the level below as its hash. Expanded, every SHA-256 it runs starts with
 * fixed 64-byte key pads, so a chain of L levels is kept as SHA-256 states with those pads absorbed:
 *   state 0      root ipad ‖ ipad 1 ‖ … ‖ ipad L  (the innermost hash, which reads the key)
 *   state k      root ipad ‖ ipad 1 ‖ … ‖ ipad k-1 ‖ opad k   (level k's outer hash), k = 1…L
 * and the root opad state is shared. Level k's state covers k + 1 blocks, state 0 covers L + 1.
 * H_k(x) = H_(k-1)(opad k ‖ H_(k-1)(ipad k ‖ x)), so evaluating takes 2^(L+1) compressions from
 * these states, each turning one 32-byte digest into the next in place: no allocation per call.
 */

function padBlock(key: Uint8Array, value: number): void {
  for (let i = 0; i < SHA256_BLOCK_LENGTH; i++) padScratch[i] = i < key.length ? key[i]! ^ value : value
  sha256LoadBlock(padScratch, 0)
}
const padScratch = new Uint8Array(SHA256_BLOCK_LENGTH)

const ROOT_OUTER = new Int32Array(W)
padBlock(ROOT_KEY, OPAD)
sha256Compress(SHA256_INITIAL_WORDS, 0, ROOT_OUTER, 0)
/** The level-0 chain: state 0 is the root ipad. */
const ROOT_STATES = new Int32Array(W)
padBlock(ROOT_KEY, IPAD)
sha256Compress(SHA256_INITIAL_WORDS, 0, ROOT_STATES, 0)

/** The running digest of an evaluation; consumed within a call. */
const digest = new Int32Array(W)

/** H_k of the digest, in place; `left` is the state of its innermost hash, covering `leftBlocks` blocks. */
function applyLevel(states: Int32Array, k: number, leftAt: number, leftBlocks: number): void {
  if (k === 0) {
    sha256FinishDigest(states, leftAt, leftBlocks * SHA256_BLOCK_LENGTH, digest)
    sha256FinishDigest(ROOT_OUTER, 0, SHA256_BLOCK_LENGTH, digest)
    return
  }
  applyLevel(states, k - 1, leftAt, leftBlocks)
  applyLevel(states, k - 1, k * W, k + 1)
}

/** H_levels(message) of a chain into `digest`. */
function evaluate(states: Int32Array, levels: number, message: Uint8Array): void {
  // The innermost hash reads the message itself; every later one a digest.
  messageParts[0] = message
  sha256FinishWords(states, 0, (levels + 1) * SHA256_BLOCK_LENGTH, messageParts, digest, 0)
  messageParts[0] = EMPTY
  sha256FinishDigest(ROOT_OUTER, 0, SHA256_BLOCK_LENGTH, digest)
  for (let k = 1; k <= levels; k++) applyLevel(states, k - 1, k * W, k + 1)
}
const EMPTY = new Uint8Array(0)
const messageParts: Uint8Array[] = [EMPTY]

/** Adds level `levels + 1` keyed `key` to the chain in `states` (room for it included), in place. */
function nestInPlace(states: Int32Array, levels: number, key: Uint8Array): void {
  let padKey = key
  if (key.length > SHA256_BLOCK_LENGTH) {
    // VMess labels are at most 64 bytes; longer keys are hashed first (RFC 2104), with this level's hash.
    evaluate(states, levels, key)
    padKey = longKey
    writeSha256Words(digest, 0, longKey, 0)
  }
  padBlock(padKey, OPAD)
  sha256Compress(states, 0, states, (levels + 1) * W)
  padBlock(padKey, IPAD)
  sha256Compress(states, 0, states, 0)
}
const longKey = new Uint8Array(SHA256_DIGEST_LENGTH)

/** A cached chain for a run of leading labels, and the chains of the label runs that extend it. */
interface ChainNode {
  readonly states: Int32Array
  readonly levels: number
  readonly next: Map<string, ChainNode>
}

const rootNode: ChainNode = { states: ROOT_STATES, levels: 0, next: new Map() }
// Chains for fixed label paths are cached; per-connection bytes (AuthID, nonce) are nested anew.
const MAX_CACHED_CHAINS = 64
let cachedChains = 0

/** The chain of the leading string labels of `path`, cached; the count of labels it covers. */
function labelChain(path: readonly (string | Uint8Array)[]): ChainNode {
  let node = rootNode
  for (const element of path) {
    if (typeof element !== 'string') break
    let child = node.next.get(element)
    if (child === undefined) {
      const states = new Int32Array((node.levels + 2) * W)
      states.set(node.states)
      nestInPlace(states, node.levels, Buffer.from(element))
      child = { states, levels: node.levels + 1, next: new Map() }
      if (cachedChains < MAX_CACHED_CHAINS) {
        node.next.set(element, child)
        cachedChains++
      }
    }
    node = child
  }
  return node
}

// The chain of one call once its per-connection elements are nested; consumed within the call.
let scratch = new Int32Array(8 * W)

/** The VMessAEAD KDF: 32 bytes of KDF(key, path…) (docs/protocol.md §4.1). Strings are ASCII labels. */
export function kdf(key: Uint8Array, ...path: (string | Uint8Array)[]): Buffer {
  const out = Buffer.allocUnsafe(SHA256_DIGEST_LENGTH)
  kdfInto(key, path, out)
  return out
}

function kdfInto(key: Uint8Array, path: readonly (string | Uint8Array)[], out: Buffer): void {
  const chain = labelChain(path)
  let states = chain.states
  let levels = chain.levels
  if (levels < path.length) {
    if (scratch.length < (path.length + 1) * W) scratch = new Int32Array((path.length + 1) * W)
    scratch.set(states)
    states = scratch
    for (; levels < path.length; levels++) {
      const element = path[levels]!
      nestInPlace(states, levels, typeof element === 'string' ? Buffer.from(element) : element)
    }
  }
  evaluate(states, levels, key)
  writeSha256Words(digest, 0, out, 0)
}

/** The first 16 bytes of KDF(key, path…). */
export function kdf16(key: Uint8Array, ...path: (string | Uint8Array)[]): Buffer {
  return kdf(key, ...path).subarray(0, 16)
}

/** The first 12 bytes of KDF(key, path…). */
export function kdf12(key: Uint8Array, ...path: (string | Uint8Array)[]): Buffer {
  return kdf(key, ...path).subarray(0, 12)
}
