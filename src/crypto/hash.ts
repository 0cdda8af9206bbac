import { createHash } from 'node:crypto'
import { crc32 as zlibCrc32 } from 'node:zlib'
import { SHA256_EMPTY, sha256Finish } from './sha256.js'

/** MD5 of the concatenated parts. */
export function md5(...parts: Uint8Array[]): Buffer {
  const hash = createHash('md5')
  for (const part of parts) hash.update(part)
  return hash.digest()
}

/** Inputs up to this size are hashed in JavaScript: a node:crypto Hash object costs more than a few blocks. */
const SHORT_SHA256_INPUT = 256

/** SHA-256 of the concatenated parts. */
export function sha256(...parts: Uint8Array[]): Buffer {
  let length = 0
  for (const part of parts) length += part.length
  // Response keys hash 16 bytes per connection (docs/protocol.md §6.1): one JavaScript compression.
  if (length <= SHORT_SHA256_INPUT) return sha256Finish(SHA256_EMPTY, parts)
  const hash = createHash('sha256')
  for (const part of parts) hash.update(part)
  return hash.digest()
}

const FNV_OFFSET_BASIS = 0x811c9dc5
const FNV_PRIME = 0x01000193

/** FNV-1a/32 of `data[start..end)` as an unsigned integer (docs/protocol.md §0). */
export function fnv1a32(data: Uint8Array, start = 0, end = data.length): number {
  let hash = FNV_OFFSET_BASIS
  for (let i = start; i < end; i++) {
    hash ^= data[i]!
    hash = Math.imul(hash, FNV_PRIME)
  }
  return hash >>> 0
}

/** CRC-32/IEEE (zlib's) of `data`. */
export function crc32(data: Uint8Array): number {
  return zlibCrc32(data) >>> 0
}
