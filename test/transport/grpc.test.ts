import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { readSection, streamSettingsSchema, type ConfigReport } from '../../src/config/schema.js'
import { ProtocolError } from '../../src/errors.js'
import { gunPaths } from '../../src/transport/grpc.js'
import { encodeGunMessage, GunDecoder, MAX_GRPC_MESSAGE_BYTES } from '../../src/transport/gun-codec.js'
import {
  createStreamDialer,
  createStreamServer,
  type StreamSettings,
} from '../../src/transport/stream-settings.js'
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js'
import {
  gunClient,
  gunServiceDefinition,
  grpc,
  messageData,
  openGunCall,
  type GunMessage,
} from '../helpers/gun-service.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { sha256Hex } from '../helpers/net.js'

function decodeAll(decoder: GunDecoder, pieces: Buffer[]): Buffer {
  return Buffer.concat(pieces.flatMap((piece) => decoder.push(piece)))
}

describe('gun framing', () => {
  test('GunDecoder reads messages split at every byte boundary', () => {
    const data = [randomBytes(1), randomBytes(200), randomBytes(0), randomBytes(300)]
    const wire = Buffer.concat(data.map((bytes) => encodeGunMessage(bytes)))
    const expected = Buffer.concat(data)
    for (let split = 0; split <= wire.length; split++) {
      const decoder = new GunDecoder()
      const out = decodeAll(decoder, [wire.subarray(0, split), wire.subarray(split)])
      assert.ok(out.equals(expected), `split at ${split}`)
      assert.ok(decoder.atBoundary)
    }
    const decoder = new GunDecoder()
    const byByte = decodeAll(
      decoder,
      [...wire].map((byte) => Buffer.of(byte)),
    )
    assert.ok(byByte.equals(expected))
  })

  test('GunDecoder reads a MultiHunk with several entries and skips fields it does not know', () => {
    // MultiHunk { data: ["ab", "cde"] } plus field 2 (varint 300), field 3 (fixed32) and field 4 (bytes).
    const message = Buffer.from([
      0x0a, 2, 0x61, 0x62, 0x10, 0xac, 0x02, 0x1d, 1, 2, 3, 4, 0x22, 1, 0x7a, 0x0a, 3, 0x63, 0x64, 0x65,
    ])
    const prefix = Buffer.alloc(5)
    prefix.writeUInt32BE(message.length, 1)
    const pieces = new GunDecoder().push(Buffer.concat([prefix, message]))
    assert.deepEqual(
      pieces.map((piece) => piece.toString()),
      ['ab', 'cde'],
    )
  })

  test('GunDecoder refuses compressed, oversized and overrunning messages with a ProtocolError', () => {
    const cases: [string, Buffer][] = [
      ['compressed', Buffer.from([1, 0, 0, 0, 2, 0x0a, 0])],
      [
        'oversized',
        Buffer.from([0, ...Buffer.from((MAX_GRPC_MESSAGE_BYTES + 1).toString(16).padStart(8, '0'), 'hex')]),
      ],
      ['field overruns', Buffer.from([0, 0, 0, 0, 3, 0x0a, 5, 1])],
      ['group wire type', Buffer.from([0, 0, 0, 0, 2, 0x0b, 0])],
    ]
    for (const [name, wire] of cases) {
      assert.throws(() => new GunDecoder().push(wire), ProtocolError, name)
    }
  })

  test("gunPaths follows Xray: names escaped as Go's PathEscape, custom paths with Tun|TunMulti", () => {
    assert.deepEqual(gunPaths('svc'), { tun: '/svc/Tun', tunMulti: '/svc/TunMulti' })
    assert.deepEqual(gunPaths(''), { tun: '//Tun', tunMulti: '//TunMulti' })
    assert.deepEqual(gunPaths('a b/c'), { tun: '/a%20b%2Fc/Tun', tunMulti: '/a%20b%2Fc/TunMulti' })
    assert.deepEqual(gunPaths('/my/sample/path1|path2'), {
      tun: '/my/sample/path1',
      tunMulti: '/my/sample/path2',
    })
    assert.deepEqual(gunPaths('/my/sample/path1'), { tun: '/my/sample/path1', tunMulti: '/my/sample/path1' })
  })
})

function streamSettings(json: object): StreamSettings {
  const report: ConfigReport = { errors: [], warnings: [] }
  const settings = readSection(streamSettingsSchema, json, { path: ['streamSettings'], report })
  assert.deepEqual(report.errors, [], JSON.stringify(json))
  assert.ok(settings !== undefined)
  return settings
}

test('streamSettings reads grpc and gun with their grpcSettings, and warns about the keys tsray ignores', () => {
  assert.deepEqual(streamSettings({ network: 'gun' }), {
    network: 'grpc',
    security: 'none',
    grpc: { serviceName: '', multiMode: false, authority: undefined, userAgent: undefined },
  })
  const report: ConfigReport = { errors: [], warnings: [] }
  const settings = readSection(
    streamSettingsSchema,
    {
      network: 'grpc',
      grpcSettings: { serviceName: 'svc', multiMode: true, authority: 'a.example', idle_timeout: 60 },
    },
    { path: ['s'], report },
  )
  assert.deepEqual(settings, {
    network: 'grpc',
    security: 'none',
    grpc: { serviceName: 'svc', multiMode: true, authority: 'a.example', userAgent: undefined },
  })
  assert.deepEqual(
    report.warnings.map((warning) => warning.path),
    ['s.grpcSettings.idle_timeout'],
  )
  const bad: ConfigReport = { errors: [], warnings: [] }
  readSection(
    streamSettingsSchema,
    { network: 'grpc', grpcSettings: { multiMode: 'yes' } },
    { path: ['s'], report: bad },
  )
  assert.deepEqual(
    bad.errors.map((error) => error.path),
    ['s.grpcSettings.multiMode'],
  )
})

/** Writes `data` into a Duplex in pieces, ends it and collects what comes back until its end. */
async function roundTrip(stream: Duplex, data: Buffer): Promise<Buffer> {
  const back: Buffer[] = []
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => back.push(chunk))
    stream.once('end', resolve)
    stream.once('error', reject)
  })
  for (let offset = 0; offset < data.length; offset += 70_000)
    stream.write(data.subarray(offset, offset + 70_000))
  stream.end()
  await ended
  stream.destroy()
  return Buffer.concat(back)
}

/** Collects the data of every message of a grpc-js call until its end. */
function collectCall(call: grpc.ClientDuplexStream<GunMessage, GunMessage>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const back: Buffer[] = []
    call.on('data', (message: GunMessage) => back.push(messageData(message)))
    call.on('end', () => resolve(Buffer.concat(back)))
    call.on('error', reject)
  })
}

describe('interop with @grpc/grpc-js built from the gun service definition', () => {
  let certs: TestCertificates
  const SIZE = 1_500_000
  before(() => {
    certs = makeTestCertificates()
  })
  after(() => certs.remove())

  const serverTls = (): object => ({
    security: 'tls',
    tlsSettings: { certificates: [{ certificateFile: certs.certFile, keyFile: certs.keyFile }] },
  })
  const clientTls = (): object => ({
    security: 'tls',
    tlsSettings: {
      serverName: 'localhost',
      disableSystemRoot: true,
      certificates: [{ certificateFile: certs.caFile, usage: 'verify' }],
    },
  })

  for (const { name, multi, secure } of [
    { name: 'Tun over h2c', multi: false, secure: false },
    { name: 'TunMulti over TLS', multi: true, secure: true },
  ]) {
    test(`a grpc-js client's ${name} call through a tsray server echoes every byte`, async () => {
      const settings = streamSettings({
        network: 'grpc',
        grpcSettings: { serviceName: 'tsray.Gun' },
        ...(secure ? serverTls() : {}),
      })
      const server = createStreamServer(settings, {
        listen: '127.0.0.1',
        port: 0,
        onStream: (stream) => {
          stream.on('data', (chunk: Buffer) => stream.write(chunk))
          stream.on('end', () => stream.end())
        },
      })
      const port = await server.listen()
      const Client = gunClient('tsray.Gun')
      const credentials = secure
        ? grpc.credentials.createSsl(Buffer.from(certs.pem(certs.caFile)))
        : grpc.credentials.createInsecure()
      const client = new Client(`localhost:${port}`, credentials)
      try {
        const call = openGunCall(client, multi ? 'TunMulti' : 'Tun')
        const data = randomBytes(SIZE)
        const back = collectCall(call)
        for (let offset = 0; offset < SIZE; offset += 50_000) {
          const piece = data.subarray(offset, offset + 50_000)
          // MultiHunk: the piece as three entries.
          call.write({
            data: multi ? [piece.subarray(0, 10), piece.subarray(10, 20_000), piece.subarray(20_000)] : piece,
          })
        }
        call.end()
        assert.equal(sha256Hex(await back), sha256Hex(data))
      } finally {
        client.close()
        await server.close(100)
      }
    })

    test(`a tsray client's ${name} call to a grpc-js server echoes every byte`, async () => {
      const server = new grpc.Server()
      const echo = (call: grpc.ServerDuplexStream<GunMessage, GunMessage>): void => {
        call.on('data', (message: GunMessage) => {
          const data = messageData(message)
          call.write(multi ? { data: [data] } : { data })
        })
        call.on('end', () => call.end())
      }
      server.addService(gunServiceDefinition('tsray.Gun'), { Tun: echo, TunMulti: echo })
      const credentials = secure
        ? grpc.ServerCredentials.createSsl(null, [
            {
              cert_chain: Buffer.from(certs.pem(certs.certFile)),
              private_key: Buffer.from(certs.pem(certs.keyFile)),
            },
          ])
        : grpc.ServerCredentials.createInsecure()
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', credentials, (error, bound) =>
          error === null ? resolve(bound) : reject(error),
        ),
      )
      try {
        const dial = createStreamDialer(
          streamSettings({
            network: 'grpc',
            grpcSettings: { serviceName: 'tsray.Gun', multiMode: multi },
            ...(secure ? clientTls() : {}),
          }),
          { connectTimeoutMs: 5_000 },
        )
        const data = randomBytes(SIZE)
        const back = await roundTrip(await dial('127.0.0.1', port), data)
        assert.equal(sha256Hex(back), sha256Hex(data))
      } finally {
        await new Promise<void>((resolve) => server.tryShutdown(() => resolve()))
        server.forceShutdown()
      }
    })
  }

  test('a tsray server answers a call of another method UNIMPLEMENTED, as grpc-go does', async () => {
    const server = createStreamServer(
      streamSettings({ network: 'grpc', grpcSettings: { serviceName: 'svc' } }),
      {
        listen: '127.0.0.1',
        port: 0,
        onStream: () => assert.fail('no stream may reach the inbound'),
      },
    )
    const port = await server.listen()
    const client = new (gunClient('other'))(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
    try {
      const call = openGunCall(client, 'Tun')
      const error = await collectCall(call).then(
        () => undefined,
        (failure: grpc.ServiceError) => failure,
      )
      assert.equal(error?.code, grpc.status.UNIMPLEMENTED)
    } finally {
      client.close()
      await server.close(100)
    }
  })
})

failOnLeakedHandles()
