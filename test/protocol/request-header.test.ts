import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ByteQueue } from '../../src/protocol/byte-queue.js'
import { Command, type CommandValue } from '../../src/protocol/constants.js'
import { legacyAuth } from '../../src/protocol/legacy-auth.js'
import {
  encodeLegacyRequestHeader,
  encodeRequestHeader,
  parseRequestHeader,
  type RequestHeader,
  sealAeadRequestHeader,
} from '../../src/protocol/request-header.js'
import { type HandshakeStep, ServerHandshake } from '../../src/protocol/server-handshake.js'
import { createUser, parseUuid } from '../../src/protocol/user.js'
import { hex, loadSessions, scriptedRandom, type SessionCase } from '../helpers/vectors.js'
import { serverContext } from '../helpers/server-context.js'

const sessions = loadSessions()

function headerOf(c: SessionCase): RequestHeader {
  const i = c.inputs
  return {
    version: 1,
    bodyIv: hex(i.body_iv),
    bodyKey: hex(i.body_key),
    responseV: i.response_v,
    options: i.options,
    security: i.security,
    command: i.command as CommandValue,
    host: i.command === Command.Mux ? '' : i.address,
    port: i.command === Command.Mux ? 0 : i.port,
    padding: hex(i.header_padding),
  }
}

function clientWire(c: SessionCase): Buffer {
  const user = createUser({ id: c.inputs.uuid, alterId: c.inputs.server_alter_id_count })
  const plain = encodeRequestHeader(headerOf(c))
  if (c.inputs.header === 'aead') {
    return sealAeadRequestHeader(plain, {
      cmdKey: user.cmdKey,
      authIdKey: user.authIdKey,
      time: c.inputs.timestamp,
      random: scriptedRandom(hex(c.inputs.auth_id_random!), hex(c.inputs.connection_nonce!)),
    })
  }
  const signing = parseUuid(c.inputs.signing_id ?? c.inputs.uuid)!
  return encodeLegacyRequestHeader(plain, {
    cmdKey: user.cmdKey,
    auth: legacyAuth(signing, c.inputs.timestamp),
    time: c.inputs.timestamp,
  })
}

test('encodeRequestHeader reproduces request_header_plain of every session', () => {
  for (const c of sessions) {
    assert.equal(encodeRequestHeader(headerOf(c)).toString('hex'), c.expected.request_header_plain, c.name)
  }
})

test('client header encoders reproduce request_header_wire of every session', () => {
  for (const c of sessions)
    assert.equal(clientWire(c).toString('hex'), c.expected.request_header_wire, c.name)
})

test('parseRequestHeader reads back every session header', () => {
  for (const c of sessions) {
    const parsed = parseRequestHeader(hex(c.expected.request_header_plain))
    assert.deepEqual(parsed, headerOf(c), c.name)
  }
})

function runHandshake(
  _case: SessionCase,
  pieces: Buffer[],
  handshake: ServerHandshake,
  queue: ByteQueue,
): HandshakeStep {
  let step: HandshakeStep = { status: 'need-more' }
  for (const piece of pieces) {
    queue.push(piece)
    step = handshake.advance(queue)
    if (step.status !== 'need-more') return step
  }
  return step
}

test('ServerHandshake accepts every session and leaves the body in the queue', () => {
  for (const c of sessions) {
    const user = createUser({ id: c.inputs.uuid, alterId: c.inputs.server_alter_id_count })
    const context = serverContext([createUser({ id: '7a3e6f2c-1d4b-4c8e-9f0a-5b6c7d8e9f01' }), user], {
      now: c.inputs.timestamp,
    })
    const body = Buffer.concat(c.expected.request_chunks.map(hex))
    const queue = new ByteQueue()
    const step = runHandshake(
      c,
      [Buffer.concat([hex(c.expected.request_header_wire), body])],
      new ServerHandshake(context),
      queue,
    )
    assert.equal(step.status, 'accepted', c.name)
    if (step.status !== 'accepted') continue
    assert.equal(step.kind, c.inputs.header)
    assert.equal(step.user, user)
    assert.deepEqual(step.header, headerOf(c))
    assert.deepEqual(Buffer.concat(queue.drain()), body)
  }
})

test('ServerHandshake accepts a header split at every byte boundary', () => {
  for (const c of sessions.filter((s) => s.name.endsWith('SMP/tcp') || s.name.includes('domain'))) {
    const wire = hex(c.expected.request_header_wire)
    for (let cut = 1; cut < wire.length; cut++) {
      const context = serverContext(
        [createUser({ id: c.inputs.uuid, alterId: c.inputs.server_alter_id_count })],
        {
          now: c.inputs.timestamp,
        },
      )
      const queue = new ByteQueue()
      const step = runHandshake(
        c,
        [wire.subarray(0, cut), wire.subarray(cut)],
        new ServerHandshake(context),
        queue,
      )
      assert.equal(step.status, 'accepted', `${c.name} cut at ${cut}`)
      assert.equal(queue.length, 0)
    }
  }
})

test('ServerHandshake drains a replayed AuthID and closes on a replayed AEAD session', () => {
  const c = sessions.find((s) => s.name === 'aead/aes-128-gcm/SMP/tcp')!
  const user = createUser({ id: c.inputs.uuid })
  const context = serverContext([user], { now: c.inputs.timestamp })
  const wire = hex(c.expected.request_header_wire)
  const first = runHandshake(c, [wire], new ServerHandshake(context), new ByteQueue())
  assert.equal(first.status, 'accepted')
  for (const later of [0, 60, 119, 240]) {
    context.clock.now = c.inputs.timestamp + later
    const again = runHandshake(c, [wire], new ServerHandshake(context), new ByteQueue())
    assert.deepEqual(
      again,
      later > 120
        ? { status: 'refused', reason: 'AUTH_CLOCK_SKEW', action: 'drain', skewSeconds: later }
        : { status: 'refused', reason: 'AUTH_REPLAY', action: 'drain' },
    )
  }
})

test('ServerHandshake refuses an AuthID outside ±120 s as clock skew, and accepts at ±120 s', () => {
  const c = sessions.find((s) => s.name === 'aead/chacha20-poly1305/SMP/tcp')!
  const wire = hex(c.expected.request_header_wire)
  for (const offset of [-121, 121, -120, 120]) {
    const context = serverContext([createUser({ id: c.inputs.uuid })], {
      now: c.inputs.timestamp + offset,
      legacy: false,
    })
    const step = runHandshake(c, [wire], new ServerHandshake(context), new ByteQueue())
    if (Math.abs(offset) <= 120) assert.equal(step.status, 'accepted', `offset ${offset}`)
    // The refusal says how far off the client's clock is (for the clock-skew metric).
    else
      assert.deepEqual(step, {
        status: 'refused',
        reason: 'AUTH_CLOCK_SKEW',
        action: 'drain',
        skewSeconds: Math.abs(offset),
      })
  }
})

test('ServerHandshake drains unknown users, flipped seals, and taints a legacy replay', () => {
  const aead = sessions.find((s) => s.name === 'aead/aes-128-gcm/SMP/tcp')!
  const stranger = createUser({ id: '7a3e6f2c-1d4b-4c8e-9f0a-5b6c7d8e9f01' })
  const wire = hex(aead.expected.request_header_wire)
  const unknown = runHandshake(
    aead,
    [wire],
    new ServerHandshake(serverContext([stranger], { now: aead.inputs.timestamp })),
    new ByteQueue(),
  )
  assert.deepEqual(unknown, { status: 'refused', reason: 'AUTH_UNKNOWN', action: 'drain' })
  for (const index of [20, 40, wire.length - 1]) {
    const flipped = Buffer.from(wire)
    flipped[index] = flipped.readUInt8(index) ^ 0x01
    const context = serverContext([createUser({ id: aead.inputs.uuid })], { now: aead.inputs.timestamp })
    const step = runHandshake(aead, [flipped], new ServerHandshake(context), new ByteQueue())
    assert.deepEqual(
      step,
      { status: 'refused', reason: 'HEADER_OPEN_FAILED', action: 'drain' },
      `byte ${index}`,
    )
  }
  const legacy = sessions.find((s) => s.name === 'legacy/aes-128-gcm/SMP/tcp')!
  const context = serverContext(
    [createUser({ id: legacy.inputs.uuid, alterId: legacy.inputs.server_alter_id_count })],
    {
      now: legacy.inputs.timestamp,
    },
  )
  const legacyWire = hex(legacy.expected.request_header_wire)
  assert.equal(
    runHandshake(legacy, [legacyWire], new ServerHandshake(context), new ByteQueue()).status,
    'accepted',
  )
  assert.deepEqual(runHandshake(legacy, [legacyWire], new ServerHandshake(context), new ByteQueue()), {
    status: 'refused',
    reason: 'SESSION_REPLAY',
    action: 'drain',
  })
  assert.deepEqual(runHandshake(legacy, [legacyWire], new ServerHandshake(context), new ByteQueue()), {
    status: 'refused',
    reason: 'AUTH_TAINTED',
    action: 'drain',
  })
})

test('ServerHandshake refuses the legacy header when legacy is off', () => {
  const legacy = sessions.find((s) => s.name === 'legacy/none/SM/tcp')!
  const context = serverContext([createUser({ id: legacy.inputs.uuid, alterId: 4 })], {
    now: legacy.inputs.timestamp,
    legacy: false,
  })
  const step = runHandshake(
    legacy,
    [hex(legacy.expected.request_header_wire)],
    new ServerHandshake(context),
    new ByteQueue(),
  )
  assert.deepEqual(step, { status: 'refused', reason: 'AUTH_UNKNOWN', action: 'drain' })
})

test('parseRequestHeader refuses security 2 and 6, P without M, and unknown commands', () => {
  const base = sessions.find((s) => s.name === 'aead/aes-128-gcm/SMP/tcp')!
  for (const [mutate, code] of [
    [(h: RequestHeader) => ({ ...h, security: 2 }), 'SECURITY_UNSUPPORTED'],
    [(h: RequestHeader) => ({ ...h, security: 6 }), 'SECURITY_UNSUPPORTED'],
    [(h: RequestHeader) => ({ ...h, options: 0x09 }), 'PADDING_WITHOUT_MASK'],
  ] as const) {
    assert.throws(() => parseRequestHeader(encodeRequestHeader(mutate(headerOf(base)))), { code })
  }
  const plain = Buffer.from(hex(base.expected.request_header_plain))
  assert.equal(
    parseRequestHeader(Buffer.from(encodeRequestHeader({ ...headerOf(base), security: 0 }))).security,
    1,
  )
  plain[37] = 9
  assert.throws(() => parseRequestHeader(plain), { code: 'COMMAND_UNKNOWN' })
})
