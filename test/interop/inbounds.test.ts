import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { curl, socksConnect, socksUdpRoundTrip, startContentServer } from '../helpers/clients.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import {
  connectTcp,
  randomData,
  readExactly,
  sha256Hex,
  startEchoServer,
  startUdpEchoServer,
  udpRoundTrip,
} from '../helpers/net.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort, startV2ray, type V2rayProcess } from '../helpers/v2ray.js'

const AEAD_ID = 'b831381d-6324-4d53-ad4f-8cda48b30811'
const LEGACY_ID = '7a3e6f2c-1d4b-4c8e-9f0a-5b6c7d8e9f01'

let echo: Awaited<ReturnType<typeof startEchoServer>>
let udpEcho: Awaited<ReturnType<typeof startUdpEchoServer>>
let content: Awaited<ReturnType<typeof startContentServer>>

before(async () => {
  echo = await startEchoServer()
  udpEcho = await startUdpEchoServer()
  content = await startContentServer()
})
after(async () => {
  await echo.close()
  await udpEcho.close()
  await content.close()
})

function serverConfig(port: number): object {
  return {
    inbounds: [
      {
        listen: '127.0.0.1',
        port,
        protocol: 'vmess',
        settings: {
          clients: [
            { id: AEAD_ID, alterId: 0 },
            { id: LEGACY_ID, alterId: 4 },
          ],
        },
      },
    ],
    outbounds: [{ protocol: 'freedom' }],
  }
}

interface ClientPorts {
  socks: number
  http: number
  forwardTcp: number
  forwardUdp: number
}

function clientConfig(
  serverPort: number,
  ports: ClientPorts,
  user: { id: string; alterId: number; security: string },
): object {
  return {
    log: { loglevel: 'warning' },
    inbounds: [
      { tag: 'socks', listen: '127.0.0.1', port: ports.socks, protocol: 'socks', settings: { udp: true } },
      { tag: 'http', listen: '127.0.0.1', port: ports.http, protocol: 'http', settings: {} },
      {
        tag: 'forward-tcp',
        listen: '127.0.0.1',
        port: ports.forwardTcp,
        protocol: 'dokodemo-door',
        settings: { address: '127.0.0.1', port: echo.port, network: 'tcp' },
      },
      {
        tag: 'forward-udp',
        listen: '127.0.0.1',
        port: ports.forwardUdp,
        protocol: 'dokodemo-door',
        settings: { address: '127.0.0.1', port: udpEcho.port, network: 'udp' },
      },
    ],
    outbounds: [
      {
        tag: 'proxy',
        protocol: 'vmess',
        settings: { vnext: [{ address: '127.0.0.1', port: serverPort, users: [user] }] },
      },
    ],
  }
}

async function allPorts(): Promise<ClientPorts> {
  return {
    socks: await freePort(),
    http: await freePort(),
    forwardTcp: await freePort(),
    forwardUdp: await freePort(),
  }
}

/** Exercises every tsray client inbound against a VMess server on `serverPort`. */
async function exerciseClient(
  serverPort: number,
  user: { id: string; alterId: number; security: string },
): Promise<void> {
  const ports = await allPorts()
  const client = await startTsray(clientConfig(serverPort, ports, user))
  try {
    // SOCKS5 CONNECT, by IP and by domain name.
    for (const host of ['127.0.0.1', 'localhost']) {
      const data = randomData(256 * 1024)
      const tunnel = await socksConnect(ports.socks, { host, port: echo.port })
      tunnel.write(data)
      assert.equal(
        sha256Hex(await readExactly(tunnel, data.length)),
        sha256Hex(data),
        `SOCKS CONNECT via ${host}`,
      )
      tunnel.destroy()
    }
    // curl through the SOCKS5 inbound (remote name resolution) and through the HTTP inbound.
    const bySocks = await curl([
      '--socks5-hostname',
      `127.0.0.1:${ports.socks}`,
      `http://localhost:${content.port}/bytes/300000`,
    ])
    assert.equal(bySocks.status, 200)
    assert.equal(bySocks.actualSha, bySocks.expectedSha)
    const byHttp = await curl([
      '-x',
      `http://127.0.0.1:${ports.http}`,
      `http://127.0.0.1:${content.port}/bytes/1000000`,
    ])
    assert.equal(byHttp.status, 200)
    assert.equal(byHttp.actualSha, byHttp.expectedSha)
    const byConnect = await curl([
      '-p',
      '-x',
      `http://127.0.0.1:${ports.http}`,
      `http://127.0.0.1:${content.port}/bytes/5000`,
    ])
    assert.equal(byConnect.status, 200)
    assert.equal(byConnect.actualSha, byConnect.expectedSha)
    // SOCKS5 UDP ASSOCIATE.
    const datagrams = [1, 300, 1200].map((n) => randomData(n))
    const back = await socksUdpRoundTrip(ports.socks, { host: '127.0.0.1', port: udpEcho.port }, datagrams)
    assert.deepEqual(back.map(sha256Hex).sort(), datagrams.map(sha256Hex).sort())
    // Port forward, TCP.
    const data = randomData(2 * 1024 * 1024)
    const forwarded = await connectTcp(ports.forwardTcp)
    forwarded.write(data)
    assert.equal(sha256Hex(await readExactly(forwarded, data.length)), sha256Hex(data))
    forwarded.destroy()
    // Port forward, UDP: each datagram once, boundaries intact.
    const udpDatagrams = [1, 700, 1400].map((n) => randomData(n))
    const udpBack = await udpRoundTrip(ports.forwardUdp, udpDatagrams)
    assert.deepEqual(udpBack.map(sha256Hex).sort(), udpDatagrams.map(sha256Hex).sort())
  } finally {
    await client.stop()
  }
}

describe('tsray client inbounds → V2Ray 4.34 server', () => {
  let v2ray: V2rayProcess
  let serverPort = 0
  before(async () => {
    serverPort = await freePort()
    v2ray = await startV2ray(
      { log: { loglevel: 'warning' }, ...serverConfig(serverPort) },
      { waitPort: serverPort },
    )
  })
  after(() => v2ray.stop())

  for (const user of [
    { id: AEAD_ID, alterId: 0, security: 'aes-128-gcm' },
    { id: LEGACY_ID, alterId: 4, security: 'chacha20-poly1305' },
  ]) {
    test(`SOCKS5, HTTP, curl and port-forward with ${user.security}${user.alterId > 0 ? ' (legacy)' : ''}`, () =>
      exerciseClient(serverPort, user))
  }
})

describe('tsray client inbounds → tsray server', () => {
  let server: Awaited<ReturnType<typeof startTsray>>
  let serverPort = 0
  before(async () => {
    serverPort = await freePort()
    server = await startTsray(serverConfig(serverPort))
  })
  after(() => server.stop())

  for (const user of [
    { id: AEAD_ID, alterId: 0, security: 'aes-128-cfb' },
    { id: AEAD_ID, alterId: 0, security: 'zero' },
    { id: LEGACY_ID, alterId: 4, security: 'aes-128-cfb' },
  ]) {
    test(`SOCKS5, HTTP, curl and port-forward with ${user.security}${user.alterId > 0 ? ' (legacy)' : ''}`, () =>
      exerciseClient(serverPort, user))
  }

  test('a target refused behind the VMess server resets the SOCKS tunnel with no data', async () => {
    const ports = await allPorts()
    const client = await startTsray(
      clientConfig(serverPort, ports, { id: AEAD_ID, alterId: 0, security: 'auto' }),
    )
    try {
      // Through VMess the client only learns of the failure when the server closes without a response
      // header: a truncated response, so the app side is reset rather than ended as if answered.
      const closedPort = await freePort()
      const tunnel = await socksConnect(ports.socks, { host: '127.0.0.1', port: closedPort })
      const received: Buffer[] = []
      tunnel.on('data', (chunk: Buffer) => received.push(chunk))
      const closed = new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
        let failure: NodeJS.ErrnoException | undefined
        tunnel.on('error', (error) => (failure = error))
        tunnel.on('close', () => resolve(failure))
      })
      tunnel.end(Buffer.from('hello'))
      const failure = await closed
      assert.equal(Buffer.concat(received).length, 0)
      assert.equal(failure?.code, 'ECONNRESET')
    } finally {
      await client.stop()
    }
  })
})

describe('tsray freedom inbounds report dial failures', () => {
  test('SOCKS5 replies 5 (refused) and HTTP answers 502 for a closed port', async () => {
    const socksPort = await freePort()
    const httpPort = await freePort()
    const closedPort = await freePort()
    const direct = await startTsray({
      inbounds: [
        { listen: '127.0.0.1', port: socksPort, protocol: 'socks', settings: {} },
        { listen: '127.0.0.1', port: httpPort, protocol: 'http', settings: {} },
      ],
      outbounds: [{ protocol: 'freedom' }],
    })
    try {
      await assert.rejects(socksConnect(socksPort, { host: '127.0.0.1', port: closedPort }), { reply: 5 })
      const response = await curl(['-x', `http://127.0.0.1:${httpPort}`, `http://127.0.0.1:${closedPort}/`])
      assert.equal(response.status, 502)
    } finally {
      await direct.stop()
    }
  })
})

failOnLeakedHandles()
