// Transports against the real V2Ray 4.34 in both directions: the same streamSettings JSON on both ends, random
// data checked by SHA-256, one stream at a time and several at once.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { randomData, sha256Hex, startEchoServer } from '../helpers/net.js'
import { echoThrough } from '../helpers/transfer.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort, startV2ray, type V2rayProcess } from '../helpers/v2ray.js'

const ID = 'b831381d-6324-4d53-ad4f-8cda48b30811'
/** One byte, a V2Ray chunk and a bit, and a size that needs many chunks and messages. */
const SIZES = [1, 2100, 3 * 1024 * 1024]
const CONCURRENT_STREAMS = 6
const CONCURRENT_BYTES = 512 * 1024

let certs: TestCertificates
let echo: Awaited<ReturnType<typeof startEchoServer>>

before(async () => {
  certs = makeTestCertificates()
  echo = await startEchoServer()
})
after(async () => {
  await echo.close()
  certs.remove()
})

interface TransportCase {
  readonly name: string
  /** streamSettings of the VMess inbound (server side). */
  readonly server: () => object
  /** streamSettings of the VMess outbound (client side). */
  readonly client: () => object
}

const serverTls = (): object => ({
  certificates: [{ certificateFile: certs.certFile, keyFile: certs.keyFile }],
})
// The client trusts the test CA the way V2Ray 4.34 documents it: listed in certificates, usage "verify".
const clientTls = (): object => ({
  serverName: 'localhost',
  certificates: [{ certificateFile: certs.caFile, usage: 'verify' }],
})
const wsSettings = { path: '/ray', headers: { Host: 'cdn.example.com' } }
const httpHeader = {
  type: 'http',
  request: {
    path: ['/video/1.mp4', '/video/2.mp4'],
    headers: { Host: ['media.example.com'], 'User-Agent': ['Mozilla/5.0'], Connection: ['keep-alive'] },
  },
  response: { headers: { 'Content-Type': ['video/mp4'], Connection: ['keep-alive'] } },
}

const h2Settings = { host: ['h2.example', 'h2b.example'], path: '/h2' }

const CASES: TransportCase[] = [
  {
    name: 'h2 + TLS',
    server: () => ({ network: 'http', security: 'tls', httpSettings: h2Settings, tlsSettings: serverTls() }),
    client: () => ({ network: 'h2', security: 'tls', httpSettings: h2Settings, tlsSettings: clientTls() }),
  },
  {
    name: 'TLS',
    server: () => ({ network: 'tcp', security: 'tls', tlsSettings: serverTls() }),
    client: () => ({ network: 'tcp', security: 'tls', tlsSettings: clientTls() }),
  },
  {
    name: 'WebSocket',
    server: () => ({ network: 'ws', wsSettings }),
    client: () => ({ network: 'ws', wsSettings }),
  },
  {
    name: 'WebSocket + TLS',
    server: () => ({ network: 'ws', security: 'tls', wsSettings, tlsSettings: serverTls() }),
    client: () => ({ network: 'ws', security: 'tls', wsSettings, tlsSettings: clientTls() }),
  },
  {
    name: 'TCP with HTTP header obfuscation',
    server: () => ({ network: 'tcp', tcpSettings: { header: httpHeader } }),
    client: () => ({ network: 'tcp', tcpSettings: { header: httpHeader } }),
  },
  {
    name: 'TLS + HTTP header obfuscation',
    server: () => ({
      network: 'tcp',
      security: 'tls',
      tlsSettings: serverTls(),
      tcpSettings: { header: httpHeader },
    }),
    client: () => ({
      network: 'tcp',
      security: 'tls',
      tlsSettings: clientTls(),
      tcpSettings: { header: httpHeader },
    }),
  },
]

function serverConfig(port: number, streamSettings: object): object {
  return {
    log: { loglevel: 'warning' },
    inbounds: [
      { listen: '127.0.0.1', port, protocol: 'vmess', settings: { clients: [{ id: ID }] }, streamSettings },
    ],
    outbounds: [{ protocol: 'freedom' }],
  }
}

function clientConfig(forwardPort: number, serverPort: number, streamSettings: object): object {
  return {
    log: { loglevel: 'warning' },
    inbounds: [
      {
        listen: '127.0.0.1',
        port: forwardPort,
        protocol: 'dokodemo-door',
        settings: { address: '127.0.0.1', port: echo.port, network: 'tcp' },
      },
    ],
    outbounds: [
      {
        protocol: 'vmess',
        settings: {
          vnext: [{ address: '127.0.0.1', port: serverPort, users: [{ id: ID, security: 'aes-128-gcm' }] }],
        },
        streamSettings,
      },
    ],
  }
}

/** Random data through the client's forward port to the echo server and back: each size, then several at once. */
async function checkTraffic(forwardPort: number, describeFailure: () => string): Promise<void> {
  for (const size of SIZES) {
    const data = randomData(size)
    const back = await echoThrough(forwardPort, data).catch((error: Error) => {
      throw new Error(`${size} bytes: ${error.message}\n${describeFailure()}`)
    })
    assert.equal(sha256Hex(back), sha256Hex(data), `${size} bytes`)
  }
  const streams = Array.from({ length: CONCURRENT_STREAMS }, () => randomData(CONCURRENT_BYTES))
  const backs = await Promise.all(streams.map((data) => echoThrough(forwardPort, data)))
  assert.deepEqual(backs.map(sha256Hex), streams.map(sha256Hex), 'concurrent streams')
}

describe('V2Ray 4.34 client → tsray server', () => {
  for (const c of CASES) {
    test(`${c.name}: V2Ray's vmess outbound reaches tsray's vmess inbound`, async () => {
      const serverPort = await freePort()
      const forwardPort = await freePort()
      const server = await startTsray(serverConfig(serverPort, c.server()))
      let v2ray: V2rayProcess | undefined
      try {
        v2ray = await startV2ray(clientConfig(forwardPort, serverPort, c.client()), { waitPort: forwardPort })
        const output = v2ray.output
        await checkTraffic(forwardPort, () => output())
      } finally {
        await v2ray?.stop()
        await server.stop()
      }
    })
  }
})

describe('tsray client → V2Ray 4.34 server', () => {
  for (const c of CASES) {
    test(`${c.name}: tsray's vmess outbound reaches V2Ray's vmess inbound`, async () => {
      const serverPort = await freePort()
      const forwardPort = await freePort()
      const v2ray = await startV2ray(serverConfig(serverPort, c.server()), { waitPort: serverPort })
      let client: Awaited<ReturnType<typeof startTsray>> | undefined
      try {
        client = await startTsray(clientConfig(forwardPort, serverPort, c.client()))
        await checkTraffic(forwardPort, () => v2ray.output())
      } finally {
        await client?.stop()
        await v2ray.stop()
      }
    })
  }
})

// V2Ray serves h2 without TLS as h2c, but its client dials h2 over TLS only: this seat is tsray's client.
test("h2c: tsray's vmess outbound reaches V2Ray's h2c vmess inbound", async () => {
  const serverPort = await freePort()
  const forwardPort = await freePort()
  const stream = { network: 'http', httpSettings: { path: '/h2c' } }
  const v2ray = await startV2ray(serverConfig(serverPort, stream), { waitPort: serverPort })
  let client: Awaited<ReturnType<typeof startTsray>> | undefined
  try {
    client = await startTsray(clientConfig(forwardPort, serverPort, stream))
    await checkTraffic(forwardPort, () => v2ray.output())
  } finally {
    await client?.stop()
    await v2ray.stop()
  }
})

/** What V2Ray 4.34 cannot speak: early data and HTTPUpgrade, tsray on both ends with the same JSON. */
const TSRAY_ONLY: TransportCase[] = [
  {
    name: "WebSocket + TLS with Xray's ?ed=2048",
    server: () => ({
      network: 'ws',
      security: 'tls',
      wsSettings: { path: '/ray?ed=2048' },
      tlsSettings: serverTls(),
    }),
    client: () => ({
      network: 'ws',
      security: 'tls',
      wsSettings: { path: '/ray?ed=2048' },
      tlsSettings: clientTls(),
    }),
  },
  {
    name: "WebSocket with v2fly's maxEarlyData in a header",
    server: () => ({
      network: 'ws',
      wsSettings: { path: '/ray', maxEarlyData: 2048, earlyDataHeaderName: 'Sec-WebSocket-Protocol' },
    }),
    client: () => ({
      network: 'ws',
      wsSettings: { path: '/ray', maxEarlyData: 2048, earlyDataHeaderName: 'Sec-WebSocket-Protocol' },
    }),
  },
  {
    name: "WebSocket with v2fly's maxEarlyData in the path",
    server: () => ({ network: 'ws', wsSettings: { path: '/ray', maxEarlyData: 1024 } }),
    client: () => ({ network: 'ws', wsSettings: { path: '/ray', maxEarlyData: 1024 } }),
  },
  {
    name: 'HTTPUpgrade',
    server: () => ({ network: 'httpupgrade', httpupgradeSettings: { path: '/up', host: 'h.example' } }),
    client: () => ({ network: 'httpupgrade', httpupgradeSettings: { path: '/up', host: 'h.example' } }),
  },
  {
    name: 'HTTPUpgrade + TLS with ?ed',
    server: () => ({
      network: 'httpupgrade',
      security: 'tls',
      httpupgradeSettings: { path: '/up?ed=2048' },
      tlsSettings: serverTls(),
    }),
    client: () => ({
      network: 'httpupgrade',
      security: 'tls',
      httpupgradeSettings: { path: '/up?ed=2048' },
      tlsSettings: clientTls(),
    }),
  },
]

describe('tsray client → tsray server (what V2Ray 4.34 cannot speak)', () => {
  for (const c of TSRAY_ONLY) {
    test(`${c.name}: VMess through the same streamSettings on both ends`, async () => {
      const serverPort = await freePort()
      const forwardPort = await freePort()
      const server = await startTsray(serverConfig(serverPort, c.server()))
      let client: Awaited<ReturnType<typeof startTsray>> | undefined
      try {
        client = await startTsray(clientConfig(forwardPort, serverPort, c.client()))
        await checkTraffic(forwardPort, () => '')
      } finally {
        await client?.stop()
        await server.stop()
      }
    })
  }
})

failOnLeakedHandles()
