// createStreamServer / createStreamDialer: every network under every security carries bytes both ways, and the
// servers listen, refuse a busy port and close like the TCP one.
import assert from 'node:assert/strict'
import type { Duplex } from 'node:stream'
import { after, before, test } from 'node:test'
import {
  createStreamDialer,
  createStreamServer,
  type StreamSettings,
} from '../../src/transport/stream-settings.js'
import type { TlsSettings } from '../../src/transport/tls.js'
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { randomData, sha256Hex } from '../helpers/net.js'

let certs: TestCertificates
before(() => {
  certs = makeTestCertificates()
})
after(() => certs.remove())

const tls = (): TlsSettings => ({
  serverName: 'localhost',
  alpn: undefined,
  allowInsecure: false,
  disableSystemRoot: false,
  certificates: [
    { certificate: { file: certs.certFile }, key: { file: certs.keyFile }, usage: 'encipherment' },
    { certificate: { file: certs.caFile }, key: undefined, usage: 'verify' },
  ],
})
const httpHeader = {
  request: {
    version: '1.1',
    method: 'GET',
    paths: ['/'],
    headers: [{ name: 'Host', values: ['a.example'] }],
  },
  response: { version: '1.1', status: '200', reason: 'OK', headers: [] },
}
const ws = { path: '/ray', host: undefined, requireHost: false, headers: [], earlyData: undefined }
const httpUpgrade = { path: '/up', host: undefined, headers: [], earlyData: false }

const NETWORKS: [
  string,
  (security: () => { security: 'none' } | { security: 'tls'; tls: TlsSettings }) => StreamSettings,
][] = [
  ['tcp', (security) => ({ network: 'tcp', ...security() })],
  ['tcp with HTTP header', (security) => ({ network: 'tcp', ...security(), httpHeader })],
  ['ws', (security) => ({ network: 'ws', ...security(), ws })],
  ['httpupgrade', (security) => ({ network: 'httpupgrade', ...security(), httpUpgrade })],
]
const SECURITIES: [string, () => { security: 'none' } | { security: 'tls'; tls: TlsSettings }][] = [
  ['none', () => ({ security: 'none' })],
  ['tls', () => ({ security: 'tls', tls: tls() })],
]

function roundTrip(stream: Duplex, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      total += chunk.length
      if (total >= data.length) resolve(Buffer.concat(chunks))
    })
    stream.once('error', reject)
    stream.write(data)
  })
}

for (const [networkName, make] of NETWORKS) {
  for (const [securityName, security] of SECURITIES) {
    test(`createStreamServer and createStreamDialer: ${networkName} over ${securityName} carries random data, five streams at once`, async () => {
      const settings = make(security)
      const server = createStreamServer(settings, {
        listen: '127.0.0.1',
        port: 0,
        onStream: (stream) => stream.pipe(stream),
      })
      const port = await server.listen()
      try {
        const dial = createStreamDialer(settings, { connectTimeoutMs: 2_000 })
        const payloads = [1, 16_384, 100_000, 700_000, 2_000_000].map((n) => randomData(n))
        const backs = await Promise.all(
          payloads.map(async (data) => {
            const stream = await dial('127.0.0.1', port)
            const back = await roundTrip(stream, data)
            stream.destroy()
            return back
          }),
        )
        assert.deepEqual(backs.map(sha256Hex), payloads.map(sha256Hex))
      } finally {
        await server.close(100)
      }
    })
  }
}

test('createStreamServer refuses a busy port by name and closes open streams after the grace period', async () => {
  const settings: StreamSettings = { network: 'ws', security: 'none', ws }
  const opened: Duplex[] = []
  const server = createStreamServer(settings, {
    listen: '127.0.0.1',
    port: 0,
    onStream: (stream) => opened.push(stream),
  })
  const port = await server.listen()
  const busy = createStreamServer(settings, { listen: '127.0.0.1', port, onStream: () => undefined })
  await assert.rejects(busy.listen(), { code: 'EADDRINUSE', message: /the port is in use/ })
  await busy.close(0)
  const client = await createStreamDialer(settings, { connectTimeoutMs: 2_000 })('127.0.0.1', port)
  client.on('error', () => undefined)
  client.resume()
  const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()))
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(opened.length, 1)
  await server.close(50)
  await clientClosed
})

/** A dial's failure: its rejection, or the first 'error' of a stream handed over while it connects. */
async function dialFailure(dialed: Duplex | Promise<Duplex>): Promise<unknown> {
  try {
    const stream = await dialed
    return await new Promise((resolve) => stream.once('error', resolve))
  } catch (error) {
    return error
  }
}

test('createStreamDialer fails with ECONNREFUSED when nothing listens (a TransportError where it dials first)', async () => {
  const free = createStreamServer(
    { network: 'tcp', security: 'none' },
    { listen: '127.0.0.1', port: 0, onStream: () => undefined },
  )
  const port = await free.listen()
  await free.close(0)
  for (const [network, make] of NETWORKS) {
    const dialed = createStreamDialer(
      make(() => ({ security: 'none' })),
      { connectTimeoutMs: 1_000 },
    )('127.0.0.1', port)
    // Plain TCP hands its socket over at once; the others reject.
    assert.equal(dialed instanceof Promise, network !== 'tcp', network)
    const failure = (await dialFailure(dialed)) as { name?: string; code?: string }
    assert.equal(failure.code, 'ECONNREFUSED', network)
    if (network !== 'tcp') assert.equal(failure.name, 'TransportError', network)
  }
})

failOnLeakedHandles()
