// `tsray client LINK` as a user runs it: a link from a server (tsray's default server, V2Ray 4.34) in
// either link form, curl through the SOCKS5 and HTTP inbounds, SOCKS5 UDP, and what the log says when
// the server is wrong or away.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { formatVmessLink, parseVmessLink } from '../../src/config/share-link.js'
import { SILENT_SERVER_TIMEOUT_MS } from '../../src/outbound/vmess.js'
import { runCli, waitUntil, type CliRun } from '../helpers/cli.js'
import { curl, socksUdpRoundTrip, startContentServer } from '../helpers/clients.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { randomData, startUdpEchoServer } from '../helpers/net.js'
import { freePort, startV2ray, waitForPort, type V2rayProcess } from '../helpers/v2ray.js'

const dir = mkdtempSync(join(tmpdir(), 'tsray-client-'))
let content: Awaited<ReturnType<typeof startContentServer>>
let udpEcho: Awaited<ReturnType<typeof startUdpEchoServer>>

before(async () => {
  content = await startContentServer()
  udpEcho = await startUdpEchoServer()
})
after(async () => {
  await content.close()
  await udpEcho.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Starts `tsray client LINK` on free ports and waits for both inbounds. */
async function startClient(link: string): Promise<{ run: CliRun; socks: number; http: number }> {
  const [socks, http] = [await freePort(), await freePort()]
  const run = runCli(['client', link, '--socks', `127.0.0.1:${socks}`, '--http', String(http)])
  try {
    await waitUntil(() => /started: /.test(run.stdout()) || run.child.exitCode !== null, 'the client', {
      output: () => run.stdout() + run.stderr(),
    })
    await waitForPort(socks)
    await waitForPort(http)
  } catch (error) {
    await run.stop()
    throw error
  }
  return { run, socks, http }
}

/** curl through both inbounds of a client gets a body whose SHA-256 matches. */
async function assertBothInbounds(client: { socks: number; http: number }): Promise<void> {
  const url = `http://127.0.0.1:${content.port}/bytes/200000`
  const viaSocks = await curl(['--socks5-hostname', `127.0.0.1:${client.socks}`, url])
  assert.equal(viaSocks.status, 200)
  assert.equal(viaSocks.actualSha, viaSocks.expectedSha)
  const viaHttp = await curl(['--proxy', `http://127.0.0.1:${client.http}`, url])
  assert.equal(viaHttp.status, 200)
  assert.equal(viaHttp.actualSha, viaHttp.expectedSha)
}

describe('tsray client with the link a tsray default server prints', () => {
  let server: CliRun
  let link = ''
  const id = randomUUID()

  before(async () => {
    const port = await freePort()
    // $PORT and $TSRAY_ID, as a Node hosting platform would set them.
    server = runCli(['--listen', '127.0.0.1', '--state', join(dir, 'unused.json')], {
      env: { PORT: String(port), TSRAY_ID: id },
    })
    await waitUntil(() => /vmess:\/\/\S+/.test(server.stdout()), 'the link', { output: server.stderr })
    link = /vmess:\/\/\S+/.exec(server.stdout())![0]
  })
  after(async () => {
    await server.stop()
  })

  test('the default server honours $PORT and $TSRAY_ID, logs a startup line and prints a QR code', () => {
    const parsed = parseVmessLink(link)
    assert.match(server.stdout(), new RegExp(`on port ${parsed.port}\\b`))
    assert.equal(parsed.id, id)
    assert.match(
      server.stdout(),
      /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[Warning\] tsray \d+\.\d+\.\d+ started: vmess-in \(vmess\) on port \d+$/m,
    )
    // Block characters of a terminal QR code, several lines of them.
    assert.ok((server.stdout().match(/[▀▄█]{5,}/g) ?? []).length >= 10, server.stdout())
  })

  test('the v2rayN link: curl through SOCKS5 and HTTP, and SOCKS5 UDP', async () => {
    const client = await startClient(link)
    try {
      await assertBothInbounds(client)
      const datagrams = [randomData(100), randomData(1200)]
      const replies = await socksUdpRoundTrip(
        client.socks,
        { host: '127.0.0.1', port: udpEcho.port },
        datagrams,
      )
      assert.deepEqual(
        replies.map((reply) => reply.toString('hex')).sort(),
        datagrams.map((datagram) => datagram.toString('hex')).sort(),
      )
      assert.match(
        client.run.stdout(),
        /\[Warning\] tsray \S+ started: socks-in \(socks\) on port \d+, http-in/,
      )
    } finally {
      assert.equal(await client.run.stop(), 0, client.run.stderr())
    }
  })

  test('the same server as a standard URI link', async () => {
    const client = await startClient(formatVmessLink(parseVmessLink(link), { form: 'uri' }))
    try {
      await assertBothInbounds(client)
    } finally {
      await client.run.stop()
    }
  })

  test('a wrong user id: the client names the server and the likely causes, well before 60 s', async () => {
    const wrong = formatVmessLink({ ...parseVmessLink(link), id: randomUUID() })
    const client = await startClient(wrong)
    try {
      const started = Date.now()
      await assert.rejects(
        curl(['--socks5-hostname', `127.0.0.1:${client.socks}`, `http://127.0.0.1:${content.port}/bytes/10`]),
      )
      const waited = Date.now() - started
      const server = `127.0.0.1:${parseVmessLink(link).port}`
      await waitUntil(() => client.run.stdout().includes('no response from'), 'the diagnostic', {
        output: client.run.stdout,
      })
      // The server drains a refused client silently up to a random threshold, then closes: a client whose
      // first flight passes the threshold hears the close at once, any other waits for the bound.
      const silent = new RegExp(
        `\\[Warning\\] no response from ${server} in \\d+ s: wrong user id, clock off, or not a VMess server here`,
      )
      const closed = new RegExp(
        `\\[Warning\\] no response from ${server} before it closed the connection \\(\\d+ s\\): wrong user id, clock off, or not a VMess server here`,
      )
      const output = client.run.stdout()
      assert.ok(silent.test(output) || closed.test(output), output)
      // curl gives up when the client does: at the bound (or the server's close), not at curl's own 20 s.
      if (silent.test(output))
        assert.ok(waited >= SILENT_SERVER_TIMEOUT_MS - 1_000, `gave up after ${waited} ms`)
      assert.ok(waited < 20_000, `gave up after ${waited} ms`)
    } finally {
      await client.run.stop()
    }
  })
})

describe('tsray client with a link to a V2Ray 4.34 server', () => {
  let v2ray: V2rayProcess
  const id = randomUUID()
  let port = 0

  before(async () => {
    port = await freePort()
    v2ray = await startV2ray(
      {
        log: { loglevel: 'warning' },
        inbounds: [
          { listen: '127.0.0.1', port, protocol: 'vmess', settings: { clients: [{ id, alterId: 0 }] } },
        ],
        outbounds: [{ protocol: 'freedom' }],
      },
      { waitPort: port },
    )
  })
  after(async () => {
    await v2ray.stop()
  })

  test('a wrong user id: V2Ray drains or closes, the client says why', async () => {
    const client = await startClient(`vmess://${randomUUID()}@127.0.0.1:${port}?type=tcp#wrong`)
    try {
      const result = await curl([
        '--proxy',
        `http://127.0.0.1:${client.http}`,
        `http://127.0.0.1:${content.port}/bytes/10`,
      ])
      assert.notEqual(result.status, 200)
      // V2Ray holds a refused connection until its drain is done, or closes it: either way, the client says why.
      await waitUntil(() => client.run.stdout().includes('no response from'), 'the diagnostic', {
        output: client.run.stdout,
      })
      assert.match(
        client.run.stdout(),
        new RegExp(`\\[Warning\\] no response from 127\\.0\\.0\\.1:${port} .*: wrong user id, clock off`),
      )
    } finally {
      await client.run.stop()
    }
  })

  for (const form of ['v2rayn', 'uri'] as const) {
    test(`the ${form} link: curl through SOCKS5 and HTTP`, async () => {
      const link = formatVmessLink(
        {
          remark: 'v2ray',
          address: '127.0.0.1',
          port,
          id,
          alterId: 0,
          security: 'aes-128-gcm',
          network: 'tcp',
          headerType: 'none',
          host: '',
          path: '',
          tls: false,
        },
        { form },
      )
      const client = await startClient(link)
      try {
        await assertBothInbounds(client)
      } finally {
        await client.run.stop()
      }
    })
  }
})

test('a server that cannot be dialled is named as the server, not as the target', async () => {
  const closed = await freePort()
  const client = await startClient(`vmess://${randomUUID()}@127.0.0.1:${closed}?type=tcp#away`)
  try {
    const result = await curl([
      '--proxy',
      `http://127.0.0.1:${client.http}`,
      `http://127.0.0.1:${content.port}/bytes/10`,
    ])
    assert.equal(result.status, 502)
    await waitUntil(() => client.run.stdout().includes('cannot reach'), 'the diagnostic', {
      output: client.run.stdout,
    })
    assert.match(
      client.run.stdout(),
      new RegExp(`\\[Warning\\] cannot reach VMess server 127\\.0\\.0\\.1:${closed} .*reason=ECONNREFUSED`),
    )
    assert.doesNotMatch(client.run.stdout(), /\[Warning\] tunnel failed/)
  } finally {
    await client.run.stop()
  }
})

failOnLeakedHandles()
