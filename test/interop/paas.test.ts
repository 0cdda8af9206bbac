// The default server as a Node hosting platform runs it: the platform sets $PORT and terminates TLS in
// front (nginx here), forwarding WebSocket upgrades on one path; `tsray --ws PATH` takes them. A V2Ray
// 4.34 client (WebSocket + TLS) connects with the id the platform's environment gave ($TSRAY_ID).
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { parseVmessLink } from '../../src/config/share-link.js'
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js'
import { runCli, waitUntil, type CliRun } from '../helpers/cli.js'
import { curl, startContentServer } from '../helpers/clients.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { startNginx, type NginxProcess } from '../helpers/nginx.js'
import { freePort, startV2ray, waitForPort, type V2rayProcess } from '../helpers/v2ray.js'

const PATH = '/app-tunnel'
const id = randomUUID()
const dir = mkdtempSync(join(tmpdir(), 'tsray-paas-'))
let certs: TestCertificates
let content: Awaited<ReturnType<typeof startContentServer>>
let server: CliRun
let nginx: NginxProcess
let v2ray: V2rayProcess
const ports = { app: 0, nginx: 0, socks: 0 }

before(async () => {
  certs = makeTestCertificates()
  content = await startContentServer()
  for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort()
  server = runCli(['--listen', '127.0.0.1', '--ws', PATH, '--state', join(dir, 'unused.json')], {
    env: { PORT: String(ports.app), TSRAY_ID: id },
  })
  await waitForPort(ports.app)
  await waitUntil(() => /vmess:\/\/\S+/.test(server.stdout()), 'the link', { output: server.stderr })
  nginx = await startNginx(
    `server {
      listen 127.0.0.1:${ports.nginx} ssl;
      server_name localhost;
      ssl_certificate ${certs.certFile};
      ssl_certificate_key ${certs.keyFile};
      location / { return 404; }
      location ${PATH} {
        proxy_pass http://127.0.0.1:${ports.app};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_set_header Host $host;
      }
    }`,
    { waitPort: ports.nginx },
  )
  v2ray = await startV2ray(
    {
      log: { loglevel: 'warning' },
      inbounds: [{ listen: '127.0.0.1', port: ports.socks, protocol: 'socks', settings: { udp: false } }],
      outbounds: [
        {
          protocol: 'vmess',
          settings: { vnext: [{ address: '127.0.0.1', port: ports.nginx, users: [{ id, alterId: 0 }] }] },
          streamSettings: {
            network: 'ws',
            security: 'tls',
            wsSettings: { path: PATH },
            tlsSettings: {
              serverName: 'localhost',
              certificates: [{ certificateFile: certs.caFile, usage: 'verify' }],
            },
          },
        },
      ],
    },
    { waitPort: ports.socks },
  )
})
after(async () => {
  await v2ray.stop()
  await nginx.stop()
  await server.stop()
  await content.close()
  certs.remove()
  rmSync(dir, { recursive: true, force: true })
})

test('tsray with $PORT and --ws serves a V2Ray WS+TLS client behind nginx', async () => {
  const link = parseVmessLink(/vmess:\/\/\S+/.exec(server.stdout())![0])
  assert.deepEqual([link.port, link.id, link.network, link.path], [ports.app, id, 'ws', PATH])
  assert.match(server.stdout(), new RegExp(`WebSocket on ${PATH}`))
  for (const size of [1000, 2_000_000]) {
    const result = await curl([
      '--socks5-hostname',
      `127.0.0.1:${ports.socks}`,
      `http://127.0.0.1:${content.port}/bytes/${size}`,
    ])
    assert.equal(result.status, 200, `${v2ray.output()}\n${nginx.errorLog()}`)
    assert.equal(result.length, size)
    assert.equal(result.actualSha, result.expectedSha)
  }
  assert.match(
    server.stdout(),
    new RegExp(` accepted tcp:127\\.0\\.0\\.1:${content.port} email: default@tsray`),
  )
})

failOnLeakedHandles()
