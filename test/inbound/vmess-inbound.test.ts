import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { drainShape, VmessInbound } from '../../src/inbound/vmess.js'
import { FreedomOutbound } from '../../src/outbound/freedom.js'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { createClientRequest, resolveSecurity } from '../../src/protocol/client-request.js'
import { Command } from '../../src/protocol/constants.js'
import { LegacyAuthTable } from '../../src/protocol/legacy-auth.js'
import { AuthIdReplayFilter, SessionHistory } from '../../src/protocol/replay-filter.js'
import { UserDirectory } from '../../src/protocol/user-directory.js'
import { createUser } from '../../src/protocol/user.js'
import { secureRandom } from '../../src/crypto/random.js'
import { Router } from '../../src/runtime/router.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { closeVmess, listenVmess } from '../helpers/vmess-server.js'
import { memoryLogger } from '../helpers/logger.js'
import { connectTcp, randomData, sha256Hex, startEchoServer } from '../helpers/net.js'

const HANDSHAKE_MS = 1_500
const user = createUser({ id: 'b831381d-6324-4d53-ad4f-8cda48b30811', email: 'alice@test' })
const logger = memoryLogger()
const access: { status: string; reason?: string | undefined }[] = []
let echo: Awaited<ReturnType<typeof startEchoServer>>
let inbound: VmessInbound
let strictInbound: VmessInbound
let port = 0
let strictPort = 0

function makeInbound(options: { disableInsecureEncryption: boolean }): VmessInbound {
  const freedom = new FreedomOutbound({ tag: 'direct', connectTimeoutMs: 5_000 })
  return new VmessInbound({
    tag: 'vmess-in',
    users: new UserDirectory([user]),
    legacy: new LegacyAuthTable([user]),
    legacyPolicy: 'accept',
    authIds: new AuthIdReplayFilter(),
    sessions: new SessionHistory(),
    disableInsecureEncryption: options.disableInsecureEncryption,
    handshakeTimeoutMs: HANDSHAKE_MS,
    timeouts: () => ({ connIdleMs: 10_000, uplinkOnlyMs: 1_000, downlinkOnlyMs: 1_000 }),
    dispatcher: new Router({
      rules: [],
      outbounds: new Map([['direct', freedom]]),
      defaultOutbound: freedom,
    }),
    logger,
    onAccess: (record) => access.push(record),
  })
}

before(async () => {
  echo = await startEchoServer()
  inbound = makeInbound({ disableInsecureEncryption: false })
  port = await listenVmess(inbound)
  strictInbound = makeInbound({ disableInsecureEncryption: true })
  strictPort = await listenVmess(strictInbound)
})
after(async () => {
  await closeVmess(inbound)
  await closeVmess(strictInbound)
  await echo.close()
})

interface Reaction {
  bytes: number
  ended: boolean
  reset: boolean
  afterMs: number
}

/** Sends `data` (then FIN when `finish`), and records what the server does. */
function react(
  socket: Socket,
  data: Buffer,
  options: { finish: boolean; timeoutMs?: number },
): Promise<Reaction> {
  const start = Date.now()
  return new Promise((resolve) => {
    let bytes = 0
    let ended = false
    let reset = false
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ bytes, ended, reset, afterMs: -1 })
    }, options.timeoutMs ?? 8_000)
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length))
    socket.on('end', () => {
      ended = true
      socket.end()
    })
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET') reset = true
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ bytes, ended, reset, afterMs: Date.now() - start })
    })
    if (options.finish) socket.end(data)
    else socket.write(data)
  })
}

function requestWire(
  command: (typeof Command)[keyof typeof Command],
  security: 'aes-128-gcm' | 'none',
): Buffer {
  const wire = resolveSecurity(security)
  return createClientRequest(user, {
    legacy: false,
    security: wire.security,
    options: wire.options,
    command,
    host: '127.0.0.1',
    port: echo.port,
    now: Math.floor(Date.now() / 1000),
    random: secureRandom,
  }).wire
}

test('junk followed by FIN gets no byte and a FIN after the client closes', async () => {
  for (const length of [0, 1, 15, 16, 100, 1000]) {
    const reaction = await react(await connectTcp(port), randomData(length), { finish: true })
    assert.deepEqual(
      { bytes: reaction.bytes, ended: reaction.ended, reset: reaction.reset },
      { bytes: 0, ended: true, reset: false },
      `length ${length}`,
    )
  }
})

test('junk past the drain threshold is closed with a FIN and no byte, without waiting for the client', async () => {
  const shape = drainShape([user])
  const reaction = await react(await connectTcp(port), randomData(shape.base + shape.spread + 10), {
    finish: false,
  })
  assert.equal(reaction.bytes, 0)
  assert.equal(reaction.reset, false)
  assert.equal(reaction.ended, true)
  assert.ok(reaction.afterMs >= 0 && reaction.afterMs < HANDSHAKE_MS, `closed after ${reaction.afterMs} ms`)
})

test('a silent connection is closed at the handshake deadline', async () => {
  const reaction = await react(await connectTcp(port), Buffer.alloc(0), { finish: false })
  assert.equal(reaction.bytes, 0)
  assert.equal(reaction.ended, true)
  assert.ok(reaction.afterMs >= HANDSHAKE_MS - 50, `closed after ${reaction.afterMs} ms`)
})

test('a replayed AEAD header is drained like junk; refusals reach the access log and a rate-limited error log', async () => {
  const wire = requestWire(Command.Tcp, 'aes-128-gcm')
  const first = await connectTcp(port)
  first.write(wire)
  const replay = await react(await connectTcp(port), wire, { finish: true })
  assert.deepEqual(
    { bytes: replay.bytes, ended: replay.ended, reset: replay.reset },
    { bytes: 0, ended: true, reset: false },
  )
  first.destroy()
  assert.ok(access.some((record) => record.status === 'rejected' && record.reason === 'AUTH_REPLAY'))
  // The error log names the reason too, but at most once per client IP per minute.
  const refusals = logger.lines.filter((line) => line.msg === 'refused VMess handshake')
  assert.equal(refusals.length, 1)
  // The first refusal from this IP (an empty connection closed by the client, earlier) is the one logged.
  assert.equal((refusals[0]!.obj as { reason: string }).reason, 'HEADER_EOF')
  assert.ok(access.some((record) => record.status === 'rejected' && record.reason === 'HEADER_EOF'))
})

test('disableInsecureEncryption refuses none and still serves aes-128-gcm', async () => {
  const refused = await react(await connectTcp(strictPort), requestWire(Command.Tcp, 'none'), {
    finish: false,
  })
  assert.equal(refused.bytes, 0)
  assert.equal(refused.ended, true)
  const outbound = new VmessOutbound({
    tag: 'proxy',
    connectTimeoutMs: 5_000,
    server: { host: '127.0.0.1', port: strictPort, user, legacy: false, security: 'aes-128-gcm' },
  })
  const stream = await outbound.open(Command.Tcp, { network: 'tcp', host: '127.0.0.1', port: echo.port })
  const data = randomData(50_000)
  const received: Buffer[] = []
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => received.push(chunk))
    stream.on('end', resolve)
    stream.on('error', reject)
    stream.end(data)
  })
  stream.destroy()
  assert.equal(sha256Hex(Buffer.concat(received)), sha256Hex(data))
})

test('genuine clients are served while junk connections are open', async () => {
  const junk = await Promise.all(Array.from({ length: 20 }, () => connectTcp(port)))
  for (const socket of junk) {
    socket.on('error', () => undefined)
    socket.write(randomData(40))
  }
  const outbound = new VmessOutbound({
    tag: 'proxy',
    connectTimeoutMs: 5_000,
    server: { host: '127.0.0.1', port, user, legacy: false, security: 'chacha20-poly1305' },
  })
  const stream = await outbound.open(Command.Tcp, { network: 'tcp', host: '127.0.0.1', port: echo.port })
  const data = randomData(10_000)
  const received: Buffer[] = []
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => received.push(chunk))
    stream.on('end', resolve)
    stream.on('error', reject)
    stream.end(data)
  })
  stream.destroy()
  for (const socket of junk) socket.destroy()
  assert.equal(sha256Hex(Buffer.concat(received)), sha256Hex(data))
})

failOnLeakedHandles()
