import { type ChildProcess, fork } from 'node:child_process'
import { createHash, randomBytes, randomInt } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { connect, createServer, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { VmessOutbound } from '../src/outbound/vmess.js'
import { Command } from '../src/protocol/constants.js'
import { encodeMuxFrame, MuxStatus } from '../src/protocol/mux-frame.js'
import { createUser } from '../src/protocol/user.js'
import { socksConnect, socksUdpRoundTrip } from '../test/helpers/clients.js'
import { associate, socksUdpDatagram } from '../test/helpers/exposure.js'
import { exchange, startEchoServer, startUdpEchoServer } from '../test/helpers/net.js'
import { firstChunk, genuineRequest } from '../test/helpers/requests.js'
import { freePort } from '../test/helpers/v2ray.js'
import { encodeFrame } from '../test/helpers/websocket-frames.js'

// npm run soak [-- --minutes N]: a tsray server and a tsray client, each in its own process, under
// genuine TCP, UDP, Mux and WebSocket traffic (verified by SHA-256 at both ends) and the attacks a
// public server meets, for N minutes. Prints RSS, fds, CPU and event-loop delay of both processes.

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' } } })
const MINUTES = Number(values.minutes)
const ID = '5783a3e7-e373-51cd-8642-c83782b807c5'
const user = createUser({ id: ID })
const NODE = fileURLToPath(new URL('./soak-node.js', import.meta.url))
const counts = { genuine: 0, genuineFailed: 0, attacks: 0 }
const failures: string[] = []
let running = true

interface Node {
  readonly child: ChildProcess
  readonly ports: number[]
  exitCode: number | null | undefined
  stats(): Promise<{ rss: number; fds: number; cpuPercent: number; loopP99Ms: number; loopMaxMs: number }>
}

async function startNode(name: string, config: object): Promise<Node> {
  const child = fork(NODE, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const node: Node = {
    child,
    ports: [],
    exitCode: undefined,
    stats: () =>
      new Promise((resolve) => {
        child.once('message', (message: Awaited<ReturnType<Node['stats']>>) => resolve(message))
        child.send({ type: 'stats' })
      }),
  }
  child.once('exit', (code) => {
    node.exitCode = code
    if (running) failures.push(`${name} exited with ${code}`)
  })
  const started = new Promise<number[]>((resolve) =>
    child.once('message', (message: { ports: number[] }) => resolve(message.ports)),
  )
  child.send({ type: 'start', config })
  node.ports.push(...(await started))
  return node
}

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs `step` again and again until the end, `everyMs` apart; a throw counts against `label`. */
async function loop(label: string, everyMs: number, step: () => Promise<void>): Promise<void> {
  while (running) {
    try {
      await step()
    } catch (error) {
      if (label.startsWith('genuine')) {
        counts.genuineFailed++
        failures.push(`${label}: ${(error as Error).message}`)
      }
    }
    await pause(everyMs)
  }
}

async function main(): Promise<void> {
  const tcpEcho = await startEchoServer()
  const udpEcho = await startUdpEchoServer()
  const badHttp = createServer((socket) => {
    socket.on('error', () => undefined)
    socket.once('data', () => socket.end('HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok'))
  })
  await new Promise<void>((resolve) => badHttp.listen(0, '127.0.0.1', resolve))
  const badHttpPort = (badHttp.address() as { port: number }).port
  const [vmessPort, wsPort] = [await freePort(), await freePort()]
  const server = await startNode('server', {
    inbounds: [
      { listen: '127.0.0.1', port: vmessPort, protocol: 'vmess', settings: { clients: [{ id: ID }] } },
      {
        listen: '127.0.0.1',
        port: wsPort,
        protocol: 'vmess',
        settings: { clients: [{ id: ID }] },
        streamSettings: { network: 'ws', wsSettings: { path: '/ws' } },
      },
    ],
    outbounds: [{ protocol: 'freedom' }],
  })
  const vnext = (port: number): object => ({
    vnext: [{ address: '127.0.0.1', port, users: [{ id: ID }] }],
  })
  const client = await startNode('client', {
    inbounds: [
      {
        tag: 'plain',
        listen: '127.0.0.1',
        port: await freePort(),
        protocol: 'socks',
        settings: { udp: true, ip: '127.0.0.1' },
      },
      {
        tag: 'mux',
        listen: '127.0.0.1',
        port: await freePort(),
        protocol: 'socks',
        settings: { udp: true, ip: '127.0.0.1' },
      },
      { tag: 'ws', listen: '127.0.0.1', port: await freePort(), protocol: 'socks', settings: {} },
      { tag: 'http', listen: '127.0.0.1', port: await freePort(), protocol: 'http', settings: {} },
    ],
    outbounds: [
      { tag: 'plain-out', protocol: 'vmess', settings: vnext(vmessPort) },
      {
        tag: 'mux-out',
        protocol: 'vmess',
        settings: vnext(vmessPort),
        mux: { enabled: true, concurrency: 8 },
      },
      {
        tag: 'ws-out',
        protocol: 'vmess',
        settings: vnext(wsPort),
        streamSettings: { network: 'ws', wsSettings: { path: '/ws' } },
      },
    ],
    routing: {
      rules: [
        { type: 'field', inboundTag: ['plain', 'http'], outboundTag: 'plain-out' },
        { type: 'field', inboundTag: ['mux'], outboundTag: 'mux-out' },
        { type: 'field', inboundTag: ['ws'], outboundTag: 'ws-out' },
      ],
    },
  })
  const [plainSocks, muxSocks, wsSocks, httpProxy] = client.ports as [number, number, number, number]

  const genuineTcp = (socksPort: number) => async (): Promise<void> => {
    const data = randomBytes(randomInt(1024, 512 * 1024))
    const tunnel = await socksConnect(socksPort, { host: '127.0.0.1', port: tcpEcho.port })
    const back = await exchange(tunnel, data, { timeoutMs: 30_000 })
    tunnel.destroy()
    if (sha(back) !== sha(data)) throw new Error(`SHA-256 differs after ${back.length}/${data.length} bytes`)
    counts.genuine++
  }
  const genuineUdp = (socksPort: number) => async (): Promise<void> => {
    const datagrams = [randomBytes(1000), randomBytes(200)]
    const back = await socksUdpRoundTrip(socksPort, { host: '127.0.0.1', port: udpEcho.port }, datagrams)
    const expected = datagrams.map(sha).sort()
    if (JSON.stringify(back.map(sha).sort()) !== JSON.stringify(expected))
      throw new Error('UDP SHA-256 differs')
    counts.genuine++
  }

  const rawConnection = (port: number): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(socket))
      socket.on('error', reject)
    })
  const attacks: Record<string, [number, () => Promise<void>]> = {
    junk: [
      100,
      async () => {
        const socket = await rawConnection(vmessPort)
        socket.on('error', () => undefined)
        socket.end(randomBytes(randomInt(0, 4000)))
        await pause(200)
        socket.destroy()
      },
    ],
    websocketUnfinished: [
      500,
      async () => {
        const socket = await rawConnection(wsPort)
        socket.on('error', () => undefined)
        socket.write(
          'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        )
        await pause(50)
        socket.write(encodeFrame(randomBytes(256 * 1024), { length: 1024 * 1024 }).subarray(0, 256 * 1024))
        await pause(5_000)
        socket.destroy()
      },
    ],
    udpPortZero: [
      1_000,
      async () => {
        for (const port of [plainSocks, muxSocks]) {
          const association = await associate(port)
          association.send({ host: '127.0.0.1', port: 0 }, randomBytes(64))
          await pause(100)
          association.close()
        }
      },
    ],
    udpFloodClosedPort: [
      2_000,
      async () => {
        const association = await associate(plainSocks)
        const closed = await freePort()
        for (let i = 0; i < 2_000; i++) {
          association.udp.send(
            socksUdpDatagram({ host: '127.0.0.1', port: closed }, randomBytes(1200)),
            association.relayPort,
            '127.0.0.1',
          )
          if (i % 50 === 49) await pause(1)
        }
        await pause(500)
        association.close()
      },
    ],
    httpBadStatus: [
      1_000,
      async () => {
        const socket = await rawConnection(httpProxy)
        socket.on('error', () => undefined)
        socket.on('data', () => undefined)
        socket.write(`GET http://127.0.0.1:${badHttpPort}/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
        await pause(300)
        socket.destroy()
      },
    ],
    udpRepliesNotRead: [
      10_000,
      async () => {
        const blaster = createSocket('udp4')
        await new Promise<void>((resolve) => blaster.bind(0, '127.0.0.1', () => resolve()))
        blaster.on('message', (_payload, remote) => {
          void (async () => {
            for (let i = 0; i < 3_000 && running; i++) {
              blaster.send(randomBytes(1400), remote.port, remote.address)
              if (i % 50 === 49) await pause(1)
            }
          })()
        })
        const request = genuineRequest(user, {
          legacy: false,
          command: Command.Udp,
          host: '127.0.0.1',
          port: blaster.address().port,
          padding: 0,
        })
        const socket = await rawConnection(vmessPort)
        socket.on('error', () => undefined)
        socket.pause()
        socket.write(Buffer.concat([request.wire, firstChunk(request, Buffer.from('go'))]))
        await pause(5_000)
        socket.destroy()
        blaster.close()
      },
    ],
    muxReusedSessionId: [
      10_000,
      async () => {
        const outbound = new VmessOutbound({
          tag: 'attack',
          connectTimeoutMs: 5_000,
          server: { host: '127.0.0.1', port: vmessPort, user, legacy: false, security: 'aes-128-gcm' },
        })
        const stream = await outbound.open(Command.Mux, { network: 'tcp', host: 'v1.mux.cool', port: 0 })
        stream.on('error', () => undefined)
        stream.on('data', () => undefined)
        for (let i = 0; i < 1_000; i++) {
          stream.write(
            encodeMuxFrame({
              sessionId: 1,
              status: MuxStatus.New,
              option: 0,
              network: 'tcp',
              host: '10.255.255.1',
              port: 9,
            }),
          )
        }
        await pause(3_000)
        stream.destroy()
      },
    ],
  }

  const workers = [
    loop('genuine TCP', 20, genuineTcp(plainSocks)),
    loop('genuine Mux TCP', 20, genuineTcp(muxSocks)),
    loop('genuine WebSocket TCP', 20, genuineTcp(wsSocks)),
    loop('genuine UDP', 100, genuineUdp(plainSocks)),
    loop('genuine Mux UDP', 100, genuineUdp(muxSocks)),
    ...Object.entries(attacks).map(([name, [every, step]]) =>
      loop(`attack ${name}`, every, async () => {
        await step()
        counts.attacks++
      }),
    ),
  ]

  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)
  const started = Date.now()
  const report = async (): Promise<void> => {
    const [s, c] = [await server.stats(), await client.stats()]
    const minute = ((Date.now() - started) / 60_000).toFixed(1)
    process.stdout.write(
      `${minute.padStart(5)} min | server RSS ${mib(s.rss)} MiB fds ${s.fds} CPU ${s.cpuPercent.toFixed(0)}% ` +
        `loop p99 ${s.loopP99Ms.toFixed(1)} ms max ${s.loopMaxMs.toFixed(0)} ms | client RSS ${mib(c.rss)} MiB ` +
        `fds ${c.fds} CPU ${c.cpuPercent.toFixed(0)}% loop p99 ${c.loopP99Ms.toFixed(1)} ms | genuine ok ` +
        `${counts.genuine} failed ${counts.genuineFailed} | attacks ${counts.attacks}\n`,
    )
  }
  process.stdout.write(
    `soak: ${MINUTES} min, server pid ${server.child.pid}, client pid ${client.child.pid}\n`,
  )
  while (
    Date.now() - started < MINUTES * 60_000 &&
    server.exitCode === undefined &&
    client.exitCode === undefined
  ) {
    await pause(Math.min(30_000, MINUTES * 60_000 - (Date.now() - started)))
    if (server.exitCode === undefined && client.exitCode === undefined) await report()
  }
  running = false
  await Promise.all(workers)
  const crashed = server.exitCode !== undefined || client.exitCode !== undefined
  for (const node of [server, client]) {
    if (node.exitCode === undefined) node.child.send({ type: 'stop' })
  }
  await tcpEcho.close()
  await udpEcho.close()
  badHttp.close()
  process.stdout.write(
    `soak done: crashes ${crashed ? 1 : 0}, genuine transfers verified ${counts.genuine}, failed ${counts.genuineFailed}, ` +
      `attack rounds ${counts.attacks}\n`,
  )
  for (const failure of failures.slice(0, 20)) process.stdout.write(`  ${failure}\n`)
  process.exitCode = crashed || counts.genuineFailed > 0 ? 1 : 0
}

await main()
