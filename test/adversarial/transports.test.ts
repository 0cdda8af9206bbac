import assert from 'node:assert/strict'
import { randomBytes, randomInt } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { readSection, streamSettingsSchema, type ConfigReport } from '../../src/config/schema.js'
import type { VmessInbound } from '../../src/inbound/vmess.js'
import { Command } from '../../src/protocol/constants.js'
import {
  createStreamDialer,
  createStreamServer,
  type StreamSettings,
} from '../../src/transport/stream-settings.js'
import type { StreamServer } from '../../src/transport/transport.js'
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { startEchoServer } from '../helpers/net.js'
import { flipped, pool } from '../helpers/probe.js'
import { ADDRESSES, firstChunk, genuineRequest, MemoryMetrics, userWithDrain } from '../helpers/requests.js'
import { testVmessInbound } from '../helpers/vmess-server.js'

// The probe oracle of probes.test.ts carried over every transport a VMess inbound serves: inside TLS,
// WebSocket, HTTPUpgrade, the HTTP header, an h2 stream or a gRPC call, a damaged or cut-short genuine header draws exactly what
// random bytes of the same length draw, and a refusal sends no byte of the inner stream.
const DEADLINE_MS = 1_500
const { user, threshold } = userWithDrain({ min: 150, max: 230 })
const metrics = new MemoryMetrics()

/** How the server ended the inner stream: a clean end, an error/abort, or not at all. */
interface StreamReaction {
  readonly bytes: number
  readonly ending: 'end' | 'abort' | 'none'
  /** `prompt`: well before the deadline; `deadline`: at it; `never`: not within the deadline + 3 s. */
  readonly when: 'prompt' | 'deadline' | 'never'
}

const classOf = (reaction: StreamReaction): string =>
  `${reaction.bytes} bytes, ${reaction.ending}, ${reaction.when}`

/** Each transport as V2Ray v4 JSON `streamSettings`, for the server and for the client. */
function transports(certs: TestCertificates): { name: string; server: object; client: object }[] {
  const serverTls = {
    security: 'tls',
    tlsSettings: { certificates: [{ certificateFile: certs.certFile, keyFile: certs.keyFile }] },
  }
  const clientTls = {
    security: 'tls',
    tlsSettings: {
      serverName: 'localhost',
      disableSystemRoot: true,
      certificates: [{ certificateFile: certs.caFile, usage: 'verify' }],
    },
  }
  const ws = { network: 'ws', wsSettings: { path: '/vmess' } }
  const upgrade = { network: 'httpupgrade', httpupgradeSettings: { path: '/up' } }
  const header = { network: 'tcp', tcpSettings: { header: { type: 'http', request: { path: ['/'] } } } }
  const h2 = { network: 'http', httpSettings: { path: '/h2' } }
  const grpc = { network: 'grpc', grpcSettings: { serviceName: 'probe.Gun' } }
  return [
    { name: 'TLS', server: serverTls, client: clientTls },
    { name: 'WebSocket', server: ws, client: ws },
    { name: 'WebSocket + TLS', server: { ...ws, ...serverTls }, client: { ...ws, ...clientTls } },
    { name: 'HTTPUpgrade', server: upgrade, client: upgrade },
    { name: 'HTTP header', server: header, client: header },
    { name: 'h2 + TLS', server: { ...h2, ...serverTls }, client: { ...h2, ...clientTls } },
    { name: 'h2c', server: h2, client: h2 },
    { name: 'gRPC', server: grpc, client: grpc },
    { name: 'gRPC + TLS', server: { ...grpc, ...serverTls }, client: { ...grpc, ...clientTls } },
  ]
}

function streamSettings(json: object): StreamSettings {
  const report: ConfigReport = { errors: [], warnings: [] }
  const settings = readSection(streamSettingsSchema, json, { path: ['streamSettings'], report })
  assert.deepEqual(report.errors, [], `streamSettings ${JSON.stringify(json)}`)
  assert.ok(settings !== undefined)
  return settings
}

/** Opens the inner stream, writes `input` (then ends it, for `fin`) and records what the server does. */
async function probeStream(
  dial: () => Promise<Duplex> | Duplex,
  input: Buffer,
  mode: 'fin' | 'hold',
): Promise<StreamReaction> {
  const stream = await dial()
  const start = performance.now()
  return new Promise((resolve) => {
    let bytes = 0
    let settled = false
    const settle = (ending: StreamReaction['ending']): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      const ms = performance.now() - start
      const when = ending === 'none' ? 'never' : ms < DEADLINE_MS * 0.7 ? 'prompt' : 'deadline'
      stream.destroy()
      resolve({ bytes, ending, when })
    }
    const timer = setTimeout(() => settle('none'), DEADLINE_MS + 3_000)
    stream.on('data', (chunk: Buffer) => (bytes += chunk.length))
    stream.on('end', () => settle('end'))
    stream.on('error', () => settle('abort'))
    stream.on('close', () => settle('abort'))
    if (input.length > 0) stream.write(input)
    if (mode === 'fin') stream.end()
  })
}

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

const genuine = (): Buffer =>
  genuineRequest(user, {
    legacy: false,
    command: Command.Tcp,
    host: ADDRESSES.ipv4,
    port: echo.port,
    padding: 0,
  }).wire

describe('probes inside each transport draw the reaction of random bytes', () => {
  for (const name of [
    'TLS',
    'WebSocket',
    'WebSocket + TLS',
    'HTTPUpgrade',
    'HTTP header',
    'h2 + TLS',
    'h2c',
    'gRPC',
    'gRPC + TLS',
  ]) {
    describe(name, () => {
      let inbound: VmessInbound
      let server: StreamServer
      let dial: () => Promise<Duplex> | Duplex
      before(async () => {
        const transport = transports(certs).find((t) => t.name === name)!
        inbound = testVmessInbound([user], { handshakeTimeoutMs: DEADLINE_MS, metrics })
        server = createStreamServer(streamSettings(transport.server), {
          listen: '127.0.0.1',
          port: 0,
          onStream: (stream, peer) => inbound.accept(stream, peer),
        })
        const port = await server.listen()
        const dialer = createStreamDialer(streamSettings(transport.client), { connectTimeoutMs: 5_000 })
        dial = () => dialer('127.0.0.1', port)
      })
      after(() => server.close(100))

      test('a genuine request through it is answered (the setup reaches the inbound)', async () => {
        const request = genuineRequest(user, {
          legacy: false,
          command: Command.Tcp,
          host: ADDRESSES.ipv4,
          port: echo.port,
          padding: 0,
        })
        const stream = await dial()
        const payload = randomBytes(1_000)
        const answered = new Promise<number>((resolve, reject) => {
          let bytes = 0
          stream.on('data', (chunk: Buffer) => {
            bytes += chunk.length
            // The response header and one sealed chunk carrying the echo.
            if (bytes > payload.length) resolve(bytes)
          })
          stream.on('error', reject)
          stream.on('close', () => reject(new Error(`closed after ${bytes} bytes`)))
        })
        stream.write(Buffer.concat([request.wire, firstChunk(request, payload)]))
        assert.ok((await answered) > payload.length)
        stream.destroy()
      })

      for (const mode of ['fin', 'hold'] as const) {
        test(`flipped bits, a cut-short header and random bytes: one silent class (${mode})`, async () => {
          const length = genuine().length
          const control = await probeStream(dial, randomBytes(length), mode)
          assert.equal(control.bytes, 0, `random bytes drew ${classOf(control)}`)
          assert.equal(control.ending, 'end', `random bytes drew ${classOf(control)}`)
          // WebSocket has no half-close: the client's end() sends nothing, so the server sees no EOF either.
          const eofReachesServer = mode === 'fin' && !name.startsWith('WebSocket')
          assert.equal(control.when, eofReachesServer ? 'prompt' : 'deadline')
          // Bits in the AuthID, in the sealed length and in the sealed header; every prefix length class.
          const inputs = [
            ...[0, 77, 127, 128 + 8 * 18 + 3, 8 * length - 1].map((bit) => ({
              name: `bit ${bit} flipped`,
              bytes: flipped(genuine(), bit),
            })),
            { name: 'cut after the AuthID', bytes: genuine().subarray(0, 16) },
            { name: 'cut one byte short', bytes: genuine().subarray(0, length - 1) },
            { name: 'random bytes, another draw', bytes: randomBytes(length) },
          ]
          const failures: string[] = []
          await pool(inputs, 8, async (input) => {
            const reaction = await probeStream(dial, input.bytes, mode)
            // A shorter input closes as random bytes of its own length do: compare the class of the control
            // when the lengths agree, else the silent class for that mode.
            const expected =
              input.bytes.length === length ? classOf(control) : `0 bytes, end, ${control.when}`
            if (classOf(reaction) !== expected) failures.push(`${input.name}: ${classOf(reaction)}`)
          })
          assert.deepEqual(failures, [], `expected ${classOf(control)}`)
        })
      }

      test('random bytes past the drain threshold: closed there with no byte, held or ended', async () => {
        for (const mode of ['fin', 'hold'] as const) {
          const reaction = await probeStream(dial, randomBytes(threshold + 1 + randomInt(200)), mode)
          assert.equal(classOf(reaction), '0 bytes, end, prompt', mode)
        }
      })
    })
  }
})

failOnLeakedHandles()
