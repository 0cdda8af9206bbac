import assert from 'node:assert/strict'
import { test } from 'node:test'
import { validateConfig } from '../../src/config/load.js'
import { buildInstance } from '../../src/runtime/build.js'
import { readSocksReply } from '../helpers/clients.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { memoryLogger } from '../helpers/logger.js'
import { connectTcp, listen, readExactly } from '../helpers/net.js'
import { serverContext } from '../helpers/server-context.js'
import { waitFor } from '../helpers/requests.js'
import { randomBytes } from 'node:crypto'
import { createServer, type Socket } from 'node:net'
import { ByteQueue } from '../../src/protocol/byte-queue.js'
import { ChunkOpener } from '../../src/protocol/chunk-opener.js'
import { SING_CHUNK_LENGTH } from '../../src/protocol/chunk-sealer.js'
import { ServerHandshake } from '../../src/protocol/server-handshake.js'
import { requestBodyParams } from '../../src/protocol/session-keys.js'
import { createUser, type VmessUser } from '../../src/protocol/user.js'
import { freePort } from '../helpers/v2ray.js'

test('a VMess outbound whose server is down: SOCKS5 answers at once, then the tunnel is reset and the server named in the log', async () => {
  const [socksPort, deadPort] = [await freePort(), await freePort()]
  const logger = memoryLogger()
  const instance = buildInstance(
    validateConfig({
      inbounds: [{ listen: '127.0.0.1', port: socksPort, protocol: 'socks', settings: {} }],
      outbounds: [
        {
          protocol: 'vmess',
          settings: {
            vnext: [
              {
                address: '127.0.0.1',
                port: deadPort,
                users: [{ id: 'd143f1b7-3841-444d-a410-28898e5de074', alterId: 0 }],
              },
            ],
          },
        },
      ],
    }).config,
    { logs: { logger, access: undefined, droppedLines: 0, close: () => Promise.resolve() } },
  )
  await instance.start()
  try {
    const socket = await connectTcp(socksPort)
    const closed = new Promise<string>((resolve) => {
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'))
      socket.on('close', () => resolve('close'))
    })
    socket.write(Buffer.of(5, 1, 0))
    assert.deepEqual(await readExactly(socket, 2), Buffer.of(5, 0))
    socket.write(Buffer.of(5, 1, 0, 1, 127, 0, 0, 1, 0, 80))
    // Answered as V2Ray answers: success before the server is reached (the target is the server's business).
    assert.equal((await readSocksReply(socket)).code, 0)
    socket.write('GET / HTTP/1.0\r\n\r\n')
    assert.equal(await closed, 'ECONNRESET', 'the client sees a reset, not a clean end')
    // Logged as the server's failure, naming it; the tunnel's own line is not a warning about the target.
    const line = logger.lines.find((l) => l.msg === `cannot reach VMess server 127.0.0.1:${deadPort}`)
    assert.ok(line !== undefined, JSON.stringify(logger.lines))
    assert.equal(line.level, 'warn')
    assert.equal((line.obj as { reason?: string }).reason, 'ECONNREFUSED')
    const tunnel = logger.lines.find((l) => l.msg === 'tunnel failed')
    assert.deepEqual(
      [tunnel?.level, (tunnel?.obj as { reason?: string }).reason],
      ['debug', 'SERVER_UNREACHABLE'],
    )
  } finally {
    await instance.stop(0)
  }
})

/**
 * A VMess server that only reads: it opens the request body, counts its bytes and records the largest
 * whole chunk the client wrote (what a sing-box or mihomo server could not read past SING_CHUNK_LENGTH).
 */
async function startChunkRecorder(user: VmessUser) {
  const seen = { bytes: 0, largestChunk: 0 }
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    const queue = new ByteQueue()
    const handshake = new ServerHandshake(serverContext([user], { now: Math.floor(Date.now() / 1000) }))
    let opener: ChunkOpener | undefined
    const open = (bytes: Buffer): void => {
      for (const payload of opener!.push(bytes)) seen.bytes += payload.length
      seen.largestChunk = Math.max(seen.largestChunk, opener!.largestChunkLength)
    }
    socket.on('data', (bytes: Buffer) => {
      if (opener !== undefined) return open(bytes)
      queue.push(bytes)
      const step = handshake.advance(queue)
      if (step.status !== 'accepted') return
      opener = new ChunkOpener(requestBodyParams(step.header))
      for (const rest of queue.drain()) open(rest)
    })
  })
  const port = await listen(server)
  const close = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  }
  return { port, seen, close }
}

for (const maxChunkLength of [undefined, SING_CHUNK_LENGTH]) {
  test(`a VMess outbound ${maxChunkLength === undefined ? 'writes 64 KiB chunks by default' : 'with settings.maxChunkLength 16,450 (sing-box, mihomo servers) writes no larger chunk'}`, async () => {
    const id = 'd143f1b7-3841-444d-a410-28898e5de074'
    const recorder = await startChunkRecorder(createUser({ id }))
    const forwardPort = await freePort()
    const instance = buildInstance(
      validateConfig({
        inbounds: [
          {
            listen: '127.0.0.1',
            port: forwardPort,
            protocol: 'dokodemo-door',
            settings: { address: '127.0.0.1', port: 9, network: 'tcp' },
          },
        ],
        outbounds: [
          {
            protocol: 'vmess',
            settings: {
              vnext: [
                { address: '127.0.0.1', port: recorder.port, users: [{ id, security: 'aes-128-gcm' }] },
              ],
              ...(maxChunkLength === undefined ? {} : { maxChunkLength }),
            },
          },
        ],
      }).config,
      {
        logs: { logger: memoryLogger(), access: undefined, droppedLines: 0, close: () => Promise.resolve() },
      },
    )
    await instance.start()
    try {
      const socket = await connectTcp(forwardPort)
      socket.on('error', () => undefined)
      const total = 4 * 1024 * 1024
      socket.write(randomBytes(total))
      await waitFor(
        () => recorder.seen.bytes === total,
        10_000,
        () => `${recorder.seen.bytes} of ${total} bytes`,
      )
      socket.destroy()
      const largest = recorder.seen.largestChunk
      if (maxChunkLength === undefined) assert.ok(largest > SING_CHUNK_LENGTH, `largest chunk ${largest}`)
      else assert.ok(largest > 0 && largest <= maxChunkLength, `largest chunk ${largest}`)
    } finally {
      await instance.stop(0)
      await recorder.close()
    }
  })
}

failOnLeakedHandles()
