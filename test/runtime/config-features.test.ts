// V2Ray config features that change where traffic goes, each run by tsray and by V2Ray 4.34 in the same
// seat with the same config: dns.hosts with freedom UseIP, sendThrough, vnext failover, and the old
// layouts (V2Ray's v3 `inbound`/`outbound`, Xray's short VMess outbound).
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { after, before, test } from 'node:test'
import { socksConnect, socksUdpRoundTrip } from '../helpers/clients.js'
import {
  listen,
  randomData,
  readExactly,
  sha256Hex,
  startEchoServer,
  startUdpEchoServer,
} from '../helpers/net.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort, startV2ray } from '../helpers/v2ray.js'

const ID = '6c3f8e52-9a41-4d2b-8f0e-3b7d1c5a9e24'
/** A name no resolver knows: only dns.hosts can give it an address. */
const HOSTS_ONLY_NAME = 'tsray-hosts-only.test'

let whoami: Server
let whoamiPort = 0
let echo: Awaited<ReturnType<typeof startEchoServer>>
let udpEcho: Awaited<ReturnType<typeof startUdpEchoServer>>

before(async () => {
  // Answers each connection with the address it came from, then closes.
  whoami = createServer((socket) => {
    socket.on('error', () => undefined)
    socket.end(`${socket.remoteAddress ?? ''}\n`)
  })
  whoamiPort = await listen(whoami)
  echo = await startEchoServer()
  udpEcho = await startUdpEchoServer()
})

after(async () => {
  await new Promise((resolve) => whoami.close(resolve))
  await echo.close()
  await udpEcho.close()
})

async function ask(socksPort: number, host: string): Promise<string> {
  const socket = await socksConnect(socksPort, { host, port: whoamiPort })
  const chunks: Buffer[] = []
  for await (const chunk of socket) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString().trim()
}

/** The answer of `probe` through `config` (a SOCKS inbound at `socksPort`), run by tsray and by V2Ray. */
async function inBothSeats<T>(
  config: (socksPort: number) => object,
  probe: (socksPort: number) => Promise<T>,
): Promise<{ tsray: T | Error; v2ray: T | Error }> {
  const settle = (promise: Promise<T>): Promise<T | Error> =>
    promise.catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))))
  const tsrayPort = await freePort()
  const tsray = await startTsray(config(tsrayPort))
  const tsrayAnswer = await settle(probe(tsrayPort)).finally(() => tsray.stop())
  const v2rayPort = await freePort()
  const v2ray = await startV2ray(config(v2rayPort), { waitPort: v2rayPort })
  const v2rayAnswer = await settle(probe(v2rayPort)).finally(() => v2ray.stop())
  return { tsray: tsrayAnswer, v2ray: v2rayAnswer }
}

const socksInbound = (port: number) => ({
  listen: '127.0.0.1',
  port,
  protocol: 'socks',
  settings: { auth: 'noauth' },
})

test('dns.hosts answers freedom UseIP, as in V2Ray; AsIs leaves the name to the system, which does not know it', async () => {
  const config = (domainStrategy: string) => (port: number) => ({
    inbounds: [socksInbound(port)],
    outbounds: [{ protocol: 'freedom', settings: { domainStrategy } }],
    dns: { hosts: { [HOSTS_ONLY_NAME]: '127.0.0.1' }, servers: ['localhost'] },
  })
  const useIp = await inBothSeats(config('UseIP'), (port) => ask(port, HOSTS_ONLY_NAME))
  assert.deepEqual(useIp, { tsray: '127.0.0.1', v2ray: '127.0.0.1' })
  const asIs = await inBothSeats(config('AsIs'), (port) => ask(port, HOSTS_ONLY_NAME))
  // Neither reaches the target (V2Ray answers the SOCKS request first and then closes: an empty reply).
  for (const answer of [asIs.tsray, asIs.v2ray])
    assert.ok(answer !== '127.0.0.1', `reached it: ${String(answer)}`)
})

test('dns.hosts answers freedom UseIP for UDP datagrams too', async () => {
  const config = (port: number) => ({
    inbounds: [{ ...socksInbound(port), settings: { auth: 'noauth', udp: true, ip: '127.0.0.1' } }],
    outbounds: [{ protocol: 'freedom', settings: { domainStrategy: 'UseIP' } }],
    dns: { hosts: { [HOSTS_ONLY_NAME]: '127.0.0.1' } },
  })
  const datagrams = [randomData(100), randomData(1200), randomData(1)]
  // Each reply is matched by its ending (the helper strips an IPv4 reply header).
  const digests = async (port: number): Promise<string[]> => {
    const replies = await socksUdpRoundTrip(port, { host: HOSTS_ONLY_NAME, port: udpEcho.port }, datagrams)
    return replies
      .map((reply) =>
        datagrams.find((datagram) => reply.subarray(reply.length - datagram.length).equals(datagram)),
      )
      .map((datagram) => (datagram === undefined ? 'unknown reply' : sha256Hex(datagram)))
      .sort()
  }
  const expected = datagrams.map(sha256Hex).sort()
  const port = await freePort()
  const tsray = await startTsray(config(port))
  try {
    assert.deepEqual(await digests(port), expected)
  } finally {
    await tsray.stop()
  }
})

test('dns.hosts answers routing IPIfNonMatch: the rule on the hosts address picks the outbound, as in V2Ray', async () => {
  const config = (port: number) => ({
    inbounds: [socksInbound(port)],
    outbounds: [
      { protocol: 'blackhole', tag: 'block' },
      { protocol: 'freedom', tag: 'direct', settings: { domainStrategy: 'UseIP' } },
    ],
    dns: { hosts: { [HOSTS_ONLY_NAME]: '127.0.0.1' } },
    routing: {
      domainStrategy: 'IPIfNonMatch',
      rules: [{ type: 'field', ip: ['127.0.0.1/32'], outboundTag: 'direct' }],
    },
  })
  assert.deepEqual(await inBothSeats(config, (port) => ask(port, HOSTS_ONLY_NAME)), {
    tsray: '127.0.0.1',
    v2ray: '127.0.0.1',
  })
})

test('sendThrough: the target sees the connection come from that local address, as in V2Ray', async () => {
  const config = (port: number) => ({
    inbounds: [socksInbound(port)],
    outbounds: [{ protocol: 'freedom', sendThrough: '127.0.0.2' }],
  })
  assert.deepEqual(await inBothSeats(config, (port) => ask(port, '127.0.0.1')), {
    tsray: '127.0.0.2',
    v2ray: '127.0.0.2',
  })
})

test('vnext: a server that cannot be dialled is passed over for the next one, as in V2Ray', async () => {
  const serverPort = await freePort()
  const server = await startTsray({
    inbounds: [
      { listen: '127.0.0.1', port: serverPort, protocol: 'vmess', settings: { clients: [{ id: ID }] } },
    ],
    outbounds: [{ protocol: 'freedom' }],
  })
  const deadPort = await freePort()
  const client = (port: number) => ({
    inbounds: [socksInbound(port)],
    outbounds: [
      {
        protocol: 'vmess',
        settings: {
          vnext: [
            { address: '127.0.0.1', port: deadPort, users: [{ id: ID }] },
            { address: '127.0.0.1', port: serverPort, users: [{ id: ID, security: 'aes-128-gcm' }] },
          ],
        },
      },
    ],
  })
  const data = randomData(200_000)
  const roundTrips = async (port: number): Promise<string[]> => {
    const digests: string[] = []
    // Round-robin: every other connection starts at the dead server and fails over.
    for (let index = 0; index < 3; index += 1) {
      const socket = await socksConnect(port, { host: '127.0.0.1', port: echo.port })
      socket.write(data)
      digests.push(sha256Hex(await readExactly(socket, data.length)))
      socket.destroy()
    }
    return digests
  }
  try {
    const answers = await inBothSeats(client, roundTrips)
    const expected = Array<string>(3).fill(sha256Hex(data))
    assert.deepEqual(answers, { tsray: expected, v2ray: expected })
  } finally {
    await server.stop()
  }
})

test("the V2Ray v3 layout (inbound, outboundDetour, port) and Xray's short VMess outbound run", async () => {
  const serverPort = await freePort()
  const socksPort = await freePort()
  // v3: `port` belongs to `inbound`; outbound is the default route, outboundDetour follows.
  const server = await startTsray({
    port: serverPort,
    inbound: { listen: '127.0.0.1', protocol: 'vmess', settings: { clients: [{ id: ID }] } },
    outbound: { protocol: 'freedom' },
    outboundDetour: [{ protocol: 'blackhole', tag: 'block' }],
  })
  const client = await startTsray({
    inbounds: [socksInbound(socksPort)],
    outbounds: [
      { protocol: 'vmess', settings: { address: '127.0.0.1', port: serverPort, id: ID, security: 'auto' } },
    ],
  })
  try {
    assert.equal(await ask(socksPort, '127.0.0.1'), '127.0.0.1')
  } finally {
    await client.stop()
    await server.stop()
  }
})
