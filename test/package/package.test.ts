// The package as users get it: `npm pack` from a copy of the repository (its `prepare` builds), the tarball
// installed in a new project whose TypeScript consumer type-checks with skipLibCheck off and runs, and
// `npm start` after `npm prune --omit=dev`. npm takes what it can from its cache (--prefer-offline).
import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { connect } from '../../src/index.js'
import { randomData, sha256Hex, startEchoServer } from '../helpers/net.js'
import { freePort } from '../helpers/v2ray.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'tsray-package-'))
const copy = join(dir, 'repo')
let tarball: string

/** Runs npm with a quiet, cache-first configuration; rejects with its output when it fails. */
async function npm(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd,
      env: { ...process.env, npm_config_update_notifier: 'false' },
      maxBuffer: 16 * 1024 * 1024,
    })
    return stdout
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string }
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${stdout ?? ''}\n${stderr ?? ''}`)
  }
}

/** The repository's files as a clone has them (tracked and new, not ignored: no dist/, no node_modules/). */
async function copyRepository(): Promise<void> {
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    maxBuffer: 16 * 1024 * 1024,
  })
  for (const file of stdout.split('\0')) {
    if (file === '' || !existsSync(join(ROOT, file))) continue
    mkdirSync(dirname(join(copy, file)), { recursive: true })
    cpSync(join(ROOT, file), join(copy, file))
  }
  // The installed dependencies stand in for `npm ci` (same lock), to spare the network and the CPU.
  cpSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), { recursive: true, verbatimSymlinks: true })
}

before(async () => {
  await copyRepository()
  assert.equal(existsSync(join(copy, 'dist')), false, 'a clone has no build output')
  const packed = JSON.parse(await npm(['pack', '--json', '--pack-destination', dir], copy)) as {
    filename: string
    files: { path: string }[]
  }[]
  tarball = join(dir, packed[0]!.filename)
  const files = packed[0]!.files.map((file) => file.path)
  for (const expected of [
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/cli/main.js',
    'package.json',
    'README.md',
  ]) {
    assert.ok(files.includes(expected), `the tarball ships ${expected} (it has ${files.length} files)`)
  }
  assert.equal(
    files.some((file) => file.startsWith('dist/test/') || file.startsWith('node_modules/')),
    false,
  )
})

after(() => {
  rmSync(dir, { recursive: true, force: true })
})

const CONSUMER = `import { get } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect, start, VmessAgent, VmessDispatcher, type RunningInstance, type VmessServerOptions } from 'tsray'

const id = 'b831381d-6324-4d53-ad4f-8cda48b30811'
const target = createServer((request, response) => response.end(\`hello \${request.url ?? ''}\`))
await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve))
const targetPort = (target.address() as AddressInfo).port

const server: RunningInstance = await start({
  log: { loglevel: 'none' },
  inbounds: [{ tag: 'vmess', listen: '127.0.0.1', port: 0, protocol: 'vmess', settings: { clients: [{ id }] } }],
  outbounds: [{ protocol: 'freedom' }],
})
const options: VmessServerOptions = { address: '127.0.0.1', port: server.inbound('vmess').port, id }
const link = \`vmess://\${id}@127.0.0.1:\${options.port}?encryption=auto#local\`

const dispatcher = new VmessDispatcher(link)
const viaFetch = await (await fetch(\`http://127.0.0.1:\${targetPort}/fetch\`, { dispatcher })).text()

const agent = new VmessAgent(options, { keepAlive: true })
const viaAgent = await new Promise<string>((resolve, reject) => {
  get(\`http://127.0.0.1:\${targetPort}/agent\`, { agent }, (response) => {
    let text = ''
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => (text += chunk))
    response.on('end', () => resolve(text))
  }).on('error', reject)
})

const socket = await connect(options, { host: '127.0.0.1', port: targetPort })
socket.end('GET /connect HTTP/1.0\\r\\n\\r\\n')
let raw = ''
for await (const chunk of socket) raw += String(chunk)

console.log(JSON.stringify({ viaFetch, viaAgent, viaConnect: raw.slice(raw.indexOf('\\r\\n\\r\\n') + 4) }))
agent.destroy()
await dispatcher.close()
await server.close(0)
target.close()
`

test('the packed tarball installs in a new project, type-checks with skipLibCheck off and runs', async () => {
  const project = join(dir, 'consumer')
  mkdirSync(project)
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'tsray-consumer', private: true, type: 'module' }, null, 2),
  )
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        lib: ['ES2023'],
        module: 'nodenext',
        moduleResolution: 'nodenext',
        types: ['node'],
        skipLibCheck: false,
        outDir: 'out',
      },
      files: ['consumer.ts'],
    }),
  )
  writeFileSync(join(project, 'consumer.ts'), CONSUMER)
  // The consumer's own tools: the TypeScript and @types/node this repository builds with, nothing else.
  const version = (name: string): string =>
    (
      JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
        version: string
      }
    ).version
  await npm(
    [
      'install',
      '--ignore-scripts',
      tarball,
      `typescript@${version('typescript')}`,
      `@types/node@${version('@types/node')}`,
    ],
    project,
  )
  assert.equal(existsSync(join(project, 'node_modules', '@types', 'ws')), false, 'no @types/ws installed')
  try {
    await run(process.execPath, [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project])
  } catch (error) {
    assert.fail(
      `the consumer does not type-check:\n${(error as { stdout?: string }).stdout ?? String(error)}`,
    )
  }
  const { stdout } = await run(process.execPath, [join(project, 'out', 'consumer.js')], { timeout: 30_000 })
  assert.deepEqual(JSON.parse(stdout), {
    viaFetch: 'hello /fetch',
    viaAgent: 'hello /agent',
    viaConnect: 'hello /connect',
  })
})

/** Waits until `child`'s stdout matches `pattern`, or fails with what it printed. */
function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(
      () => reject(new Error(`no ${String(pattern)} in ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    )
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const match = pattern.exec(output)
      if (match === null) return
      clearTimeout(timer)
      resolve(match)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`npm start exited with ${code}:\n${output}`))
    })
  })
}

test('npm start runs the built server after npm prune --omit=dev', async () => {
  // The copy was built by `prepare` when it was packed, as `npm ci` builds a clone.
  await npm(['prune', '--omit=dev'], copy)
  assert.equal(existsSync(join(copy, 'node_modules', 'typescript')), false, 'typescript was pruned')
  const port = await freePort()
  const echo = await startEchoServer()
  const child = spawn(
    'npm',
    [
      'start',
      '--',
      '--port',
      String(port),
      '--listen',
      '127.0.0.1',
      '--address',
      '127.0.0.1',
      '--state',
      join(dir, 'state.json'),
    ],
    { cwd: copy, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    const [link] = await waitForOutput(child, /vmess:\/\/[A-Za-z0-9+/=_-]+/, 30_000)
    const data = randomData(256 * 1024)
    const stream = await connect(link, { host: '127.0.0.1', port: echo.port })
    const back: Buffer[] = []
    stream.on('data', (chunk: Buffer) => back.push(chunk))
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve)
      stream.on('error', reject)
    })
    stream.end(data)
    await ended
    assert.equal(sha256Hex(Buffer.concat(back)), sha256Hex(data))
  } finally {
    // npm, its shell and tsray share the group this test started.
    if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGTERM')
    await exited
    await echo.close()
  }
})
