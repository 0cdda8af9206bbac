// contrib/tsray.service: systemd's own checker accepts it (no warning), and the command it starts runs
// the config and stops within the unit's TimeoutStopSec on the unit's KillSignal.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { MAIN, runCli, waitUntil } from '../helpers/cli.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { freePort, waitForPort } from '../helpers/v2ray.js'

const UNIT = fileURLToPath(new URL('../../../contrib/tsray.service', import.meta.url))
const INSTALLED = '/usr/local/bin/tsray'
const dir = mkdtempSync(join(tmpdir(), 'tsray-systemd-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const unitText = readFileSync(UNIT, 'utf8')
const setting = (key: string): string => {
  const match = new RegExp(`^${key}=(.*)$`, 'm').exec(unitText)
  assert.ok(match !== null, `the unit has no ${key}=`)
  return match[1]!
}

function verify(path: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile('systemd-analyze', ['verify', '--man=no', path], (error, stdout, stderr) => {
      if (error !== null && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(
          new Error(
            'The unit test needs systemd-analyze and it is not installed: run `apt-get update && apt-get install -y systemd`',
          ),
        )
        return
      }
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, output: stdout + stderr })
    })
  })
}

test('systemd-analyze verify accepts contrib/tsray.service without a warning', async () => {
  assert.ok(setting('ExecStart').startsWith(`${INSTALLED} `))
  // verify checks that the program exists: point it at this checkout's build.
  const unit = join(dir, 'tsray.service')
  writeFileSync(unit, unitText.replaceAll(INSTALLED, `${process.execPath} ${MAIN}`))
  const result = await verify(unit)
  assert.equal(result.code, 0, result.output)
  assert.equal(result.output.trim(), '')
  // The checker itself notices a broken unit (so the pass above means something).
  const broken = join(dir, 'broken.service')
  writeFileSync(
    broken,
    unitText
      .replace(INSTALLED, `${process.execPath} ${MAIN}`)
      .replace('[Service]', '[Service]\nRestartt=always'),
  )
  assert.match((await verify(broken)).output, /Unknown key/)
})

test("the unit's ExecStart runs a config and stops within TimeoutStopSec on KillSignal", async () => {
  const [program, ...args] = setting('ExecStart').split(/\s+/)
  assert.equal(program, INSTALLED)
  assert.deepEqual(args.slice(0, 2), ['run', '-c'])
  const port = await freePort()
  const config = join(dir, 'config.json')
  writeFileSync(
    config,
    JSON.stringify({
      inbounds: [
        { listen: '127.0.0.1', port, protocol: 'vmess', settings: { clients: [{ id: 'env:TSRAY_ID' }] } },
      ],
      outbounds: [{ protocol: 'freedom' }],
    }),
  )
  // The unit's EnvironmentFile supplies TSRAY_ID; here the environment does.
  const run = runCli(['run', '-c', config, ...args.slice(3)], { env: { TSRAY_ID: randomUUID() } })
  await waitForPort(port)
  await waitUntil(() => run.stdout().includes('started'), 'the startup line', { output: run.stderr })
  const signal = setting('KillSignal') as NodeJS.Signals
  const stopWithin = Number(setting('TimeoutStopSec')) * 1000
  const started = Date.now()
  run.child.kill(signal)
  assert.equal(await run.exited, 0, run.stderr())
  assert.ok(Date.now() - started < stopWithin, 'stopped after TimeoutStopSec: systemd would SIGKILL it')
})

failOnLeakedHandles()
