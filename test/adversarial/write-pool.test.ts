import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { Command } from '../../src/protocol/constants.js'
import { encodeKeepFrames } from '../../src/protocol/mux-data-frames.js'
import { MuxFrameParser, MuxStatus } from '../../src/protocol/mux-frame.js'
import { createUser } from '../../src/protocol/user.js'
import { testUuid } from '../helpers/requests.js'
import { type ServerChild, startServerChild } from '../helpers/server-child.js'

// Amplification by the write pool: a signed-in Mux client sends 200,000 one-byte Keep frames for
// sessions that do not exist (1.7 MiB in); the server answers each with an End frame, one sealed
// write apiece, thousands of them at once per socket read. Each write must hold about its own size,
// not a 64 KiB block: the server's memory grows by at most a generous 64 MiB over the baseline
// measured in the same run (a 64 KiB block per write reached +915 MiB).
const LABEL = 'write pool'
const FRAMES = 200_000
/** Frames per client write: about 64 KiB of plaintext, one sealed chunk. */
const FRAMES_PER_WRITE = 7_000
const BOUND_BYTES = 64 * 1024 * 1024
let server: ServerChild

before(async () => {
  server = await startServerChild('vmess', {
    users: { label: LABEL, count: 1 },
    legacy: false,
    handshakeTimeoutMs: 5_000,
  })
})
after(async () => {
  await server.stop()
})

test('200,000 tiny Mux Keep frames for unknown sessions cost the server a bounded amount of memory', async (t) => {
  const before = await server.stats()
  const client = new VmessOutbound({
    tag: 'client',
    connectTimeoutMs: 10_000,
    server: {
      host: '127.0.0.1',
      port: server.port,
      user: createUser({ id: testUuid(LABEL, 0) }),
      legacy: false,
      security: 'aes-128-gcm',
    },
  })
  const stream = await client.open(Command.Mux, { network: 'tcp', host: 'v1.mux.cool', port: 0 })
  const parser = new MuxFrameParser()
  let ends = 0
  const answered = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${ends} of ${FRAMES} End frames in 60 s`)), 60_000)
    stream.on('data', (bytes: Buffer) => {
      for (const frame of parser.push(bytes)) if (frame.status === MuxStatus.End) ends++
      if (ends >= FRAMES) {
        clearTimeout(timer)
        resolve()
      }
    })
    stream.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
  const one = Buffer.from([0x5a])
  for (let sent = 0; sent < FRAMES;) {
    const count = Math.min(FRAMES_PER_WRITE, FRAMES - sent)
    // Session IDs from 1 up: none was opened by a New frame.
    const frames = Array.from({ length: count }, (_, i) => encodeKeepFrames(1 + ((sent + i) % 65_000), one))
    sent += count
    if (!stream.write(Buffer.concat(frames))) await new Promise((resolve) => stream.once('drain', resolve))
  }
  await answered
  const afterFlood = await server.stats()
  stream.destroy()
  const growth = afterFlood.rss - before.rss
  const external = afterFlood.external - before.external
  t.diagnostic(
    `server RSS +${(growth / 2 ** 20).toFixed(1)} MiB, external +${(external / 2 ** 20).toFixed(1)} MiB`,
  )
  assert.ok(
    growth <= BOUND_BYTES,
    `server RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB (external ${(external / 2 ** 20).toFixed(1)} MiB) for ${FRAMES} Keep frames; bound 64 MiB`,
  )
  assert.equal(ends, FRAMES)
})
