// The README's "WebSocket + TLS behind nginx" recipe, run as written: Debian's nginx terminates TLS and passes
// /ray to a tsray server (ws); curl → tsray client (SOCKS5 / HTTP inbound) → nginx → tsray server → HTTP server.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { validateConfig } from '../../src/config/load.js'
import type { AccessLine, Logs } from '../../src/observe/log.js'
import { buildInstance } from '../../src/runtime/build.js'
import type { Instance } from '../../src/runtime/instance.js'
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js'
import { curl, startContentServer } from '../helpers/clients.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { memoryLogger } from '../helpers/logger.js'
import { startNginx, type NginxProcess } from '../helpers/nginx.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort } from '../helpers/v2ray.js'

const README = fileURLToPath(new URL('../../../README.md', import.meta.url))

/** The fenced blocks of the README's recipe section, by language, in order. */
function recipeBlocks(): { nginx: string; server: Record<string, unknown>; client: Record<string, unknown> } {
  const text = readFileSync(README, 'utf8')
  const start = text.indexOf('## WebSocket + TLS behind nginx')
  assert.ok(start >= 0, 'README.md has no "WebSocket + TLS behind nginx" section')
  const section = text.slice(start, text.indexOf('\n## ', start + 1))
  const blocks = [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1],
    body: m[2] ?? '',
  }))
  const nginx = blocks.find((block) => block.lang === 'nginx')?.body
  const json = blocks.filter((block) => block.lang === 'json').map((block) => block.body)
  assert.ok(nginx !== undefined && json.length === 2, 'the recipe has an nginx block and two JSON blocks')
  return {
    nginx,
    server: JSON.parse(json[0] ?? '') as Record<string, unknown>,
    client: JSON.parse(json[1] ?? '') as Record<string, unknown>,
  }
}

/** Replaces `from` by `to` in `text`, failing when the README no longer contains it. */
function substitute(text: string, from: string, to: string): string {
  assert.ok(text.includes(from), `the README recipe no longer contains ${JSON.stringify(from)}`)
  return text.replaceAll(from, to)
}

/** Builds and starts a tsray instance whose access log lines are kept in memory. */
async function startTsrayWithAccessLog(
  config: object,
): Promise<{ instance: Instance; access: AccessLine[] }> {
  const access: AccessLine[] = []
  const logs: Logs = {
    logger: memoryLogger(),
    access: (line) => access.push(line),
    droppedLines: 0,
    close: () => Promise.resolve(),
  }
  const instance = buildInstance(validateConfig(config).config, { logs })
  await instance.start()
  return { instance, access }
}

/** A plain HTTPS request with curl: the status code and the body length. */
function curlStatus(args: string[]): Promise<{ status: number; bodyBytes: number }> {
  const format = '%{http_code} %{size_download}'
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['--silent', '--max-time', '10', '--output', '/dev/null', '--write-out', format, ...args],
      (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`curl failed: ${stderr}`))
        else {
          const [status, bodyBytes] = stdout.split(' ').map(Number)
          resolve({ status: status ?? 0, bodyBytes: bodyBytes ?? 0 })
        }
      },
    )
  })
}

describe('WebSocket + TLS behind nginx (the README recipe)', () => {
  let certs: TestCertificates
  let content: Awaited<ReturnType<typeof startContentServer>>
  let nginx: NginxProcess | undefined
  let server: { instance: Instance; access: AccessLine[] } | undefined
  let client: Awaited<ReturnType<typeof startTsray>> | undefined
  const ports = { nginx: 0, tsray: 0, socks: 0, http: 0 }

  before(async () => {
    certs = makeTestCertificates()
    content = await startContentServer()
    for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort()
    const recipe = recipeBlocks()

    let site = substitute(recipe.nginx, 'listen 443 ssl;', `listen 127.0.0.1:${ports.nginx} ssl;`)
    site = substitute(site, 'server_name proxy.example.com;', 'server_name localhost;')
    site = substitute(site, '/etc/letsencrypt/live/proxy.example.com/fullchain.pem', certs.certFile)
    site = substitute(site, '/etc/letsencrypt/live/proxy.example.com/privkey.pem', certs.keyFile)
    site = substitute(site, 'http://127.0.0.1:10000;', `http://127.0.0.1:${ports.tsray};`)

    const serverConfig = structuredClone(recipe.server) as { inbounds: { port: number }[] }
    const inbound = serverConfig.inbounds[0]
    assert.equal(inbound?.port, 10000, 'the recipe server listens on 10000')
    inbound.port = ports.tsray
    server = await startTsrayWithAccessLog({ ...serverConfig, log: { loglevel: 'info', access: '' } })

    nginx = await startNginx(site, { waitPort: ports.nginx })

    let clientText = JSON.stringify(recipe.client)
    clientText = substitute(clientText, '"port":1080', `"port":${ports.socks}`)
    clientText = substitute(clientText, '"port":8080', `"port":${ports.http}`)
    clientText = substitute(
      clientText,
      '"address":"proxy.example.com","port":443',
      `"address":"127.0.0.1","port":${ports.nginx}`,
    )
    clientText = substitute(clientText, '"serverName":"proxy.example.com"', '"serverName":"localhost"')
    // A real deployment's certificate comes from a public CA; the test's CA is trusted the V2Ray way.
    clientText = substitute(
      clientText,
      '"tlsSettings":{',
      `"tlsSettings":{"certificates":[{"certificateFile":${JSON.stringify(certs.caFile)},"usage":"verify"}],`,
    )
    client = await startTsray(JSON.parse(clientText) as object)
  })

  after(async () => {
    await client?.stop()
    await nginx?.stop()
    await server?.instance.stop(200)
    await content.close()
    certs.remove()
  })

  test('curl through the tsray client SOCKS5 inbound gets every byte through nginx', async () => {
    const result = await curl([
      '--socks5-hostname',
      `127.0.0.1:${ports.socks}`,
      `http://localhost:${content.port}/bytes/3000000`,
    ])
    assert.equal(result.status, 200, nginx?.errorLog())
    assert.equal(result.length, 3_000_000)
    assert.equal(result.actualSha, result.expectedSha)
  })

  test('curl through the tsray client HTTP inbound, several at once', async () => {
    const results = await Promise.all(
      [1, 65_536, 1_000_000, 2_500_000].map((size) =>
        curl(['-x', `http://127.0.0.1:${ports.http}`, `http://127.0.0.1:${content.port}/bytes/${size}`]),
      ),
    )
    for (const result of results) {
      assert.equal(result.status, 200)
      assert.equal(result.actualSha, result.expectedSha)
    }
  })

  test('the tsray server logs the client from X-Forwarded-For (nginx is a loopback peer)', () => {
    const accepted = server?.access.filter((line) => line.status === 'accepted') ?? []
    assert.ok(accepted.length > 0, 'the access log has accepted tunnels')
    // nginx's own connection has an ephemeral port; the forwarded client address carries none.
    for (const line of accepted) assert.equal(line.source, '127.0.0.1:0')
  })

  test('a plain request on the WebSocket path gets tsray 404, another path nginx 404, a TLS client without the CA nothing', async () => {
    const base = `https://localhost:${ports.nginx}`
    const caArgs = ['--cacert', certs.caFile, '--resolve', `localhost:${ports.nginx}:127.0.0.1`]
    // tsray's 404 has no body; nginx's own has its HTML page.
    assert.deepEqual(await curlStatus([...caArgs, `${base}/ray`]), { status: 404, bodyBytes: 0 })
    const other = await curlStatus([...caArgs, `${base}/index.html`])
    assert.equal(other.status, 404)
    assert.ok(other.bodyBytes > 0, 'nginx answers other paths itself')
    await assert.rejects(curlStatus(['--resolve', `localhost:${ports.nginx}:127.0.0.1`, `${base}/ray`]))
  })
})

failOnLeakedHandles()
