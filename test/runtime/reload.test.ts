import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { validateConfig } from '../../src/config/load.js'
import { connectTcp, randomData, readExactly, startEchoServer } from '../helpers/net.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort, startV2ray, type V2rayProcess } from '../helpers/v2ray.js'

const A = { email: 'a@test', id: randomUUID() }
const B = { email: 'b@test', id: randomUUID() }
const C = { email: 'c@test', id: randomUUID() }

function serverConfig(options: {
  vmess: number
  socks: number
  clients: { email: string; id: string }[]
  rules?: object[]
}): object {
  return {
    inbounds: [
      {
        tag: 'vin',
        listen: '127.0.0.1',
        port: options.vmess,
        protocol: 'vmess',
        settings: { clients: options.clients },
      },
      { tag: 'socks', listen: '127.0.0.1', port: options.socks, protocol: 'socks', settings: {} },
    ],
    outbounds: [
      { tag: 'direct', protocol: 'freedom' },
      { tag: 'block', protocol: 'blackhole' },
    ],
    routing: { rules: options.rules ?? [] },
  }
}

async function startClient(
  user: { id: string },
  server: number,
  target: number,
): Promise<{ port: number; v2ray: V2rayProcess }> {
  const port = await freePort()
  const v2ray = await startV2ray(
    {
      inbounds: [
        {
          listen: '127.0.0.1',
          port,
          protocol: 'dokodemo-door',
          settings: { address: '127.0.0.1', port: target, network: 'tcp' },
        },
      ],
      outbounds: [
        {
          protocol: 'vmess',
          settings: {
            vnext: [
              { address: '127.0.0.1', port: server, users: [{ id: user.id, security: 'aes-128-gcm' }] },
            ],
          },
        },
      ],
    },
    { waitPort: port },
  )
  return { port, v2ray }
}

function echoOnce(socket: Socket, data: Buffer): Promise<Buffer> {
  socket.write(data)
  return readExactly(socket, data.length)
}

/** Ends a request and resolves with what came back before the close (nothing, when refused or blackholed). */
function answerTo(port: number, data: Buffer): Promise<number> {
  return connectTcp(port).then(
    (socket) =>
      new Promise((resolve, reject) => {
        let received = 0
        const timer = setTimeout(() => reject(new Error('still open after 15 s')), 15_000)
        socket.on('data', (chunk: Buffer) => (received += chunk.length))
        socket.on('error', () => undefined)
        socket.once('close', () => {
          clearTimeout(timer)
          resolve(received)
        })
        socket.end(data)
      }),
  )
}

describe('reload', () => {
  let echo: Awaited<ReturnType<typeof startEchoServer>>
  let server: Awaited<ReturnType<typeof startTsray>>
  const clients: Awaited<ReturnType<typeof startClient>>[] = []
  let ports: { vmess: number; socks: number }

  before(async () => {
    echo = await startEchoServer()
    ports = { vmess: await freePort(), socks: await freePort() }
    server = await startTsray(serverConfig({ ...ports, clients: [A, B] }))
    for (const user of [A, B, C]) clients.push(await startClient(user, ports.vmess, echo.port))
  })

  after(async () => {
    for (const client of clients) await client.v2ray.stop()
    await server?.stop()
    await echo?.close()
  })

  test('applies user and routing changes to new connections, keeps open tunnels, and reports what needs a restart', async () => {
    const [clientA, clientB, clientC] = clients as [
      (typeof clients)[0],
      (typeof clients)[0],
      (typeof clients)[0],
    ]
    const open = await connectTcp(clientB.port)
    const first = randomData(2000)
    assert.deepEqual(await echoOnce(open, first), first)
    assert.equal(await answerTo(clientC.port, randomData(1000)), 0, 'C is not a user yet')

    const next = validateConfig(
      serverConfig({
        vmess: ports.vmess,
        socks: await freePort(),
        clients: [B, C],
        rules: [{ type: 'field', user: ['b@test'], outboundTag: 'block' }],
      }),
    ).config
    const report = server.instance.reload(next)
    assert.deepEqual(report.applied, [
      'inbound "vin": 1 user(s) added, 1 removed',
      'routing: 1 rule(s) now apply to new connections',
    ])
    assert.deepEqual(report.needsRestart, [
      'inbound "socks": its protocol, listen address, port or transport changed',
    ])

    assert.equal(await answerTo(clientC.port, randomData(1000)), 1000, 'C was added')
    assert.equal(await answerTo(clientA.port, randomData(1000)), 0, 'A was removed')
    assert.equal(await answerTo(clientB.port, randomData(1000)), 0, "B's new connections are blackholed")
    const later = randomData(3000)
    assert.deepEqual(await echoOnce(open, later), later, "B's open tunnel keeps its route")
    open.destroy()
  })
})

test('tsray reload sends SIGHUP: the running tsray re-reads its config file and logs what it applied', async () => {
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
  const dir = mkdtempSync(join(tmpdir(), 'tsray-reload-'))
  const configPath = join(dir, 'config.json')
  const pidPath = join(dir, 'tsray.pid')
  const ports = { vmess: await freePort(), socks: await freePort() }
  writeFileSync(configPath, JSON.stringify(serverConfig({ ...ports, clients: [A] })))
  const child = spawn(process.execPath, [main, 'run', '-c', configPath, '--pid-file', pidPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const waitFor = async (pattern: RegExp): Promise<void> => {
    const start = Date.now()
    while (!pattern.test(output)) {
      if (Date.now() - start > 10_000) throw new Error(`no ${pattern} in: ${output}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  try {
    const start = Date.now()
    while (!existsSync(pidPath)) {
      if (Date.now() - start > 10_000) throw new Error(`no pid file: ${output}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.equal(readFileSync(pidPath, 'utf8').trim(), String(child.pid))
    writeFileSync(configPath, JSON.stringify(serverConfig({ ...ports, clients: [A, C] })))
    const sent = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [main, 'reload', '--pid-file', pidPath], (error, stdout) =>
        error === null ? resolve(stdout) : reject(new Error(error.message)),
      ),
    )
    assert.equal(sent, `sent SIGHUP to ${child.pid}\n`)
    await waitFor(/config reloaded/)
    assert.match(
      output,
      /inbound \\"vin\\": 1 user\(s\) added, 0 removed|inbound "vin": 1 user\(s\) added, 0 removed/,
    )
  } finally {
    child.kill('SIGTERM')
    assert.equal(await exited, 0)
    rmSync(dir, { recursive: true, force: true })
  }
})
