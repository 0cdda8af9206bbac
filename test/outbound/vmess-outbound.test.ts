import assert from 'node:assert/strict'
import { test } from 'node:test'
import { validateConfig } from '../../src/config/load.js'
import { buildInstance } from '../../src/runtime/build.js'
import { readSocksReply } from '../helpers/clients.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { memoryLogger } from '../helpers/logger.js'
import { connectTcp, readExactly } from '../helpers/net.js'
import { freePort } from '../helpers/v2ray.js'

test('a VMess outbound whose server is down: SOCKS5 answers at once, then the tunnel is reset and the failure logged', async () => {
  const [socksPort, deadPort] = [await freePort(), await freePort()]
  const logger = memoryLogger()
  const instance = buildInstance(
    validateConfig({
      inbounds: [{ listen: '127.0.0.1', port: socksPort, protocol: 'socks', settings: {} }],
      outbounds: [
        {
          protocol: 'vmess',
          settings: {
            vnext: [
              {
                address: '127.0.0.1',
                port: deadPort,
                users: [{ id: 'd143f1b7-3841-444d-a410-28898e5de074', alterId: 0 }],
              },
            ],
          },
        },
      ],
    }).config,
    { logs: { logger, access: undefined, flush: () => undefined } },
  )
  await instance.start()
  try {
    const socket = await connectTcp(socksPort)
    const closed = new Promise<string>((resolve) => {
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'))
      socket.on('close', () => resolve('close'))
    })
    socket.write(Buffer.of(5, 1, 0))
    assert.deepEqual(await readExactly(socket, 2), Buffer.of(5, 0))
    socket.write(Buffer.of(5, 1, 0, 1, 127, 0, 0, 1, 0, 80))
    // Answered as V2Ray answers: success before the server is reached (the target is the server's business).
    assert.equal((await readSocksReply(socket)).code, 0)
    socket.write('GET / HTTP/1.0\r\n\r\n')
    assert.equal(await closed, 'ECONNRESET', 'the client sees a reset, not a clean end')
    const line = logger.lines.find((l) => l.msg === 'tunnel failed')
    assert.ok(line !== undefined, JSON.stringify(logger.lines))
    assert.equal(line.level, 'warn')
    assert.equal((line.obj as { reason?: string }).reason, 'ECONNREFUSED')
  } finally {
    await instance.stop(0)
  }
})

failOnLeakedHandles()
