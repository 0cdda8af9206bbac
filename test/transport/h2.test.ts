import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect, type IncomingHttpHeaders } from 'node:http2'
import type { Duplex } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { readSection, streamSettingsSchema, type ConfigReport } from '../../src/config/schema.js'
import {
  createStreamDialer,
  createStreamServer,
  type StreamSettings,
} from '../../src/transport/stream-settings.js'
import type { StreamServer } from '../../src/transport/transport.js'
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { sha256Hex } from '../helpers/net.js'

function streamSettings(json: object): StreamSettings {
  const report: ConfigReport = { errors: [], warnings: [] }
  const settings = readSection(streamSettingsSchema, json, { path: ['streamSettings'], report })
  assert.deepEqual(report.errors, [], JSON.stringify(json))
  assert.ok(settings !== undefined)
  return settings
}

test('httpSettings reads host as a list or a comma string and normalises the path as V2Ray does', () => {
  assert.deepEqual(streamSettings({ network: 'h2' }), {
    network: 'h2',
    security: 'none',
    h2: { hosts: [], path: '/', method: 'PUT' },
  })
  assert.deepEqual(
    streamSettings({ network: 'http', httpSettings: { host: 'a.example,b.example', path: 'x' } }),
    {
      network: 'h2',
      security: 'none',
      h2: { hosts: ['a.example', 'b.example'], path: '/x', method: 'PUT' },
    },
  )
})

/** An echo server for `json`, whose streams report what they were opened with. */
async function echoServer(json: object): Promise<{ server: StreamServer; port: number; streams: number }> {
  const state = { server: undefined as unknown as StreamServer, port: 0, streams: 0 }
  state.server = createStreamServer(streamSettings(json), {
    listen: '127.0.0.1',
    port: 0,
    onStream: (stream) => {
      state.streams += 1
      stream.on('data', (chunk: Buffer) => stream.write(chunk))
      stream.on('end', () => stream.end())
    },
  })
  state.port = await state.server.listen()
  return state
}

async function roundTrip(stream: Duplex, data: Buffer): Promise<Buffer> {
  const back: Buffer[] = []
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => back.push(chunk))
    stream.once('end', resolve)
    stream.once('error', reject)
  })
  stream.end(data)
  await ended
  stream.destroy()
  return Buffer.concat(back)
}

describe('h2 transport', () => {
  let certs: TestCertificates
  before(() => {
    certs = makeTestCertificates()
  })
  after(() => certs.remove())

  test('a tsray client and server over TLS (ALPN h2) carry every byte, several streams on one session', async () => {
    const h2 = { network: 'h2', httpSettings: { host: ['h.example'], path: '/tunnel' } }
    const { server, port } = await echoServer({
      ...h2,
      security: 'tls',
      tlsSettings: { certificates: [{ certificateFile: certs.certFile, keyFile: certs.keyFile }] },
    })
    try {
      const dial = createStreamDialer(
        streamSettings({
          ...h2,
          security: 'tls',
          tlsSettings: {
            serverName: 'localhost',
            certificates: [{ certificateFile: certs.caFile, usage: 'verify' }],
          },
        }),
        { connectTimeoutMs: 5_000 },
      )
      const inputs = [randomBytes(1), randomBytes(500_000), randomBytes(100_000)]
      const backs = await Promise.all(
        inputs.map(async (data) => roundTrip(await dial('127.0.0.1', port), data)),
      )
      assert.deepEqual(backs.map(sha256Hex), inputs.map(sha256Hex))
    } finally {
      await server.close(100)
    }
  })

  test("a server answers 404 to another Host or path (the default Host is V2Ray's www.example.com), 200 with no-store to its own", async () => {
    const state = await echoServer({ network: 'h2', httpSettings: { path: '/p' } })
    const { server, port } = state
    const session = connect(`http://127.0.0.1:${port}`)
    session.on('error', () => undefined)
    const ask = (authority: string, path: string): Promise<IncomingHttpHeaders> =>
      new Promise((resolve, reject) => {
        const stream = session.request({ ':method': 'PUT', ':path': path, ':authority': authority })
        stream.on('error', reject)
        stream.once('response', (headers) => {
          stream.destroy()
          resolve(headers)
        })
      })
    try {
      assert.equal((await ask('other.example', '/p'))[':status'], 404)
      assert.equal((await ask('www.example.com', '/q'))[':status'], 404)
      const admitted = await ask('www.example.com', '/p/longer')
      assert.deepEqual([admitted[':status'], admitted['cache-control']], [200, 'no-store'])
      assert.equal(state.streams, 1, 'only the admitted stream reaches the inbound')
    } finally {
      session.destroy()
      await server.close(100)
    }
  })

  test('a client whose server answers 404 fails the dial with the status', async () => {
    const { server, port } = await echoServer({ network: 'h2', httpSettings: { host: ['a.example'] } })
    try {
      const dial = createStreamDialer(
        streamSettings({ network: 'h2', httpSettings: { host: ['b.example'] } }),
        {
          connectTimeoutMs: 5_000,
        },
      )
      await assert.rejects(Promise.resolve(dial('127.0.0.1', port)), /answered 404/)
    } finally {
      await server.close(100)
    }
  })
})

failOnLeakedHandles()
