import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { defaultServerConfig } from '../../src/cli/default-server.js'
import { Router } from '../../src/runtime/router.js'
import { canonicalTarget } from '../../src/runtime/target-address.js'
import { PRIVATE_IP_RANGES } from '../../src/config/defaults.js'
import type { Outbound } from '../../src/outbound/outbound.js'
import { socksConnect } from '../helpers/clients.js'
import { EXPOSURE_ID, startSocksClient } from '../helpers/exposure.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, exchange, sha256Hex } from '../helpers/net.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort } from '../helpers/v2ray.js'

// With a geoip:private → blackhole rule, no spelling of a loopback address reaches loopback, and the
// metrics endpoint cannot be read through a tunnel.
const sockets = new Set<Socket>()
const servers: Server[] = []

/** An echo server on `host` (port 0). */
async function echoOn(host: string): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    socket.pipe(socket)
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  return (server.address() as { port: number }).port
}

/** Whether 1 KiB sent to host:port through the SOCKS5 inbound comes back. */
async function echoes(socksPort: number, host: string, port: number): Promise<boolean> {
  const data = randomBytes(1024)
  try {
    const tunnel = await socksConnect(socksPort, { host, port })
    const back = await exchange(tunnel, data, { timeoutMs: 1_500 }).catch(() => Buffer.alloc(0))
    tunnel.destroy()
    return sha256Hex(back) === sha256Hex(data)
  } catch {
    return false
  }
}

const LOOPBACK_V4 = ['127.0.0.1', 'localhost', '127.1', '2130706433', '0x7f000001', '0177.0.0.1', '127.0.1']
const LOOPBACK_V6 = ['::1', '::', '[::]', '[::1]', '::ffff:127.0.0.1']

describe('a server that blocks geoip:private and resolves names for it (IPOnDemand)', () => {
  let server: Awaited<ReturnType<typeof startTsray>>
  let client: Awaited<ReturnType<typeof startSocksClient>>
  let echo4 = 0
  let echo6 = 0
  let metricsPort = 0
  before(async () => {
    echo4 = await echoOn('127.0.0.1')
    echo6 = await echoOn('::1')
    metricsPort = await freePort()
    server = await startTsray({
      metrics: { listen: `127.0.0.1:${metricsPort}` },
      inbounds: [
        {
          listen: '127.0.0.1',
          port: await freePort(),
          protocol: 'vmess',
          settings: { clients: [{ id: EXPOSURE_ID }] },
        },
      ],
      outbounds: [
        { protocol: 'freedom', tag: 'direct' },
        { protocol: 'blackhole', tag: 'block' },
      ],
      routing: {
        domainStrategy: 'IPOnDemand',
        rules: [{ type: 'field', ip: ['geoip:private'], outboundTag: 'block' }],
      },
    })
    client = await startSocksClient(server.bound[0]!.port)
  })
  after(async () => {
    await client.tsray.stop()
    await server.stop()
  })

  for (const host of LOOPBACK_V4) {
    test(`no tunnel reaches 127.0.0.1 spelt "${host}"`, async () => {
      assert.equal(await echoes(client.port, host, echo4), false)
    })
  }
  for (const host of LOOPBACK_V6) {
    test(`no tunnel reaches ::1 spelt "${host}"`, async () => {
      assert.equal(await echoes(client.port, host, host.includes('127') ? echo4 : echo6), false)
    })
  }

  test('the metrics endpoint is not readable through a tunnel, even without a blocking rule', async () => {
    const ownMetrics = await freePort()
    const open = await startTsray({
      metrics: { listen: `127.0.0.1:${ownMetrics}` },
      inbounds: [{ listen: '127.0.0.1', port: await freePort(), protocol: 'socks', settings: {} }],
      outbounds: [{ protocol: 'freedom' }],
    })
    try {
      const direct = await connectTcp(ownMetrics)
      const answer = await exchange(direct, Buffer.from('GET /metrics HTTP/1.0\r\n\r\n'))
      assert.match(answer.toString(), /^HTTP\/1\.[01] 200/, 'the endpoint itself answers')
      for (const host of ['127.0.0.1', 'localhost', '127.1', '0.0.0.0']) {
        const reached = await socksConnect(open.bound[0]!.port, { host, port: ownMetrics })
          .then(async (tunnel) => {
            const back = await exchange(tunnel, Buffer.from('GET /metrics HTTP/1.0\r\n\r\n'), {
              timeoutMs: 1_500,
            }).catch(() => Buffer.alloc(0))
            tunnel.destroy()
            return back.length > 0
          })
          .catch(() => false)
        assert.equal(reached, false, host)
      }
    } finally {
      await open.stop()
    }
  })
})

test('canonicalTarget reads IP literals as the resolver does', () => {
  assert.equal(canonicalTarget('127.1'), '127.0.0.1')
  assert.equal(canonicalTarget('2130706433'), '127.0.0.1')
  assert.equal(canonicalTarget('0x7f000001'), '127.0.0.1')
  assert.equal(canonicalTarget('0177.0.0.01'), '127.0.0.1')
  assert.equal(canonicalTarget('10.65535'), '10.0.255.255')
  assert.equal(canonicalTarget('[::]'), '::')
  assert.equal(canonicalTarget('::FFFF:7f00:1'), '127.0.0.1')
  assert.equal(canonicalTarget('LocalHost.'), '127.0.0.1')
  assert.equal(canonicalTarget('256.1'), '256.1', 'not an address: a (bad) domain')
  assert.equal(canonicalTarget('example.com'), 'example.com')
  assert.equal(canonicalTarget('1.2.3.4.5'), '1.2.3.4.5')
})

test('geoip:private covers the IPv6 unspecified and loopback addresses', () => {
  const block = { tag: 'block' } as Outbound
  const direct = { tag: 'direct' } as Outbound
  const router = new Router({
    rules: [{ outboundTag: 'block', ips: PRIVATE_IP_RANGES }],
    outbounds: new Map([['block', block]]),
    defaultOutbound: direct,
  })
  const context = { inboundTag: 'in', source: '192.0.2.1:1', user: '' }
  for (const host of ['::', '::1', '0:0:0:0:0:0:0:1', '::ffff:10.0.0.1', 'fe80::1'])
    assert.equal(router.pick({ network: 'tcp', host, port: 80 }, context), block, host)
  assert.equal(router.pick({ network: 'tcp', host: '8.8.8.8', port: 80 }, context), direct)
})

test('the default server on a public address blocks private targets', () => {
  const config = defaultServerConfig({ id: EXPOSURE_ID, listen: '0.0.0.0', port: 10086 }) as {
    routing?: { rules: { ip?: string[]; outboundTag: string }[] }
    outbounds: { tag: string; protocol: string }[]
  }
  const rule = config.routing?.rules.find((r) => r.ip?.includes('geoip:private'))
  assert.ok(rule !== undefined, 'a geoip:private rule')
  assert.equal(config.outbounds.find((o) => o.tag === rule.outboundTag)?.protocol, 'blackhole')
  // On loopback it serves this machine alone, whose loopback its clients can reach anyway.
  const local = defaultServerConfig({ id: EXPOSURE_ID, listen: '127.0.0.1', port: 10086 }) as {
    routing?: object
  }
  assert.equal(local.routing, undefined)
})

after(async () => {
  for (const socket of sockets) socket.destroy()
  for (const server of servers) await new Promise((resolve) => server.close(resolve))
})

failOnLeakedHandles()

describe('a server that blocks geoip:private with AsIs (V2Ray semantics)', () => {
  let server: Awaited<ReturnType<typeof startTsray>>
  let client: Awaited<ReturnType<typeof startSocksClient>>
  let echo4 = 0
  before(async () => {
    echo4 = await echoOn('127.0.0.1')
    server = await startTsray({
      inbounds: [
        {
          listen: '127.0.0.1',
          port: await freePort(),
          protocol: 'vmess',
          settings: { clients: [{ id: EXPOSURE_ID }] },
        },
      ],
      outbounds: [
        { protocol: 'freedom', tag: 'direct' },
        { protocol: 'blackhole', tag: 'block' },
      ],
      routing: {
        domainStrategy: 'AsIs',
        rules: [{ type: 'field', ip: ['geoip:private'], outboundTag: 'block' }],
      },
    })
    client = await startSocksClient(server.bound[0]!.port)
  })
  after(async () => {
    await client.tsray.stop()
    await server.stop()
  })

  test('every spelling of a loopback IP literal is blocked', async () => {
    for (const host of LOOPBACK_V4.filter((spelling) => spelling !== 'localhost')) {
      assert.equal(await echoes(client.port, host, echo4), false, host)
    }
  })

  test('the name localhost is not an IP and is not resolved for IP rules, as in V2Ray 4.34', async () => {
    assert.equal(await echoes(client.port, 'localhost', echo4), true)
  })
})
