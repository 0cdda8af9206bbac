import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { AccessRecord, VmessInbound } from '../../src/inbound/vmess.js'
import { Command } from '../../src/protocol/constants.js'
import { createUser } from '../../src/protocol/user.js'
import { EXPOSURE_ID, sleep } from '../helpers/exposure.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { memoryLogger } from '../helpers/logger.js'
import { connectTcp } from '../helpers/net.js'
import { firstChunk, genuineRequest, MemoryMetrics } from '../helpers/requests.js'
import { closeVmess, listenVmess, testVmessInbound } from '../helpers/vmess-server.js'

// Every refusal goes through one reporting path (access log, rate-limited log, metric), including
// an EOF before the header and a body that fails to open; a client's clock skew is logged with its
// size and sign, once per user per minute.
const user = createUser({ id: EXPOSURE_ID, email: 'skewed@test' })
const logger = memoryLogger()
const metrics = new MemoryMetrics()
const access: AccessRecord[] = []
let inbound: VmessInbound
let port = 0

before(async () => {
  inbound = testVmessInbound([user], { logger, metrics, onAccess: (record) => access.push(record) })
  port = await listenVmess(inbound)
})
after(async () => closeVmess(inbound))

/** Sends `bytes`, optionally ends, and waits until the server closed (or `ms`). */
async function send(bytes: Buffer, finish: boolean, ms = 1_500): Promise<void> {
  const socket = await connectTcp(port)
  socket.on('error', () => undefined)
  socket.on('data', () => undefined)
  if (finish) socket.end(bytes)
  else socket.write(bytes)
  await Promise.race([new Promise((resolve) => socket.once('close', resolve)), sleep(ms)])
  socket.destroy()
}

const rejected = (reason: string): number =>
  access.filter((record) => record.status === 'rejected' && record.reason === reason).length

test('an EOF before the header reaches the access log and the metric', async () => {
  await send(Buffer.from('GET'), true)
  assert.equal(rejected('HEADER_EOF'), 1)
  assert.equal(metrics.refusals.get('HEADER_EOF'), 1)
})

test('a body chunk that fails authentication is reported, not swallowed', async () => {
  const request = genuineRequest(user, {
    legacy: false,
    command: Command.Tcp,
    host: '127.0.0.1',
    port: 9,
    padding: 0,
  })
  const chunk = firstChunk(request, Buffer.from('hello'))
  // Inside the sealed payload (the chunk ends in unauthenticated padding).
  chunk.writeUInt8(chunk.readUInt8(4) ^ 1, 4)
  await send(Buffer.concat([request.wire, chunk]), false)
  await sleep(100)
  assert.equal(rejected('CHUNK_AUTH_FAILED'), 1)
  assert.equal(metrics.refusals.get('CHUNK_AUTH_FAILED'), 1)
})

test('a client clock 183 s ahead is logged as AUTH_CLOCK_SKEW +183 s, once per minute', async () => {
  for (let i = 0; i < 3; i++) {
    const request = genuineRequest(user, {
      legacy: false,
      command: Command.Tcp,
      host: '127.0.0.1',
      port: 9,
      padding: 0,
      now: Math.floor(Date.now() / 1000) + 183,
    })
    await send(request.wire, true)
  }
  const lines = logger.lines.filter((line) => line.msg?.startsWith('AUTH_CLOCK_SKEW') === true)
  assert.equal(lines.length, 1, lines.map((line) => line.msg).join('; '))
  assert.match(lines[0]!.msg!, /^AUTH_CLOCK_SKEW \+18[34] s$/)
  assert.equal((lines[0]!.obj as { user: string }).user, 'skewed@test')
  assert.equal(rejected('AUTH_CLOCK_SKEW'), 3)
})

failOnLeakedHandles()
