import assert from 'node:assert/strict'
import { Duplex, PassThrough } from 'node:stream'
import { test } from 'node:test'
import { MAX_MUX_SESSIONS, serveMux } from '../../src/inbound/mux-server.js'
import type { Dispatcher, PacketChannel } from '../../src/outbound/outbound.js'
import { encodeMuxFrame, MuxStatus } from '../../src/protocol/mux-frame.js'
import { sleep } from '../helpers/exposure.js'
import { memoryLogger } from '../helpers/logger.js'

// The Mux session cap holds for New frames that reuse an open session ID: each one's dial holds a
// socket until it settles, so they count too.
test('serveMux refuses New frames past the session cap when they reuse one session ID', async () => {
  const pending: (() => void)[] = []
  let dials = 0
  const dispatcher: Dispatcher = {
    dialTcp: () => {
      dials++
      // A target that never answers within the test: the dial stays in flight.
      return new Promise((_resolve, reject) =>
        pending.push(() => reject(Object.assign(new Error('stopped'), { code: 'ETIMEDOUT' }))),
      )
    },
    openUdp: (): PacketChannel => {
      throw new Error('no UDP here')
    },
  }
  const input = new PassThrough()
  const output = new PassThrough()
  output.resume()
  const stream = Duplex.from({ readable: input, writable: output })
  serveMux(stream, {
    dispatcher,
    context: { inboundTag: 'mux', source: '127.0.0.1:1', user: '' },
    timeouts: { connIdleMs: 30_000, uplinkOnlyMs: 1_000, downlinkOnlyMs: 1_000 },
    logger: memoryLogger(),
  })
  const frames = 3 * MAX_MUX_SESSIONS
  for (let i = 0; i < frames; i++) {
    input.write(
      encodeMuxFrame({
        sessionId: 1,
        status: MuxStatus.New,
        option: 0,
        network: 'tcp',
        host: '127.0.0.1',
        port: 9,
      }),
    )
  }
  await sleep(200)
  for (const fail of pending) fail()
  stream.destroy()
  assert.ok(dials <= MAX_MUX_SESSIONS, `${dials} dials in flight for ${frames} New frames of one ID`)
  assert.ok(dials > 0)
})
