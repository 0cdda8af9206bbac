import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { socksConnect } from '../helpers/clients.js'
import { EXPOSURE_ID, sleep } from '../helpers/exposure.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, exchange, sha256Hex, startEchoServer } from '../helpers/net.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort } from '../helpers/v2ray.js'

// inbounds[].admission bounds the connections one source holds open: idle connections past the limit
// are closed at once with no byte, and a genuine client is served once one closes.
let server: Awaited<ReturnType<typeof startTsray>>
let client: Awaited<ReturnType<typeof startTsray>>
let echo: Awaited<ReturnType<typeof startEchoServer>>

before(async () => {
  echo = await startEchoServer()
  server = await startTsray({
    inbounds: [
      {
        listen: '127.0.0.1',
        port: await freePort(),
        protocol: 'vmess',
        settings: { clients: [{ id: EXPOSURE_ID }] },
        admission: { maxConnections: 50, maxConnectionsPerSource: 3 },
      },
    ],
    outbounds: [{ protocol: 'freedom' }],
  })
  client = await startTsray({
    inbounds: [{ listen: '127.0.0.1', port: await freePort(), protocol: 'socks', settings: {} }],
    outbounds: [
      {
        protocol: 'vmess',
        settings: {
          vnext: [{ address: '127.0.0.1', port: server.bound[0]!.port, users: [{ id: EXPOSURE_ID }] }],
        },
      },
    ],
  })
})
after(async () => {
  await client.stop()
  await server.stop()
  await echo.close()
})

/** Whether the server closed `socket` within `ms`, and how many bytes it sent. */
function closedWithin(socket: Socket, ms: number): Promise<{ closed: boolean; bytes: number }> {
  let bytes = 0
  socket.on('data', (chunk: Buffer) => (bytes += chunk.length))
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ closed: false, bytes }), ms)
    socket.once('end', () => {
      clearTimeout(timer)
      resolve({ closed: true, bytes })
    })
  })
}

test('connections from one source past maxConnectionsPerSource are closed at once with no byte', async () => {
  const held: Socket[] = []
  for (let i = 0; i < 3; i++) held.push(await connectTcp(server.bound[0]!.port))
  const extra = await connectTcp(server.bound[0]!.port)
  const [extraEnding, heldEnding] = await Promise.all([
    closedWithin(extra, 1_000),
    closedWithin(held[0]!, 1_000),
  ])
  assert.deepEqual(extraEnding, { closed: true, bytes: 0 })
  assert.equal(heldEnding.closed, false)
  for (const socket of [...held, extra]) socket.destroy()
  await sleep(100)
  const data = randomBytes(16 * 1024)
  const tunnel = await socksConnect(client.bound[0]!.port, { host: '127.0.0.1', port: echo.port })
  const back = await exchange(tunnel, data)
  tunnel.destroy()
  assert.equal(sha256Hex(back), sha256Hex(data))
})

/** A proxy inbound of `protocol` with at most 2 connections per source, to the freedom outbound. */
async function limitedProxy(
  protocol: 'socks' | 'http' | 'dokodemo-door',
): Promise<Awaited<ReturnType<typeof startTsray>>> {
  return startTsray({
    inbounds: [
      {
        listen: '127.0.0.1',
        port: await freePort(),
        protocol,
        settings:
          protocol === 'dokodemo-door' ? { address: '127.0.0.1', port: echo.port, network: 'tcp' } : {},
        admission: { maxConnections: 50, maxConnectionsPerSource: 2 },
      },
    ],
    outbounds: [{ protocol: 'freedom' }],
  })
}

/** Holds 2 idle connections to `port`, opens a third: it is closed at once with no byte, they are not. */
async function refusesThird(port: number): Promise<void> {
  const held = [await connectTcp(port), await connectTcp(port)]
  const extra = await connectTcp(port)
  const [extraEnding, heldEnding] = await Promise.all([
    closedWithin(extra, 1_000),
    closedWithin(held[0]!, 1_000),
  ])
  assert.deepEqual(extraEnding, { closed: true, bytes: 0 })
  assert.equal(heldEnding.closed, false)
  for (const socket of [...held, extra]) socket.destroy()
  await sleep(100)
}

test('a SOCKS inbound closes connections past maxConnectionsPerSource, and serves once one closes', async () => {
  const proxy = await limitedProxy('socks')
  try {
    await refusesThird(proxy.bound[0]!.port)
    const data = randomBytes(16 * 1024)
    const tunnel = await socksConnect(proxy.bound[0]!.port, { host: '127.0.0.1', port: echo.port })
    const back = await exchange(tunnel, data)
    tunnel.destroy()
    assert.equal(sha256Hex(back), sha256Hex(data))
  } finally {
    await proxy.stop()
  }
})

test('an HTTP inbound closes connections past maxConnectionsPerSource, and serves once one closes', async () => {
  const proxy = await limitedProxy('http')
  try {
    await refusesThird(proxy.bound[0]!.port)
    const tunnel = await connectTcp(proxy.bound[0]!.port)
    tunnel.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`)
    const head = await new Promise<string>((resolve) =>
      tunnel.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))),
    )
    assert.match(head, /^HTTP\/1\.1 200 /)
    const data = randomBytes(16 * 1024)
    const back = await exchange(tunnel, data)
    tunnel.destroy()
    assert.equal(sha256Hex(back), sha256Hex(data))
  } finally {
    await proxy.stop()
  }
})

test('a dokodemo-door inbound closes connections past maxConnectionsPerSource, and serves once one closes', async () => {
  const forward = await limitedProxy('dokodemo-door')
  try {
    await refusesThird(forward.bound[0]!.port)
    const data = randomBytes(16 * 1024)
    const tunnel = await connectTcp(forward.bound[0]!.port)
    const back = await exchange(tunnel, data)
    tunnel.destroy()
    assert.equal(sha256Hex(back), sha256Hex(data))
  } finally {
    await forward.stop()
  }
})

failOnLeakedHandles()
