import assert from 'node:assert/strict'
import { connect as netConnect, createServer } from 'node:net'
import { test } from 'node:test'
import { ConfigError, start, TransportError } from '../../src/index.js'

const ID = 'b831381d-6324-4d53-ad4f-8cda48b30811'

const config = (port: number | string) => ({
  log: { loglevel: 'none' },
  inbounds: [
    { tag: 'vmess', listen: '127.0.0.1', port, protocol: 'vmess', settings: { clients: [{ id: ID }] } },
    { listen: '127.0.0.1', port: 0, protocol: 'socks' },
  ],
  outbounds: [{ protocol: 'freedom' }],
})

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port }, () => {
      socket.destroy()
      resolve(true)
    })
    socket.on('error', () => resolve(false))
  })
}

test('start binds port 0 to free ports, reports them by tag, and close frees them', async () => {
  const instance = await start(config(0))
  const ports = instance.addresses.map((listener) => listener.port)
  assert.equal(ports.length, 2)
  assert.ok(ports.every((port) => port > 0))
  assert.notEqual(ports[0], ports[1])
  assert.deepEqual(instance.inbound('vmess'), { tag: 'vmess', protocol: 'vmess', port: ports[0] })
  assert.equal(instance.inbound('inbound-1').protocol, 'socks')
  assert.throws(
    () => instance.inbound('nope'),
    /Cannot find inbound "nope": the instance listens on "vmess", "inbound-1"/,
  )
  assert.equal(await accepts(ports[0]!), true)
  await instance.close(0)
  await instance.close(0)
  assert.equal(await accepts(ports[0]!), false)
})

test('start takes config text and refuses an invalid config or a port in use', async () => {
  const fromText = await start(JSON.stringify(config('0')))
  await fromText.close(0)
  await assert.rejects(
    start({ inbounds: [{ port: 0, protocol: 'vmess', settings: { clients: [{ id: '' }] } }] }),
    ConfigError,
  )
  const taken = createServer()
  const port = await new Promise<number>((resolve) =>
    taken.listen(0, '127.0.0.1', () => resolve((taken.address() as { port: number }).port)),
  )
  try {
    await assert.rejects(start(config(port)), TransportError)
  } finally {
    await new Promise((resolve) => taken.close(resolve))
  }
})
