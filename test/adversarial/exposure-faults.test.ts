import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Duplex } from 'node:stream'
import { after, before, test } from 'node:test'
import type { VmessInbound } from '../../src/inbound/vmess.js'
import type { ConnectionContext, Dispatcher, PacketChannel } from '../../src/outbound/outbound.js'
import { FreedomOutbound } from '../../src/outbound/freedom.js'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { createUser } from '../../src/protocol/user.js'
import type { Destination } from '../../src/types.js'
import { EXPOSURE_ID, recordUncaught, sleep } from '../helpers/exposure.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { memoryLogger } from '../helpers/logger.js'
import { sha256Hex, startEchoServer } from '../helpers/net.js'
import { MemoryMetrics } from '../helpers/requests.js'
import { closeVmess, listenVmess, testVmessInbound } from '../helpers/vmess-server.js'

// Fault injection: each stage of a tunnel throws in turn (the access hook, the dial, the target
// stream, a UDP channel, a Mux sub-session's channel); that tunnel fails, and the process serves the
// next genuine client.
const PORTS = { access: 7, dial: 8, target: 9, udp: 10 } as const
const user = createUser({ id: EXPOSURE_ID })
const uncaught = recordUncaught()
const logger = memoryLogger()
const metrics = new MemoryMetrics() as MemoryMetrics & { faults: string[]; tunnelFault(stage: string): void }
metrics.faults = []
metrics.tunnelFault = (stage) => void metrics.faults.push(stage)
const freedom = new FreedomOutbound({ tag: 'direct', connectTimeoutMs: 5_000 })
let echo: Awaited<ReturnType<typeof startEchoServer>>
let inbound: VmessInbound
let port = 0

/** Routes to freedom, except the fault ports, whose dial, stream or channel throws. */
const dispatcher: Dispatcher = {
  dialTcp(destination: Destination, context: ConnectionContext): Promise<Duplex> {
    if (destination.port === PORTS.dial) throw new Error('injected: dial')
    if (destination.port === PORTS.target) {
      return Promise.resolve(
        new Duplex({
          read() {},
          write() {
            throw new Error('injected: target write')
          },
        }),
      )
    }
    return freedom.dialTcp(destination, context)
  },
  openUdp(context: ConnectionContext): PacketChannel {
    const channel = freedom.openUdp(context)
    return {
      send: (payload, to) => {
        if (to.port === PORTS.udp) throw new Error('injected: UDP send')
        channel.send(payload, to)
      },
      onPacket: (handler) => channel.onPacket(handler),
      onClose: (handler) => channel.onClose(handler),
      close: () => channel.close(),
    }
  },
}

before(async () => {
  echo = await startEchoServer()
  inbound = testVmessInbound([user], {
    dispatcher,
    logger,
    metrics,
    onAccess: (record) => {
      if (record.destination.endsWith(`:${PORTS.access}`)) throw new Error('injected: access hook')
    },
  })
  port = await listenVmess(inbound)
})
after(async () => {
  await closeVmess(inbound)
  await echo.close()
  uncaught.uninstall()
})

function client(mux: boolean): VmessOutbound {
  return new VmessOutbound({
    tag: 'to-server',
    connectTimeoutMs: 5_000,
    server: { host: '127.0.0.1', port, user, legacy: false, security: 'aes-128-gcm' },
    ...(mux ? { mux: { concurrency: 8 } } : {}),
  })
}

const context = { inboundTag: 'test', source: '127.0.0.1:1', user: '' }

/** A genuine TCP echo of 32 KiB through the inbound. */
async function genuineEcho(): Promise<void> {
  const outbound = client(false)
  const stream = await outbound.dialTcp({ network: 'tcp', host: '127.0.0.1', port: echo.port }, context)
  const data = randomBytes(32 * 1024)
  const back = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let length = 0
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      length += chunk.length
      if (length >= data.length) resolve(Buffer.concat(chunks))
    })
    stream.on('error', reject)
    stream.write(data)
  })
  stream.destroy()
  assert.equal(sha256Hex(back), sha256Hex(data))
}

/** Opens a tunnel to `target` and sends a little; resolves once it has ended one way or another. */
async function faultyTunnel(target: Destination, mux: boolean): Promise<void> {
  const outbound = client(mux)
  if (target.network === 'udp') {
    const channel = outbound.openUdp(context)
    channel.send(Buffer.from('hello'), target)
    await sleep(300)
    channel.close()
  } else {
    const stream = await outbound.dialTcp(target, context)
    stream.on('error', () => undefined)
    stream.on('data', () => undefined)
    stream.write(Buffer.from('hello'))
    await new Promise((resolve) => {
      stream.once('close', resolve)
      setTimeout(resolve, 1_000)
    })
    stream.destroy()
  }
  outbound.close()
}

const cases: { stage: string; target: Destination; mux: boolean }[] = [
  { stage: 'access hook', target: { network: 'tcp', host: '127.0.0.1', port: PORTS.access }, mux: false },
  { stage: 'dial', target: { network: 'tcp', host: '127.0.0.1', port: PORTS.dial }, mux: false },
  { stage: 'target stream', target: { network: 'tcp', host: '127.0.0.1', port: PORTS.target }, mux: false },
  { stage: 'UDP channel', target: { network: 'udp', host: '127.0.0.1', port: PORTS.udp }, mux: false },
  { stage: 'Mux sub-session', target: { network: 'udp', host: '127.0.0.1', port: PORTS.udp }, mux: true },
  { stage: 'Mux TCP target', target: { network: 'tcp', host: '127.0.0.1', port: PORTS.target }, mux: true },
]

for (const { stage, target, mux } of cases) {
  test(`a throw in the ${stage} fails that tunnel only; the next client is served`, async () => {
    const before = metrics.faults.length
    await faultyTunnel(target, mux)
    await sleep(100)
    assert.deepEqual(uncaught.errors.map(String), [])
    assert.ok(metrics.faults.length > before, `the fault was counted (${metrics.faults.join(', ')})`)
    await genuineEcho()
  })
}

test('each fault was logged with its reason', () => {
  const lines = logger.lines.filter((line) => line.msg === 'tunnel closed: a handler threw')
  assert.ok(lines.length >= cases.length, `${lines.length} log lines`)
  const reasons = lines.map((line) => String((line.obj as { err?: string }).err))
  assert.ok(
    reasons.every((reason) => reason.includes('injected')),
    reasons.join('; '),
  )
})

failOnLeakedHandles()
