import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Path of the real V2Ray binary; throws with the install command when it is missing. */
export function v2rayBinary(): string {
  const candidates = [process.env.V2RAY_BINARY, '/usr/bin/v2ray', '/usr/local/bin/v2ray'].filter(
    (path): path is string => path !== undefined && path !== '',
  )
  for (const path of candidates) {
    try {
      const version = execFileSync(path, ['-version'], { encoding: 'utf8' })
      if (version.includes('V2Ray')) return path
    } catch {
      // try the next candidate
    }
  }
  throw new Error(
    'The interop tests need the real V2Ray 4.34 binary and it is not installed: run `apt-get update && apt-get install -y v2ray` (or set V2RAY_BINARY)',
  )
}

/** A running V2Ray process with a config written to a temporary directory. */
export interface V2rayProcess {
  readonly output: () => string
  stop(): Promise<void>
}

/** Waits until 127.0.0.1:port accepts a TCP connection. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const start = Date.now()
  while (Date.now() - start < timeoutMs) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy()
        resolve(true)
      })
      socket.on('error', () => resolve(false))
    })
    if (open) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`Port ${port} did not open within ${timeoutMs} ms`)
}

/** Starts `v2ray -config` with `config`, waiting for `waitPort` (a TCP port it listens on). */
export async function startV2ray(
  config: object,
  options: { waitPort: number; env?: Record<string, string> },
): Promise<V2rayProcess> {
  const binary = v2rayBinary()
  const dir = mkdtempSync(join(tmpdir(), 'tsray-v2ray-'))
  const path = join(dir, 'config.json')
  writeFileSync(path, JSON.stringify(config, null, 2))
  let output = ''
  const child: ChildProcess = spawn(binary, ['-config', path], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    await waitForPort(options.waitPort)
  } catch (error) {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`V2Ray did not start: ${(error as Error).message}\n${output}`)
  }
  return {
    output: () => output,
    stop: async () => {
      child.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A free TCP (and usually UDP) port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net')
  return new Promise((resolve) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}
