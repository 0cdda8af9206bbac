import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { AUTH_SCAN_SHARD_USERS, type AccessRecord } from '../../src/inbound/vmess.js'
import { VmessOutbound } from '../../src/outbound/vmess.js'
import { Command } from '../../src/protocol/constants.js'
import { createUser, type VmessUser } from '../../src/protocol/user.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { randomData, sha256Hex, startEchoServer } from '../helpers/net.js'
import { closeVmess, listenVmess, testVmessInbound } from '../helpers/vmess-server.js'

/** Sends `data` through the inbound at `port` as `user`; resolves with what came back (nothing when refused). */
async function roundTrip(port: number, user: VmessUser, echoPort: number, data: Buffer): Promise<Buffer> {
  const outbound = new VmessOutbound({
    tag: 'proxy',
    connectTimeoutMs: 5_000,
    server: { host: '127.0.0.1', port, user, legacy: false, security: 'aes-128-gcm' },
  })
  const stream = await outbound.open(Command.Tcp, { network: 'tcp', host: '127.0.0.1', port: echoPort })
  const received: Buffer[] = []
  await new Promise<void>((resolve) => {
    stream.on('data', (chunk: Buffer) => received.push(chunk))
    stream.on('error', () => undefined)
    stream.on('close', resolve)
    stream.end(data)
  })
  return Buffer.concat(received)
}

test('users added and removed at runtime are matched by the sharded AuthID scan', async () => {
  // One more than a shard: the scan runs in two shards from the start, the second holding one user.
  const base = Array.from({ length: AUTH_SCAN_SHARD_USERS + 1 }, (_, i) =>
    createUser({ id: randomUUID(), email: `u${i}@test` }),
  )
  const access: AccessRecord[] = []
  const inbound = testVmessInbound(base, {
    legacy: undefined,
    legacyPolicy: 'refuse',
    onAccess: (record) => access.push(record),
  })
  const echo = await startEchoServer()
  const port = await listenVmess(inbound)
  try {
    assert.equal(inbound.users.shards?.length, 2)
    const data = randomData(8_000)
    const added = createUser({ id: randomUUID(), email: 'added@test' })
    assert.equal(inbound.users.add(added), undefined)
    inbound.usersChanged()
    assert.equal(sha256Hex(await roundTrip(port, added, echo.port, data)), sha256Hex(data))
    assert.ok(access.some((record) => record.status === 'accepted' && record.user === 'added@test'))

    // A user in the first shard, then removed: served before, refused after.
    const first = base[7]!
    assert.equal(sha256Hex(await roundTrip(port, first, echo.port, data)), sha256Hex(data))
    assert.equal(inbound.users.remove('u7@test'), first)
    inbound.usersChanged()
    access.length = 0
    assert.equal((await roundTrip(port, first, echo.port, data)).length, 0)
    assert.ok(access.some((record) => record.status === 'rejected' && record.reason === 'AUTH_UNKNOWN'))
    assert.ok(!access.some((record) => record.status === 'accepted'))
  } finally {
    inbound.users.close()
    await closeVmess(inbound)
    await echo.close()
  }
})

failOnLeakedHandles()
