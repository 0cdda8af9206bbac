import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { validateConfig } from '../../src/config/load.js'
import { createLogs } from '../../src/observe/log.js'
import { createMetrics, MAX_USER_LABELS } from '../../src/observe/metrics.js'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { createClientRequest } from '../../src/protocol/client-request.js'
import { Command, Option, Security } from '../../src/protocol/constants.js'
import { createUser } from '../../src/protocol/user.js'
import { secureRandom } from '../../src/crypto/random.js'
import { buildInstance } from '../../src/runtime/build.js'
import { connectTcp, randomData, startEchoServer } from '../helpers/net.js'
import { freePort } from '../helpers/v2ray.js'

/** The value of one sample line of Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

test('Prometheus: per-user and per-inbound traffic, clock-skew refusals by size, and the Node runtime figures', async () => {
  const id = randomUUID()
  const port = await freePort()
  const echo = await startEchoServer()
  const metrics = createMetrics()
  const instance = buildInstance(
    validateConfig({
      stats: {},
      policy: {
        levels: { '0': { statsUserUplink: true, statsUserDownlink: true } },
        system: { statsInboundUplink: true, statsInboundDownlink: true },
      },
      inbounds: [
        {
          tag: 'vin',
          listen: '127.0.0.1',
          port,
          protocol: 'vmess',
          settings: { clients: [{ id, email: 'u@x' }] },
        },
      ],
      outbounds: [{ protocol: 'freedom' }],
    }).config,
    { logs: createLogs({ level: 'none', access: { to: 'none' }, error: { to: 'none' } }), metrics },
  )
  await instance.start()
  try {
    const user = createUser({ id })
    const client = new VmessOutbound({
      tag: 'proxy',
      connectTimeoutMs: 5_000,
      server: { host: '127.0.0.1', port, user, legacy: false, security: 'aes-128-gcm' },
    })
    const stream = await client.open(Command.Tcp, { network: 'tcp', host: '127.0.0.1', port: echo.port })
    const data = randomData(5000)
    let echoed = 0
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => (echoed += chunk.length))
      stream.on('end', resolve)
      stream.on('error', reject)
      stream.end(data)
    })
    stream.destroy()
    assert.equal(echoed, 5000)

    // A genuine request from a client whose clock is 600 s behind: refused as AUTH_CLOCK_SKEW.
    const skewed = createClientRequest(user, {
      legacy: false,
      security: Security.Aes128Gcm,
      options: Option.ChunkStream,
      command: Command.Tcp,
      host: '127.0.0.1',
      port: echo.port,
      now: Math.floor(Date.now() / 1000) - 600,
      random: secureRandom,
    }).wire
    const socket = await connectTcp(port)
    socket.on('error', () => undefined)
    socket.write(skewed)
    let text = ''
    for (let i = 0; i < 100; i++) {
      text = await metrics.registry.metrics()
      if (sample(text, 'tsray_vmess_clock_skew_seconds_count{inbound="vin"}') === 1) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    socket.destroy()
    assert.equal(sample(text, 'tsray_vmess_refusals_total{inbound="vin",reason="AUTH_CLOCK_SKEW"}'), 1)
    assert.equal(sample(text, 'tsray_vmess_clock_skew_seconds_bucket{le="300",inbound="vin"}'), 0)
    assert.equal(sample(text, 'tsray_vmess_clock_skew_seconds_bucket{le="1800",inbound="vin"}'), 1)
    assert.equal(sample(text, 'tsray_user_traffic_bytes_total{user="u@x",direction="uplink"}'), 5000)
    assert.equal(sample(text, 'tsray_user_traffic_bytes_total{user="u@x",direction="downlink"}'), 5000)
    assert.equal(sample(text, 'tsray_inbound_traffic_bytes_total{inbound="vin",direction="uplink"}'), 5000)
    assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0, 'collectDefaultMetrics')
    assert.match(text, /^nodejs_eventloop_lag_seconds /m)
  } finally {
    await instance.stop(100)
    await echo.close()
  }
})

test('Prometheus: user labels are bounded, the rest summed as _other', async () => {
  const metrics = createMetrics()
  const users = Array.from({ length: MAX_USER_LABELS + 5 }, (_, i) => `user>>>u${i}>>>traffic>>>uplink`)
  metrics.trafficCounters(() => users.map((name) => [name, 2] as const))
  const text = await metrics.registry.metrics()
  const series = text.split('\n').filter((line) => line.startsWith('tsray_user_traffic_bytes_total{'))
  assert.equal(series.length, MAX_USER_LABELS + 1)
  assert.equal(sample(text, 'tsray_user_traffic_bytes_total{user="_other",direction="uplink"}'), 10)
})
