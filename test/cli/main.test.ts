import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parseVmessLink, vmessLinkToOutbound } from '../../src/config/share-link.js'
import { curl, startContentServer } from '../helpers/clients.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, exchange, listen, randomData, sha256Hex, startEchoServer } from '../helpers/net.js'
import { freePort, startV2ray, v2rayBinary, waitForPort } from '../helpers/v2ray.js'

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'tsray-cli-'))
let echo: Awaited<ReturnType<typeof startEchoServer>>
let content: Awaited<ReturnType<typeof startContentServer>>

before(async () => {
  echo = await startEchoServer()
  content = await startContentServer()
})
after(async () => {
  await echo.close()
  await content.close()
  rmSync(dir, { recursive: true, force: true })
})

interface Run {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  /** The exit code, or the signal that ended the process. */
  exited: Promise<number | NodeJS.Signals | null>
}

function tsray(args: string[], options?: { stdin?: string; env?: Record<string, string> }): Run {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, ...options?.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  child.stdin?.end(options?.stdin ?? '')
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal)),
  )
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

/** The body of GET http://127.0.0.1:port/path, on a connection of its own. */
function httpGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, path, agent: false }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (text: string) => (body += text))
      response.on('end', () => resolve(body))
    })
    outgoing.on('error', reject)
    outgoing.end()
  })
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now()
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

test('tsray version, uuid and --help', async () => {
  const version = tsray(['version'], { env: { TSRAY_NATIVE: '1' } })
  assert.equal(await version.exited, 0)
  // The package ships a linux-x64 prebuild; elsewhere the node:crypto fallback is the expected path.
  const shipped = process.platform === 'linux' && process.arch === 'x64'
  assert.match(
    version.stdout(),
    shipped
      ? /^tsray \d+\.\d+\.\d+\nciphers: native addon, OpenSSL 3\.[^\n]*\n$/
      : /^tsray \d+\.\d+\.\d+\nciphers: (native addon|node:crypto)[^\n]*\n$/,
  )
  const fallback = tsray(['version'], { env: { TSRAY_NATIVE: '0' } })
  assert.equal(await fallback.exited, 0)
  assert.match(fallback.stdout(), /^tsray \d+\.\d+\.\d+\nciphers: node:crypto \(TSRAY_NATIVE=0\)\n$/)
  const uuid = tsray(['uuid'])
  assert.equal(await uuid.exited, 0)
  assert.match(uuid.stdout(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$/)
  const help = tsray(['--help'])
  assert.equal(await help.exited, 0)
  assert.match(help.stdout(), /alterId 0 \(the default\) means the AEAD header/)
})

test('tsray test -c accepts a valid config and names the JSON path of a bad one', async () => {
  const good = join(dir, 'good.json')
  writeFileSync(
    good,
    JSON.stringify({
      inbounds: [
        {
          port: 10086,
          protocol: 'vmess',
          settings: { clients: [{ id: 'b831381d-6324-4d53-ad4f-8cda48b30811' }] },
        },
      ],
      outbounds: [{ protocol: 'freedom' }],
    }),
  )
  const ok = tsray(['test', '-c', good])
  assert.equal(await ok.exited, 0, ok.stderr())
  assert.match(ok.stdout(), /Configuration OK/)
  const v2raySpelling = tsray(['-test', '-config', good])
  assert.equal(await v2raySpelling.exited, 0, v2raySpelling.stderr())

  const bad = join(dir, 'bad.json')
  writeFileSync(
    bad,
    JSON.stringify({
      inbounds: [{ port: 10086, protocol: 'vmess', settings: { clients: [{ id: '' }] } }],
      outbounds: [{ protocol: 'freedom' }],
    }),
  )
  const refused = tsray(['test', '-c', bad])
  assert.equal(await refused.exited, 1)
  assert.match(refused.stderr(), /inbounds\[0\]\.settings\.clients\[0\]\.id/)

  const broken = join(dir, 'broken.json')
  writeFileSync(broken, '{ "inbounds": [ }')
  const unparsable = tsray(['test', '-c', broken])
  assert.equal(await unparsable.exited, 1)
  assert.match(unparsable.stderr(), /line 1, column/)
})

test('tsray test -c opens every file the config names and fails with the path of a missing one, as v2ray -test', async () => {
  const certificate = join(dir, 'present.crt')
  writeFileSync(certificate, 'not checked here: tsray test opens the file, tsray run reads it')
  const config = (certificateFile: string, logFile: string) =>
    JSON.stringify({
      log: { access: logFile, loglevel: 'warning' },
      inbounds: [
        {
          port: 10443,
          protocol: 'vmess',
          settings: { clients: [{ id: 'b831381d-6324-4d53-ad4f-8cda48b30811' }] },
          streamSettings: {
            security: 'tls',
            tlsSettings: { certificates: [{ certificateFile, keyFile: certificate }] },
          },
        },
      ],
      outbounds: [{ protocol: 'freedom' }],
    })
  const present = join(dir, 'files-present.json')
  writeFileSync(present, config(certificate, join(dir, 'access.log')))
  const ok = tsray(['test', '-c', present])
  assert.equal(await ok.exited, 0, ok.stderr())
  const missingCertificate = join(dir, 'files-missing.json')
  writeFileSync(
    missingCertificate,
    config(join(dir, 'nowhere.crt'), join(dir, 'no-such-folder', 'access.log')),
  )
  const refused = tsray(['test', '-c', missingCertificate])
  assert.equal(await refused.exited, 1)
  assert.match(
    refused.stderr(),
    /inbounds\[0\]\.streamSettings\.tlsSettings\.certificates\[0\]\.certificateFile: Cannot open ".*nowhere\.crt": ENOENT/,
  )
  assert.match(
    refused.stderr(),
    /log\.access: Cannot write ".*access\.log": its folder ".*no-such-folder" cannot be used/,
  )
  const v2ray = spawnSync(v2rayBinary(), ['-test', '-config', missingCertificate], { encoding: 'utf8' })
  assert.notEqual(v2ray.status, 0, 'V2Ray 4.34 refuses it too')
})

test('tsray run exits 1 with a clear message when the port is in use', async () => {
  const blocker = createServer()
  const port = await listen(blocker)
  try {
    const config = join(dir, 'busy.json')
    writeFileSync(
      config,
      JSON.stringify({
        inbounds: [{ listen: '127.0.0.1', port, protocol: 'socks', settings: {} }],
        outbounds: [{ protocol: 'freedom' }],
      }),
    )
    const run = tsray(['run', '-c', config])
    assert.equal(await run.exited, 1)
    assert.match(run.stderr(), /port is in use/)
  } finally {
    await new Promise((resolve) => blocker.close(resolve))
  }
})

test('tsray run -c - reads stdin, serves, and stops cleanly on SIGINT', async () => {
  const port = await freePort()
  const config = {
    log: { loglevel: 'warning' },
    inbounds: [{ listen: '127.0.0.1', port, protocol: 'http', settings: {} }],
    outbounds: [{ protocol: 'freedom' }],
  }
  const run = tsray(['run', '-c', '-'], { stdin: JSON.stringify(config) })
  try {
    await waitForPort(port)
    const response = await curl([
      '-x',
      `http://127.0.0.1:${port}`,
      `http://127.0.0.1:${content.port}/bytes/4096`,
    ])
    assert.equal(response.status, 200)
    assert.equal(response.actualSha, response.expectedSha)
  } finally {
    run.child.kill('SIGINT')
  }
  assert.equal(await run.exited, 0, run.stderr())
})

test('tsray run -c serves metrics.listen at GET /metrics until it stops', async () => {
  const [vmessPort, metricsPort] = [await freePort(), await freePort()]
  const config = join(dir, 'metrics.json')
  writeFileSync(
    config,
    JSON.stringify({
      log: { loglevel: 'warning' },
      inbounds: [
        {
          listen: '127.0.0.1',
          port: vmessPort,
          protocol: 'vmess',
          settings: { clients: [{ id: 'b831381d-6324-4d53-ad4f-8cda48b30811' }] },
        },
      ],
      outbounds: [{ protocol: 'freedom' }],
      metrics: { listen: `127.0.0.1:${metricsPort}` },
    }),
  )
  const run = tsray(['run', '-c', config])
  try {
    await waitForPort(metricsPort)
    const junk = await connectTcp(vmessPort)
    assert.equal((await exchange(junk, randomData(64))).length, 0)
    // The refusal is counted as the server closes the junk connection: scrape until it shows.
    const refused = /^tsray_vmess_refusals_total\{inbound="inbound-0",reason="AUTH_UNKNOWN"\} 1$/m
    let text = ''
    const deadline = Date.now() + 5_000
    while (Date.now() < deadline) {
      text = await httpGet(metricsPort, '/metrics')
      if (refused.test(text)) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.match(text, refused)
  } finally {
    run.child.kill('SIGTERM')
  }
  assert.equal(await run.exited, 0, run.stderr())
})

test('tsray with no config starts a server that a V2Ray client configured from the printed link can use', async () => {
  const port = await freePort()
  const state = join(dir, 'state.json')
  const args = ['--port', String(port), '--listen', '127.0.0.1', '--state', state]
  const first = tsray(args)
  let firstId = ''
  try {
    await waitFor(() => /vmess:\/\/\S+/.test(first.stdout()), 'the vmess:// link')
    const link = parseVmessLink(/vmess:\/\/\S+/.exec(first.stdout())![0])
    firstId = link.id
    assert.equal(link.port, port)
    assert.equal(link.alterId, 0)
    const forwardPort = await freePort()
    const v2ray = await startV2ray(
      {
        inbounds: [
          {
            listen: '127.0.0.1',
            port: forwardPort,
            protocol: 'dokodemo-door',
            settings: { address: '127.0.0.1', port: echo.port, network: 'tcp' },
          },
        ],
        outbounds: [vmessLinkToOutbound(link)],
      },
      { waitPort: forwardPort },
    )
    try {
      const data = randomData(100_000)
      const back = await exchange(await connectTcp(forwardPort), data)
      assert.equal(sha256Hex(back), sha256Hex(data))
    } finally {
      await v2ray.stop()
    }
  } finally {
    first.child.kill('SIGTERM')
  }
  assert.equal(await first.exited, 0, first.stderr())
  const second = tsray(args)
  try {
    await waitFor(() => /user id: /.test(second.stdout()), 'the second start')
    assert.match(second.stdout(), new RegExp(`user id: ${firstId}`), 'a restart keeps the generated user')
  } finally {
    second.child.kill('SIGTERM')
  }
  assert.equal(await second.exited, 0)
})

failOnLeakedHandles()
