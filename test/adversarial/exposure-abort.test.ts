import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { socksConnect } from '../helpers/clients.js'
import { sleep } from '../helpers/exposure.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { listen } from '../helpers/net.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort, waitForPort } from '../helpers/v2ray.js'

// A tunnel cut by shutdown reaches the app as an abort (RST), never as a clean end; a second signal
// exits at once with that signal's code.
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))

/** A target that accepts, sends a little and then holds the connection open. */
async function holdingTarget(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => undefined)
    socket.write('partial')
  })
  const port = await listen(server)
  return {
    port,
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

/** How a socket ended: 'end' (FIN), an error code (ECONNRESET), or 'none' within `ms`. */
function endingOf(socket: Socket, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('none'), ms)
    socket.on('data', () => undefined)
    socket.once('end', () => {
      clearTimeout(timer)
      resolve('end')
    })
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve(error.code ?? 'error')
    })
  })
}

test('a tunnel still open when the shutdown grace ends reaches the app as a reset', async () => {
  const target = await holdingTarget()
  const proxy = await startTsray({
    inbounds: [{ listen: '127.0.0.1', port: await freePort(), protocol: 'socks', settings: {} }],
    outbounds: [{ protocol: 'freedom' }],
  })
  const tunnel = await socksConnect(proxy.bound[0]!.port, { host: '127.0.0.1', port: target.port })
  const ending = endingOf(tunnel, 5_000)
  await sleep(100)
  await proxy.instance.stop(100)
  assert.equal(await ending, 'ECONNRESET')
  tunnel.destroy()
  await target.close()
})

test('tsray run exits at once on a second SIGTERM with code 143, not 130', async () => {
  const target = await holdingTarget()
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'tsray-abort-'))
  const config = join(dir, 'config.json')
  writeFileSync(
    config,
    JSON.stringify({
      log: { loglevel: 'none' },
      inbounds: [{ listen: '127.0.0.1', port, protocol: 'socks', settings: {} }],
      outbounds: [{ protocol: 'freedom' }],
    }),
  )
  const child = spawn(process.execPath, [MAIN, 'run', '-c', config], { stdio: 'ignore' })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  await waitForPort(port)
  const tunnel = await socksConnect(port, { host: '127.0.0.1', port: target.port })
  tunnel.on('error', () => undefined)
  child.kill('SIGTERM')
  await sleep(300)
  child.kill('SIGTERM')
  const code = await Promise.race([exited, sleep(5_000).then(() => 'still running')])
  if (code === 'still running') child.kill('SIGKILL')
  tunnel.destroy()
  await target.close()
  assert.equal(code, 143)
})

failOnLeakedHandles()
