import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { ByteQueue } from '../../src/protocol/byte-queue.js'
import { ChunkOpener } from '../../src/protocol/chunk-opener.js'
import { ChunkSealer, SING_CHUNK_LENGTH, TCP_CHUNK_LENGTH } from '../../src/protocol/chunk-sealer.js'
import { Command } from '../../src/protocol/constants.js'
import { ResponseHeaderParser } from '../../src/protocol/response-header.js'
import { requestBodyParams, responseBodyParams } from '../../src/protocol/session-keys.js'
import { createUser } from '../../src/protocol/user.js'
import { VmessServerStream } from '../../src/streams/vmess-server-stream.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, listen } from '../helpers/net.js'
import { genuineRequest, testUuid } from '../helpers/requests.js'

// The response's chunk size follows the client: never larger than the client's own chunks (at least
// SING_CHUNK_LENGTH), because sing-box and mihomo clients cannot read 64 KiB chunks (docs/protocol.md §7.3).
const user = createUser({ id: testUuid('tsray response chunks', 0), alterId: 0, email: 'chunks@test' })
const accepted: Socket[] = []
let server: Server
let port = 0

before(async () => {
  server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => socket.destroy())
    accepted.push(socket)
  })
  port = await listen(server)
})
after(async () => {
  for (const socket of accepted) socket.destroy()
  await new Promise((resolve) => server.close(resolve))
})

/** A client socket and the server's VmessServerStream for one genuine request, header already read. */
async function pair(security: 'aes-128-gcm' | 'chacha20-poly1305' | 'none') {
  const request = genuineRequest(user, {
    legacy: false,
    command: Command.Tcp,
    host: '127.0.0.1',
    port: 80,
    padding: 0,
    security,
  })
  const client = await connectTcp(port)
  while (accepted.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  const socket = accepted.shift()!
  const stream = new VmessServerStream(socket, {
    header: request.header,
    kind: request.kind,
    buffered: new ByteQueue(),
  })
  stream.on('error', () => undefined)
  // The client's side of the body: its sealer, and a reader of the response that records chunk sizes.
  const sealer = new ChunkSealer(requestBodyParams(request.header), { maxChunkLength: TCP_CHUNK_LENGTH })
  const parser = new ResponseHeaderParser(request.kind, request.responseKeys)
  const queue = new ByteQueue()
  let opener: ChunkOpener | undefined
  let received = 0
  client.on('data', (bytes: Buffer) => {
    if (opener === undefined) {
      queue.push(bytes)
      const response = parser.parse(queue)
      if (response === undefined) return
      opener = new ChunkOpener(responseBodyParams(request.header, request.kind))
      for (const rest of queue.drain()) for (const payload of opener.push(rest)) received += payload.length
      return
    }
    for (const payload of opener.push(bytes)) received += payload.length
  })
  /** Sends `length` bytes from the client in chunks of at most `maxChunkLength` and waits for them at the server. */
  const send = async (length: number, maxChunkLength: number): Promise<void> => {
    sealer.setMaxChunkLength(maxChunkLength)
    let read = 0
    const arrived = new Promise<void>((resolve) => {
      const onData = (chunk: Buffer): void => {
        read += chunk.length
        if (read < length) return
        stream.off('data', onData)
        resolve()
      }
      stream.on('data', onData)
    })
    client.write(sealer.seal(randomBytes(length)))
    await arrived
  }
  /** The server writes `length` bytes as one write; resolves with the largest response chunk so far. */
  const reply = async (length: number): Promise<number> => {
    const target = received + length
    stream.write(randomBytes(length))
    while (received < target) await once(client, 'data')
    return opener!.largestChunkLength
  }
  const close = (): void => {
    client.destroy()
    stream.destroy()
  }
  return { send, reply, close }
}

for (const security of ['aes-128-gcm', 'chacha20-poly1305', 'none'] as const) {
  test(`${security}: response chunks stay within SING_CHUNK_LENGTH until the client sends larger ones, then follow them`, async () => {
    const { send, reply, close } = await pair(security)
    try {
      // Server first, before any client chunk: the safe size.
      assert.ok((await reply(200_000)) <= SING_CHUNK_LENGTH)
      // A client writing chunks of sing's size: the response stays there.
      await send(40_000, SING_CHUNK_LENGTH)
      assert.ok((await reply(200_000)) <= SING_CHUNK_LENGTH)
      // A client writing 40 KiB chunks: the response may use up to that, not more.
      await send(100_000, 40_000)
      const largest = await reply(200_000)
      assert.ok(largest > SING_CHUNK_LENGTH && largest <= 40_000, `largest response chunk ${largest}`)
      // 64 KiB chunks from the client (tsray, V2Ray and Xray read any length): the response follows.
      await send(200_000, TCP_CHUNK_LENGTH)
      const full = await reply(300_000)
      assert.ok(full > 40_000 && full <= TCP_CHUNK_LENGTH, `largest response chunk ${full}`)
    } finally {
      close()
    }
  })
}

failOnLeakedHandles()
