import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { ProtocolError } from '../../src/errors.js'
import { classifyHost } from '../../src/protocol/address.js'
import { ByteQueue } from '../../src/protocol/byte-queue.js'
import {
  SocksCommand,
  SocksMethod,
  SocksReply,
  encodeSocksAuthReply,
  encodeSocksMethodSelection,
  encodeSocksReply,
  encodeSocksUdpDatagram,
  parseSocksGreeting,
  parseSocksPasswordAuth,
  parseSocksRequest,
  parseSocksUdpDatagram,
  socksReplyForError,
} from '../../src/protocol/socks5.js'
import { splits } from '../helpers/feed.js'

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex')

/** Pushes `pieces` one by one and parses after each; checks nothing comes out before the last byte. */
function parsePieces<T>(
  pieces: Buffer[],
  parse: (queue: ByteQueue) => T | undefined,
  messageLength: number,
): { value: T; queue: ByteQueue } {
  const queue = new ByteQueue()
  let pushed = 0
  let value: T | undefined
  for (const piece of pieces) {
    queue.push(piece)
    pushed += piece.length
    value ??= parse(queue)
    if (pushed < messageLength) assert.equal(value, undefined, `parsed early after ${pushed} bytes`)
  }
  assert.notEqual(value, undefined, 'never parsed')
  return { value: value!, queue }
}

/** Checks `parse` gives `expected` for `bytes` split at every boundary, leaving `trailer` queued. */
function checkSplits<T>(bytes: Buffer, parse: (queue: ByteQueue) => T | undefined, expected: T): void {
  const trailer = Buffer.from('tail')
  for (const pieces of splits(Buffer.concat([bytes, trailer]))) {
    const { value, queue } = parsePieces(pieces, parse, bytes.length)
    assert.deepEqual(value, expected)
    assert.deepEqual(queue.consume(queue.length), trailer)
  }
}

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (error: unknown) => error instanceof ProtocolError && error.code === code)
}

function queueOf(bytes: Buffer): ByteQueue {
  const queue = new ByteQueue()
  queue.push(bytes)
  return queue
}

void test('parseSocksGreeting reads the offered methods, split at every byte boundary', () => {
  checkSplits(hex('05 02 00 02'), parseSocksGreeting, {
    methods: [SocksMethod.NoAuth, SocksMethod.UsernamePassword],
  })
  checkSplits(hex('05 00'), parseSocksGreeting, { methods: [] })
})

void test('parseSocksGreeting refuses version 4 at the first byte', () => {
  throwsCode(() => parseSocksGreeting(queueOf(hex('04'))), 'SOCKS_INVALID')
  throwsCode(() => parseSocksGreeting(queueOf(Buffer.from('GET / HTTP/1.1\r\n'))), 'SOCKS_INVALID')
})

void test('encodeSocksMethodSelection writes VER and METHOD', () => {
  assert.deepEqual(encodeSocksMethodSelection(SocksMethod.UsernamePassword), hex('05 02'))
  assert.deepEqual(encodeSocksMethodSelection(SocksMethod.NoAcceptable), hex('05 ff'))
})

void test('parseSocksPasswordAuth reads RFC 1929 credentials, split at every byte boundary', () => {
  const bytes = Buffer.concat([hex('01 05'), Buffer.from('alice'), hex('06'), Buffer.from('s3cret')])
  checkSplits(bytes, parseSocksPasswordAuth, { username: 'alice', password: 's3cret' })
  checkSplits(hex('01 00 00'), parseSocksPasswordAuth, { username: '', password: '' })
})

void test('parseSocksPasswordAuth refuses a version other than 1', () => {
  throwsCode(() => parseSocksPasswordAuth(queueOf(hex('05 01 61 01 62'))), 'SOCKS_INVALID')
})

void test('encodeSocksAuthReply writes success and failure', () => {
  assert.deepEqual(encodeSocksAuthReply(true), hex('01 00'))
  assert.deepEqual(encodeSocksAuthReply(false), hex('01 01'))
})

void test('parseSocksRequest reads CONNECT to IPv4, domain and IPv6, split at every byte boundary', () => {
  checkSplits(hex('05 01 00 01 7f000001 0050'), parseSocksRequest, {
    command: SocksCommand.Connect,
    host: '127.0.0.1',
    port: 80,
  })
  checkSplits(
    Buffer.concat([hex('05 01 00 03 0b'), Buffer.from('example.com'), hex('01bb')]),
    parseSocksRequest,
    {
      command: SocksCommand.Connect,
      host: 'example.com',
      port: 443,
    },
  )
  checkSplits(hex('05 03 00 04 20010db8000000000000000000000001 0035'), parseSocksRequest, {
    command: SocksCommand.UdpAssociate,
    host: '2001:db8::1',
    port: 53,
  })
})

void test('parseSocksRequest returns BIND for the caller to refuse', () => {
  assert.deepEqual(parseSocksRequest(queueOf(hex('05 02 00 01 00000000 0000'))), {
    command: SocksCommand.Bind,
    host: '0.0.0.0',
    port: 0,
  })
})

void test('parseSocksRequest reads a domain that is an IP literal as that IP', () => {
  const bytes = Buffer.concat([hex('05 01 00 03 09'), Buffer.from('10.0.0.01'), hex('0016')])
  assert.deepEqual(parseSocksRequest(queueOf(bytes)), {
    command: SocksCommand.Connect,
    host: '10.0.0.01',
    port: 22,
  })
  const dotted = Buffer.concat([hex('05 01 00 03 08'), Buffer.from('10.0.0.1'), hex('0016')])
  assert.deepEqual(parseSocksRequest(queueOf(dotted)), {
    command: SocksCommand.Connect,
    host: '10.0.0.1',
    port: 22,
  })
})

void test('parseSocksRequest maps unknown commands and address types to reply codes', () => {
  const command = (() => {
    try {
      parseSocksRequest(queueOf(hex('05 09 00 01 7f000001 0050')))
    } catch (error) {
      return error
    }
  })()
  assert.ok(command instanceof ProtocolError && command.code === 'SOCKS_COMMAND_UNSUPPORTED')
  assert.equal(socksReplyForError(command), SocksReply.CommandNotSupported)
  const type = (() => {
    try {
      parseSocksRequest(queueOf(hex('05 01 00 02 7f000001 0050')))
    } catch (error) {
      return error
    }
  })()
  assert.ok(type instanceof ProtocolError && type.code === 'SOCKS_ADDRESS_UNSUPPORTED')
  assert.equal(socksReplyForError(type), SocksReply.AddressTypeNotSupported)
  assert.equal(socksReplyForError(new Error('x')), SocksReply.GeneralFailure)
})

void test('parseSocksRequest refuses empty and ill-formed domains', () => {
  throwsCode(() => parseSocksRequest(queueOf(hex('05 01 00 03 00 0050'))), 'SOCKS_ADDRESS_INVALID')
  const bad = Buffer.concat([hex('05 01 00 03 04'), Buffer.from('a b\n'), hex('0050')])
  throwsCode(() => parseSocksRequest(queueOf(bad)), 'SOCKS_ADDRESS_INVALID')
})

void test('parseSocksRequest leaves the queue untouched when it throws', () => {
  const queue = queueOf(hex('05 01 00 03 00 0050'))
  throwsCode(() => parseSocksRequest(queue), 'SOCKS_ADDRESS_INVALID')
  assert.equal(queue.length, 7)
})

void test('encodeSocksReply writes REP and the bound address in SOCKS numbering', () => {
  assert.deepEqual(encodeSocksReply(SocksReply.Succeeded), hex('05 00 00 01 00000000 0000'))
  assert.deepEqual(
    encodeSocksReply(SocksReply.Succeeded, { host: '127.0.0.1', port: 1080 }),
    hex('05 00 00 01 7f000001 0438'),
  )
  assert.deepEqual(
    encodeSocksReply(SocksReply.CommandNotSupported, { host: '::1', port: 1 }),
    hex('05 07 00 04 00000000000000000000000000000001 0001'),
  )
  assert.deepEqual(
    encodeSocksReply(SocksReply.HostUnreachable, { host: 'a.b', port: 2 }),
    Buffer.concat([hex('05 04 00 03 03'), Buffer.from('a.b'), hex('0002')]),
  )
  throwsCode(() => encodeSocksReply(SocksReply.Succeeded, { host: 'a b', port: 1 }), 'SOCKS_ADDRESS_INVALID')
  throwsCode(
    () => encodeSocksReply(SocksReply.Succeeded, { host: '1.2.3.4', port: 70000 }),
    'SOCKS_ADDRESS_INVALID',
  )
})

void test('SocksReply has the RFC 1928 values', () => {
  assert.deepEqual(Object.values(SocksReply), [0, 1, 2, 3, 4, 5, 6, 7, 8])
})

void test('parseSocksUdpDatagram reads the header and returns the payload', () => {
  assert.deepEqual(parseSocksUdpDatagram(hex('0000 00 01 08080808 0035 abcd')), {
    host: '8.8.8.8',
    port: 53,
    payload: hex('abcd'),
  })
  assert.deepEqual(
    parseSocksUdpDatagram(Buffer.concat([hex('0000 00 03 01'), Buffer.from('x'), hex('0001')])),
    {
      host: 'x',
      port: 1,
      payload: Buffer.alloc(0),
    },
  )
})

void test('parseSocksUdpDatagram refuses fragments and truncated headers', () => {
  throwsCode(() => parseSocksUdpDatagram(hex('0000 01 01 08080808 0035 ab')), 'SOCKS_UDP_FRAGMENTED')
  throwsCode(() => parseSocksUdpDatagram(hex('0000 00')), 'SOCKS_UDP_INVALID')
  throwsCode(() => parseSocksUdpDatagram(hex('0000 00 01 080808')), 'SOCKS_UDP_INVALID')
  throwsCode(() => parseSocksUdpDatagram(hex('0000 00 03')), 'SOCKS_UDP_INVALID')
  throwsCode(() => parseSocksUdpDatagram(hex('0000 00 05 00')), 'SOCKS_ADDRESS_UNSUPPORTED')
})

void test('encodeSocksUdpDatagram writes RSV, FRAG 0, the address and the payload', () => {
  assert.deepEqual(
    encodeSocksUdpDatagram({ host: '8.8.8.8', port: 53 }, hex('abcd')),
    hex('0000 00 01 08080808 0035 abcd'),
  )
})

const endpoint = fc.record({
  host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()),
  port: fc.integer({ min: 0, max: 0xffff }),
})

void test('encodeSocksUdpDatagram → parseSocksUdpDatagram round-trips', () => {
  fc.assert(
    fc.property(endpoint, fc.uint8Array({ maxLength: 64 }), ({ host, port }, payload) => {
      const parsed = parseSocksUdpDatagram(encodeSocksUdpDatagram({ host, port }, Buffer.from(payload)))
      assert.deepEqual(parsed, { host: classifyHost(host).host, port, payload: Buffer.from(payload) })
    }),
  )
})

void test('encodeSocksReply → parseSocksRequest reads the same address back', () => {
  fc.assert(
    fc.property(endpoint, ({ host, port }) => {
      // A reply and a request differ only in the second byte, so a reply with REP 1 parses as CONNECT.
      const parsed = parseSocksRequest(queueOf(encodeSocksReply(SocksReply.GeneralFailure, { host, port })))
      assert.deepEqual(parsed, { command: SocksCommand.Connect, host: classifyHost(host).host, port })
    }),
  )
})

function onlyProtocolErrors(fn: () => unknown): void {
  try {
    fn()
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error
  }
}

void test('SOCKS parsers given random bytes return undefined or throw only ProtocolError', () => {
  const parsers = [parseSocksGreeting, parseSocksPasswordAuth, parseSocksRequest]
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.array(fc.nat({ max: 300 }), { maxLength: 4 }),
      (bytes, cuts) => {
        const data = Buffer.from(bytes)
        for (const parse of parsers) {
          onlyProtocolErrors(() => {
            const queue = new ByteQueue()
            let start = 0
            for (const cut of [...cuts.sort((a, b) => a - b), data.length]) {
              queue.push(data.subarray(start, Math.max(start, cut)))
              start = Math.max(start, cut)
              if (parse(queue) !== undefined) return
            }
          })
        }
        onlyProtocolErrors(() => parseSocksUdpDatagram(data))
      },
    ),
  )
})

void test('SOCKS parsers given a request with a random prefix byte keep to ProtocolError', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 0, max: 255 }),
      fc.uint8Array(),
      (a, b, rest) => {
        const bytes = Buffer.concat([Buffer.of(5, a, 0, b), Buffer.from(rest)])
        onlyProtocolErrors(() => parseSocksRequest(queueOf(bytes)))
        onlyProtocolErrors(() =>
          parseSocksUdpDatagram(Buffer.concat([Buffer.of(0, 0, 0, b), Buffer.from(rest)])),
        )
      },
    ),
  )
})
