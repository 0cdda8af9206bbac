import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { ProtocolError } from '../../src/errors.js'
import { classifyHost } from '../../src/protocol/address.js'
import { ByteQueue } from '../../src/protocol/byte-queue.js'
import {
  MAX_MUX_METADATA_LENGTH,
  MuxFrameParser,
  MuxOption,
  MuxStatus,
  encodeMuxFrame,
  parseMuxFrame,
  type MuxFrame,
} from '../../src/protocol/mux-frame.js'
import { bytewise, feed, splits } from '../helpers/feed.js'

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex')
const ascii = (text: string): string => Buffer.from(text, 'latin1').toString('hex')

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (error: unknown) => error instanceof ProtocolError && error.code === code)
}

function parseAll(bytes: Buffer): MuxFrame[] {
  return new MuxFrameParser().push(bytes)
}

// Hand-written from docs/protocol.md §8: metadata length ‖ session ‖ status ‖ option ‖ (New: network ‖ port ‖ addr) ‖ data.
const VECTORS: { name: string; wire: Buffer; frame: MuxFrame }[] = [
  {
    name: 'New TCP to 127.0.0.1:80 with data',
    wire: hex('000c 0001 01 01 01 0050 01 7f000001 0002 6869'),
    frame: {
      sessionId: 1,
      status: MuxStatus.New,
      option: MuxOption.Data,
      network: 'tcp',
      host: '127.0.0.1',
      port: 80,
      data: Buffer.from('hi'),
    },
  },
  {
    name: 'New UDP to a domain without data',
    wire: hex(`0014 0002 01 00 02 0035 02 0b ${ascii('example.com')}`),
    frame: { sessionId: 2, status: MuxStatus.New, option: 0, network: 'udp', host: 'example.com', port: 53 },
  },
  {
    name: 'New TCP to IPv6',
    wire: hex('0018 0003 01 00 01 01bb 03 20010db8000000000000000000000001'),
    frame: { sessionId: 3, status: MuxStatus.New, option: 0, network: 'tcp', host: '2001:db8::1', port: 443 },
  },
  {
    name: 'Keep with data',
    wire: hex('0004 0001 02 01 0003 616263'),
    frame: { sessionId: 1, status: MuxStatus.Keep, option: MuxOption.Data, data: Buffer.from('abc') },
  },
  {
    name: 'End with error',
    wire: hex('0004 0001 03 02'),
    frame: { sessionId: 1, status: MuxStatus.End, option: MuxOption.Error },
  },
  {
    name: 'End',
    wire: hex('0004 ffff 03 00'),
    frame: { sessionId: 0xffff, status: MuxStatus.End, option: 0 },
  },
  {
    name: 'KeepAlive',
    wire: hex('0004 0000 04 00'),
    frame: { sessionId: 0, status: MuxStatus.KeepAlive, option: 0 },
  },
  {
    name: 'KeepAlive with data',
    wire: hex('0004 0000 04 01 0001 ff'),
    frame: { sessionId: 0, status: MuxStatus.KeepAlive, option: MuxOption.Data, data: hex('ff') },
  },
  {
    name: 'XUDP New with GlobalID',
    wire: hex('0014 0000 01 01 02 0035 01 08080808 0102030405060708 0001 71'),
    frame: {
      sessionId: 0,
      status: MuxStatus.New,
      option: MuxOption.Data,
      network: 'udp',
      host: '8.8.8.8',
      port: 53,
      globalId: hex('0102030405060708'),
      data: Buffer.from('q'),
    },
  },
  {
    name: 'XUDP Keep with a per-datagram address',
    wire: hex(`0014 0000 02 01 02 01bb 02 0b ${ascii('example.com')} 0001 72`),
    frame: {
      sessionId: 0,
      status: MuxStatus.Keep,
      option: MuxOption.Data,
      host: 'example.com',
      port: 443,
      data: Buffer.from('r'),
    },
  },
  {
    name: 'Data with length 0',
    wire: hex('0004 0005 02 01 0000'),
    frame: { sessionId: 5, status: MuxStatus.Keep, option: MuxOption.Data, data: Buffer.alloc(0) },
  },
]

for (const { name, wire, frame } of VECTORS) {
  void test(`parseMuxFrame reads ${name}`, () => {
    assert.deepEqual(parseAll(wire), [frame])
  })
  void test(`encodeMuxFrame writes ${name}`, () => {
    assert.deepEqual(encodeMuxFrame(frame), wire)
  })
}

void test('MuxFrameParser reads a stream of frames split at every byte boundary', () => {
  const wire = Buffer.concat(VECTORS.map((vector) => vector.wire))
  const expected = VECTORS.map((vector) => vector.frame)
  for (const pieces of splits(wire)) {
    const parser = new MuxFrameParser()
    assert.deepEqual(
      feed(pieces, (bytes) => parser.push(bytes)),
      expected,
    )
    assert.equal(parser.bufferedLength, 0)
  }
  const parser = new MuxFrameParser()
  assert.deepEqual(
    feed(bytewise(wire), (bytes) => parser.push(bytes)),
    expected,
  )
})

void test('parseMuxFrame returns undefined and consumes nothing until the whole frame is there', () => {
  const wire = VECTORS[0]!.wire
  for (let length = 0; length < wire.length; length++) {
    const queue = new ByteQueue()
    queue.push(wire.subarray(0, length))
    assert.equal(parseMuxFrame(queue), undefined)
    assert.equal(queue.length, length)
  }
})

void test('parseMuxFrame skips unknown metadata extensions', () => {
  // New TCP with 3 unknown bytes after the address; Keep and End with unknown bytes.
  assert.deepEqual(parseAll(hex('000f 0001 01 00 01 0050 01 7f000001 aabbcc')), [
    { sessionId: 1, status: MuxStatus.New, option: 0, network: 'tcp', host: '127.0.0.1', port: 80 },
  ])
  assert.deepEqual(parseAll(hex('0006 0001 02 01 0701 0001 00')), [
    { sessionId: 1, status: MuxStatus.Keep, option: MuxOption.Data, data: hex('00') },
  ])
  assert.deepEqual(parseAll(hex('0007 0001 03 00 010203')), [
    { sessionId: 1, status: MuxStatus.End, option: 0 },
  ])
  // A UDP New with fewer than 8 bytes after the address has no GlobalID.
  assert.deepEqual(parseAll(hex('000f 0000 01 00 02 0035 01 08080808 010203')), [
    { sessionId: 0, status: MuxStatus.New, option: 0, network: 'udp', host: '8.8.8.8', port: 53 },
  ])
})

void test('parseMuxFrame refuses metadata longer than MAX_MUX_METADATA_LENGTH', () => {
  const queue = new ByteQueue()
  queue.push(hex('0201'))
  throwsCode(() => parseMuxFrame(queue), 'MUX_METADATA_TOO_LONG')
  const atLimit = Buffer.concat([hex('0200 0001 03 00'), Buffer.alloc(MAX_MUX_METADATA_LENGTH - 4)])
  assert.deepEqual(parseAll(atLimit), [{ sessionId: 1, status: MuxStatus.End, option: 0 }])
})

void test('parseMuxFrame refuses malformed metadata', () => {
  const cases: [string, string][] = [
    ['0003 000103', 'metadata shorter than 4'],
    ['0004 0001 05 00', 'unknown status'],
    ['0004 0001 00 00', 'status 0'],
    ['0004 0001 01 00', 'New without network'],
    ['000b 0001 01 00 03 0050 01 7f000001', 'unknown network'],
    ['0007 0001 01 00 01 0050', 'New without address type'],
    ['0009 0001 01 00 01 0050 01 7f', 'New with a truncated IPv4 address'],
    ['0008 0001 02 00 02 0050 01 7f', 'Keep with a truncated address'],
  ]
  for (const [wire, label] of cases) {
    assert.throws(
      () => parseAll(hex(wire)),
      (error: unknown) => error instanceof ProtocolError && error.code === 'MUX_INVALID',
      label,
    )
  }
  throwsCode(() => parseAll(hex('000c 0001 01 00 01 0050 07 7f000001')), 'ADDRESS_INVALID')
  throwsCode(() => parseAll(hex(`000a 0001 01 00 01 0050 02 01 ${ascii(' ')}`)), 'ADDRESS_INVALID')
})

void test('encodeMuxFrame sets the Data bit when data is given', () => {
  assert.deepEqual(
    encodeMuxFrame({ sessionId: 1, status: MuxStatus.Keep, option: 0, data: hex('00') }),
    hex('0004 0001 02 01 0001 00'),
  )
  assert.deepEqual(
    encodeMuxFrame({ sessionId: 1, status: MuxStatus.End, option: MuxOption.Data | MuxOption.Error }),
    hex('0004 0001 03 03 0000'),
  )
})

void test('encodeMuxFrame refuses frames it cannot write', () => {
  const bad: MuxFrame[] = [
    { sessionId: 1, status: MuxStatus.New, option: 0, host: '1.2.3.4', port: 1 },
    { sessionId: 1, status: MuxStatus.New, option: 0, network: 'tcp' },
    { sessionId: 1, status: MuxStatus.Keep, option: 0, host: '1.2.3.4' },
    { sessionId: 1, status: MuxStatus.End, option: 0, host: '1.2.3.4', port: 1 },
    { sessionId: 70000, status: MuxStatus.End, option: 0 },
    { sessionId: 1, status: MuxStatus.End, option: 256 },
    { sessionId: 1, status: MuxStatus.Keep, option: 0, data: Buffer.alloc(0x10000) },
    {
      sessionId: 1,
      status: MuxStatus.New,
      option: 0,
      network: 'tcp',
      host: '1.2.3.4',
      port: 1,
      globalId: Buffer.alloc(8),
    },
    {
      sessionId: 1,
      status: MuxStatus.New,
      option: 0,
      network: 'udp',
      host: '1.2.3.4',
      port: 1,
      globalId: Buffer.alloc(7),
    },
    { sessionId: 1, status: MuxStatus.New, option: 0, network: 'udp', host: '1.2.3.4', port: 65536 },
  ]
  for (const frame of bad) throwsCode(() => encodeMuxFrame(frame), 'MUX_INVALID')
  throwsCode(
    () =>
      encodeMuxFrame({
        sessionId: 1,
        status: MuxStatus.New,
        option: 0,
        network: 'tcp',
        host: 'a b',
        port: 1,
      }),
    'ADDRESS_INVALID',
  )
})

const hostArbitrary = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain())
const dataArbitrary = fc.option(
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  { nil: undefined },
)
const frameArbitrary: fc.Arbitrary<MuxFrame> = fc.oneof(
  fc
    .record({
      sessionId: fc.integer({ min: 0, max: 0xffff }),
      network: fc.constantFrom<'tcp' | 'udp'>('tcp', 'udp'),
      host: hostArbitrary,
      port: fc.integer({ min: 0, max: 0xffff }),
      globalId: fc.option(fc.uint8Array({ minLength: 8, maxLength: 8 }), { nil: undefined }),
      data: dataArbitrary,
    })
    .map(({ sessionId, network, host, port, globalId, data }) => ({
      sessionId,
      status: MuxStatus.New,
      option: data === undefined ? 0 : MuxOption.Data,
      network,
      host,
      port,
      ...(network === 'udp' && globalId !== undefined ? { globalId: Buffer.from(globalId) } : {}),
      ...(data === undefined ? {} : { data }),
    })),
  fc
    .record({
      sessionId: fc.integer({ min: 0, max: 0xffff }),
      status: fc.constantFrom(MuxStatus.Keep, MuxStatus.End, MuxStatus.KeepAlive),
      error: fc.boolean(),
      address: fc.option(fc.record({ host: hostArbitrary, port: fc.integer({ min: 0, max: 0xffff }) }), {
        nil: undefined,
      }),
      data: dataArbitrary,
    })
    .map(({ sessionId, status, error, address, data }) => ({
      sessionId,
      status,
      option: (error ? MuxOption.Error : 0) | (data === undefined ? 0 : MuxOption.Data),
      ...(status === MuxStatus.Keep && address !== undefined ? address : {}),
      ...(data === undefined ? {} : { data }),
    })),
)

/** What a frame reads back as: hosts in canonical form. */
function canonical(frame: MuxFrame): MuxFrame {
  return frame.host === undefined ? frame : { ...frame, host: classifyHost(frame.host).host }
}

void test('encodeMuxFrame → MuxFrameParser round-trips random frames at random splits', () => {
  fc.assert(
    fc.property(
      fc.array(frameArbitrary, { maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 5 }),
      (frames, cuts) => {
        const wire = Buffer.concat(frames.map(encodeMuxFrame))
        const points = [...new Set(cuts.map((cut) => cut % (wire.length + 1)))].sort((a, b) => a - b)
        const pieces: Buffer[] = []
        let start = 0
        for (const point of [...points, wire.length]) {
          pieces.push(wire.subarray(start, point))
          start = point
        }
        const parser = new MuxFrameParser()
        assert.deepEqual(
          feed(pieces, (bytes) => parser.push(bytes)),
          frames.map(canonical),
        )
      },
    ),
  )
})

void test('MuxFrameParser given random bytes returns frames or throws only ProtocolError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, smallLength) => {
      const data = Buffer.from(bytes)
      // Keep the metadata length small half of the time so the deeper paths are reached.
      if (smallLength && data.length >= 2) data.writeUInt16BE(data.readUInt16BE(0) % 40, 0)
      try {
        new MuxFrameParser().push(data)
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error
      }
    }),
    { numRuns: 2000 },
  )
})

void test('MuxFrameParser given random metadata behind a valid header throws only ProtocolError', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(MuxStatus.New, MuxStatus.Keep),
      fc.uint8Array({ maxLength: 40 }),
      (status, metadata) => {
        const wire = Buffer.concat([
          Buffer.from([0, 4 + metadata.length, 0, 1, status, 0]),
          Buffer.from(metadata),
        ])
        try {
          parseAll(wire)
        } catch (error) {
          if (!(error instanceof ProtocolError)) throw error
        }
      },
    ),
    { numRuns: 2000 },
  )
})
