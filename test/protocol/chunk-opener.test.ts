import assert from 'node:assert/strict'
import { createCipheriv, createDecipheriv } from 'node:crypto'
import { test } from 'node:test'
import { ProtocolError } from '../../src/errors.js'
import type { BodyParams, Transfer } from '../../src/protocol/body-framing.js'
import { ChunkOpener } from '../../src/protocol/chunk-opener.js'
import { ChunkSealer } from '../../src/protocol/chunk-sealer.js'
import { bytewise, feed, splits } from '../helpers/feed.js'
import { hex, loadSessions, type SessionCase } from '../helpers/vectors.js'

type Session = SessionCase

const sessions = loadSessions()

/** One direction of a session: how to build its opener, its wire bytes and what must come out. */
interface Direction {
  label: string
  opener: () => ChunkOpener
  wire: Buffer
  payloads: string[]
  ended: boolean
  chunked: boolean
  packet: boolean
}

function directionsOf(session: Session): Direction[] {
  const { inputs, expected } = session
  const transfer: Transfer = inputs.command === 0x02 ? 'packet' : 'stream'
  const requestKey = hex(inputs.body_key)
  const requestIv = hex(inputs.body_iv)
  const base = { security: inputs.security, options: inputs.options, transfer, requestKey, requestIv }
  const chunked = expected.request_end_chunk !== null || inputs.security === 3 || inputs.security === 4
  const wireOf = (chunks: string[], end: string | null): Buffer =>
    Buffer.concat([...chunks, ...(end === null ? [] : [end])].map(hex))
  const responseParams = (): BodyParams => {
    const params: BodyParams = { ...base, key: hex(expected.response_key), iv: hex(expected.response_iv) }
    if (inputs.security === 1 && inputs.header === 'legacy') {
      // The body continues the legacy response header's CFB stream (PROTOCOL §6.3).
      const decipher = createDecipheriv('aes-128-cfb', params.key, params.iv)
      const header = decipher.update(hex(expected.response_header_wire))
      assert.deepEqual([...header], [inputs.response_v, inputs.response_option, 0, 0])
      params.cfb = decipher
    }
    return params
  }
  return [
    {
      label: 'request',
      opener: () => new ChunkOpener({ ...base, key: requestKey, iv: requestIv }),
      wire: wireOf(expected.request_chunks, expected.request_end_chunk),
      payloads: inputs.request_payloads,
      ended: expected.request_end_chunk !== null,
      chunked,
      packet: transfer === 'packet',
    },
    {
      label: 'response',
      opener: () => new ChunkOpener(responseParams()),
      wire: wireOf(expected.response_chunks, expected.response_end_chunk),
      payloads: inputs.response_payloads,
      ended: expected.response_end_chunk !== null,
      chunked,
      packet: transfer === 'packet',
    },
  ]
}

/**
 * Feeds the pieces to a fresh opener. Packets must come back one datagram each, and so must stream
 * chunks that arrive whole; a stream chunk split across pushes may come back in pieces.
 */
function assertOpens(direction: Direction, pieces: readonly Buffer[], note: string): void {
  const opener = direction.opener()
  // Copies: the opener may decrypt what it is given in place, and the vector serves every test.
  const payloads = feed(
    pieces.map((piece) => Buffer.from(piece)),
    (bytes) => opener.push(bytes),
  )
  for (const payload of payloads) assert.ok(payload.length > 0, `${note}: empty payload`)
  if (direction.chunked && (direction.packet || pieces.length === 1)) {
    assert.deepEqual(
      payloads.map((p) => p.toString('hex')),
      direction.payloads,
      note,
    )
  } else {
    // Raw bodies keep no boundaries, and stream pieces need not match chunks: compare the bytes.
    assert.equal(Buffer.concat(payloads).toString('hex'), direction.payloads.join(''), note)
  }
  assert.equal(opener.ended, direction.ended, note)
  assert.equal(opener.buffered, 0, note)
}

for (const session of sessions) {
  for (const direction of directionsOf(session)) {
    test(`ChunkOpener opens the ${direction.label} body of ${session.name} in one push`, () => {
      assertOpens(direction, [direction.wire], 'one push')
    })

    test(`ChunkOpener opens the ${direction.label} body of ${session.name} split at every byte boundary`, () => {
      for (const pieces of splits(direction.wire))
        assertOpens(direction, pieces, `cut at ${pieces[0]?.length}`)
    })

    test(`ChunkOpener opens the ${direction.label} body of ${session.name} one byte at a time`, () => {
      assertOpens(direction, bytewise(direction.wire), 'bytewise')
    })
  }
}

const authLength = {
  key: hex('fa4cb0f15487faa3e98ee80fa63ca631'),
  iv: hex('fd02ab88f13b5f9dffd33c3bf2c9a943'),
  responseKey: hex('8311e929ca30101858c88920c78dbb10'),
  responseIv: hex('9fcf4dad4f40b236eed7931d47e5b475'),
}

test('ChunkOpener opens the authenticated-length known answers of PROTOCOL §7.6', () => {
  const base = {
    security: 3,
    options: 0x11,
    transfer: 'stream' as const,
    requestKey: authLength.key,
    requestIv: authLength.iv,
  }
  const request = new ChunkOpener({ ...base, key: authLength.key, iv: authLength.iv })
  const requestWire = hex(
    '3ce37762512e583fccf5e04fa39e2398260a4f72623439c636fff80af1cbac87922fbbe49a1324' +
      'e489ce846a026ff9be1c58904288e9847c38dff7e6c0f69be91fae53fcc59052444a',
  )
  assert.deepEqual(Buffer.concat(feed(bytewise(requestWire), (b) => request.push(b))), Buffer.from('hello'))
  assert.equal(request.ended, true)
  const response = new ChunkOpener({ ...base, key: authLength.responseKey, iv: authLength.responseIv })
  const responseWire = hex('3ce37762512e583fccf5e04fa39e2398260a9d1fd4a14693e8e0addb5d34d41c24b060b9bcd75f')
  assert.deepEqual(response.push(responseWire), [Buffer.from('hello')])
  assert.equal(response.ended, false)
})

const key = hex('000102030405060708090a0b0c0d0e0f')
const iv = hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff')
const paramsOf = (security: number, options: number, transfer: Transfer = 'stream'): BodyParams => ({
  security,
  options,
  transfer,
  key,
  iv,
  requestKey: key,
  requestIv: iv,
})

function assertProtocolError(run: () => unknown, code: string): void {
  assert.throws(run, (error) => error instanceof ProtocolError && error.code === code)
}

function flipBit(wire: Buffer, byte: number): Buffer {
  const copy = Buffer.from(wire)
  copy.writeUInt8(copy.readUInt8(byte) ^ 0x01, byte)
  return copy
}

for (const [security, options] of [
  [3, 0x0d],
  [4, 0x0d],
  [3, 0x1d],
  [1, 0x01],
] as const) {
  test(`ChunkOpener refuses a flipped payload bit (security ${security}, options 0x${options.toString(16)})`, () => {
    const sealer = new ChunkSealer(paramsOf(security, options))
    const lengthField = options & 0x10 ? 18 : 2
    const first = sealer.seal(Buffer.from('first chunk'))
    const wire = Buffer.concat([first, sealer.seal(Buffer.from('second chunk'))])
    // Flip a bit inside the first chunk's payload, after the length field (and the cfb checksum).
    assertProtocolError(
      () => new ChunkOpener(paramsOf(security, options)).push(flipBit(wire, lengthField + 5)),
      'CHUNK_AUTH_FAILED',
    )
    // A bad second chunk is never skipped, even after a good one.
    const opener = new ChunkOpener(paramsOf(security, options))
    assert.deepEqual(opener.push(first), [Buffer.from('first chunk')])
    assertProtocolError(
      () => opener.push(flipBit(wire, first.length + lengthField + 5).subarray(first.length)),
      'CHUNK_AUTH_FAILED',
    )
  })
}

test('ChunkOpener refuses a flipped bit in an authenticated length', () => {
  const wire = new ChunkSealer(paramsOf(4, 0x11)).seal(Buffer.from('payload'))
  assertProtocolError(() => new ChunkOpener(paramsOf(4, 0x11)).push(flipBit(wire, 0)), 'CHUNK_AUTH_FAILED')
  assertProtocolError(() => new ChunkOpener(paramsOf(4, 0x11)).push(flipBit(wire, 17)), 'CHUNK_AUTH_FAILED')
})

test('ChunkOpener refuses a length shorter than tag and padding', () => {
  assertProtocolError(() => new ChunkOpener(paramsOf(3, 0x01)).push(hex('000f')), 'CHUNK_INVALID')
  // cfb: L = 3 is shorter than the 4-byte checksum; the length field is inside the CFB stream.
  const cfbWire = createCipheriv('aes-128-cfb', key, iv).update(hex('0003'))
  assertProtocolError(() => new ChunkOpener(paramsOf(1, 0x01)).push(cfbWire), 'CHUNK_INVALID')
})

test('ChunkOpener refuses a chunk longer than maxChunkLength', () => {
  const wire = new ChunkSealer(paramsOf(3, 0x05)).seal(Buffer.alloc(200))
  assertProtocolError(
    () => new ChunkOpener(paramsOf(3, 0x05), { maxChunkLength: 200 }).push(wire),
    'CHUNK_TOO_LONG',
  )
  assert.equal(new ChunkOpener(paramsOf(3, 0x05), { maxChunkLength: 216 }).push(wire)[0]?.length, 200)
})

test('ChunkOpener accepts a 65,535-byte chunk by default', () => {
  // Readers must accept any L up to 65535 (PROTOCOL §7.3): a bare none chunk carries exactly L bytes.
  const payload = Buffer.alloc(65535, 0x5a)
  const length = Buffer.alloc(2)
  length.writeUInt16BE(65535, 0)
  const opener = new ChunkOpener(paramsOf(5, 0x01))
  const pieces = feed([length, payload.subarray(0, 30000), payload.subarray(30000)], (b) => opener.push(b))
  // A stream chunk split across reads comes back in pieces, without a copy.
  assert.equal(pieces.length, 2)
  assert.deepEqual(Buffer.concat(pieces), payload)
  const sealer = new ChunkSealer(paramsOf(3, 0x0d), { maxChunkLength: 65535 })
  const big = Buffer.alloc(sealer.maxPayload, 0xa5)
  assert.deepEqual(new ChunkOpener(paramsOf(3, 0x0d)).push(sealer.seal(big)), [big])
})

test('ChunkOpener ignores bytes after the end chunk', () => {
  const sealer = new ChunkSealer(paramsOf(4, 0x0d))
  const wire = Buffer.concat([sealer.seal(Buffer.from('data')), sealer.end(), Buffer.from('trailing junk')])
  const opener = new ChunkOpener(paramsOf(4, 0x0d))
  assert.deepEqual(opener.push(wire), [Buffer.from('data')])
  assert.equal(opener.ended, true)
  assert.equal(opener.buffered, 0)
  assert.deepEqual(opener.push(Buffer.from('more junk')), [])
})

test('ChunkOpener ends on a length field alone: the end chunk tag and padding need not arrive', () => {
  const sealer = new ChunkSealer(paramsOf(3, 0x0d))
  const end = sealer.end()
  const opener = new ChunkOpener(paramsOf(3, 0x0d))
  assert.deepEqual(opener.push(end.subarray(0, 2)), [])
  assert.equal(opener.ended, true)
})

test('ChunkOpener returns each datagram of a packet body as one payload', () => {
  const sealer = new ChunkSealer(paramsOf(5, 0x0d, 'packet'))
  const datagrams = [Buffer.from('one'), Buffer.alloc(1982, 2), Buffer.from('three')]
  const wire = Buffer.concat([...datagrams.map((d) => sealer.seal(d)), sealer.seal(Buffer.alloc(0))])
  assert.deepEqual(new ChunkOpener(paramsOf(5, 0x0d, 'packet')).push(wire), datagrams)
})

test('ChunkOpener refuses P without M, unknown securities and unchunked packets at construction', () => {
  assertProtocolError(() => new ChunkOpener(paramsOf(4, 0x09)), 'PADDING_WITHOUT_MASK')
  assertProtocolError(() => new ChunkOpener(paramsOf(0, 0x01)), 'SECURITY_UNSUPPORTED')
  assertProtocolError(() => new ChunkOpener(paramsOf(7, 0x01)), 'SECURITY_UNSUPPORTED')
  assertProtocolError(() => new ChunkOpener(paramsOf(1, 0x00, 'packet')), 'FRAMING_UNSUPPORTED')
})
