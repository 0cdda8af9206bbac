import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { AccessRecord, VmessInbound } from '../../src/inbound/vmess.js'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { createUser } from '../../src/protocol/user.js'
import { dialTcp } from '../../src/transport/tcp.js'
import { socksConnect } from '../helpers/clients.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { concurrentEchoes, streamSizes } from '../helpers/mux.js'
import {
  connectTcp,
  randomData,
  sha256Hex,
  startEchoServer,
  startUdpEchoServer,
  udpRoundTrip,
} from '../helpers/net.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort, startV2ray, type V2rayProcess } from '../helpers/v2ray.js'
import { closeVmess, listenVmess, testVmessInbound } from '../helpers/vmess-server.js'

const ID = 'b831381d-6324-4d53-ad4f-8cda48b30811'
const context = { inboundTag: 'test', source: '127.0.0.1:1', user: '' }
/** V2Ray 4.34 carries datagrams of at most 2048 bytes in a mux sub-session. */
const DATAGRAM_SIZES = [1, 100, 512, 1400, 2048]

let echo: Awaited<ReturnType<typeof startEchoServer>>
let udpEcho: Awaited<ReturnType<typeof startUdpEchoServer>>

before(async () => {
  echo = await startEchoServer()
  udpEcho = await startUdpEchoServer()
})
after(async () => {
  await echo.close()
  await udpEcho.close()
})

describe('V2Ray 4.34 client with mux → tsray server', () => {
  let inbound: VmessInbound
  let serverPort = 0
  let v2ray: V2rayProcess
  let tcpPort = 0
  let udpPort = 0
  const access: AccessRecord[] = []
  before(async () => {
    inbound = testVmessInbound([createUser({ id: ID })], {
      timeouts: () => ({ connIdleMs: 30_000, uplinkOnlyMs: 2_000, downlinkOnlyMs: 2_000 }),
      onAccess: (record) => access.push(record),
    })
    serverPort = await listenVmess(inbound)
    tcpPort = await freePort()
    udpPort = await freePort()
    v2ray = await startV2ray(
      {
        log: { loglevel: 'warning' },
        inbounds: [
          {
            listen: '127.0.0.1',
            port: tcpPort,
            protocol: 'dokodemo-door',
            settings: { address: '127.0.0.1', port: echo.port, network: 'tcp' },
          },
          {
            listen: '127.0.0.1',
            port: udpPort,
            protocol: 'dokodemo-door',
            settings: { address: '127.0.0.1', port: udpEcho.port, network: 'udp' },
          },
        ],
        outbounds: [
          {
            protocol: 'vmess',
            settings: {
              vnext: [
                { address: '127.0.0.1', port: serverPort, users: [{ id: ID, security: 'aes-128-gcm' }] },
              ],
            },
            mux: { enabled: true, concurrency: 8 },
          },
        ],
      },
      { waitPort: tcpPort },
    )
  })
  after(async () => {
    await v2ray.stop()
    await closeVmess(inbound)
  })

  test('16 concurrent TCP streams of 1 B to 3 MiB arrive intact as sub-sessions of shared connections', async () => {
    const before = access.length
    const results = await concurrentEchoes(streamSizes(16), () => connectTcp(tcpPort), { halfClose: false })
    for (const [sent, back] of results) assert.equal(back, sent)
    const records = access.slice(before)
    const connections = records.filter((r) => r.destination === 'tcp:v1.mux.cool:0').length
    const subSessions = records.filter((r) => r.destination === `tcp:127.0.0.1:${echo.port}`).length
    assert.equal(subSessions, 16)
    assert.ok(connections >= 1 && connections < 16, `${connections} mux connections for 16 streams`)
  })

  test('UDP rides a mux sub-session with network UDP, one datagram per frame', async () => {
    const datagrams = DATAGRAM_SIZES.map((n) => randomData(n))
    const got = await udpRoundTrip(udpPort, datagrams)
    assert.deepEqual(got.map(sha256Hex).sort(), datagrams.map(sha256Hex).sort())
    assert.ok(
      access.some((r) => r.destination === `udp:127.0.0.1:${udpEcho.port}` && r.status === 'accepted'),
    )
  })
})

describe('tsray client with mux → V2Ray 4.34 server', () => {
  let v2ray: V2rayProcess
  let serverPort = 0
  before(async () => {
    serverPort = await freePort()
    v2ray = await startV2ray(
      {
        log: { loglevel: 'warning' },
        inbounds: [
          { listen: '127.0.0.1', port: serverPort, protocol: 'vmess', settings: { clients: [{ id: ID }] } },
        ],
        outbounds: [{ protocol: 'freedom' }],
      },
      { waitPort: serverPort },
    )
  })
  after(() => v2ray.stop())

  function muxOutbound(): { outbound: VmessOutbound; dials: () => number } {
    let dials = 0
    const outbound = new VmessOutbound({
      tag: 'proxy',
      connectTimeoutMs: 5_000,
      server: {
        host: '127.0.0.1',
        port: serverPort,
        user: createUser({ id: ID }),
        legacy: false,
        security: 'auto',
      },
      dial: (host, port) => {
        dials++
        return dialTcp(host, port, { timeoutMs: 5_000 })
      },
      mux: { concurrency: 8 },
    })
    return { outbound, dials: () => dials }
  }

  test('20 concurrent TCP streams of 1 B to 3 MiB arrive intact over 3 connections of 8 sub-sessions', async () => {
    const { outbound, dials } = muxOutbound()
    try {
      const target = { network: 'tcp' as const, host: '127.0.0.1', port: echo.port }
      // V2Ray's freedom does not pass a half-close on (docs/protocol.md §12): end only after the whole echo.
      const results = await concurrentEchoes(streamSizes(20), () => outbound.dialTcp(target, context), {
        halfClose: false,
      })
      for (const [sent, back] of results) assert.equal(back, sent)
      assert.equal(dials(), 3)
    } finally {
      outbound.close()
    }
  })

  test('UDP through a mux sub-session comes back from V2Ray', async () => {
    const { outbound, dials } = muxOutbound()
    const channel = outbound.openUdp(context)
    try {
      const datagrams = DATAGRAM_SIZES.map((n) => randomData(n))
      const got: Buffer[] = []
      const all = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`UDP: ${got.length}/${datagrams.length} came back`)),
          10_000,
        )
        channel.onPacket((payload, from) => {
          assert.equal(from.port, udpEcho.port)
          got.push(payload)
          if (got.length === datagrams.length) {
            clearTimeout(timer)
            resolve()
          }
        })
      })
      for (const datagram of datagrams) {
        channel.send(datagram, { network: 'udp', host: '127.0.0.1', port: udpEcho.port })
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      await all
      assert.deepEqual(got.map(sha256Hex).sort(), datagrams.map(sha256Hex).sort())
      assert.equal(dials(), 1)
    } finally {
      channel.close()
      outbound.close()
    }
  })

  test('a tsray config with "mux": {"enabled": true, "concurrency": 8} relays SOCKS streams through V2Ray', async () => {
    const socksPort = await freePort()
    const tsray = await startTsray({
      inbounds: [{ listen: '127.0.0.1', port: socksPort, protocol: 'socks', settings: { udp: false } }],
      outbounds: [
        {
          protocol: 'vmess',
          settings: { vnext: [{ address: '127.0.0.1', port: serverPort, users: [{ id: ID }] }] },
          mux: { enabled: true, concurrency: 8 },
        },
      ],
    })
    try {
      const target = { host: '127.0.0.1', port: echo.port }
      const results = await concurrentEchoes(streamSizes(10), () => socksConnect(socksPort, target), {
        halfClose: false,
      })
      for (const [sent, back] of results) assert.equal(back, sent)
    } finally {
      await tsray.stop()
    }
  })
})

failOnLeakedHandles()
