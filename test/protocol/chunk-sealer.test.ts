import assert from 'node:assert/strict'
import { createCipheriv } from 'node:crypto'
import { test } from 'node:test'
import type { RandomSource } from '../../src/crypto/index.js'
import { ProtocolError } from '../../src/errors.js'
import type { BodyParams, Transfer } from '../../src/protocol/body-framing.js'
import { ChunkSealer, maxPayloadFor } from '../../src/protocol/chunk-sealer.js'
import { hex, loadSessions, type SessionCase } from '../helpers/vectors.js'

type Session = SessionCase

const sessions = loadSessions()

function transferOf(session: Session): Transfer {
  return session.inputs.command === 0x02 ? 'packet' : 'stream'
}

/** Hands out the vector's padding bytes in order; a chunk with p = 0 asks for none. */
function paddingSource(padding: readonly string[]): RandomSource {
  const queue = padding.filter((p) => p !== '').map(hex)
  return (length) => {
    const next = queue.shift()
    assert.ok(next !== undefined, `padding of ${length} bytes asked for, none left`)
    assert.equal(length, next.length)
    return next
  }
}

function requestParams(session: Session): BodyParams {
  const key = hex(session.inputs.body_key)
  const iv = hex(session.inputs.body_iv)
  return {
    security: session.inputs.security,
    options: session.inputs.options,
    transfer: transferOf(session),
    key,
    iv,
    requestKey: key,
    requestIv: iv,
  }
}

function responseParams(session: Session): BodyParams {
  const params: BodyParams = {
    ...requestParams(session),
    key: hex(session.expected.response_key),
    iv: hex(session.expected.response_iv),
  }
  if (session.inputs.security === 1 && session.inputs.header === 'legacy') {
    // A legacy response header and a cfb body share one CFB stream (docs/protocol.md §6.3).
    const cipher = createCipheriv('aes-128-cfb', params.key, params.iv)
    const header = Buffer.from([session.inputs.response_v, session.inputs.response_option, 0, 0])
    assert.equal(cipher.update(header).toString('hex'), session.expected.response_header_wire)
    params.cfb = cipher
  }
  return params
}

function sealAll(sealer: ChunkSealer, payloads: readonly string[]): { chunks: string[]; end: string | null } {
  const chunks = payloads.map((p) => sealer.seal(hex(p)).toString('hex'))
  const end = sealer.end()
  return { chunks, end: end.length === 0 ? null : end.toString('hex') }
}

for (const session of sessions) {
  test(`ChunkSealer reproduces the request body of ${session.name}`, () => {
    const sealer = new ChunkSealer(requestParams(session), {
      random: paddingSource(session.inputs.request_padding),
    })
    assert.deepEqual(sealAll(sealer, session.inputs.request_payloads), {
      chunks: session.expected.request_chunks,
      end: session.expected.request_end_chunk,
    })
  })

  test(`ChunkSealer reproduces the response body of ${session.name}`, () => {
    const sealer = new ChunkSealer(responseParams(session), {
      random: paddingSource(session.inputs.response_padding),
    })
    assert.deepEqual(sealAll(sealer, session.inputs.response_payloads), {
      chunks: session.expected.response_chunks,
      end: session.expected.response_end_chunk,
    })
  })
}

// docs/protocol.md §7.6 known answers: gcm, options S and A, no M or P.
const authLength = {
  key: hex('fa4cb0f15487faa3e98ee80fa63ca631'),
  iv: hex('fd02ab88f13b5f9dffd33c3bf2c9a943'),
  responseKey: hex('8311e929ca30101858c88920c78dbb10'),
  responseIv: hex('9fcf4dad4f40b236eed7931d47e5b475'),
}

test('ChunkSealer seals authenticated lengths with the request key in both directions', () => {
  const base = {
    security: 3,
    options: 0x11,
    transfer: 'stream' as const,
    requestKey: authLength.key,
    requestIv: authLength.iv,
  }
  const request = new ChunkSealer({ ...base, key: authLength.key, iv: authLength.iv })
  assert.equal(
    request.seal(Buffer.from('hello')).toString('hex'),
    '3ce37762512e583fccf5e04fa39e2398260a' + '4f72623439c636fff80af1cbac87922fbbe49a1324',
  )
  assert.equal(
    request.end().toString('hex'),
    'e489ce846a026ff9be1c58904288e9847c38' + 'dff7e6c0f69be91fae53fcc59052444a',
  )
  const response = new ChunkSealer({ ...base, key: authLength.responseKey, iv: authLength.responseIv })
  assert.equal(
    response.seal(Buffer.from('hello')).toString('hex'),
    '3ce37762512e583fccf5e04fa39e2398260a' + '9d1fd4a14693e8e0addb5d34d41c24b060b9bcd75f',
  )
})

const key = hex('000102030405060708090a0b0c0d0e0f')
const iv = hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff')
const paramsOf = (security: number, options: number, transfer: Transfer): BodyParams => ({
  security,
  options,
  transfer,
  key,
  iv,
  requestKey: key,
  requestIv: iv,
})

test('maxPayloadFor matches the per-chunk payload limits of docs/protocol.md §7.3 and §8', () => {
  assert.equal(maxPayloadFor(paramsOf(3, 0x0d, 'packet'), 2048), 1966)
  assert.equal(maxPayloadFor(paramsOf(4, 0x05, 'packet'), 2048), 2030)
  assert.equal(maxPayloadFor(paramsOf(1, 0x01, 'packet'), 2048), 2042)
  assert.equal(maxPayloadFor(paramsOf(5, 0x01, 'packet'), 2048), 2046)
  assert.equal(maxPayloadFor(paramsOf(5, 0x0d, 'packet'), 2048), 1982)
  assert.equal(maxPayloadFor(paramsOf(3, 0x1d, 'packet'), 2048), 1950)
  assert.equal(maxPayloadFor(paramsOf(5, 0x0d, 'stream'), 16384), 16382)
  assert.equal(maxPayloadFor(paramsOf(5, 0x00, 'stream'), 16384), Number.POSITIVE_INFINITY)
})

test('ChunkSealer uses 16 KiB chunks for streams and 2 KiB for packets by default', () => {
  assert.equal(new ChunkSealer(paramsOf(3, 0x0d, 'stream')).maxPayload, 16384 - 2 - 16 - 64)
  assert.equal(new ChunkSealer(paramsOf(3, 0x0d, 'packet')).maxPayload, 1966)
})

test('ChunkSealer splits a stream write into chunks within maxChunkLength', () => {
  const sealer = new ChunkSealer(paramsOf(3, 0x01, 'stream'), { maxChunkLength: 100 })
  assert.equal(sealer.maxPayload, 82)
  const wire = sealer.seal(Buffer.alloc(200, 7))
  // 82 + 82 + 36 payload bytes, each with a 2-byte length and a 16-byte tag.
  assert.equal(wire.length, 200 + 3 * 18)
  assert.equal(wire.readUInt16BE(0), 98)
  assert.equal(wire.readUInt16BE(100), 98)
  assert.equal(wire.readUInt16BE(200), 52)
})

test('ChunkSealer refuses a datagram larger than one chunk and skips an empty one', () => {
  const sealer = new ChunkSealer(paramsOf(3, 0x0d, 'packet'))
  assert.throws(
    () => sealer.seal(Buffer.alloc(1967)),
    (error) => error instanceof ProtocolError && error.code === 'DATAGRAM_TOO_LARGE',
  )
  assert.equal(sealer.seal(Buffer.alloc(0)).length, 0)
  assert.ok(sealer.seal(Buffer.alloc(1966)).length <= 2048)
})

test('ChunkSealer passes raw bodies through and writes no end chunk without S', () => {
  const none = new ChunkSealer(paramsOf(5, 0x00, 'stream'))
  assert.equal(none.seal(Buffer.from('abc')).toString(), 'abc')
  assert.equal(none.end().length, 0)
  const cfb = new ChunkSealer(paramsOf(1, 0x00, 'stream'))
  const expected = createCipheriv('aes-128-cfb', key, iv).update(Buffer.from('abcdef'))
  assert.deepEqual(Buffer.concat([cfb.seal(Buffer.from('abc')), cfb.seal(Buffer.from('def'))]), expected)
  assert.equal(cfb.end().length, 0)
})

test('ChunkSealer writes the end chunk once and refuses to seal after it', () => {
  const sealer = new ChunkSealer(paramsOf(4, 0x05, 'stream'))
  assert.equal(sealer.end().length, 2 + 16)
  assert.equal(sealer.end().length, 0)
  assert.throws(
    () => sealer.seal(Buffer.from('late')),
    (error) => error instanceof ProtocolError && error.code === 'BODY_ENDED',
  )
})

test('ChunkSealer refuses P without M, unknown securities and unchunked packets', () => {
  const refuses = (params: BodyParams, code: string): void => {
    assert.throws(
      () => new ChunkSealer(params),
      (error) => error instanceof ProtocolError && error.code === code,
    )
  }
  refuses(paramsOf(3, 0x09, 'stream'), 'PADDING_WITHOUT_MASK')
  refuses(paramsOf(5, 0x08, 'stream'), 'PADDING_WITHOUT_MASK')
  refuses(paramsOf(2, 0x01, 'stream'), 'SECURITY_UNSUPPORTED')
  refuses(paramsOf(6, 0x01, 'stream'), 'SECURITY_UNSUPPORTED')
  refuses(paramsOf(5, 0x00, 'packet'), 'FRAMING_UNSUPPORTED')
  refuses(paramsOf(1, 0x04, 'packet'), 'FRAMING_UNSUPPORTED')
})

test('ChunkSealer refuses a maxChunkLength with no room for a payload', () => {
  assert.throws(() => new ChunkSealer(paramsOf(3, 0x0d, 'stream'), { maxChunkLength: 82 }), RangeError)
  assert.throws(() => new ChunkSealer(paramsOf(3, 0x0d, 'stream'), { maxChunkLength: 70000 }), RangeError)
})
