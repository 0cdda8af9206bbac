import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitForPort } from './v2ray.js'

/** Path of Debian's nginx; throws with the install command when it is missing. */
export function nginxBinary(): string {
  for (const path of [
    process.env.NGINX_BINARY,
    '/usr/sbin/nginx',
    '/usr/bin/nginx',
    '/usr/local/sbin/nginx',
  ]) {
    if (path === undefined || path === '') continue
    try {
      execFileSync(path, ['-v'], { stdio: 'ignore' })
      return path
    } catch {
      // try the next candidate
    }
  }
  throw new Error(
    'The nginx test needs nginx and it is not installed: run `apt-get update && apt-get install -y nginx-light` (or set NGINX_BINARY)',
  )
}

/** A running nginx with its config, pid, logs and temp files in a temporary directory. */
export interface NginxProcess {
  readonly config: string
  readonly errorLog: () => string
  stop(): Promise<void>
}

/**
 * Starts nginx in the foreground with the `http { … }` body given (paths inside it may use `{dir}` for the
 * temp directory), and waits for `waitPort`. Workers run as the current user when we are root, so they can
 * reach the temp directory.
 */
export async function startNginx(httpBody: string, options: { waitPort: number }): Promise<NginxProcess> {
  const binary = nginxBinary()
  const dir = mkdtempSync(join(tmpdir(), 'tsray-nginx-'))
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub))
  const config = [
    process.getuid?.() === 0 ? 'user root;' : '',
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} info;`,
    'events { worker_connections 128; }',
    'http {',
    `  access_log ${join(dir, 'access.log')};`,
    `  client_body_temp_path ${join(dir, 'client_body')};`,
    `  proxy_temp_path ${join(dir, 'proxy')};`,
    `  fastcgi_temp_path ${join(dir, 'fastcgi')};`,
    `  uwsgi_temp_path ${join(dir, 'uwsgi')};`,
    `  scgi_temp_path ${join(dir, 'scgi')};`,
    httpBody.replaceAll('{dir}', dir),
    '}',
    '',
  ].join('\n')
  const configPath = join(dir, 'nginx.conf')
  writeFileSync(configPath, config)
  let output = ''
  const child: ChildProcess = spawn(
    binary,
    ['-c', configPath, '-p', dir, '-e', join(dir, 'error.log'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const errorLog = (): string => {
    try {
      return `${output}${readFileSync(join(dir, 'error.log'), 'utf8')}`
    } catch {
      return output
    }
  }
  try {
    await waitForPort(options.waitPort)
  } catch (error) {
    child.kill('SIGKILL')
    await exited
    const log = errorLog()
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`nginx did not start: ${(error as Error).message}\n${config}\n${log}`)
  }
  return {
    config,
    errorLog,
    stop: async () => {
      // SIGQUIT: graceful shutdown; its workers exit with it.
      child.kill('SIGQUIT')
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000)
      await exited
      clearTimeout(timer)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
