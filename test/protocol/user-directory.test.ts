import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { createAuthId } from '../../src/protocol/auth-id.js'
import { UserDirectory } from '../../src/protocol/user-directory.js'
import { createUser } from '../../src/protocol/user.js'

const random = (length: number): Buffer => Buffer.alloc(length, 7)

test('UserDirectory finds a user added at runtime and no longer finds one removed', () => {
  const users = Array.from({ length: 40 }, (_, i) => createUser({ id: randomUUID(), email: `u${i}` }))
  const directory = new UserDirectory(users.slice(0, 20))
  const now = 1_800_000_000
  const authIdOf = (index: number) => createAuthId(users[index]!.authIdKey, { time: now, random })
  assert.equal(directory.matchAuthId(authIdOf(30), now).status, 'unknown')
  for (const user of users.slice(20)) directory.add(user)
  for (let i = 0; i < 40; i++) {
    const match = directory.matchAuthId(authIdOf(i), now)
    assert.equal(match.status === 'found' ? match.user : undefined, users[i])
  }
  // Removing moves the last user into the gap: every other user must still be found.
  assert.equal(directory.remove(users[3]!), true)
  assert.equal(directory.remove(users[3]!), false)
  assert.equal(directory.matchAuthId(authIdOf(3), now).status, 'unknown')
  for (let i = 0; i < 40; i++) {
    if (i === 3) continue
    const match = directory.matchAuthId(authIdOf(i), now)
    assert.equal(match.status === 'found' ? match.user : undefined, users[i], `user ${i}`)
  }
  assert.equal(directory.users.length, 39)
})
