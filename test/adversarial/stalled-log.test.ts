// A server whose stdout is a pipe nobody reads (a stuck log collector, a terminal paused with Ctrl-S) must
// keep serving: every refused connection writes an access line, and once the pipe and the log buffer are
// full, lines are dropped and counted, never waited for.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { LOG_BUFFER_BYTES } from '../../src/observe/log.js'
import { MAIN } from '../helpers/cli.js'
import { curl, startContentServer } from '../helpers/clients.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { randomData } from '../helpers/net.js'
import { scaled } from '../helpers/probe.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort, waitForPort } from '../helpers/v2ray.js'

/** An access line of a refusal is about 60 bytes: this many fill a 64 KiB pipe and the buffer twice over. */
const REFUSALS = scaled(Math.ceil(((LOG_BUFFER_BYTES + 64 * 1024) * 2) / 60), 50_000)
const CONCURRENCY = 64

const dir = mkdtempSync(join(tmpdir(), 'tsray-stalled-log-'))
let server: ChildProcess
let serverExited: Promise<void>
let content: Awaited<ReturnType<typeof startContentServer>>
const ports = { vmess: 0, metrics: 0 }
const id = randomUUID()

before(async () => {
  content = await startContentServer()
  ports.vmess = await freePort()
  ports.metrics = await freePort()
  const config = join(dir, 'server.json')
  writeFileSync(
    config,
    JSON.stringify({
      log: { loglevel: 'warning', access: '' },
      inbounds: [
        { listen: '127.0.0.1', port: ports.vmess, protocol: 'vmess', settings: { clients: [{ id }] } },
      ],
      outbounds: [{ protocol: 'freedom' }],
      metrics: { listen: `127.0.0.1:${ports.metrics}` },
    }),
  )
  // The shell joins tsray's stdout to `sleep`, which never reads it: a pipe nobody reads. Its own
  // process group, so that stopping it stops both.
  server = spawn('sh', ['-c', `exec "${process.execPath}" "${MAIN}" run -c "${config}" | sleep 600`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  })
  server.stderr?.resume()
  serverExited = new Promise((resolve) => server.once('exit', () => resolve()))
  await waitForPort(ports.metrics)
})
after(async () => {
  if (server.pid !== undefined) process.kill(-server.pid, 'SIGKILL')
  await serverExited
  await content.close()
  rmSync(dir, { recursive: true, force: true })
})

/** One refused connection: junk, then FIN; resolves when the server has closed it. */
function refused(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.end(randomData(100)))
    const timer = setTimeout(() => socket.destroy(), 10_000)
    socket.on('error', () => undefined)
    socket.resume()
    socket.on('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

async function droppedLines(): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)
  const text = await response.text()
  const match = /^tsray_log_lines_dropped_total (\d+)$/m.exec(text)
  assert.ok(match !== null, text)
  return Number(match[1])
}

// A frozen server fails this by the timeout (before logs were asynchronous it froze after ~1,100).
test(
  `a server whose stdout nobody reads still serves after ${REFUSALS} refused connections`,
  { timeout: 90_000 },
  async () => {
    let next = 0
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < REFUSALS) {
          next += 1
          await refused(ports.vmess)
        }
      }),
    )
    // Lines past the pipe and the buffer were dropped and counted; the metrics endpoint still answers.
    assert.ok((await droppedLines()) > 0, 'no log line was dropped: the pipe never filled')

    const socks = await freePort()
    const client = await startTsray({
      inbounds: [{ listen: '127.0.0.1', port: socks, protocol: 'socks', settings: { udp: false } }],
      outbounds: [
        {
          protocol: 'vmess',
          settings: { vnext: [{ address: '127.0.0.1', port: ports.vmess, users: [{ id }] }] },
        },
      ],
    })
    try {
      for (let index = 0; index < 5; index += 1) {
        const result = await curl([
          '--socks5-hostname',
          `127.0.0.1:${socks}`,
          `http://127.0.0.1:${content.port}/bytes/100000`,
        ])
        assert.equal(result.status, 200)
        assert.equal(result.actualSha, result.expectedSha)
      }
    } finally {
      await client.stop()
    }
  },
)

failOnLeakedHandles()
