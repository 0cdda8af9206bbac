import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import {
  decodeAlterInboundRequest,
  decodeAddUserOperation,
  decodeQueryStatsResponse,
  decodeUsersStatsResponse,
  decodeVmessAccount,
  encodeAddUserOperation,
  encodeAlterInboundRequest,
  encodeQueryStatsResponse,
  encodeUsersStatsResponse,
  encodeVmessAccount,
} from '../../src/api/messages.js'
import { ProtoWireError, readFields } from '../../src/api/proto-wire.js'

test('messages: a GetStatsRequest has the bytes protoc gives (name = 1, reset = 2)', async () => {
  const { encodeGetStatsRequest } = await import('../../src/api/messages.js')
  // 0x0a = field 1, length-delimited; 0x10 = field 2, varint.
  assert.deepEqual(
    encodeGetStatsRequest({ name: 'ab', reset: true }),
    Buffer.from([0x0a, 2, 0x61, 0x62, 0x10, 1]),
  )
  assert.deepEqual(encodeGetStatsRequest({ name: '', reset: false }), Buffer.alloc(0))
})

test('messages: AlterInbound with AddUserOperation and a VMess account round-trip', () => {
  fc.assert(
    fc.property(
      fc.string(),
      fc.uuid(),
      fc.nat({ max: 2 ** 32 - 1 }),
      fc.nat(65535),
      (email, id, level, alterId) => {
        const user = {
          level,
          email,
          account: { type: 'xray.proxy.vmess.Account', value: encodeVmessAccount({ id, alterId }) },
        }
        const request = decodeAlterInboundRequest(
          encodeAlterInboundRequest({
            tag: 'vin',
            operation: {
              type: 'xray.app.proxyman.command.AddUserOperation',
              value: encodeAddUserOperation(user),
            },
          }),
        )
        assert.equal(request.tag, 'vin')
        const decoded = decodeAddUserOperation(request.operation.value)
        assert.equal(decoded?.email, email)
        assert.equal(decoded?.level, level)
        assert.deepEqual(decodeVmessAccount(decoded.account!.value), { id, alterId })
      },
    ),
  )
})

test('messages: stats responses round-trip, with counters past 2^32', () => {
  const stats = [
    { name: 'user>>>a>>>traffic>>>uplink', value: 2 ** 40 + 5 },
    { name: 'x', value: 0 },
  ]
  assert.deepEqual(decodeQueryStatsResponse(encodeQueryStatsResponse(stats)), stats)
  const users = [
    { email: 'a', ips: [{ ip: '10.0.0.1', lastSeen: 1_800_000_000 }], traffic: { uplink: 7, downlink: 0 } },
  ]
  assert.deepEqual(decodeUsersStatsResponse(encodeUsersStatsResponse(users)), users)
})

test('readFields: random bytes either decode or throw ProtoWireError, never anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try {
        readFields(Buffer.from(bytes))
      } catch (error) {
        assert.ok(error instanceof ProtoWireError, String(error))
      }
    }),
    { numRuns: 2000 },
  )
})
