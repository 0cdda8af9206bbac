/**
 * The load tool of bench/e2e.ts, run as its own process so its CPU is not the proxies': it hosts the
 * target server (sink, source and echo) and drives connections through a proxy's inbound. Commands
 * arrive over the IPC channel, one at a time; each answers with one message.
 *
 * Target protocol, chosen by the first byte a connection sends:
 *   'U' BE64(n) then n bytes  → the target answers one byte once it has counted n (upload)
 *   'D' BE64(n)               → the target sends n bytes and ends (download)
 *   'E' …                     → the target echoes every later byte (connection rate, idle tunnels)
 *
 * Reads go into one reusable buffer (`onread`) and writes reuse one block of random bytes, so the tool
 * stays far cheaper than a proxy; e2e.ts reports its figure without a proxy to show it.
 */
import { randomBytes } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { Command } from '../src/protocol/constants.js'
import { createClientRequest, resolveSecurity } from '../src/protocol/client-request.js'
import { createUser } from '../src/protocol/user.js'
import { secureRandom } from '../src/crypto/random.js'
import { VmessClientStream } from '../src/streams/vmess-client-stream.js'

const MODE_UPLOAD = 0x55
const MODE_DOWNLOAD = 0x44
const MODE_ECHO = 0x45
const HEADER_LENGTH = 9
/** Sent over and over: large writes keep the tool's per-byte cost low. */
const BLOCK = randomBytes(1024 * 1024)
const READ_BUFFER_LENGTH = 64 * 1024
/** The payload of one connection-rate round trip. */
const ECHO_LENGTH = 100
/** A connection-rate round trip that takes longer than this counts as an error (SYN retries start at 1 s). */
const ECHO_TIMEOUT_MS = 3_000
/** A transfer stream that stalls this long fails the sample. */
const TRANSFER_STALL_MS = 30_000
/** An idle tunnel whose first echo takes longer than this is not counted. */
const IDLE_OPEN_TIMEOUT_MS = 10_000
/** A genuine connection that takes longer than this counts as failed. */
const GENUINE_TIMEOUT_MS = 10_000

/** How a load connection reaches the target: straight to a port, or through a SOCKS5 inbound. */
export interface Route {
  readonly port: number
  readonly socks: boolean
}

/** Commands of e2e.ts to the load tool. */
export type LoadCommand =
  | { op: 'target' }
  | { op: 'upload' | 'download'; route: Route; streams: number; bytes: number }
  | { op: 'rate'; route: Route; workers: number; durationMs: number }
  | { op: 'open-idle'; route: Route; count: number; concurrency: number }
  | { op: 'close-idle' }
  | {
      op: 'junk'
      port: number
      durationMs: number
      concurrency: number
      genuine?: { id: string; intervalMs: number }
    }

export type LoadReply =
  | { op: 'target'; port: number }
  | { op: 'transfer'; ms: number; bytes: number }
  | { op: 'rate'; count: number; errors: number; firstError: string; ms: number; latencies: number[] }
  | { op: 'open-idle'; opened: number; ms: number }
  | { op: 'close-idle' }
  | { op: 'junk'; count: number; ms: number; genuine: number[]; genuineFailed: number }
  | { op: 'error'; message: string }

let targetPort = 0
const idle: Socket[] = []

// ---------------------------------------------------------------------------------------------------
// Target

function startTarget(): Promise<number> {
  const server: Server = createServer({ noDelay: true }, (socket) => serveTarget(socket))
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      resolve(typeof address === 'object' && address !== null ? address.port : 0)
    })
  })
}

function serveTarget(socket: Socket): void {
  socket.on('error', () => socket.destroy())
  let header = Buffer.alloc(0)
  let remaining = 0
  let mode = 0
  socket.on('data', (bytes: Buffer) => {
    if (mode === MODE_ECHO) {
      socket.write(bytes)
      return
    }
    if (mode === MODE_UPLOAD) {
      remaining -= bytes.length
      if (remaining <= 0) socket.write(Buffer.of(1))
      return
    }
    header = Buffer.concat([header, bytes])
    if (header.length >= 1 && header.readUInt8(0) === MODE_ECHO) {
      mode = MODE_ECHO
      if (header.length > 1) socket.write(header.subarray(1))
      return
    }
    if (header.length < HEADER_LENGTH) return
    mode = header.readUInt8(0)
    remaining = Number(header.readBigUInt64BE(1))
    const rest = header.length - HEADER_LENGTH
    if (mode === MODE_UPLOAD) {
      remaining -= rest
      if (remaining <= 0) socket.write(Buffer.of(1))
    } else if (mode === MODE_DOWNLOAD) {
      sendBytes(socket, remaining, () => socket.end())
    } else {
      socket.destroy()
    }
  })
}

/** Writes `count` bytes of BLOCK with back-pressure, then calls `done`. */
function sendBytes(socket: Socket, count: number, done: () => void): void {
  let left = count
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, BLOCK.length)
      left -= n
      if (!socket.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) {
        socket.once('drain', pump)
        return
      }
    }
    done()
  }
  pump()
}

// ---------------------------------------------------------------------------------------------------
// Connections through a route

/**
 * A connection to the target through `route` whose bytes go to `onBytes` (a view of a reused buffer:
 * consume it at once). Resolves once the target is reachable (after the SOCKS5 reply).
 */
/** Why a load socket's inactivity timeout fired, for the error it is destroyed with. */
const TIMEOUT_REASON = Symbol('timeout reason')
type LoadSocket = Socket & { [TIMEOUT_REASON]: string }

function open(route: Route, onBytes: (bytes: Buffer) => void, localAddress?: string): Promise<LoadSocket> {
  return new Promise((resolve, reject) => {
    let handler: (bytes: Buffer) => void = onBytes
    const socket = connect({
      host: '127.0.0.1',
      port: route.port,
      noDelay: true,
      ...(localAddress !== undefined ? { localAddress } : {}),
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_LENGTH),
        callback: (length: number, buffer: Uint8Array) => {
          handler(Buffer.from(buffer.buffer, buffer.byteOffset, length))
          return true
        },
      },
    }) as LoadSocket
    socket.once('error', reject)
    // One 'timeout' listener for the socket's life; callers re-arm it with setTimeout(ms) and a new reason.
    socket[TIMEOUT_REASON] = 'connect or SOCKS5 reply timed out'
    socket.on('timeout', () => socket.destroy(new Error(socket[TIMEOUT_REASON])))
    socket.setTimeout(ECHO_TIMEOUT_MS)
    socket.once('close', () => reject(new Error('closed before the target was reachable')))
    if (!route.socks) {
      socket.once('connect', () => {
        socket.setTimeout(0)
        resolve(socket)
      })
      return
    }
    // SOCKS5: no-auth greeting, then CONNECT 127.0.0.1:targetPort; replies are parsed as they come.
    let reply = Buffer.alloc(0)
    let stage: 'method' | 'connect' = 'method'
    handler = (bytes) => {
      reply = Buffer.concat([reply, bytes])
      if (stage === 'method') {
        if (reply.length < 2) return
        if (reply.readUInt8(1) !== 0) return reject(new Error('SOCKS5 method refused'))
        reply = reply.subarray(2)
        stage = 'connect'
        const request = Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, 0, 0])
        request.writeUInt16BE(targetPort, 8)
        socket.write(request)
      }
      if (reply.length < 5) return
      const atyp = reply.readUInt8(3)
      const length = 4 + (atyp === 1 ? 4 : atyp === 4 ? 16 : 1 + reply.readUInt8(4)) + 2
      if (reply.length < length) return
      if (reply.readUInt8(1) !== 0) return reject(new Error(`SOCKS5 CONNECT refused: ${reply.readUInt8(1)}`))
      handler = onBytes
      if (reply.length > length) onBytes(reply.subarray(length))
      socket.setTimeout(0)
      resolve(socket)
    }
    socket.once('connect', () => socket.write(Buffer.from([5, 1, 0])))
  })
}

function modeHeader(mode: number, count: number): Buffer {
  const header = Buffer.alloc(HEADER_LENGTH)
  header.writeUInt8(mode, 0)
  header.writeBigUInt64BE(BigInt(count), 1)
  return header
}

/** One stream: upload `bytes` to the sink (done at its ack), or download them from the source. */
async function transferOne(op: 'upload' | 'download', route: Route, bytes: number): Promise<void> {
  let finish: () => void = () => undefined
  let fail: (error: Error) => void = () => undefined
  const finished = new Promise<void>((resolve, reject) => {
    finish = resolve
    fail = reject
  })
  let received = 0
  const socket = await open(route, (chunk) => {
    received += chunk.length
    if (op === 'upload' || received >= bytes) finish()
  })
  socket[TIMEOUT_REASON] = `${op} stalled`
  socket.setTimeout(TRANSFER_STALL_MS)
  socket.on('error', (error) => fail(error))
  socket.on('close', () => fail(new Error(`connection closed after ${received} bytes`)))
  if (op === 'upload') {
    socket.write(modeHeader(MODE_UPLOAD, bytes))
    sendBytes(socket, bytes, () => undefined)
  } else {
    socket.write(modeHeader(MODE_DOWNLOAD, bytes))
  }
  try {
    await finished
  } finally {
    socket.destroy()
  }
}

async function transfer(
  op: 'upload' | 'download',
  route: Route,
  streams: number,
  bytes: number,
): Promise<LoadReply> {
  const each = Math.floor(bytes / streams)
  const start = performance.now()
  await Promise.all(Array.from({ length: streams }, () => transferOne(op, route, each)))
  return { op: 'transfer', ms: performance.now() - start, bytes: each * streams }
}

/** One connection-rate round trip: connect (and SOCKS5), 100 B echoed, close. Returns its ms. */
async function echoOnce(route: Route, payload: Buffer, localAddress: string): Promise<number> {
  const start = performance.now()
  let received = 0
  let done: () => void = () => undefined
  let fail: (error: Error) => void = () => undefined
  const echoed = new Promise<void>((resolve, reject) => {
    done = resolve
    fail = reject
  })
  const socket = await open(
    route,
    (bytes) => {
      received += bytes.length
      if (received >= payload.length - 1) done()
    },
    localAddress,
  )
  socket[TIMEOUT_REASON] = 'no echo in time'
  socket.setTimeout(ECHO_TIMEOUT_MS)
  socket.on('error', (error) => fail(error))
  socket.on('close', () => fail(new Error('closed before the echo')))
  socket.write(payload)
  try {
    await echoed
  } finally {
    socket.destroy()
  }
  return performance.now() - start
}

async function rate(route: Route, workers: number, durationMs: number): Promise<LoadReply> {
  const payload = Buffer.concat([Buffer.of(MODE_ECHO), BLOCK.subarray(0, ECHO_LENGTH)])
  const latencies: number[] = []
  let errors = 0
  let firstError = ''
  const start = performance.now()
  const deadline = start + durationMs
  // Each worker connects from its own loopback address: at ~1,000 connections/s one address's
  // 28,000 ephemeral ports come back within TIME_WAIT, and a SYN that meets the old connection
  // still closing on the proxy's side waits for a retransmit (seconds).
  const worker = async (_: unknown, index: number): Promise<void> => {
    const localAddress = `127.0.0.${2 + index}`
    while (performance.now() < deadline) {
      try {
        const ms = await echoOnce(route, payload, localAddress)
        // Round trips that end after the deadline are not counted: the rate is over durationMs.
        if (performance.now() <= deadline) latencies.push(ms)
      } catch (error) {
        errors++
        firstError ||= String(error)
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, worker))
  return { op: 'rate', count: latencies.length, errors, firstError, ms: durationMs, latencies }
}

/** Opens `count` tunnels to the echo target, each proven end to end by one echoed byte, and keeps them. */
async function openIdle(route: Route, count: number, concurrency: number): Promise<LoadReply> {
  const start = performance.now()
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++
      let socket: Socket | undefined
      try {
        let echoed: (ok: boolean) => void = () => undefined
        const back = new Promise<boolean>((resolve) => (echoed = resolve))
        const timer = setTimeout(() => echoed(false), IDLE_OPEN_TIMEOUT_MS)
        socket = await open(route, () => echoed(true))
        socket.on('error', () => undefined)
        socket.on('close', () => echoed(false))
        socket.write(Buffer.of(MODE_ECHO, 0))
        const ok = await back
        clearTimeout(timer)
        if (ok) idle.push(socket)
        else socket.destroy()
      } catch {
        // A tunnel that failed to open is simply not counted.
        socket?.destroy()
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { op: 'open-idle', opened: idle.length, ms: performance.now() - start }
}

// ---------------------------------------------------------------------------------------------------
// Junk handshakes, with genuine ones between them

/** One junk connection: 64 random bytes and a FIN, then wait for the server to close (its drain). */
function junkOnce(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    const timer = setTimeout(() => socket.destroy(), 5_000)
    socket.on('error', () => undefined)
    socket.on('data', () => undefined)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve()
    })
    socket.end(randomBytes(64))
  })
}

/** A genuine VMess request (tsray's client codec) for the echo target; resolves with its round trip in ms. */
function genuineOnce(port: number, user: ReturnType<typeof createUser>): Promise<number> {
  const start = performance.now()
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true })
    const timer = setTimeout(
      () => socket.destroy(new Error('genuine handshake timed out')),
      GENUINE_TIMEOUT_MS,
    )
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.once('connect', () => {
      const wire = resolveSecurity('aes-128-gcm')
      const request = createClientRequest(user, {
        legacy: false,
        security: wire.security,
        options: wire.options,
        command: Command.Tcp,
        host: '127.0.0.1',
        port: targetPort,
        now: Math.floor(Date.now() / 1000),
        random: secureRandom,
      })
      const stream = new VmessClientStream(socket, request)
      let received = 0
      stream.on('error', () => undefined)
      stream.on('data', (bytes: Buffer) => {
        received += bytes.length
        if (received < ECHO_LENGTH) return
        clearTimeout(timer)
        stream.destroy()
        resolve(performance.now() - start)
      })
      stream.write(Buffer.concat([Buffer.of(MODE_ECHO), BLOCK.subarray(0, ECHO_LENGTH)]))
    })
  })
}

async function junk(command: Extract<LoadCommand, { op: 'junk' }>): Promise<LoadReply> {
  const start = performance.now()
  const deadline = start + command.durationMs
  let count = 0
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await junkOnce(command.port)
      count++
    }
  }
  const genuine: number[] = []
  let genuineFailed = 0
  const probes: Promise<void>[] = []
  let ticker: NodeJS.Timeout | undefined
  if (command.genuine !== undefined) {
    const user = createUser({ id: command.genuine.id })
    ticker = setInterval(() => {
      probes.push(
        genuineOnce(command.port, user).then(
          (ms) => void genuine.push(ms),
          () => void genuineFailed++,
        ),
      )
    }, command.genuine.intervalMs)
  }
  const workers = command.concurrency > 0 ? command.concurrency : 0
  if (workers === 0) await new Promise((resolve) => setTimeout(resolve, command.durationMs))
  await Promise.all(Array.from({ length: workers }, worker))
  clearInterval(ticker)
  await Promise.all(probes)
  return { op: 'junk', count, ms: performance.now() - start, genuine, genuineFailed }
}

// ---------------------------------------------------------------------------------------------------

async function run(command: LoadCommand): Promise<LoadReply> {
  switch (command.op) {
    case 'target':
      targetPort = await startTarget()
      return { op: 'target', port: targetPort }
    case 'upload':
    case 'download':
      return transfer(command.op, command.route, command.streams, command.bytes)
    case 'rate':
      return rate(command.route, command.workers, command.durationMs)
    case 'open-idle':
      return openIdle(command.route, command.count, command.concurrency)
    case 'close-idle':
      for (const socket of idle.splice(0)) socket.destroy()
      return { op: 'close-idle' }
    case 'junk':
      return junk(command)
  }
}

process.on('message', (command: LoadCommand) => {
  run(command).then(
    (reply) => process.send?.(reply),
    (error: unknown) => process.send?.({ op: 'error', message: String(error) }),
  )
})
process.on('disconnect', () => process.exit(0))
