import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import {
  assertServes,
  associate,
  recordUncaught,
  sleep,
  startSocksClient,
  startVmessServer,
} from '../helpers/exposure.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { startEchoServer, startUdpEchoServer } from '../helpers/net.js'

// A signed-in user (or an app behind a tsray client) asking for UDP port 0 cannot stop the process:
// the datagram is dropped, the tunnel's neighbours and the next client are served.
let server: Awaited<ReturnType<typeof startVmessServer>>
const clients: Record<string, Awaited<ReturnType<typeof startSocksClient>>> = {}
let tcpEcho: Awaited<ReturnType<typeof startEchoServer>>
let udpEcho: Awaited<ReturnType<typeof startUdpEchoServer>>
const uncaught = recordUncaught()

before(async () => {
  tcpEcho = await startEchoServer()
  udpEcho = await startUdpEchoServer()
  server = await startVmessServer()
  clients.vmess = await startSocksClient(server.port)
  clients.mux = await startSocksClient(server.port, { mux: true })
  clients.direct = await startSocksClient(0)
})
after(async () => {
  for (const client of Object.values(clients)) await client.tsray.stop()
  await server.tsray.stop()
  await tcpEcho.close()
  await udpEcho.close()
  uncaught.uninstall()
})

for (const name of ['vmess', 'mux', 'direct']) {
  test(`a UDP datagram to port 0 (${name}) is dropped and the process serves the next client`, async () => {
    const client = clients[name]!
    const association = await associate(client.port)
    association.send({ host: '127.0.0.1', port: 0 }, randomBytes(100))
    association.send({ host: '127.0.0.1', port: udpEcho.port }, randomBytes(100))
    await sleep(300)
    association.close()
    assert.deepEqual(uncaught.errors.map(String), [])
    await assertServes(client.port, { tcp: tcpEcho.port, udp: udpEcho.port }, name)
    assert.deepEqual(uncaught.errors.map(String), [])
  })
}

failOnLeakedHandles()
