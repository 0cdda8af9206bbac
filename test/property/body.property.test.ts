import assert from 'node:assert/strict'
import { createDecipheriv } from 'node:crypto'
import { test } from 'node:test'
import fc from 'fast-check'
import { ProtocolError } from '../../src/errors.js'
import type { BodyParams, Transfer } from '../../src/protocol/body-framing.js'
import { ChunkOpener } from '../../src/protocol/chunk-opener.js'
import { ChunkSealer } from '../../src/protocol/chunk-sealer.js'
import { feed, splitAt } from '../helpers/feed.js'

const key = Buffer.from('00112233445566778899aabbccddeeff', 'hex')
const iv = Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex')
const responseKey = Buffer.from('ffeeddccbbaa99887766554433221100', 'hex')
const responseIv = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf', 'hex')

interface Combo {
  security: number
  options: number
  transfer: Transfer
  response: boolean
}

const S = 0x01
const M = 0x04
const P = 0x08
const A = 0x10

// Every (security × options × transfer) a peer can frame; raw bodies (none and cfb without S) are stream only.
const combos: Combo[] = []
for (const security of [1, 3, 4, 5]) {
  const aead = security === 3 || security === 4
  const optionSets = [0, S, S | M, S | M | P, ...(aead ? [M, M | P, S | A, S | M | A, S | M | P | A] : [])]
  for (const options of optionSets) {
    for (const transfer of ['stream', 'packet'] as const) {
      if (transfer === 'packet' && !aead && (options & S) === 0) continue
      for (const response of [false, true]) combos.push({ security, options, transfer, response })
    }
  }
}

function paramsOf(combo: Combo): BodyParams {
  return {
    security: combo.security,
    options: combo.options,
    transfer: combo.transfer,
    key: combo.response ? responseKey : key,
    iv: combo.response ? responseIv : iv,
    requestKey: key,
    requestIv: iv,
  }
}

const comboArb = fc.constantFrom(...combos)
const bytesArb = (maxLength: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ maxLength }).map((bytes) => Buffer.from(bytes))
const cutsArb = fc.array(fc.nat({ max: 6000 }), { maxLength: 12 })

/** Seals `writes` (plus the end) as one wire buffer. */
function sealWire(combo: Combo, writes: readonly Buffer[], maxChunkLength?: number): Buffer {
  const sealer = new ChunkSealer(
    paramsOf(combo),
    maxChunkLength === undefined || combo.transfer === 'packet' ? {} : { maxChunkLength },
  )
  return Buffer.concat([...writes.map((w) => sealer.seal(w)), sealer.end()])
}

/** gcm and chacha always authenticate; cfb only in chunks (its FNV checksum); none never. */
function authenticated(combo: Combo): boolean {
  return combo.security === 3 || combo.security === 4 || (combo.security === 1 && (combo.options & S) !== 0)
}

function hasEndMarker(combo: Combo): boolean {
  return (combo.options & S) !== 0
}

/** Feeds pieces and returns the payloads, or the error; anything but a ProtocolError fails the test. */
function openOrProtocolError(combo: Combo, pieces: readonly Buffer[]): Buffer[] | ProtocolError {
  const opener = new ChunkOpener(paramsOf(combo))
  try {
    const payloads: Buffer[] = []
    for (const piece of pieces) {
      payloads.push(...opener.push(piece))
      // Memory stays bounded: at most one chunk and its length field are buffered.
      assert.ok(opener.buffered <= 65535 + 18, `buffered ${opener.buffered}`)
    }
    return payloads
  } catch (error) {
    if (error instanceof ProtocolError) return error
    throw error
  }
}

test('ChunkSealer and ChunkOpener round-trip every framing at random splits', () => {
  fc.assert(
    fc.property(
      comboArb,
      fc.array(bytesArb(1900), { maxLength: 6 }),
      fc.option(fc.integer({ min: 99, max: 3000 }), { nil: undefined }),
      cutsArb,
      (combo, writes, maxChunkLength, cuts) => {
        const wire = sealWire(combo, writes, maxChunkLength)
        const opener = new ChunkOpener(paramsOf(combo))
        const payloads = feed(splitAt(wire, cuts), (bytes) => opener.push(bytes))
        for (const payload of payloads) assert.ok(payload.length > 0)
        if (combo.transfer === 'packet') {
          // One chunk per datagram; empty datagrams are skipped (docs/protocol.md §8).
          assert.deepEqual(
            payloads,
            writes.filter((w) => w.length > 0),
          )
        } else {
          assert.deepEqual(Buffer.concat(payloads), Buffer.concat(writes))
        }
        assert.equal(opener.ended, hasEndMarker(combo))
        assert.equal(opener.buffered, 0)
      },
    ),
    { numRuns: 1000 },
  )
})

test('ChunkOpener throws only ProtocolError on random bytes', () => {
  fc.assert(
    fc.property(comboArb, bytesArb(3000), cutsArb, (combo, bytes, cuts) => {
      openOrProtocolError(combo, splitAt(bytes, cuts))
    }),
    { numRuns: 3000 },
  )
})

test('ChunkOpener throws only ProtocolError on a sealed body with a flipped bit', () => {
  fc.assert(
    fc.property(
      comboArb,
      fc.array(bytesArb(600), { minLength: 1, maxLength: 4 }),
      fc.nat(),
      fc.nat({ max: 7 }),
      cutsArb,
      (combo, writes, at, bit, cuts) => {
        const wire = Buffer.from(sealWire(combo, writes))
        fc.pre(wire.length > 0)
        const byte = at % wire.length
        wire.writeUInt8(wire.readUInt8(byte) ^ (1 << bit), byte)
        const result = openOrProtocolError(combo, splitAt(wire, cuts))
        // Authenticated framings never release a tampered payload; a flip may only hit padding or the end chunk.
        if (authenticated(combo) && !(result instanceof ProtocolError)) {
          const opened = Buffer.concat(result)
          const written = Buffer.concat(writes)
          assert.ok(written.subarray(0, opened.length).equals(opened), 'tampered plaintext released')
        }
      },
    ),
    { numRuns: 1000 },
  )
})

test('ChunkSealer and ChunkOpener wrap both counters past 65,536 chunks', () => {
  // SMPA with a 1-byte payload per chunk: 18-byte length, 16-byte tag, 64 reserved for padding.
  const combo: Combo = { security: 3, options: S | M | P | A, transfer: 'stream', response: true }
  const plaintext = Buffer.alloc(65_600)
  for (let i = 0; i < plaintext.length; i++) plaintext.writeUInt8(i & 0xff, i)
  const sealer = new ChunkSealer(paramsOf(combo), { maxChunkLength: 18 + 16 + 64 + 1 })
  assert.equal(sealer.maxPayload, 1)
  const wire = Buffer.concat([sealer.seal(plaintext), sealer.end()])
  const opener = new ChunkOpener(paramsOf(combo))
  const payloads = opener.push(wire)
  assert.equal(payloads.length, 65_600)
  assert.deepEqual(Buffer.concat(payloads), plaintext)
  assert.equal(opener.ended, true)
})

test('ChunkSealer uses nonce counter 0 again for chunk 65,536', () => {
  const combo: Combo = { security: 3, options: S, transfer: 'stream', response: false }
  const chunkLength = 2 + 1 + 16
  const sealer = new ChunkSealer(paramsOf(combo), { maxChunkLength: chunkLength })
  const wire = sealer.seal(Buffer.alloc(65_537, 0x42))
  const wrapped = wire.subarray(65_536 * chunkLength, 65_537 * chunkLength)
  // Independently: BE16(65536 mod 65536) ‖ IV[2..12) is the nonce of chunk 0 (docs/protocol.md §7.1).
  const nonce = Buffer.concat([Buffer.from([0, 0]), iv.subarray(2, 12)])
  const decipher = createDecipheriv('aes-128-gcm', key, nonce, { authTagLength: 16 })
  decipher.setAuthTag(wrapped.subarray(3))
  assert.deepEqual(decipher.update(wrapped.subarray(2, 3)), Buffer.from([0x42]))
  decipher.final()
  assert.deepEqual(wrapped, wire.subarray(0, chunkLength))
})
