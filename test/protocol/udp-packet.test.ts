import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { ProtocolError } from '../../src/errors.js'
import { classifyHost } from '../../src/protocol/address.js'
import {
  PACKET_ADDR_DOMAIN,
  PACKET_ADDR_PORT,
  encodePacketAddrDatagram,
  isPacketAddrDomain,
  parsePacketAddrDatagram,
} from '../../src/protocol/udp-packet.js'

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex')

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (error: unknown) => error instanceof ProtocolError && error.code === code)
}

void test('PACKET_ADDR_DOMAIN is the v2fly packetaddr destination', () => {
  assert.equal(PACKET_ADDR_DOMAIN, 'sp.packet-addr.v2fly.arpa')
  assert.equal(PACKET_ADDR_PORT, 0)
  assert.equal(isPacketAddrDomain('SP.Packet-Addr.v2fly.arpa'), true)
  assert.equal(isPacketAddrDomain('example.com'), false)
})

void test('encodePacketAddrDatagram writes type, address, then port (docs/protocol.md §8)', () => {
  assert.deepEqual(
    encodePacketAddrDatagram({ host: '1.2.3.4', port: 1234 }, hex('aabb')),
    hex('01 01020304 04d2 aabb'),
  )
  assert.deepEqual(
    encodePacketAddrDatagram({ host: '2001:db8::1', port: 53 }, Buffer.alloc(0)),
    hex('02 20010db8000000000000000000000001 0035'),
  )
})

void test('encodePacketAddrDatagram refuses domains and bad ports', () => {
  throwsCode(
    () => encodePacketAddrDatagram({ host: 'example.com', port: 53 }, Buffer.alloc(0)),
    'PACKET_ADDR_INVALID',
  )
  throwsCode(
    () => encodePacketAddrDatagram({ host: '1.2.3.4', port: -1 }, Buffer.alloc(0)),
    'PACKET_ADDR_INVALID',
  )
})

void test('parsePacketAddrDatagram reads the hand-written datagrams', () => {
  assert.deepEqual(parsePacketAddrDatagram(hex('01 01020304 04d2 aabb')), {
    host: '1.2.3.4',
    port: 1234,
    payload: hex('aabb'),
  })
  assert.deepEqual(parsePacketAddrDatagram(hex('02 00000000000000000000000000000001 0035')), {
    host: '::1',
    port: 53,
    payload: Buffer.alloc(0),
  })
})

void test('parsePacketAddrDatagram refuses domains, unknown types and truncated datagrams', () => {
  throwsCode(() => parsePacketAddrDatagram(hex('03 0b 6578616d706c652e636f6d 0035')), 'PACKET_ADDR_INVALID')
  throwsCode(() => parsePacketAddrDatagram(Buffer.alloc(0)), 'PACKET_ADDR_INVALID')
  throwsCode(() => parsePacketAddrDatagram(hex('01 010203')), 'PACKET_ADDR_INVALID')
  throwsCode(() => parsePacketAddrDatagram(hex('01 01020304 04')), 'PACKET_ADDR_INVALID')
  throwsCode(() => parsePacketAddrDatagram(hex('02 0000')), 'PACKET_ADDR_INVALID')
})

void test('encodePacketAddrDatagram → parsePacketAddrDatagram round-trips', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.ipV4(), fc.ipV6()),
      fc.integer({ min: 0, max: 0xffff }),
      fc.uint8Array({ maxLength: 100 }),
      (host, port, payload) => {
        const parsed = parsePacketAddrDatagram(encodePacketAddrDatagram({ host, port }, Buffer.from(payload)))
        assert.deepEqual(parsed, { host: classifyHost(host).host, port, payload: Buffer.from(payload) })
      },
    ),
  )
})

void test('parsePacketAddrDatagram given random bytes throws only ProtocolError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
      try {
        parsePacketAddrDatagram(Buffer.from(bytes))
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error
      }
    }),
  )
})
