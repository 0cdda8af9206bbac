import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { expandChachaKey, fnv1a32, kdf, ShakeStream } from '../../src/crypto/index.js'
import { encodeVmessAddress } from '../../src/protocol/address.js'
import { createAuthId, openAuthId } from '../../src/protocol/auth-id.js'
import { legacyAuth } from '../../src/protocol/legacy-auth.js'
import { legacyHeaderIv } from '../../src/protocol/request-header.js'
import { deriveResponseKeys } from '../../src/protocol/response-header.js'
import { createUser, deriveCmdKey, formatUuid, parseUuid, uuidV5FromString } from '../../src/protocol/user.js'
import { hex, loadPrimitives, scriptedRandom } from '../helpers/vectors.js'

/* eslint-disable @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-assignment */
const primitives = loadPrimitives()

test('deriveCmdKey matches every cmd_key vector', () => {
  for (const v of primitives.cmd_key!)
    assert.equal(deriveCmdKey(parseUuid(v.uuid)!).toString('hex'), v.cmd_key)
})

test('createUser derives the alter-ID chain and each alter cmdKey', () => {
  for (const v of primitives.alter_ids!) {
    const user = createUser({ id: v.uuid, alterId: v.count })
    assert.deepEqual(user.alterIds.map(formatUuid), v.alter_ids)
    assert.deepEqual(
      user.alterIds.map((id) => deriveCmdKey(id).toString('hex')),
      v.alter_cmd_keys,
    )
  }
})

test('legacyAuth and legacyHeaderIv match every legacy_auth vector', () => {
  for (const v of primitives.legacy_auth!) {
    assert.equal(legacyAuth(parseUuid(v.id)!, v.timestamp).toString('hex'), v.auth)
    assert.equal(legacyHeaderIv(v.timestamp).toString('hex'), v.header_iv)
  }
})

test('kdf matches every kdf vector and the v2fly known answer', () => {
  for (const v of primitives.kdf!) {
    const path = v.path.map((p: string, i: number) => (v.path_encoding[i] === 'hex' ? hex(p) : p))
    assert.equal(kdf(hex(v.key), ...path).toString('hex'), v.output)
  }
  const known = kdf(
    Buffer.from('Demo Key for KDF Value Test'),
    'Demo Path for KDF Value Test',
    'Demo Path for KDF Value Test2',
    'Demo Path for KDF Value Test3',
  )
  assert.equal(known.toString('hex'), '53e9d7e1bd7bd25022b71ead07d8a596efc8a845c7888652fd684b4903dc8892')
})

test('createAuthId and openAuthId match every auth_id vector', () => {
  for (const v of primitives.auth_id!) {
    const authId = createAuthId(hex(v.auth_id_key), {
      time: v.timestamp,
      random: scriptedRandom(hex(v.random)),
    })
    assert.equal(authId.toString('hex'), v.auth_id)
    assert.equal(openAuthId(hex(v.auth_id_key), authId), v.timestamp)
    const flipped = Buffer.from(authId)
    flipped[3] = flipped.readUInt8(3) ^ 1
    assert.equal(openAuthId(hex(v.auth_id_key), flipped), undefined)
  }
})

test('fnv1a32 matches every vector', () => {
  for (const v of primitives.fnv1a32!)
    assert.equal(fnv1a32(hex(v.data)).toString(16).padStart(8, '0'), v.hash)
})

test('ShakeStream yields the vectors and equals one-shot output across block refills', () => {
  for (const v of primitives.shake128!) {
    const stream = new ShakeStream(hex(v.seed))
    assert.deepEqual(
      Array.from({ length: 8 }, () => stream.nextUint16()),
      v.first_8_u16,
    )
  }
  const seed = hex('000102030405060708090a0b0c0d0e0f')
  const draws = 5000
  const oneShot = createHash('shake128', { outputLength: draws * 2 })
    .update(seed)
    .digest()
  const stream = new ShakeStream(seed)
  for (let i = 0; i < draws; i++) assert.equal(stream.nextUint16(), oneShot.readUInt16BE(i * 2), `draw ${i}`)
})

test('expandChachaKey matches every vector', () => {
  for (const v of primitives.chacha20_poly1305_key!) {
    assert.equal(expandChachaKey(hex(v.key16)).toString('hex'), v.key32)
  }
})

test('deriveResponseKeys matches both header kinds', () => {
  for (const v of primitives.response_key_iv!) {
    const aead = deriveResponseKeys('aead', hex(v.body_key), hex(v.body_iv))
    assert.equal(aead.key.toString('hex'), v.aead_header.response_key)
    assert.equal(aead.iv.toString('hex'), v.aead_header.response_iv)
    const legacy = deriveResponseKeys('legacy', hex(v.body_key), hex(v.body_iv))
    assert.equal(legacy.key.toString('hex'), v.legacy_header.response_key)
    assert.equal(legacy.iv.toString('hex'), v.legacy_header.response_iv)
  }
})

test('encodeVmessAddress with a port matches every address vector', () => {
  for (const v of primitives.address!) {
    const port = Buffer.alloc(2)
    port.writeUInt16BE(v.port)
    assert.equal(Buffer.concat([port, encodeVmessAddress(v.address)]).toString('hex'), v.encoded)
  }
})

test('uuidV5FromString follows the nil-namespace UUIDv5 rule', () => {
  const id = uuidV5FromString('example')
  assert.equal(id.readUInt8(6) >> 4, 5)
  assert.equal(id.readUInt8(8) >> 6, 2)
  assert.deepEqual(createUser({ id: 'example' }).id, id)
  assert.throws(() => createUser({ id: 'x'.repeat(31) }), { code: 'ID_INVALID' })
})
