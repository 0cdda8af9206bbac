import assert from 'node:assert/strict'
import { createHash, randomBytes, randomInt } from 'node:crypto'
import { once } from 'node:events'
import type { Duplex } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import type { AccessRecord, VmessInbound } from '../../src/inbound/vmess.js'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { Command, type SecurityName } from '../../src/protocol/constants.js'
import type { VmessClientStream } from '../../src/streams/vmess-client-stream.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, startUdpEchoServer } from '../helpers/net.js'
import { scaled } from '../helpers/probe.js'
import { MemoryMetrics, testUuid, waitFor } from '../helpers/requests.js'
import { type ScriptedTarget, startTarget } from '../helpers/targets.js'
import { freePort, startV2ray, type V2rayProcess } from '../helpers/v2ray.js'
import { closeVmess, listenVmess, testVmessInbound } from '../helpers/vmess-server.js'
import { createUser } from '../../src/protocol/user.js'

// Every byte moved and verified (docs/security.md §4.2 D1–D3): random write sizes 1–65,536, random read
// pauses, SHA-256 at the client and at the target, against tsray and V2Ray 4.34 in both roles.
const CASE_BYTES = scaled(64, 1_024) * 1024 * 1024
const WRAP_BYTES = 150 * 1024 * 1024
const MAX_WRITE = 65_536
const TIMEOUTS = { connIdleMs: 60_000, uplinkOnlyMs: 5_000, downlinkOnlyMs: 5_000 }
const user = createUser({ id: testUuid('tsray bytes', 0), email: 'bytes@test' })
const SECURITIES: SecurityName[] = ['aes-128-gcm', 'chacha20-poly1305', 'none', 'aes-128-cfb']
const metrics = new MemoryMetrics()
let target: ScriptedTarget
/** Count, running hash and final SHA-256 of what the target received, per connection in order. */
interface TargetConnection {
  bytes: number
  readonly hash: ReturnType<typeof createHash>
  sha256: string
}
const atTarget: TargetConnection[] = []
let inbound: VmessInbound
/** The tsray server's access log: which requests were Mux.Cool connections. */
const access: AccessRecord[] = []
let tsrayPort = 0

before(async () => {
  // Echoes and hashes what it receives.
  target = await startTarget((socket) => {
    const record: TargetConnection = { bytes: 0, hash: createHash('sha256'), sha256: '' }
    atTarget.push(record)
    socket.on('data', (bytes: Buffer) => {
      record.hash.update(bytes)
      record.bytes += bytes.length
      if (!socket.write(bytes)) socket.pause()
    })
    socket.on('drain', () => socket.resume())
    socket.on('end', () => {
      record.sha256 = record.hash.digest('hex')
      socket.end()
    })
  })
  inbound = testVmessInbound([user], {
    metrics,
    timeouts: () => TIMEOUTS,
    onAccess: (record) => access.push(record),
  })
  tsrayPort = await listenVmess(inbound)
})
after(async () => {
  await closeVmess(inbound)
  await target.close()
})

/** Writes `total` random bytes in random sizes 1–65,536, honouring back-pressure; resolves with their SHA-256. */
async function writeRandom(stream: Duplex, total: number, end: boolean): Promise<string> {
  const hash = createHash('sha256')
  let sent = 0
  while (sent < total) {
    const piece = randomBytes(Math.min(total - sent, 1 + randomInt(MAX_WRITE)))
    hash.update(piece)
    sent += piece.length
    if (!stream.write(piece)) await once(stream, 'drain')
  }
  if (end) stream.end()
  return hash.digest('hex')
}

/** Reads `total` bytes with random pauses; resolves with their SHA-256. */
function readRandom(stream: Duplex, total: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    let read = 0
    stream.on('data', (chunk: Buffer) => {
      hash.update(chunk)
      read += chunk.length
      if (read >= total) {
        if (read > total) reject(new Error(`read ${read} bytes, ${total} were sent`))
        else resolve(hash.digest('hex'))
        return
      }
      if (randomInt(64) === 0) {
        stream.pause()
        setTimeout(() => stream.resume(), randomInt(20))
      }
    })
    stream.on('error', reject)
    stream.on('close', () => reject(new Error(`closed after ${read} of ${total} bytes`)))
  })
}

/** The target connection opened after `index` connections: each case opens exactly one. */
const connectionAt = (index: number): TargetConnection | undefined => atTarget[index]

async function verify(stream: Duplex, total: number, label: string, index: number): Promise<void> {
  const [sent, received] = await Promise.all([writeRandom(stream, total, false), readRandom(stream, total)])
  stream.destroy()
  assert.equal(received, sent, `${label}: the bytes that came back differ`)
  const record = connectionAt(index)
  assert.ok(
    record !== undefined && atTarget.length === index + 1,
    `${label}: ${atTarget.length - index} target connections`,
  )
  assert.equal(record.bytes, total)
  assert.equal(
    record.sha256 || record.hash.copy().digest('hex'),
    sent,
    `${label}: the target got other bytes`,
  )
}

/** V2Ray 4.34 as the VMess server (the test user, freedom) on `port`. */
function startV2rayServer(port: number): Promise<V2rayProcess> {
  return startV2ray(
    {
      log: { loglevel: 'warning' },
      inbounds: [
        {
          listen: '127.0.0.1',
          port,
          protocol: 'vmess',
          settings: { clients: [{ id: user.uuid, alterId: 0 }] },
        },
      ],
      outbounds: [{ protocol: 'freedom' }],
    },
    { waitPort: port },
  )
}

function tsrayClient(serverPort: number, security: SecurityName): VmessOutbound {
  return new VmessOutbound({
    tag: 'client',
    connectTimeoutMs: 5_000,
    server: { host: '127.0.0.1', port: serverPort, user, legacy: false, security },
  })
}

function v2rayClientConfig(tcpPort: number, udpPort: number, udpTarget: number, security: SecurityName) {
  return {
    log: { loglevel: 'warning' },
    inbounds: [
      {
        listen: '127.0.0.1',
        port: tcpPort,
        protocol: 'dokodemo-door',
        settings: { address: '127.0.0.1', port: target.port, network: 'tcp' },
      },
      {
        listen: '127.0.0.1',
        port: udpPort,
        protocol: 'dokodemo-door',
        settings: { address: '127.0.0.1', port: udpTarget, network: 'udp' },
      },
    ],
    outbounds: [
      {
        protocol: 'vmess',
        settings: {
          vnext: [
            { address: '127.0.0.1', port: tsrayPort, users: [{ id: user.uuid, alterId: 0, security }] },
          ],
        },
      },
    ],
  }
}

describe('tsray client → tsray server', () => {
  for (const security of SECURITIES) {
    test(`${security}: ${CASE_BYTES} bytes echoed, SHA-256 equal at both ends`, async () => {
      const index = atTarget.length
      const stream = await tsrayClient(tsrayPort, security).open(Command.Tcp, {
        network: 'tcp',
        host: '127.0.0.1',
        port: target.port,
      })
      await verify(stream, CASE_BYTES, security, index)
    })
  }
})

describe('tsray client → V2Ray 4.34 server', () => {
  let v2ray: V2rayProcess
  let v2rayPort = 0
  before(async () => {
    v2rayPort = await freePort()
    v2ray = await startV2rayServer(v2rayPort)
  })
  after(() => v2ray.stop())
  for (const security of SECURITIES) {
    test(`${security}: ${CASE_BYTES} bytes echoed, SHA-256 equal at both ends`, async () => {
      const index = atTarget.length
      const stream = await tsrayClient(v2rayPort, security).open(Command.Tcp, {
        network: 'tcp',
        host: '127.0.0.1',
        port: target.port,
      })
      // V2Ray's freedom does not pass the half-close on (docs/protocol.md §12): read until every byte is back.
      await verify(stream, CASE_BYTES, `${security} via V2Ray`, index)
    })
  }
})

describe('V2Ray 4.34 client → tsray server', () => {
  // aes-128-cfb: V2Ray 4.34 selects it only from a protobuf config; its JSON loader reads the word as auto (docs/protocol.md §10).
  for (const security of SECURITIES.filter((s) => s !== 'aes-128-cfb')) {
    test(`${security}: ${CASE_BYTES} bytes echoed through V2Ray's dokodemo-door, SHA-256 equal at both ends`, async () => {
      const tcpPort = await freePort()
      const udpPort = await freePort()
      const v2ray = await startV2ray(v2rayClientConfig(tcpPort, udpPort, 9, security), { waitPort: tcpPort })
      try {
        const index = atTarget.length
        const socket = await connectTcp(tcpPort)
        await verify(socket, CASE_BYTES, `${security} from V2Ray`, index)
      } finally {
        await v2ray.stop()
      }
    })
  }

  test(`aes-128-gcm: ${WRAP_BYTES} bytes from V2Ray's 2 KiB chunks cross the 65,536-chunk nonce wrap intact`, async () => {
    const tcpPort = await freePort()
    const v2ray = await startV2ray(v2rayClientConfig(tcpPort, await freePort(), 9, 'aes-128-gcm'), {
      waitPort: tcpPort,
    })
    try {
      const index = atTarget.length
      const socket = await connectTcp(tcpPort)
      socket.resume()
      const sent = await writeRandom(socket, WRAP_BYTES, true)
      await waitFor(
        () => connectionAt(index)?.sha256 !== undefined && connectionAt(index)?.sha256 !== '',
        60_000,
        () => `the target got ${connectionAt(index)?.bytes ?? 0} of ${WRAP_BYTES}`,
      )
      socket.destroy()
      // ≥ 150 MiB in chunks of ≤ 1,966 payload bytes is > 65,536 chunks: the counter wrapped at least once.
      assert.ok(WRAP_BYTES / 1_966 > 65_536)
      assert.equal(connectionAt(index)!.bytes, WRAP_BYTES)
      assert.equal(connectionAt(index)!.sha256, sent)
    } finally {
      await v2ray.stop()
    }
  })
})

/** Sub-streams per Mux case, run at once over one Mux.Cool connection; together they carry CASE_BYTES. */
const MUX_STREAMS = 4
const muxContext = { inboundTag: 'bytes', source: '127.0.0.1:1', user: '' }
const tcpTarget = (): { network: 'tcp'; host: string; port: number } => ({
  network: 'tcp',
  host: '127.0.0.1',
  port: target.port,
})

/**
 * `streams` sub-streams at once, each `total` random bytes echoed: the SHA-256 that came back equals
 * the one sent, and the target connections they opened received exactly those bytes (in any order).
 */
async function verifyConcurrent(open: () => Promise<Duplex>, streams: number, total: number, label: string) {
  const first = atTarget.length
  const sent = await Promise.all(
    Array.from({ length: streams }, async () => {
      const stream = await open()
      const [written, received] = await Promise.all([
        writeRandom(stream, total, false),
        readRandom(stream, total),
      ])
      stream.destroy()
      assert.equal(received, written, `${label}: the bytes that came back differ`)
      return written
    }),
  )
  const records = atTarget.slice(first)
  assert.equal(
    records.length,
    streams,
    `${label}: ${records.length} target connections for ${streams} streams`,
  )
  for (const record of records)
    assert.equal(record.bytes, total, `${label}: a target connection got ${record.bytes} bytes`)
  const atTargetHashes = records.map((record) => record.sha256 || record.hash.copy().digest('hex'))
  assert.deepEqual(atTargetHashes.sort(), [...sent].sort(), `${label}: the target got other bytes`)
}

/** The streams since access record `first` rode fewer VMess connections than there were streams. */
function assertMuxed(first: number, label: string): void {
  const connections = access.slice(first).filter((record) => record.destination === 'tcp:v1.mux.cool:0')
  assert.ok(
    connections.length >= 1 && connections.length < MUX_STREAMS,
    `${label}: ${connections.length} Mux.Cool connections for ${MUX_STREAMS} streams`,
  )
}

describe('Mux.Cool: concurrent sub-streams over one connection', () => {
  const bytesEach = CASE_BYTES / MUX_STREAMS

  function muxClient(serverPort: number): VmessOutbound {
    return new VmessOutbound({
      tag: 'mux-client',
      connectTimeoutMs: 5_000,
      server: { host: '127.0.0.1', port: serverPort, user, legacy: false, security: 'aes-128-gcm' },
      mux: { concurrency: 8, idleCloseMs: 200 },
    })
  }

  test(`tsray → tsray: ${MUX_STREAMS} × ${bytesEach} bytes echoed, SHA-256 equal at both ends`, async () => {
    const outbound = muxClient(tsrayPort)
    try {
      const first = access.length
      await verifyConcurrent(
        () => outbound.dialTcp(tcpTarget(), muxContext),
        MUX_STREAMS,
        bytesEach,
        'mux tsray',
      )
      assertMuxed(first, 'mux tsray')
    } finally {
      outbound.close()
    }
  })

  test(`tsray → V2Ray 4.34: ${MUX_STREAMS} × ${bytesEach} bytes echoed, SHA-256 equal at both ends`, async () => {
    const v2rayPort = await freePort()
    const v2ray = await startV2rayServer(v2rayPort)
    const outbound = muxClient(v2rayPort)
    try {
      await verifyConcurrent(
        () => outbound.dialTcp(tcpTarget(), muxContext),
        MUX_STREAMS,
        bytesEach,
        'mux via V2Ray',
      )
    } finally {
      outbound.close()
      await v2ray.stop()
    }
  })

  test(`V2Ray 4.34 → tsray: ${MUX_STREAMS} × ${bytesEach} bytes echoed through V2Ray's mux, SHA-256 equal at both ends`, async () => {
    const tcpPort = await freePort()
    const config = v2rayClientConfig(tcpPort, await freePort(), 9, 'aes-128-gcm')
    const v2ray = await startV2ray(
      {
        ...config,
        outbounds: config.outbounds.map((o) => ({ ...o, mux: { enabled: true, concurrency: 8 } })),
      },
      { waitPort: tcpPort },
    )
    try {
      const first = access.length
      await verifyConcurrent(() => connectTcp(tcpPort), MUX_STREAMS, bytesEach, 'mux from V2Ray')
      assertMuxed(first, 'mux from V2Ray')
    } finally {
      await v2ray.stop()
    }
  })
})

describe('UDP datagrams keep their boundaries', () => {
  let udpEcho: Awaited<ReturnType<typeof startUdpEchoServer>>
  before(async () => {
    udpEcho = await startUdpEchoServer()
  })
  after(() => udpEcho.close())

  /** Sends datagrams of sizes 1…max (`count` of them, both ends included) and checks each comes back once, intact. */
  async function roundTrip(stream: VmessClientStream, count: number): Promise<void> {
    const max = stream.maxDatagram
    const sizes = Array.from({ length: count }, (_, i) => 1 + Math.round((i * (max - 1)) / (count - 1)))
    const expected = new Map<string, number>()
    const seen = new Map<string, number>()
    let outstanding = 0
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`UDP: ${seen.size} of ${count} came back`)), 30_000)
      stream.on('data', (payload: Buffer) => {
        const key = createHash('sha256').update(payload).digest('hex')
        seen.set(key, (seen.get(key) ?? 0) + 1)
        outstanding--
        if (seen.size === count) {
          clearTimeout(timer)
          // Wait a little for duplicates that must not come.
          setTimeout(resolve, 100)
        }
      })
    })
    for (const size of sizes) {
      const datagram = randomBytes(size)
      expected.set(createHash('sha256').update(datagram).digest('hex'), size)
      while (outstanding >= 32) await new Promise((resolve) => setTimeout(resolve, 1))
      outstanding++
      stream.write(datagram)
    }
    await done
    stream.destroy()
    assert.equal(seen.size, count)
    for (const [key, times] of seen) {
      assert.ok(expected.has(key), 'a datagram came back changed')
      assert.equal(times, 1, 'a datagram came back twice')
    }
    assert.ok(sizes.includes(max) && sizes.includes(1))
  }

  for (const security of SECURITIES) {
    test(`${security}: ${scaled(1_000, 5_000)} datagrams of sizes 1 to the maximum payload, tsray → tsray`, async () => {
      const stream = await tsrayClient(tsrayPort, security).open(Command.Udp, {
        network: 'udp',
        host: '127.0.0.1',
        port: udpEcho.port,
      })
      await roundTrip(stream, scaled(1_000, 5_000))
    })
  }

  test('aes-128-gcm: datagrams of sizes 1 to the maximum payload, V2Ray 4.34 client → tsray', async () => {
    const tcpPort = await freePort()
    const udpPort = await freePort()
    const v2ray = await startV2ray(v2rayClientConfig(tcpPort, udpPort, udpEcho.port, 'aes-128-gcm'), {
      waitPort: tcpPort,
    })
    try {
      const { createSocket } = await import('node:dgram')
      const socket = createSocket('udp4')
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()))
      // V2Ray's client pads (P): 2046 − 16 − 64 payload bytes fit one 2 KiB chunk (docs/protocol.md §8).
      const max = 2_046 - 16 - 64
      const count = scaled(300, 1_966)
      const sizes = Array.from({ length: count }, (_, i) => 1 + Math.round((i * (max - 1)) / (count - 1)))
      const seen = new Map<string, number>()
      const expected = new Set<string>()
      try {
        socket.on('message', (payload) => {
          const key = createHash('sha256').update(payload).digest('hex')
          seen.set(key, (seen.get(key) ?? 0) + 1)
        })
        for (const size of sizes) {
          const datagram = randomBytes(size)
          expected.add(createHash('sha256').update(datagram).digest('hex'))
          socket.send(datagram, udpPort, '127.0.0.1')
          await new Promise((resolve) => setTimeout(resolve, 2))
        }
        await waitFor(
          () => seen.size === count,
          10_000,
          () => `${seen.size} of ${count} came back`,
        )
      } finally {
        socket.close()
      }
      for (const [key, times] of seen) {
        assert.ok(expected.has(key))
        assert.equal(times, 1)
      }
    } finally {
      await v2ray.stop()
    }
  })
})

failOnLeakedHandles()
