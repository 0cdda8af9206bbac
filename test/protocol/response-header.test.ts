import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ByteQueue } from '../../src/protocol/byte-queue.js'
import {
  deriveResponseKeys,
  encodeAeadResponseHeader,
  encodeLegacyResponseHeader,
  encodeSwitchAccountCommand,
  parseSwitchAccountCommand,
  ResponseHeaderParser,
} from '../../src/protocol/response-header.js'
import { parseUuid } from '../../src/protocol/user.js'
import { hex, loadSessions } from '../helpers/vectors.js'

const sessions = loadSessions()

test('response header encoders reproduce response_header_wire of every session', () => {
  for (const c of sessions) {
    const keys = deriveResponseKeys(c.inputs.header, hex(c.inputs.body_key), hex(c.inputs.body_iv))
    assert.equal(keys.key.toString('hex'), c.expected.response_key)
    assert.equal(keys.iv.toString('hex'), c.expected.response_iv)
    const header = {
      responseV: c.inputs.response_v,
      options: c.inputs.response_option,
      command: 0,
      commandBytes: Buffer.alloc(0),
    }
    const wire =
      c.inputs.header === 'aead'
        ? encodeAeadResponseHeader(header, keys)
        : encodeLegacyResponseHeader(header, keys).wire
    assert.equal(wire.toString('hex'), c.expected.response_header_wire, c.name)
  }
})

test('ResponseHeaderParser reads every response header, split at every byte', () => {
  for (const c of sessions) {
    const keys = deriveResponseKeys(c.inputs.header, hex(c.inputs.body_key), hex(c.inputs.body_iv))
    const wire = hex(c.expected.response_header_wire)
    for (let cut = 0; cut <= wire.length; cut++) {
      const parser = new ResponseHeaderParser(c.inputs.header, keys)
      const queue = new ByteQueue()
      queue.push(wire.subarray(0, cut))
      const early = parser.parse(queue)
      if (cut < wire.length) assert.equal(early, undefined)
      queue.push(wire.subarray(cut))
      const header = early ?? parser.parse(queue)
      assert.equal(header?.responseV, c.inputs.response_v, `${c.name} cut ${cut}`)
      assert.equal(queue.length, 0)
    }
  }
})

test('ResponseHeaderParser rejects a flipped AEAD response header', () => {
  const c = sessions.find((s) => s.inputs.header === 'aead')!
  const keys = deriveResponseKeys('aead', hex(c.inputs.body_key), hex(c.inputs.body_iv))
  const wire = Buffer.from(hex(c.expected.response_header_wire))
  wire[25] = wire.readUInt8(25) ^ 0x80
  const queue = new ByteQueue()
  queue.push(wire)
  assert.throws(() => new ResponseHeaderParser('aead', keys).parse(queue), { code: 'RESPONSE_INVALID' })
})

test('switch-account commands round-trip inside an AEAD response header', () => {
  const id = parseUuid('b831381d-6324-4d53-ad4f-8cda48b30811')!
  const command = {
    host: 'example.com',
    port: 10086,
    id: 'b831381d-6324-4d53-ad4f-8cda48b30811',
    alterId: 4,
    level: 1,
    validMinutes: 5,
  }
  const bytes = encodeSwitchAccountCommand(command, id)
  const keys = deriveResponseKeys('aead', Buffer.alloc(16, 1), Buffer.alloc(16, 2))
  const queue = new ByteQueue()
  queue.push(encodeAeadResponseHeader({ responseV: 7, options: 0, command: 1, commandBytes: bytes }, keys))
  const header = new ResponseHeaderParser('aead', keys).parse(queue)
  assert.equal(header?.command, 1)
  assert.deepEqual(parseSwitchAccountCommand(header.commandBytes), command)
  const broken = Buffer.from(bytes)
  broken[6] = broken.readUInt8(6) ^ 1
  assert.throws(() => parseSwitchAccountCommand(broken), { code: 'RESPONSE_INVALID' })
})
