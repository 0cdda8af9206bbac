import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freePort } from '../helpers/v2ray.js'

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'tsray-persona-'))
// A panel's core binary, as README "Operating" installs it: a link named xray.
const XRAY = join(dir, 'xray')
symlinkSync(MAIN, XRAY)
after(() => rmSync(dir, { recursive: true, force: true }))

function run(
  args: string[],
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [XRAY, ...args], { timeout: 10_000 }, (error, stdout, stderr) =>
      resolve({
        code: error === null ? 0 : typeof error.code === 'number' ? error.code : null,
        stdout,
        stderr,
      }),
    )
    if (input !== undefined) child.stdin?.end(input)
  })
}

test('under the name xray, -version and version answer in the form panels parse', async () => {
  for (const args of [['-version'], ['version']]) {
    const { code, stdout } = await run(args)
    assert.equal(code, 0)
    const first = stdout.split('\n')[0]!
    // Marzban and PasarGuard: ^Xray (\d+\.\d+\.\d+); 3x-ui: the second word of the first line.
    assert.match(first, /^Xray (\d+\.\d+\.\d+) \(tsray /)
    assert.match(first.split(' ')[1]!, /^\d+\.\d+\.\d+$/)
  }
})

test('run -config stdin: refuses a VLESS inbound by name, or skips it with --skip-unsupported-inbounds and prints the started line', async () => {
  const port = await freePort()
  const config = JSON.stringify({
    inbounds: [
      { tag: 'v', listen: '127.0.0.1', port: 1, protocol: 'vless', settings: { clients: [] } },
      {
        tag: 'm',
        listen: '127.0.0.1',
        port,
        protocol: 'vmess',
        settings: { clients: [{ id: 'b831381d-6324-4d53-ad4f-8cda48b30811' }] },
      },
    ],
    outbounds: [{ protocol: 'freedom' }],
  })
  const refused = await run(['run', '-config', 'stdin:'], config)
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /inbounds\[0\]\.protocol: "vless" is not supported/)

  const child = spawn(process.execPath, [XRAY, 'run', '-config', 'stdin:', '--skip-unsupported-inbounds'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  child.stdin.end(config)
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no started line: ${stdout}${stderr}`)), 10_000)
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      // Marzban's and PasarGuard's startup pattern.
      if (/.*\[Warning] core: Xray \d+\.\d+\.\d+ started/.test(stdout)) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  assert.match(stderr, /inbounds\[0\]: skipped: tsray does not serve "vless" inbounds/)
  child.kill('SIGTERM')
  assert.equal(await exited, 0)
})
