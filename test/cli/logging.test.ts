// What `tsray run` writes where: V2Ray's text lines on the console by default, JSON with `log.format`,
// and the access and error logs in the files `log.access` and `log.error` name, each with its own lines.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { runCli, waitUntil } from '../helpers/cli.js'
import { curl, startContentServer } from '../helpers/clients.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, exchange, randomData } from '../helpers/net.js'
import { freePort, waitForPort } from '../helpers/v2ray.js'

const dir = mkdtempSync(join(tmpdir(), 'tsray-logging-'))
let content: Awaited<ReturnType<typeof startContentServer>>
before(async () => {
  content = await startContentServer()
})
after(async () => {
  await content.close()
  rmSync(dir, { recursive: true, force: true })
})

const TEXT_LINE = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /

/** Runs a config with an HTTP inbound and a VMess inbound; one request through HTTP, one junk VMess connection. */
async function runAndExercise(log: object | undefined): Promise<{ stdout: string; stderr: string }> {
  const [http, vmess] = [await freePort(), await freePort()]
  const config = join(dir, `${randomUUID()}.json`)
  writeFileSync(
    config,
    JSON.stringify({
      log,
      inbounds: [
        { listen: '127.0.0.1', port: http, protocol: 'http', settings: {} },
        {
          listen: '127.0.0.1',
          port: vmess,
          protocol: 'vmess',
          settings: { clients: [{ id: randomUUID() }] },
        },
      ],
      outbounds: [{ protocol: 'freedom' }],
    }),
  )
  const run = runCli(['run', '-c', config])
  try {
    await waitForPort(http)
    await waitForPort(vmess)
    const response = await curl([
      '--proxy',
      `http://127.0.0.1:${http}`,
      `http://127.0.0.1:${content.port}/bytes/10`,
    ])
    assert.equal(response.status, 200)
    const junk = await connectTcp(vmess)
    await exchange(junk, randomData(100))
  } finally {
    assert.equal(await run.stop(), 0, run.stderr())
  }
  return { stdout: run.stdout(), stderr: run.stderr() }
}

test('the console log is text in V2Ray shape by default: startup line, access lines, no JSON', async () => {
  const { stdout } = await runAndExercise({ loglevel: 'info', access: '' })
  const lines = stdout.trim().split('\n')
  assert.ok(lines.length >= 4, stdout)
  for (const line of lines) assert.match(line, TEXT_LINE, `not a text line: ${line}`)
  assert.match(
    stdout,
    /\[Warning\] tsray \d+\.\d+\.\d+ started: inbound-0 \(http\) on port \d+, inbound-1 \(vmess\)/,
  )
  assert.match(stdout, / accepted tcp:127\.0\.0\.1:\d+$/m)
  assert.match(stdout, / rejected .*AUTH_UNKNOWN/)
  assert.match(stdout, /\[Info\] refused VMess handshake inbound=inbound-1 /)
})

test('the startup line shows at the default level (warning), without a log section', async () => {
  const { stdout } = await runAndExercise(undefined)
  assert.match(stdout, /^\S+ \S+ \[Warning\] tsray \S+ started: /m)
  assert.doesNotMatch(stdout, /accepted/, 'no access log without log.access')
})

test('log.format "json" writes one JSON object a line', async () => {
  const { stdout } = await runAndExercise({ loglevel: 'info', access: '', format: 'json' })
  const records = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
  assert.ok(records.some((record) => /^tsray \S+ started: /.test(String(record.msg))))
  assert.ok(
    records.some((record) => record.status === 'accepted' && String(record.destination).startsWith('tcp:')),
  )
})

test('log.access and log.error files each get their own lines, nothing on the console', async () => {
  const access = join(dir, 'logs', 'access.log')
  const error = join(dir, 'logs', 'error.log')
  const { stdout } = await runAndExercise({ loglevel: 'info', access, error })
  assert.equal(stdout, '')
  const accessText = readFileSync(access, 'utf8')
  const errorText = readFileSync(error, 'utf8')
  assert.match(accessText, / accepted tcp:127\.0\.0\.1:\d+$/m)
  assert.match(accessText, / rejected .*AUTH_UNKNOWN/)
  assert.doesNotMatch(accessText, /\[(Info|Warning)\]/)
  assert.match(errorText, /\[Warning\] tsray \S+ started: /)
  assert.doesNotMatch(errorText, / accepted tcp:/)
})

test('an unknown log.format is refused', async () => {
  const config = join(dir, 'bad-format.json')
  writeFileSync(config, JSON.stringify({ log: { format: 'xml' }, outbounds: [{ protocol: 'freedom' }] }))
  const run = runCli(['test', '-c', config])
  assert.equal(await run.exited, 1)
  await waitUntil(() => run.stderr().includes('log.format'), 'the message', { output: run.stderr })
  assert.match(run.stderr(), /log\.format: "xml" is not a log format/)
})

failOnLeakedHandles()
