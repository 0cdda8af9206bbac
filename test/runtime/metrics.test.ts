import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { after, before, test } from 'node:test'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { Command } from '../../src/protocol/constants.js'
import { createUser } from '../../src/protocol/user.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, exchange, randomData, sha256Hex, startEchoServer } from '../helpers/net.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort } from '../helpers/v2ray.js'

const ID = 'b831381d-6324-4d53-ad4f-8cda48b30811'
let echo: Awaited<ReturnType<typeof startEchoServer>>

before(async () => {
  echo = await startEchoServer()
})
after(async () => {
  await echo.close()
})

/** One HTTP request on its own connection (no agent, so no socket outlives it). */
function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, path, method, agent: false }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (text: string) => (body += text))
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, type: response.headers['content-type'] ?? '', body }),
      )
    })
    outgoing.on('error', reject)
    outgoing.end()
  })
}

/** The value of the sample `name{labels}` in Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

async function scrapeUntil(port: number, ready: (text: string) => boolean): Promise<string> {
  const deadline = Date.now() + 5_000
  for (;;) {
    const { body } = await get(port, '/metrics')
    if (ready(body) || Date.now() > deadline) return body
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

test('metrics.listen serves Prometheus text: a VMess tunnel and a junk connection move the counters', async () => {
  const [vmessPort, metricsPort] = [await freePort(), await freePort()]
  const tsray = await startTsray({
    inbounds: [
      {
        tag: 'vmess-in',
        listen: '127.0.0.1',
        port: vmessPort,
        protocol: 'vmess',
        settings: { clients: [{ id: ID }] },
      },
    ],
    outbounds: [{ protocol: 'freedom' }],
    metrics: { listen: `127.0.0.1:${metricsPort}` },
  })
  try {
    assert.deepEqual(
      tsray.bound.map(({ tag, port }) => [tag, port]),
      [
        ['vmess-in', vmessPort],
        ['metrics', metricsPort],
      ],
    )
    const before = await get(metricsPort, '/metrics')
    assert.equal(before.status, 200)
    assert.match(before.type, /^text\/plain; version=0\.0\.4/)
    assert.equal(sample(before.body, 'tsray_tunnels_accepted_total{inbound="vmess-in"}'), undefined)

    // A genuine tunnel through the VMess inbound to the echo target.
    const client = new VmessOutbound({
      tag: 'proxy',
      connectTimeoutMs: 5_000,
      server: {
        host: '127.0.0.1',
        port: vmessPort,
        user: createUser({ id: ID }),
        legacy: false,
        security: 'aes-128-gcm',
      },
    })
    const stream = await client.open(Command.Tcp, { network: 'tcp', host: '127.0.0.1', port: echo.port })
    const data = randomData(100_000)
    const received: Buffer[] = []
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => received.push(chunk))
      stream.on('end', resolve)
      stream.on('error', reject)
      stream.end(data)
    })
    stream.destroy()
    assert.equal(sha256Hex(Buffer.concat(received)), sha256Hex(data))

    // Junk on the VMess port: refused as an unknown AuthID, no byte back.
    const junk = await connectTcp(vmessPort)
    assert.equal((await exchange(junk, randomBytes(64))).length, 0)

    const text = await scrapeUntil(
      metricsPort,
      (body) =>
        sample(body, 'tsray_vmess_refusals_total{inbound="vmess-in",reason="AUTH_UNKNOWN"}') === 1 &&
        (sample(body, 'tsray_vmess_sent_bytes_total{inbound="vmess-in"}') ?? 0) > data.length,
    )
    assert.equal(sample(text, 'tsray_tunnels_accepted_total{inbound="vmess-in"}'), 1)
    assert.equal(sample(text, 'tsray_vmess_refusals_total{inbound="vmess-in",reason="AUTH_UNKNOWN"}'), 1)
    // Wire bytes: the payload and its framing, plus the junk's 64 bytes on the way in.
    assert.ok(sample(text, 'tsray_vmess_received_bytes_total{inbound="vmess-in"}')! > data.length + 64, text)
    assert.ok(sample(text, 'tsray_vmess_sent_bytes_total{inbound="vmess-in"}')! > data.length, text)
    assert.match(text, /^# HELP tsray_vmess_connections VMess connections open now, by phase$/m)

    assert.equal((await get(metricsPort, '/')).status, 404)
    assert.equal((await get(metricsPort, '/metrics/x')).status, 404)
    assert.equal((await get(metricsPort, '/metrics', 'POST')).status, 405)
    assert.equal((await get(metricsPort, '/metrics?name[]=x')).status, 200)
  } finally {
    await tsray.stop()
  }
  // Stopping the instance closes the endpoint.
  await assert.rejects(get(metricsPort, '/metrics'), { code: 'ECONNREFUSED' })
})

test('a metrics port already in use fails the start with a clear message and binds nothing', async () => {
  const vmessPort = await freePort()
  await assert.rejects(
    startTsray({
      inbounds: [
        { listen: '127.0.0.1', port: vmessPort, protocol: 'vmess', settings: { clients: [{ id: ID }] } },
      ],
      outbounds: [{ protocol: 'freedom' }],
      // The echo server holds this port.
      metrics: { listen: `127.0.0.1:${echo.port}` },
    }),
    /Cannot serve metrics on 127\.0\.0\.1:\d+: the port is in use/,
  )
  // The VMess inbound bound before the failure was closed again.
  await assert.rejects(connectTcp(vmessPort), { code: 'ECONNREFUSED' })
})

failOnLeakedHandles()
