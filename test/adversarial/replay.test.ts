import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { secureRandom } from '../../src/crypto/random.js'
import { ByteQueue } from '../../src/protocol/byte-queue.js'
import { createClientRequest } from '../../src/protocol/client-request.js'
import { Command, Option, Security } from '../../src/protocol/constants.js'
import { LEGACY_LOOKAHEAD_SECONDS, legacyAuth, LegacyAuthTable } from '../../src/protocol/legacy-auth.js'
import { AuthIdReplayFilter, ExpiringSet, SessionHistory } from '../../src/protocol/replay-filter.js'
import { type HandshakeStep, ServerHandshake } from '../../src/protocol/server-handshake.js'
import { UserDirectory } from '../../src/protocol/user-directory.js'
import { createUser } from '../../src/protocol/user.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { scaled } from '../helpers/probe.js'
import { replayLoadInChild } from '../helpers/replay-memory.js'

const T0 = 1_700_000_000
const user = createUser({ id: 'b831381d-6324-4d53-ad4f-8cda48b30811', alterId: 2 })

function send(handshake: ServerHandshake, wire: Buffer): HandshakeStep {
  const queue = new ByteQueue()
  queue.push(wire)
  return handshake.advance(queue)
}

test('a replayed AEAD AuthID is refused with a drain after 0–240 s, for client clocks off by −120…+120 s', () => {
  const users = new UserDirectory([user])
  const clock = { now: T0 }
  const context = {
    users,
    legacy: new LegacyAuthTable([user]),
    authIds: new AuthIdReplayFilter(),
    sessions: new SessionHistory(),
    now: () => clock.now,
  }
  const failures: string[] = []
  const reasons = new Map<string, number>()
  let replays = 0
  // One shared filter and a clock that only moves forward, as on a server: each offset's genuine
  // request arrives 241 s after the previous one's, then is replayed every second for 240 s.
  for (let offset = -120; offset <= 120; offset++) {
    const start = clock.now
    const wire = createClientRequest(user, {
      legacy: false,
      security: Security.Aes128Gcm,
      options: Option.ChunkStream | Option.ChunkMasking,
      command: Command.Tcp,
      host: '127.0.0.1',
      port: 80,
      now: start + offset,
      random: secureRandom,
    }).wire
    const first = send(new ServerHandshake(context), wire)
    if (first.status !== 'accepted') failures.push(`offset ${offset}: genuine request ${first.status}`)
    for (let delay = 0; delay <= 240; delay++) {
      clock.now = start + delay
      const step = send(new ServerHandshake(context), wire)
      replays++
      if (step.status !== 'refused' || step.action !== 'drain')
        failures.push(`offset ${offset} delay ${delay}: ${JSON.stringify(step)}`)
      else reasons.set(step.reason, (reasons.get(step.reason) ?? 0) + 1)
    }
    clock.now = start + 241
  }
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${replays} replays`)
  assert.equal(replays, 241 * 241)
  // Inside its window a replay meets the filter; past it, the time check.
  assert.deepEqual([...reasons.keys()].sort(), ['AUTH_CLOCK_SKEW', 'AUTH_REPLAY'])
})

test('a replayed legacy header is refused with a drain after 0–240 s, and taints its auth value', () => {
  const clock = { now: T0 }
  const legacy = new LegacyAuthTable([user])
  const context = {
    users: new UserDirectory([user]),
    legacy,
    authIds: new AuthIdReplayFilter(),
    sessions: new SessionHistory(),
    now: () => clock.now,
  }
  const failures: string[] = []
  for (let offset = -90; offset <= 90; offset += 3) {
    const start = clock.now
    // V2Ray's legacy client signs with now + [−30, +29]; here the client clock is off by `offset` too.
    const wire = createClientRequest(user, {
      legacy: true,
      security: Security.Aes128Gcm,
      options: Option.ChunkStream,
      command: Command.Tcp,
      host: '127.0.0.1',
      port: 80,
      now: start + offset,
      random: secureRandom,
    }).wire
    const first = send(new ServerHandshake(context), wire)
    if (first.status !== 'accepted') {
      // Signed beyond ±120 s of the server: refused like any unknown auth.
      if (first.status !== 'refused' || first.action !== 'drain')
        failures.push(`offset ${offset}: ${JSON.stringify(first)}`)
      clock.now = start + 241
      continue
    }
    for (let delay = 0; delay <= 240; delay += 4) {
      clock.now = start + delay
      const step = send(new ServerHandshake(context), wire)
      if (step.status !== 'refused' || step.action !== 'drain')
        failures.push(`offset ${offset} delay ${delay}: ${JSON.stringify(step)}`)
    }
    clock.now = start + 241
  }
  assert.deepEqual(failures.slice(0, 10), [])
})

test('AuthIdReplayFilter: no false refusal over fresh AuthIDs at 2,000 handshakes/s, ≤ 100 B per remembered AuthID', async (t) => {
  const handshakes = scaled(1_000_000, 10_000_000)
  const report = await replayLoadInChild(handshakes, 2_000)
  t.diagnostic(
    `${report.handshakes} AuthIDs in ${report.ms.toFixed(0)} ms: ${report.falseRefusals} false refusals, ` +
      `${report.replaysAccepted} of ${report.replaysTried} replays accepted, ${report.peakRemembered} remembered at most, ` +
      `${report.bytesPerEntry.toFixed(1)} B per AuthID after GC (table ${report.tableBytesPerEntry.toFixed(1)} B)`,
  )
  assert.equal(report.handshakes, handshakes)
  assert.equal(report.falseRefusals, 0)
  assert.ok(report.replaysTried > 300, `${report.replaysTried} replays`)
  assert.equal(report.replaysAccepted, 0)
  // 2,000/s with clocks spread over ±120 s keeps ≈ 300,000 AuthIDs remembered.
  assert.ok(report.peakRemembered > 250_000, `peak ${report.peakRemembered}`)
  assert.ok(
    report.bytesPerEntry <= 100,
    `${report.bytesPerEntry.toFixed(1)} B per AuthID (${JSON.stringify(report)})`,
  )
  assert.ok(report.tableBytesPerEntry <= 100, JSON.stringify(report))
})

test('ExpiringSet remembers each key exactly until its own expiry second has passed', () => {
  const set = new ExpiringSet({ keyLength: 16, limit: 1_000_000 })
  const keys = Array.from({ length: 5_000 }, (_, i) => {
    const key = Buffer.alloc(16)
    key.writeUInt32BE(i, 12)
    return { key, expires: T0 + (i % 300) }
  })
  for (const { key, expires } of keys) assert.ok(set.add(key, expires, T0))
  assert.equal(set.size, keys.length)
  for (const now of [T0, T0 + 1, T0 + 150, T0 + 299, T0 + 300]) {
    for (const { key, expires } of keys) {
      assert.equal(set.has(key, now), expires >= now, `expires ${expires}, now ${now}`)
      // A remembered key cannot be added again; a forgotten one can, and is remembered anew.
      assert.equal(set.add(key, expires, now), expires < now)
    }
  }
  // Full means refuse, never forget early.
  const tiny = new ExpiringSet({ keyLength: 16, limit: 2 })
  assert.ok(tiny.add(keys[0]!.key, T0 + 10, T0))
  assert.ok(tiny.add(keys[1]!.key, T0 + 10, T0))
  assert.equal(tiny.add(keys[2]!.key, T0 + 10, T0), false)
  assert.ok(tiny.add(keys[2]!.key, T0 + 10, T0 + 11))
})

test('LegacyAuthTable filled in slices finds exactly the auth values with |t − now| ≤ 120, and keeps taints', () => {
  const users = Array.from({ length: 5 }, (_, i) => createUser({ id: randomUUID(), alterId: i }))
  const table = new LegacyAuthTable(users)
  let now = T0
  const failures: string[] = []
  for (const step of [0, 1, 7, 10, 11, 60, 130, 500, -3, 1]) {
    now += step
    while (!table.refresh(now, 97)) {
      // Filled in slices of 97 HMACs, as the VMess inbound does between other work.
    }
    for (const u of users) {
      for (const id of [u.id, ...u.alterIds]) {
        for (const d of [
          -125,
          -121,
          -120,
          -119,
          -30,
          0,
          29,
          119,
          120,
          121,
          125,
          120 + LEGACY_LOOKAHEAD_SECONDS,
        ]) {
          const entry = table.lookup(legacyAuth(id, now + d), now)
          if (
            (entry !== undefined) !== Math.abs(d) <= 120 ||
            (entry !== undefined && (entry.user !== u || entry.time !== now + d))
          )
            failures.push(
              `now ${now} d ${d}: ${entry === undefined ? 'missing' : `${entry.user.uuid} ${entry.time}`}`,
            )
        }
      }
    }
    const entry = table.lookup(legacyAuth(users[2]!.alterIds[0]!, now + 5), now)!
    entry.tainted = true
    assert.ok(table.lookup(legacyAuth(users[2]!.alterIds[0]!, now + 5), now)!.tainted)
    assert.equal(table.lookup(legacyAuth(users[2]!.alterIds[0]!, now + 6), now)!.tainted, false)
  }
  assert.deepEqual(failures.slice(0, 10), [])
  // (1 + alterId) IDs per user, one entry per second of [now − 120, now + 130].
  assert.equal(table.size, (5 + 0 + 1 + 2 + 3 + 4) * (241 + LEGACY_LOOKAHEAD_SECONDS))
})

test('LegacyAuthTable for many users costs ≤ 32 B per entry', (t) => {
  const count = scaled(1_000, 10_000)
  const users = Array.from({ length: count }, () => createUser({ id: randomUUID() }))
  const table = new LegacyAuthTable(users)
  const started = performance.now()
  table.refresh(T0)
  const ms = performance.now() - started
  assert.equal(table.size, count * (241 + LEGACY_LOOKAHEAD_SECONDS))
  const perEntry = table.byteLength / table.size
  t.diagnostic(
    `${count} users: ${table.size} entries in ${ms.toFixed(0)} ms, ${perEntry.toFixed(1)} B per entry`,
  )
  assert.ok(perEntry <= 32, `${perEntry.toFixed(1)} B per entry`)
  assert.equal(table.lookup(legacyAuth(users[count - 1]!.id, T0 - 120), T0)?.user, users[count - 1])
})

failOnLeakedHandles()
