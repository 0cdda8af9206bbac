import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import fc from 'fast-check'
import { kdf, sha256 } from '../../src/crypto/index.js'

type Hash = (data: Buffer) => Buffer

/** HMAC over any hash function with a 64-byte block, as RFC 2104 and Go's crypto/hmac write it. */
function hmacOver(hash: Hash, key: Buffer): Hash {
  const short = key.length > 64 ? hash(key) : key
  const pad = (value: number): Buffer => {
    const block = Buffer.alloc(64, value)
    for (let i = 0; i < short.length; i++) block[i] = block[i]! ^ short[i]!
    return block
  }
  const ipad = pad(0x36)
  const opad = pad(0x5c)
  return (data) => hash(Buffer.concat([opad, hash(Buffer.concat([ipad, data]))]))
}

/** V2Ray's KDF as its hMacCreator builds it: one HMAC per path element over the one below. */
function referenceKdf(key: Buffer, path: readonly (string | Buffer)[]): Buffer {
  let hash: Hash = (data) => createHash('sha256').update(data).digest()
  hash = hmacOver(hash, Buffer.from('VMess AEAD KDF'))
  for (const element of path) hash = hmacOver(hash, Buffer.from(element))
  return hash(key)
}

const element = fc.oneof(
  fc.constantFrom('VMess Header AEAD Key', 'AEAD Resp Header IV', 'AES Auth ID Encryption'),
  fc.string({ maxLength: 80 }).map((s) => s.replace(/[^ -~]/g, 'x')),
  fc.uint8Array({ maxLength: 130 }).map((bytes) => Buffer.from(bytes)),
)

test('kdf equals the nested-HMAC reference for any key and path (long keys and labels included)', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
      fc.array(element, { maxLength: 5 }),
      (key, path) => {
        assert.equal(kdf(key, ...path).toString('hex'), referenceKdf(key, path).toString('hex'))
      },
    ),
    { numRuns: 300 },
  )
})

test('sha256 equals node:crypto for inputs across block boundaries', () => {
  for (let length = 0; length <= 300; length++) {
    const data = Buffer.alloc(length, length & 0xff)
    const parts = [data.subarray(0, length >> 2), data.subarray(length >> 2)]
    assert.equal(
      sha256(...parts).toString('hex'),
      createHash('sha256').update(data).digest('hex'),
      `${length}`,
    )
  }
})
