import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { ProtocolError } from '../../src/errors.js'
import { ChunkSealer } from '../../src/protocol/chunk-sealer.js'
import type { ClientRequest } from '../../src/protocol/client-request.js'
import { Command } from '../../src/protocol/constants.js'
import { encodeAeadResponseHeader, encodeLegacyResponseHeader } from '../../src/protocol/response-header.js'
import { responseBodyParams } from '../../src/protocol/session-keys.js'
import { VmessClientStream } from '../../src/streams/vmess-client-stream.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, listen } from '../helpers/net.js'
import { genuineRequest, testUuid } from '../helpers/requests.js'
import { createUser } from '../../src/protocol/user.js'

// A fake server answers each connection with the next queued bytes, then a FIN: the response a
// real server would send, cut wherever a test wants.
const user = createUser({ id: testUuid('tsray client truncation', 0), alterId: 0, email: 'cut@test' })
const replies: Buffer[] = []
const sockets = new Set<Socket>()
let server: Server
let port = 0

before(async () => {
  server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    socket.resume()
    socket.end(replies.shift() ?? Buffer.alloc(0))
  })
  port = await listen(server)
})
after(async () => {
  for (const socket of sockets) socket.destroy()
  await new Promise((resolve) => server.close(resolve))
})

interface Response {
  readonly request: ClientRequest
  /** Header, one chunk per payload, then the end chunk when asked. */
  readonly wire: Buffer
  readonly headerLength: number
  /** Wire offset where each body chunk starts; the last entry is where the end chunk starts. */
  readonly chunkStarts: number[]
}

/** A request and the server's genuine response to it. */
function respond(options: { legacy: boolean; payloads: Buffer[]; end: boolean }): Response {
  const request = genuineRequest(user, {
    legacy: options.legacy,
    command: Command.Tcp,
    host: '127.0.0.1',
    port: 80,
    padding: 0,
  })
  const fields = {
    responseV: request.header.responseV,
    options: 0,
    command: 0,
    commandBytes: Buffer.alloc(0),
  }
  const header = options.legacy
    ? encodeLegacyResponseHeader(fields, request.responseKeys).wire
    : encodeAeadResponseHeader(fields, request.responseKeys)
  const sealer = new ChunkSealer(responseBodyParams(request.header, request.kind))
  const parts = [header, ...options.payloads.map((payload) => sealer.seal(payload))]
  const chunkStarts: number[] = []
  let offset = 0
  for (const part of parts) {
    offset += part.length
    chunkStarts.push(offset)
  }
  if (options.end) parts.push(sealer.end())
  return { request, wire: Buffer.concat(parts), headerLength: header.length, chunkStarts }
}

/** Opens a client stream whose server replies with `reply`; resolves with what the app side saw. */
async function readThrough(
  request: ClientRequest,
  reply: Buffer,
): Promise<{ body: Buffer; ended: boolean; error: Error | undefined }> {
  replies.push(reply)
  const socket = await connectTcp(port)
  const stream = new VmessClientStream(socket, request)
  socket.on('error', (error) => stream.destroy(error))
  stream.write(Buffer.from('request'))
  const chunks: Buffer[] = []
  return new Promise((resolve) => {
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('end', () => {
      stream.destroy()
      resolve({ body: Buffer.concat(chunks), ended: true, error: undefined })
    })
    stream.on('error', (error) => resolve({ body: Buffer.concat(chunks), ended: false, error }))
  })
}

function assertTruncated(
  result: { ended: boolean; error: Error | undefined },
  code: string,
  where: string,
): void {
  assert.equal(result.ended, false, `${where}: the stream ended as if the body were complete`)
  assert.ok(result.error instanceof ProtocolError, `${where}: ${String(result.error)}`)
  assert.equal(result.error.code, code, where)
}

for (const legacy of [false, true]) {
  const kind = legacy ? 'legacy' : 'AEAD'

  test(`VmessClientStream fails with ProtocolError when the server closes inside the ${kind} response header`, async () => {
    const { headerLength } = respond({ legacy, payloads: [], end: true })
    for (const cut of new Set([0, 1, 2, headerLength >> 1, headerLength - 1])) {
      const { request, wire } = respond({ legacy, payloads: [], end: true })
      const result = await readThrough(request, wire.subarray(0, cut))
      assertTruncated(result, 'RESPONSE_TRUNCATED', `cut at ${cut} of ${headerLength}`)
    }
  })

  test(`VmessClientStream fails with ProtocolError when the server closes inside a ${kind} body chunk`, async () => {
    const first = randomBytes(1_000)
    const second = randomBytes(3_000)
    for (const at of ['1', '2', '17', 'middle', 'last'] as const) {
      // A fresh response per cut, and the cut taken from its own chunks (padding makes lengths differ).
      const { request, wire, chunkStarts } = respond({ legacy, payloads: [first, second], end: true })
      const [, secondStart, endStart] = chunkStarts as [number, number, number]
      const length = endStart - secondStart
      const offset = at === 'middle' ? length >> 1 : at === 'last' ? length - 1 : Number(at)
      const result = await readThrough(request, wire.subarray(0, secondStart + offset))
      assertTruncated(result, 'CHUNK_TRUNCATED', `second chunk cut at ${offset} of ${length}`)
      assert.ok(!result.body.includes(second.subarray(0, 16)), 'part of the cut chunk reached the app side')
    }
    // Cut inside the end chunk's length field (its tag and padding are never read, docs/protocol.md §7.3).
    const { request, wire, chunkStarts } = respond({ legacy, payloads: [first], end: true })
    const result = await readThrough(request, wire.subarray(0, chunkStarts[1]! + 1))
    assertTruncated(result, 'CHUNK_TRUNCATED', 'end chunk cut after 1 byte')
  })

  test(`VmessClientStream ends normally after the ${kind} end chunk or at a chunk boundary`, async () => {
    const payloads = [randomBytes(1_000), randomBytes(70_000)]
    const whole = respond({ legacy, payloads, end: true })
    const clean = await readThrough(whole.request, whole.wire)
    assert.equal(clean.error, undefined)
    assert.ok(clean.ended)
    assert.deepEqual(clean.body, Buffer.concat(payloads))

    // A close between chunks is an end, as the server stream takes it (docs/protocol.md §7.7).
    const open = respond({ legacy, payloads, end: false })
    const boundary = await readThrough(open.request, open.wire)
    assert.equal(boundary.error, undefined)
    assert.ok(boundary.ended)
    assert.deepEqual(boundary.body, Buffer.concat(payloads))

    // A header and no body at all.
    const empty = respond({ legacy, payloads: [], end: false })
    const headerOnly = await readThrough(empty.request, empty.wire)
    assert.equal(headerOnly.error, undefined)
    assert.ok(headerOnly.ended)
    assert.equal(headerOnly.body.length, 0)
  })
}

failOnLeakedHandles()
