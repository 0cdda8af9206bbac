import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { curl, readSocksReply, socksConnect, startContentServer } from '../helpers/clients.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, exchange, randomData, readExactly, sha256Hex, startEchoServer } from '../helpers/net.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort } from '../helpers/v2ray.js'

let echo: Awaited<ReturnType<typeof startEchoServer>>
let content: Awaited<ReturnType<typeof startContentServer>>
let proxy: Awaited<ReturnType<typeof startTsray>>
const ports = { socks: 0, socksAuth: 0, http: 0, httpAuth: 0 }

before(async () => {
  echo = await startEchoServer()
  content = await startContentServer()
  for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort()
  const accounts = [{ user: 'alice', pass: 's3cret' }]
  proxy = await startTsray({
    inbounds: [
      { listen: '127.0.0.1', port: ports.socks, protocol: 'socks', settings: {} },
      {
        listen: '127.0.0.1',
        port: ports.socksAuth,
        protocol: 'socks',
        settings: { auth: 'password', accounts },
      },
      { listen: '127.0.0.1', port: ports.http, protocol: 'http', settings: {} },
      { listen: '127.0.0.1', port: ports.httpAuth, protocol: 'http', settings: { accounts } },
    ],
    outbounds: [{ protocol: 'freedom' }],
  })
})
after(async () => {
  await proxy.stop()
  await echo.close()
  await content.close()
})

test('SOCKS5 inbound closes on an HTTP request sent to it, without a reply', async () => {
  const back = await exchange(await connectTcp(ports.socks), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
  assert.equal(back.length, 0)
})

test('SOCKS5 inbound answers BIND with "command not supported"', async () => {
  const socket = await connectTcp(ports.socks)
  socket.write(Buffer.of(5, 1, 0))
  assert.deepEqual(await readExactly(socket, 2), Buffer.of(5, 0))
  socket.write(Buffer.of(5, 2, 0, 1, 127, 0, 0, 1, 0, 80))
  assert.equal((await readSocksReply(socket)).code, 7)
  socket.destroy()
})

test('SOCKS5 inbound with accounts checks the password', async () => {
  await assert.rejects(
    socksConnect(ports.socksAuth, { host: '127.0.0.1', port: echo.port }, { user: 'alice', pass: 'wrong' }),
    /refused/,
  )
  await assert.rejects(
    socksConnect(ports.socksAuth, { host: '127.0.0.1', port: echo.port }),
    /method 255 refused/,
  )
  const tunnel = await socksConnect(
    ports.socksAuth,
    { host: '127.0.0.1', port: echo.port },
    { user: 'alice', pass: 's3cret' },
  )
  const data = randomData(10_000)
  assert.equal(sha256Hex(await exchange(tunnel, data)), sha256Hex(data))
})

test('HTTP inbound answers 400 to garbage and to an origin-form request', async () => {
  const garbage = await exchange(
    await connectTcp(ports.http),
    Buffer.from('\x16\x03\x01 not http at all\r\n\r\n'),
  )
  assert.match(garbage.toString('latin1'), /^HTTP\/1\.1 400/)
  const origin = await exchange(
    await connectTcp(ports.http),
    Buffer.from('GET /bytes/10 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'),
  )
  assert.match(origin.toString('latin1'), /^HTTP\/1\.1 400/)
})

test('HTTP inbound with accounts asks for credentials and accepts the right ones', async () => {
  const url = `http://127.0.0.1:${content.port}/bytes/2048`
  const missing = await curl(['-x', `http://127.0.0.1:${ports.httpAuth}`, url])
  assert.equal(missing.status, 407)
  const wrong = await curl(['-x', `http://alice:nope@127.0.0.1:${ports.httpAuth}`, url])
  assert.equal(wrong.status, 407)
  const right = await curl(['-x', `http://alice:s3cret@127.0.0.1:${ports.httpAuth}`, url])
  assert.equal(right.status, 200)
  assert.equal(right.actualSha, right.expectedSha)
})

test('HTTP inbound keeps the client connection alive across requests', async () => {
  const socket = await connectTcp(ports.http)
  const request = `GET http://127.0.0.1:${content.port}/bytes/100 HTTP/1.1\r\nHost: 127.0.0.1:${content.port}\r\n\r\n`
  let received = ''
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')))
  socket.write(request)
  socket.write(request)
  const deadline = Date.now() + 5_000
  while ((received.match(/HTTP\/1\.1 200/g) ?? []).length < 2 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  socket.destroy()
  assert.equal((received.match(/HTTP\/1\.1 200/g) ?? []).length, 2)
})

failOnLeakedHandles()
