import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { VmessInbound } from '../../src/inbound/vmess.js'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { Command, type SecurityName } from '../../src/protocol/constants.js'
import { createUser } from '../../src/protocol/user.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { closeVmess, listenVmess, testVmessInbound } from '../helpers/vmess-server.js'
import { randomData, sha256Hex, startEchoServer, startUdpEchoServer } from '../helpers/net.js'

const timeouts = { connIdleMs: 10_000, uplinkOnlyMs: 1_000, downlinkOnlyMs: 1_000 }
const aeadUser = createUser({ id: 'b831381d-6324-4d53-ad4f-8cda48b30811', email: 'aead@test' })
const legacyUser = createUser({
  id: '7a3e6f2c-1d4b-4c8e-9f0a-5b6c7d8e9f01',
  alterId: 4,
  email: 'legacy@test',
})
let echo: Awaited<ReturnType<typeof startEchoServer>>
let udpEcho: Awaited<ReturnType<typeof startUdpEchoServer>>
let inbound: VmessInbound
let serverPort = 0

before(async () => {
  echo = await startEchoServer()
  udpEcho = await startUdpEchoServer()
  const users = [aeadUser, legacyUser]
  inbound = testVmessInbound(users, { handshakeTimeoutMs: 5_000, timeouts: () => timeouts })
  serverPort = await listenVmess(inbound)
})

after(async () => {
  await closeVmess(inbound)
  await echo.close()
  await udpEcho.close()
})

function client(security: SecurityName, legacy = false): VmessOutbound {
  return new VmessOutbound({
    tag: 'proxy',
    connectTimeoutMs: 5_000,
    server: { host: '127.0.0.1', port: serverPort, user: legacy ? legacyUser : aeadUser, legacy, security },
  })
}

for (const [security, legacy] of [
  ['aes-128-gcm', false],
  ['chacha20-poly1305', false],
  ['none', false],
  ['zero', false],
  ['aes-128-cfb', false],
  ['auto', true],
  ['aes-128-cfb', true],
  ['none', true],
] as const) {
  test(`VmessOutbound → VmessInbound carries TCP with ${security}${legacy ? ' (legacy header)' : ''}`, async () => {
    for (const size of [1, 16_384, 1_000_000]) {
      const data = randomData(size)
      const stream = await client(security, legacy).open(Command.Tcp, {
        network: 'tcp',
        host: '127.0.0.1',
        port: echo.port,
      })
      const received: Buffer[] = []
      const done = new Promise<void>((resolve, reject) => {
        stream.on('data', (chunk: Buffer) => received.push(chunk))
        stream.on('end', resolve)
        stream.on('error', reject)
      })
      stream.end(data)
      await done
      assert.equal(sha256Hex(Buffer.concat(received)), sha256Hex(data), `size ${size}`)
      stream.destroy()
    }
  })
}

test('VmessOutbound → VmessInbound carries UDP datagrams with boundaries intact', async () => {
  for (const security of ['aes-128-gcm', 'chacha20-poly1305', 'none', 'aes-128-cfb'] as const) {
    const stream = await client(security).open(Command.Udp, {
      network: 'udp',
      host: '127.0.0.1',
      port: udpEcho.port,
    })
    const sent = [1, 100, 1000, stream.maxDatagram].map((n) => randomData(n))
    const got: Buffer[] = []
    const all = new Promise<void>((resolve) => {
      stream.on('data', (payload: Buffer) => {
        got.push(payload)
        if (got.length === sent.length) resolve()
      })
    })
    for (const datagram of sent) stream.write(datagram)
    await all
    assert.deepEqual(got.map(sha256Hex).sort(), sent.map(sha256Hex).sort(), security)
    stream.destroy()
  }
})

failOnLeakedHandles()
