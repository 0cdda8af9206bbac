import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { VmessInbound } from '../../src/inbound/vmess.js'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { Command, type SecurityName } from '../../src/protocol/constants.js'
import { createUser } from '../../src/protocol/user.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { closeVmess, listenVmess, testVmessInbound } from '../helpers/vmess-server.js'
import {
  connectTcp,
  exchange,
  randomData,
  sha256Hex,
  startEchoServer,
  startUdpEchoServer,
  udpRoundTrip,
} from '../helpers/net.js'
import { freePort, startV2ray, type V2rayProcess } from '../helpers/v2ray.js'

const AEAD_ID = 'b831381d-6324-4d53-ad4f-8cda48b30811'
const LEGACY_ID = '7a3e6f2c-1d4b-4c8e-9f0a-5b6c7d8e9f01'
const LEGACY_ALTER_ID = 4
const timeouts = { connIdleMs: 30_000, uplinkOnlyMs: 2_000, downlinkOnlyMs: 2_000 }
/** V2Ray writes chunks of 2048 bytes at most; one full gcm chunk with P carries 1966 (docs/protocol.md §7.3). */
const SIZES = [1, 1966, 16_384 - 2 - 16 - 64, 10 * 1024 * 1024]

interface Case {
  readonly security: SecurityName
  readonly legacy: boolean
}
const CASES: Case[] = [
  { security: 'aes-128-gcm', legacy: false },
  { security: 'chacha20-poly1305', legacy: false },
  { security: 'none', legacy: false },
  { security: 'auto', legacy: false },
  { security: 'auto', legacy: true },
  { security: 'chacha20-poly1305', legacy: true },
]

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

describe('V2Ray 4.34 client → tsray server', () => {
  let inbound: VmessInbound
  let serverPort = 0
  before(async () => {
    const users = [createUser({ id: AEAD_ID }), createUser({ id: LEGACY_ID, alterId: LEGACY_ALTER_ID })]
    inbound = testVmessInbound(users, { timeouts: () => timeouts })
    serverPort = await listenVmess(inbound)
  })
  after(() => closeVmess(inbound))

  for (const c of CASES) {
    test(`${c.security}${c.legacy ? ' legacy header' : ''}: TCP and UDP through V2Ray's dokodemo-door`, async () => {
      const tcpPort = await freePort()
      const udpPort = await freePort()
      let v2ray: V2rayProcess | undefined
      try {
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
                    {
                      address: '127.0.0.1',
                      port: serverPort,
                      users: [
                        {
                          id: c.legacy ? LEGACY_ID : AEAD_ID,
                          alterId: c.legacy ? LEGACY_ALTER_ID : 0,
                          security: c.security,
                        },
                      ],
                    },
                  ],
                },
              },
            ],
          },
          { waitPort: tcpPort },
        )
        for (const size of SIZES) {
          const data = randomData(size)
          const back = await exchange(await connectTcp(tcpPort), data)
          assert.equal(back.length, size, `TCP size ${size}`)
          assert.equal(sha256Hex(back), sha256Hex(data), `TCP size ${size}`)
        }
        const datagrams = [1, 512, 1400, 1900].map((n) => randomData(n))
        const got = await udpRoundTrip(udpPort, datagrams)
        assert.deepEqual(got.map(sha256Hex).sort(), datagrams.map(sha256Hex).sort())
      } finally {
        await v2ray?.stop()
      }
    })
  }
})

describe('tsray client → V2Ray 4.34 server', () => {
  let v2ray: V2rayProcess
  let serverPort = 0
  before(async () => {
    serverPort = await freePort()
    v2ray = await startV2ray(
      {
        log: { loglevel: 'warning' },
        inbounds: [
          {
            listen: '127.0.0.1',
            port: serverPort,
            protocol: 'vmess',
            settings: {
              clients: [
                { id: AEAD_ID, alterId: 0 },
                { id: LEGACY_ID, alterId: LEGACY_ALTER_ID },
              ],
            },
          },
        ],
        outbounds: [{ protocol: 'freedom' }],
      },
      { waitPort: serverPort },
    )
  })
  after(() => v2ray.stop())

  for (const c of CASES) {
    test(`${c.security}${c.legacy ? ' legacy header' : ''}: TCP and UDP through V2Ray's vmess inbound`, async () => {
      const outbound = new VmessOutbound({
        tag: 'proxy',
        connectTimeoutMs: 5_000,
        server: {
          host: '127.0.0.1',
          port: serverPort,
          user: createUser(c.legacy ? { id: LEGACY_ID, alterId: LEGACY_ALTER_ID } : { id: AEAD_ID }),
          legacy: c.legacy,
          security: c.security,
        },
      })
      for (const size of SIZES) {
        const data = randomData(size)
        const stream = await outbound.open(Command.Tcp, {
          network: 'tcp',
          host: '127.0.0.1',
          port: echo.port,
        })
        const received: Buffer[] = []
        let total = 0
        // V2Ray's freedom does not pass the half-close on (docs/protocol.md §12): read until all bytes are back.
        const done = new Promise<void>((resolve, reject) => {
          stream.on('data', (chunk: Buffer) => {
            received.push(chunk)
            total += chunk.length
            if (total >= size) resolve()
          })
          stream.on('error', reject)
          stream.on('close', () =>
            reject(new Error(`closed after ${total}/${size} bytes\n${v2ray.output()}`)),
          )
        })
        stream.write(data)
        await done
        stream.destroy()
        assert.equal(sha256Hex(Buffer.concat(received)), sha256Hex(data), `TCP size ${size}`)
      }
      const stream = await outbound.open(Command.Udp, {
        network: 'udp',
        host: '127.0.0.1',
        port: udpEcho.port,
      })
      const datagrams = [1, 512, 1400, stream.maxDatagram].map((n) => randomData(n))
      const got: Buffer[] = []
      const all = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`UDP: ${got.length}/${datagrams.length} came back`)),
          10_000,
        )
        stream.on('data', (payload: Buffer) => {
          got.push(payload)
          if (got.length === datagrams.length) {
            clearTimeout(timer)
            resolve()
          }
        })
      })
      for (const datagram of datagrams) stream.write(datagram)
      await all
      stream.destroy()
      assert.deepEqual(got.map(sha256Hex).sort(), datagrams.map(sha256Hex).sort())
    })
  }
})

failOnLeakedHandles()
