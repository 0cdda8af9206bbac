// A browser through `tsray client`: headless Chromium (Debian's `chromium`) with the client's SOCKS5
// inbound as its proxy loads a page, and its script's fetch, through a tsray server.
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { runCli, waitUntil, type CliRun } from '../helpers/cli.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { listen } from '../helpers/net.js'
import { freePort, waitForPort } from '../helpers/v2ray.js'

/** Path of Debian's chromium; throws with the install command when it is missing. */
function chromiumBinary(): string {
  for (const path of [process.env.CHROMIUM_BINARY, '/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (path === undefined || path === '') continue
    try {
      execFileSync(path, ['--version'], { stdio: 'ignore' })
      return path
    } catch {
      // try the next candidate
    }
  }
  throw new Error(
    'The browser test needs Chromium and it is not installed: run `apt-get update && apt-get install -y chromium` (or set CHROMIUM_BINARY)',
  )
}

const token = randomUUID()
const dir = mkdtempSync(join(tmpdir(), 'tsray-chromium-'))
let page: Server
let pagePort = 0
let server: CliRun
let client: CliRun
let socks = 0

before(async () => {
  // The page fetches a second resource by script, so the DOM shows both came through.
  page = createServer((request, response) => {
    if (request.url === '/data') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end(`fetched-${token}`)
      return
    }
    response.writeHead(200, { 'content-type': 'text/html' }).end(
      `<!doctype html><title>t</title><p id="a">page-${token}</p><p id="b"></p>
<script>fetch('/data').then((r) => r.text()).then((t) => { document.getElementById('b').textContent = t })</script>`,
    )
  })
  pagePort = await listen(page)
  const serverPort = await freePort()
  server = runCli(['--listen', '127.0.0.1', '--port', String(serverPort), '--id', randomUUID()])
  await waitUntil(() => /vmess:\/\/\S+/.test(server.stdout()), 'the server link', { output: server.stderr })
  const link = /vmess:\/\/\S+/.exec(server.stdout())![0]
  socks = await freePort()
  client = runCli(['client', link, '--socks', String(socks), '--http', String(await freePort())])
  await waitForPort(socks)
})
after(async () => {
  await client.stop()
  await server.stop()
  page.closeAllConnections()
  await new Promise((resolve) => page.close(resolve))
  rmSync(dir, { recursive: true, force: true })
})

test('headless Chromium loads a page and its fetch through tsray client', { timeout: 90_000 }, async () => {
  const binary = chromiumBinary()
  const dom = await new Promise<string>((resolve, reject) => {
    execFile(
      binary,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${join(dir, 'profile')}`,
        `--proxy-server=socks5://127.0.0.1:${socks}`,
        // Chromium sends loopback directly unless told not to; the page is on loopback.
        '--proxy-bypass-list=<-loopback>',
        '--virtual-time-budget=5000',
        '--dump-dom',
        `http://127.0.0.1:${pagePort}/`,
      ],
      { timeout: 60_000, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) =>
        error === null ? resolve(stdout) : reject(new Error(`${error.message}\n${stderr}`)),
    )
  })
  assert.match(dom, new RegExp(`page-${token}`))
  assert.match(dom, new RegExp(`fetched-${token}`), dom)
  // Both requests went through the client: its access log lists the page server as the target.
  const through = client.stdout().match(new RegExp(` accepted tcp:127\\.0\\.0\\.1:${pagePort}$`, 'gm')) ?? []
  assert.ok(through.length >= 1, client.stdout())
  assert.match(server.stdout(), new RegExp(` accepted tcp:127\\.0\\.0\\.1:${pagePort} `))
})

failOnLeakedHandles()
