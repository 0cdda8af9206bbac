import { type ChildProcess, fork } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { VmessInbound } from '../../src/inbound/vmess.js'
import { createMetrics, type InboundMetricsValues } from '../../src/observe/metrics.js'
import { FreedomOutbound } from '../../src/outbound/freedom.js'
import { LegacyAuthTable } from '../../src/protocol/legacy-auth.js'
import { AuthIdReplayFilter, SessionHistory } from '../../src/protocol/replay-filter.js'
import { UserDirectory } from '../../src/protocol/user-directory.js'
import { createUser } from '../../src/protocol/user.js'
import { Router } from '../../src/runtime/router.js'
import { createTcpStreamServer } from '../../src/transport/tcp.js'
import { memoryLogger } from './logger.js'
import { testUuid } from './requests.js'

// A VMess server (or an echo target) in a child process, so the load tests measure its handles, fds,
// heap and event loop alone, and so each process stays within the fd limit.

const ROLE_ENV = 'TSRAY_SERVER_CHILD'
const LOOP_RESOLUTION_MS = 5

/** How the child VMess server is set up. */
export interface ServerChildOptions {
  /** Users testUuid(label, 0 … count − 1). */
  readonly users: { readonly label: string; readonly count: number }
  readonly legacy: boolean
  readonly handshakeTimeoutMs: number
}

/** What the child reports about itself. */
export interface ServerChildStats {
  /** process.getActiveResourcesInfo(), counted by type. */
  readonly handles: Record<string, number>
  readonly fds: number
  /** After GC. */
  readonly heapUsed: number
  readonly rss: number
  readonly external: number
  readonly metrics: InboundMetricsValues
  /** Event-loop delay since the last `resetLoop`, in ms (the histogram's values less its sampling interval). */
  readonly loop: { readonly p50: number; readonly p99: number; readonly max: number; readonly count: number }
}

type Request =
  { id: number; type: 'stats' } | { id: number; type: 'resetLoop' } | { id: number; type: 'stop' }

/** A started child: its port and a way to ask it things. */
export interface ServerChild {
  readonly port: number
  stats(): Promise<ServerChildStats>
  resetLoop(): Promise<void>
  stop(): Promise<void>
}

/** Starts the child VMess server (role `vmess`) or echo target (role `echo`). */
export function startServerChild(role: 'vmess' | 'echo', options?: ServerChildOptions): Promise<ServerChild> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--expose-gc', ...(process.env.TSRAY_CHILD_FLAGS?.split(' ').filter(Boolean) ?? [])],
    env: { ...process.env, [ROLE_ENV]: JSON.stringify({ role, options }) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  let nextId = 0
  const pending = new Map<number, (value: unknown) => void>()
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`server child exited with ${code} before it listened`)))
    child.on('message', (message: { type: string; id?: number; port?: number; value?: unknown }) => {
      if (message.type === 'listening') {
        const ask = <T>(type: Request['type']): Promise<T> =>
          new Promise((done) => {
            const id = nextId++
            pending.set(id, done as (value: unknown) => void)
            child.send({ id, type })
          })
        resolve({
          port: message.port!,
          stats: () => ask<ServerChildStats>('stats'),
          resetLoop: () => ask<undefined>('resetLoop'),
          stop: async () => {
            await ask('stop')
            await exited
          },
        })
      } else if (message.type === 'reply' && message.id !== undefined) {
        pending.get(message.id)?.(message.value)
        pending.delete(message.id)
      }
    })
  })
}

async function settledHeap(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc!
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 30))
  }
  return process.memoryUsage().heapUsed
}

async function runChild(role: 'vmess' | 'echo', options: ServerChildOptions | undefined): Promise<void> {
  // The histogram records the interval between samples: the delay is that less the resolution.
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
  loop.enable()
  const metrics = createMetrics()
  let close: () => Promise<void>
  let port: number
  if (role === 'echo') {
    const sockets = new Set<Socket>()
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => socket.destroy())
      socket.pipe(socket)
    })
    port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
    )
    close = () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  } else {
    const settings = options!
    const users = Array.from({ length: settings.users.count }, (_, i) =>
      createUser({ id: testUuid(settings.users.label, i), email: `user${i}@test` }),
    )
    const freedom = new FreedomOutbound({ tag: 'direct', connectTimeoutMs: 5_000 })
    const legacy = settings.legacy ? new LegacyAuthTable(users) : undefined
    const inbound = new VmessInbound({
      tag: 'vmess-in',
      users: new UserDirectory(users),
      legacy,
      legacyPolicy: settings.legacy ? 'accept' : 'refuse',
      authIds: new AuthIdReplayFilter(),
      sessions: new SessionHistory(),
      disableInsecureEncryption: false,
      handshakeTimeoutMs: settings.handshakeTimeoutMs,
      timeouts: () => ({ connIdleMs: 60_000, uplinkOnlyMs: 1_000, downlinkOnlyMs: 1_000 }),
      dispatcher: new Router({
        rules: [],
        outbounds: new Map([['direct', freedom]]),
        defaultOutbound: freedom,
      }),
      logger: memoryLogger(),
      metrics: metrics.vmessInbound('vmess-in'),
    })
    const server = createTcpStreamServer({
      listen: '127.0.0.1',
      port: 0,
      onStream: (stream, peer) => inbound.accept(stream, peer),
    })
    port = await server.listen()
    close = () => server.close(100)
    // The inbound builds the legacy table in slices from its start; report ready once it is complete.
    while (legacy !== undefined && !legacy.covers(Math.floor(Date.now() / 1000)))
      await new Promise((resolve) => setTimeout(resolve, 50))
  }
  process.on('message', (request: Request) => {
    const reply = (value: unknown): void => void process.send!({ type: 'reply', id: request.id, value })
    switch (request.type) {
      case 'stats':
        void (async () => {
          // Read before the forced GCs below, which would count as event-loop delay.
          const delay = {
            p50: loop.percentile(50) / 1e6 - LOOP_RESOLUTION_MS,
            p99: loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS,
            max: loop.max / 1e6 - LOOP_RESOLUTION_MS,
            count: loop.count,
          }
          const heapUsed = await settledHeap()
          const handles: Record<string, number> = {}
          for (const name of process.getActiveResourcesInfo()) handles[name] = (handles[name] ?? 0) + 1
          const memory = process.memoryUsage()
          reply({
            handles,
            fds: readdirSync('/proc/self/fd').length,
            heapUsed,
            rss: memory.rss,
            external: memory.external,
            metrics: await metrics.values('vmess-in'),
            loop: delay,
          } satisfies ServerChildStats)
        })()
        break
      case 'resetLoop':
        loop.reset()
        reply(undefined)
        break
      case 'stop':
        void close().then(() => {
          reply(undefined)
          process.disconnect()
        })
        break
    }
  })
  process.send!({ type: 'listening', port })
}

// Only when started by startServerChild (the test runner also loads this file, as a module).
const started = process.env[ROLE_ENV]
if (started !== undefined && process.send !== undefined) {
  const { role, options } = JSON.parse(started) as { role: 'vmess' | 'echo'; options?: ServerChildOptions }
  void runChild(role, options)
}
