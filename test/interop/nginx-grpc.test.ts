// gRPC behind nginx as the Xray examples deploy it: Debian's nginx terminates TLS (HTTP/2) and passes the
// service's calls with `grpc_pass` to a tsray server over h2c; tsray clients (Tun and TunMulti) send random data
// through it to an echo server, checked by SHA-256.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { randomData, sha256Hex, startEchoServer } from '../helpers/net.js'
import { startNginx, type NginxProcess } from '../helpers/nginx.js'
import { echoThrough } from '../helpers/transfer.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort } from '../helpers/v2ray.js'

const ID = '27848739-7e62-4138-9fd3-098a63964b6b'
const SERVICE = 'tsray.Tunnel'
const SIZES = [1, 70_000, 2_000_000]

describe('gRPC behind nginx grpc_pass', () => {
  let certs: TestCertificates
  let echo: Awaited<ReturnType<typeof startEchoServer>>
  let nginx: NginxProcess | undefined
  let server: Awaited<ReturnType<typeof startTsray>> | undefined
  const clients: Awaited<ReturnType<typeof startTsray>>[] = []
  const ports = { nginx: 0, tsray: 0, tun: 0, multi: 0 }

  before(async () => {
    certs = makeTestCertificates()
    echo = await startEchoServer()
    for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort()
    server = await startTsray({
      inbounds: [
        {
          listen: '127.0.0.1',
          port: ports.tsray,
          protocol: 'vmess',
          settings: { clients: [{ id: ID }] },
          streamSettings: { network: 'grpc', grpcSettings: { serviceName: SERVICE } },
        },
      ],
      outbounds: [{ protocol: 'freedom' }],
    })
    nginx = await startNginx(
      [
        'server {',
        `  listen 127.0.0.1:${ports.nginx} ssl http2;`,
        '  server_name localhost;',
        `  ssl_certificate ${certs.certFile};`,
        `  ssl_certificate_key ${certs.keyFile};`,
        `  location /${SERVICE}/ {`,
        `    grpc_pass grpc://127.0.0.1:${ports.tsray};`,
        // A tunnel is one long request: without these nginx cuts it at 1 MB of upload (the default
        // client_max_body_size) or at 60 s without a read.
        '    client_max_body_size 0;',
        '    client_body_timeout 1h;',
        '    grpc_read_timeout 1h;',
        '    grpc_send_timeout 1h;',
        '  }',
        '}',
      ].join('\n'),
      { waitPort: ports.nginx },
    )
    for (const [port, multiMode] of [
      [ports.tun, false],
      [ports.multi, true],
    ] as const) {
      clients.push(
        await startTsray({
          inbounds: [
            {
              listen: '127.0.0.1',
              port,
              protocol: 'dokodemo-door',
              settings: { address: '127.0.0.1', port: echo.port, network: 'tcp' },
            },
          ],
          outbounds: [
            {
              protocol: 'vmess',
              settings: { vnext: [{ address: '127.0.0.1', port: ports.nginx, users: [{ id: ID }] }] },
              streamSettings: {
                network: 'grpc',
                security: 'tls',
                grpcSettings: { serviceName: SERVICE, multiMode },
                tlsSettings: {
                  serverName: 'localhost',
                  certificates: [{ certificateFile: certs.caFile, usage: 'verify' }],
                },
              },
            },
          ],
        }),
      )
    }
  })

  after(async () => {
    for (const client of clients) await client.stop()
    await nginx?.stop()
    await server?.stop()
    await echo.close()
    certs.remove()
  })

  for (const mode of ['Tun', 'TunMulti'] as const) {
    test(`a tsray client's ${mode} calls reach the tsray server through nginx with every byte`, async () => {
      const port = mode === 'Tun' ? ports.tun : ports.multi
      for (const size of SIZES) {
        const data = randomData(size)
        const back = await echoThrough(port, data).catch((error: Error) => {
          throw new Error(`${size} bytes: ${error.message}\n${nginx?.errorLog() ?? ''}`)
        })
        assert.equal(sha256Hex(back), sha256Hex(data), `${size} bytes`)
      }
      const streams = Array.from({ length: 4 }, () => randomData(256 * 1024))
      const backs = await Promise.all(streams.map((data) => echoThrough(port, data))).catch(
        (error: Error) => {
          throw new Error(`concurrent calls: ${error.message}\n${nginx?.errorLog() ?? ''}`)
        },
      )
      assert.deepEqual(backs.map(sha256Hex), streams.map(sha256Hex), 'concurrent calls')
    })
  }
})

failOnLeakedHandles()
