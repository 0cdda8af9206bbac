import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { ProtocolError } from '../../src/errors.js'
import { classifyHost } from '../../src/protocol/address.js'
import { ByteQueue } from '../../src/protocol/byte-queue.js'
import { createClientRequest, resolveSecurity } from '../../src/protocol/client-request.js'
import { Command, SECURITY_NAMES } from '../../src/protocol/constants.js'
import { parseRequestHeader, requestHeaderLength } from '../../src/protocol/request-header.js'
import { ResponseHeaderParser } from '../../src/protocol/response-header.js'
import { ServerHandshake } from '../../src/protocol/server-handshake.js'
import { createUser } from '../../src/protocol/user.js'
import { serverContext } from '../helpers/server-context.js'

const NOW = 1_700_000_000
const user = createUser({ id: 'b831381d-6324-4d53-ad4f-8cda48b30811', alterId: 2 })

function onlyProtocolErrors(run: () => unknown): void {
  try {
    run()
  } catch (error) {
    assert.ok(error instanceof ProtocolError, `threw ${String(error)}`)
  }
}

const requestArbitrary = fc.record({
  legacy: fc.boolean(),
  security: fc.constantFrom(...SECURITY_NAMES),
  command: fc.constantFrom(Command.Tcp, Command.Udp, Command.Mux),
  host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()),
  port: fc.integer({ min: 1, max: 65535 }),
  seed: fc.uint8Array({ minLength: 64, maxLength: 64 }),
})

type RequestInput = typeof requestArbitrary extends fc.Arbitrary<infer T> ? T : never

function makeRequest(input: RequestInput) {
  const wire = resolveSecurity(input.security, { udp: input.command === Command.Udp })
  let offset = 0
  const pool = Buffer.from(input.seed)
  return createClientRequest(user, {
    legacy: input.legacy,
    security: wire.security,
    options: wire.options,
    command: input.command,
    host: input.host,
    port: input.port,
    now: NOW,
    // Deterministic bytes from the seed, so failures replay.
    random: (length) => {
      const out = Buffer.alloc(length)
      for (let i = 0; i < length; i++) out[i] = pool.readUInt8((offset + i) % pool.length) ^ (i & 0xff)
      offset += length
      return out
    },
  })
}

test('ServerHandshake accepts every generated request, fed at random split points', () => {
  fc.assert(
    fc.property(requestArbitrary, fc.array(fc.nat(), { maxLength: 6 }), (input, cuts) => {
      const request = makeRequest(input)
      const handshake = new ServerHandshake(serverContext([user], { now: NOW }))
      const queue = new ByteQueue()
      const points = [...new Set(cuts.map((c) => c % request.wire.length))].sort((a, b) => a - b)
      let last = 0
      let step = handshake.advance(queue)
      for (const point of [...points, request.wire.length]) {
        queue.push(request.wire.subarray(last, point))
        last = point
        if (step.status === 'need-more') step = handshake.advance(queue)
      }
      assert.equal(step.status, 'accepted')
      if (step.status === 'accepted') {
        assert.equal(step.kind, input.legacy ? 'legacy' : 'aead')
        // Addresses come back in canonical form (e.g. IPv6 compressed).
        const canonical = request.header.host === '' ? '' : classifyHost(request.header.host).host
        assert.deepEqual(step.header, { ...request.header, host: canonical })
      }
    }),
    { numRuns: 300 },
  )
})

test('ServerHandshake never accepts a truncated or bit-flipped request, and never throws', () => {
  fc.assert(
    fc.property(requestArbitrary, fc.nat(), fc.nat(), (input, cut, bit) => {
      const wire = makeRequest(input).wire
      const truncated = wire.subarray(0, cut % wire.length)
      const queue = new ByteQueue()
      queue.push(truncated)
      const partial = new ServerHandshake(serverContext([user], { now: NOW })).advance(queue)
      assert.notEqual(partial.status, 'accepted')
      const flipped = Buffer.from(wire)
      const index = Math.floor((bit % (wire.length * 8)) / 8)
      flipped[index] = flipped.readUInt8(index) ^ (1 << (bit % 8))
      const flippedQueue = new ByteQueue()
      flippedQueue.push(flipped)
      const step = new ServerHandshake(serverContext([user], { now: NOW })).advance(flippedQueue)
      assert.notEqual(step.status, 'accepted')
    }),
    { numRuns: 500 },
  )
})

test('ServerHandshake given random bytes asks for more or refuses, and never throws', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const queue = new ByteQueue()
      queue.push(Buffer.from(bytes))
      const step = new ServerHandshake(serverContext([user], { now: NOW })).advance(queue)
      assert.ok(step.status === 'need-more' || step.status === 'refused')
      if (step.status === 'need-more') assert.ok(bytes.length < 16 || queue.length <= 600)
    }),
    { numRuns: 2000 },
  )
})

test('request and response header parsers throw only ProtocolError on random bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      const buffer = Buffer.from(bytes)
      onlyProtocolErrors(() => parseRequestHeader(buffer))
      onlyProtocolErrors(() => requestHeaderLength(buffer))
      for (const kind of ['aead', 'legacy'] as const) {
        const queue = new ByteQueue()
        queue.push(buffer)
        onlyProtocolErrors(() =>
          new ResponseHeaderParser(kind, { key: Buffer.alloc(16, 1), iv: Buffer.alloc(16, 2) }).parse(queue),
        )
      }
    }),
    { numRuns: 2000 },
  )
})
