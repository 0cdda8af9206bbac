// TLS (`security: "tls"`): V2Ray 4.34's trust rules on a client, certificates and SNI on a server, bad handshakes,
// half-close and ALPN. Certificates come from the OS's openssl at test time.
import assert from 'node:assert/strict'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import { after, before, describe, test } from 'node:test'
import {
  createStreamDialer,
  createStreamServer,
  type StreamSettings,
} from '../../src/transport/stream-settings.js'
import type { TlsSettings } from '../../src/transport/tls.js'
import type { StreamServer } from '../../src/transport/transport.js'
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, randomData, sha256Hex } from '../helpers/net.js'

const NO_TLS: TlsSettings = {
  serverName: undefined,
  alpn: undefined,
  allowInsecure: false,
  certificates: [],
  disableSystemRoot: false,
}

let certs: TestCertificates
before(() => {
  certs = makeTestCertificates()
})
after(() => certs.remove())

const served = (certFile: string, keyFile: string) =>
  ({ certificate: { file: certFile }, key: { file: keyFile }, usage: 'encipherment' }) as const
const trusted = (certFile: string) =>
  ({ certificate: { file: certFile }, key: undefined, usage: 'verify' }) as const
const tcpTls = (tls: TlsSettings): StreamSettings => ({ network: 'tcp', security: 'tls', tls })

/** A TLS server on 127.0.0.1 whose streams echo; `streams` records them. */
async function startServer(
  tls: TlsSettings,
): Promise<{ server: StreamServer; port: number; streams: Duplex[] }> {
  const streams: Duplex[] = []
  const server = createStreamServer(tcpTls(tls), {
    listen: '127.0.0.1',
    port: 0,
    onStream: (stream) => {
      streams.push(stream)
      stream.pipe(stream)
    },
  })
  return { server, port: await server.listen(), streams }
}

/** Dials with `tls` and echoes a little data; resolves with the TLS socket's negotiated details. */
async function dialAndEcho(port: number, tls: TlsSettings, network: StreamSettings['network'] = 'tcp') {
  const settings = { network, security: 'tls', tls } as StreamSettings
  const socket = (await createStreamDialer(settings, { connectTimeoutMs: 2_000 })(
    '127.0.0.1',
    port,
  )) as TLSSocket
  const data = randomData(10_000)
  const back = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      if (Buffer.concat(chunks).length >= data.length) resolve(Buffer.concat(chunks))
    })
    socket.once('error', reject)
    socket.write(data)
  })
  assert.equal(sha256Hex(back), sha256Hex(data))
  const result = { alpn: socket.alpnProtocol, subject: socket.getPeerCertificate().subject.CN }
  socket.destroy()
  return result
}

describe('TLS client trust, as V2Ray 4.34 decides it', () => {
  let server: Awaited<ReturnType<typeof startServer>>
  let selfSigned: Awaited<ReturnType<typeof startServer>>
  before(async () => {
    server = await startServer({ ...NO_TLS, certificates: [served(certs.certFile, certs.keyFile)] })
    selfSigned = await startServer({
      ...NO_TLS,
      certificates: [served(certs.selfSignedCertFile, certs.selfSignedKeyFile)],
    })
  })
  after(async () => {
    await server.server.close(100)
    await selfSigned.server.close(100)
  })

  test('a certificate signed by a CA listed in certificates (usage "verify") is accepted', async () => {
    const result = await dialAndEcho(server.port, {
      ...NO_TLS,
      serverName: 'localhost',
      certificates: [trusted(certs.caFile)],
    })
    assert.equal(result.subject, 'localhost')
    // Without a serverName the address itself (127.0.0.1, in the certificate) is checked.
    await dialAndEcho(server.port, {
      ...NO_TLS,
      certificates: [trusted(certs.caFile)],
      disableSystemRoot: true,
    })
  })

  test('an unknown CA, a self-signed certificate or another name are refused; allowInsecure accepts them', async () => {
    await assert.rejects(dialAndEcho(server.port, { ...NO_TLS, serverName: 'localhost' }), {
      name: 'TransportError',
    })
    await assert.rejects(
      dialAndEcho(selfSigned.port, {
        ...NO_TLS,
        serverName: 'localhost',
        certificates: [trusted(certs.caFile)],
      }),
      { name: 'TransportError' },
    )
    await assert.rejects(
      dialAndEcho(server.port, {
        ...NO_TLS,
        serverName: 'other.test',
        certificates: [trusted(certs.caFile)],
      }),
      /Cannot connect to 127\.0\.0\.1:\d+ over TLS: .*other\.test/,
    )
    await dialAndEcho(selfSigned.port, { ...NO_TLS, serverName: 'localhost', allowInsecure: true })
  })
})

describe('TLS server', () => {
  test('serves the certificate whose name the client asks for (SNI), else the first', async () => {
    const { server, port } = await startServer({
      ...NO_TLS,
      certificates: [served(certs.certFile, certs.keyFile), served(certs.otherCertFile, certs.otherKeyFile)],
    })
    try {
      const trust = { ...NO_TLS, certificates: [trusted(certs.caFile)] }
      assert.equal((await dialAndEcho(port, { ...trust, serverName: 'other.test' })).subject, 'other.test')
      assert.equal((await dialAndEcho(port, { ...trust, serverName: 'localhost' })).subject, 'localhost')
    } finally {
      await server.close(100)
    }
  })

  test('takes certificates as inline lines, and offers ALPN as V2Ray: h2 for TCP, http/1.1 under WebSocket', async () => {
    const lines = (file: string) => ({ inline: certs.pem(file).trim().split('\n').join('\n') })
    const inline: TlsSettings = {
      ...NO_TLS,
      certificates: [
        { certificate: lines(certs.certFile), key: lines(certs.keyFile), usage: 'encipherment' },
      ],
    }
    const { server, port } = await startServer(inline)
    try {
      const trust = { ...NO_TLS, serverName: 'localhost', certificates: [trusted(certs.caFile)] }
      assert.equal((await dialAndEcho(port, trust)).alpn, 'h2')
      assert.equal((await dialAndEcho(port, { ...trust, alpn: ['http/1.1'] })).alpn, 'http/1.1')
    } finally {
      await server.close(100)
    }
  })

  test('a broken handshake is dropped without a crash, and the server goes on serving', async () => {
    const { server, port, streams } = await startServer({
      ...NO_TLS,
      certificates: [served(certs.certFile, certs.keyFile)],
    })
    try {
      for (const garbage of [
        Buffer.from('GET / HTTP/1.1\r\n\r\n'),
        Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3]),
      ]) {
        const socket = await connectTcp(port)
        socket.resume()
        socket.on('end', () => socket.end())
        socket.write(garbage)
        await new Promise<void>((resolve) => socket.once('close', () => resolve()))
      }
      assert.equal(streams.length, 0)
      await dialAndEcho(port, { ...NO_TLS, serverName: 'localhost', certificates: [trusted(certs.caFile)] })
    } finally {
      await server.close(100)
    }
  })

  test('a missing certificate file makes listen() fail with its path', async () => {
    const server = createStreamServer(
      tcpTls({ ...NO_TLS, certificates: [served('/nonexistent/cert.pem', certs.keyFile)] }),
      {
        listen: '127.0.0.1',
        port: 0,
        onStream: () => undefined,
      },
    )
    await assert.rejects(server.listen(), {
      code: 'TLS_FILE_UNREADABLE',
      message: /\/nonexistent\/cert\.pem/,
    })
    await server.close(0)
  })

  test('the client half-closes and still reads the whole answer (VMess ends its uplink first)', async () => {
    const answer = randomData(1_000_000)
    const server = createStreamServer(
      tcpTls({ ...NO_TLS, certificates: [served(certs.certFile, certs.keyFile)] }),
      {
        listen: '127.0.0.1',
        port: 0,
        onStream: (stream) => {
          stream.resume()
          stream.on('end', () => stream.end(answer))
        },
      },
    )
    const port = await server.listen()
    try {
      const client = await createStreamDialer(
        tcpTls({ ...NO_TLS, serverName: 'localhost', certificates: [trusted(certs.caFile)] }),
        { connectTimeoutMs: 2_000 },
      )('127.0.0.1', port)
      const chunks: Buffer[] = []
      const ended = new Promise<void>((resolve) => client.on('end', () => resolve()))
      client.on('data', (chunk: Buffer) => chunks.push(chunk))
      client.end('request')
      await ended
      assert.equal(sha256Hex(Buffer.concat(chunks)), sha256Hex(answer))
      client.destroy()
    } finally {
      await server.close(100)
    }
  })
})

failOnLeakedHandles()
