import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { AUTH_SCAN_SHARD_USERS, VmessUsers } from '../../src/inbound/vmess-users.js'
import { createAuthId } from '../../src/protocol/auth-id.js'
import { LegacyAuthTable, legacyAuth } from '../../src/protocol/legacy-auth.js'
import { UserDirectory } from '../../src/protocol/user-directory.js'
import { createUser } from '../../src/protocol/user.js'

const random = (length: number): Buffer => Buffer.alloc(length, 1)

test('VmessUsers refuses a second user with the same email in any case, and removal by email', () => {
  const a = createUser({ id: randomUUID(), email: 'A@x' })
  const users = new VmessUsers(new UserDirectory([a]), undefined)
  assert.equal(users.add(createUser({ id: randomUUID(), email: 'a@X' })), 'exists')
  assert.equal(users.remove(''), 'no-email')
  assert.equal(users.remove('nobody'), 'not-found')
  assert.equal(users.remove('a@x'), a)
  assert.equal(users.users.length, 0)
  users.close()
})

test('VmessUsers keeps the AuthID shards in step past the shard size', () => {
  const now = 1_800_000_000
  const base = Array.from({ length: AUTH_SCAN_SHARD_USERS }, (_, i) =>
    createUser({ id: randomUUID(), email: `u${i}` }),
  )
  const users = new VmessUsers(new UserDirectory(base), undefined)
  assert.equal(users.shards?.length ?? 0, 0)
  const extra = createUser({ id: randomUUID(), email: 'extra' })
  users.add(extra)
  assert.equal(users.shards?.length, 2)
  const find = (user: typeof extra) => {
    const authId = createAuthId(user.authIdKey, { time: now, random })
    for (const shard of users.shards!) {
      const match = shard.matchAuthId(authId, now)
      if (match.status === 'found') return match.user
    }
    return undefined
  }
  assert.equal(find(extra), extra)
  assert.equal(find(base[5]!), base[5])
  users.remove('u5')
  assert.equal(find(base[5]!), undefined)
  assert.equal(find(extra), extra)
  users.close()
})

test('VmessUsers retires a removed user from the legacy table at once', () => {
  const now = 1_800_000_000
  const a = createUser({ id: randomUUID(), email: 'a', alterId: 1 })
  const b = createUser({ id: randomUUID(), email: 'b', alterId: 1 })
  const table = new LegacyAuthTable([a, b])
  const users = new VmessUsers(new UserDirectory([a, b]), table)
  assert.equal(users.legacy(now)?.lookup(legacyAuth(b.id, now), now)?.user, b)
  users.remove('b')
  assert.equal(users.legacy(now)?.lookup(legacyAuth(b.id, now), now), undefined)
  assert.equal(users.legacy(now)?.lookup(legacyAuth(a.id, now), now)?.user, a)
  users.close()
})
