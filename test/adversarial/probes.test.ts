import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import type { VmessInbound } from '../../src/inbound/vmess.js'
import { ByteQueue } from '../../src/protocol/byte-queue.js'
import { Command, type CommandValue } from '../../src/protocol/constants.js'
import { LegacyAuthTable } from '../../src/protocol/legacy-auth.js'
import { AuthIdReplayFilter, SessionHistory } from '../../src/protocol/replay-filter.js'
import { ServerHandshake } from '../../src/protocol/server-handshake.js'
import { UserDirectory } from '../../src/protocol/user-directory.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, startEchoServer } from '../helpers/net.js'
import {
  GFW_PROBE_LENGTHS,
  gfwReplays,
  HTTP_GET,
  legacyAttackProbe,
  SSH_BANNER,
  tlsClientHello,
} from '../helpers/probe-corpus.js'
import { flipped, isSilent, pool, probe, type ProbeMode, reactionClass, scaled } from '../helpers/probe.js'
import {
  ADDRESSES,
  firstChunk,
  genuineRequest,
  MemoryMetrics,
  userWithDrain,
  waitFor,
} from '../helpers/requests.js'
import { closeVmess, listenVmess, testVmessInbound } from '../helpers/vmess-server.js'

const DEADLINE_MS = 1_500
const CONCURRENCY = 100
const { user, threshold } = userWithDrain({ min: 150, max: 230, alterId: 2 })
// A second server whose threshold a trickle reaches well before its (longer) deadline.
const small = userWithDrain({ min: 60, max: 80, alterId: 2 })
const TRICKLE_INTERVAL_MS = scaled(25, 1_000)
const TRICKLE_DEADLINE_MS = (small.threshold + 40) * TRICKLE_INTERVAL_MS
const metrics = new MemoryMetrics()
let echo: Awaited<ReturnType<typeof startEchoServer>>
const servers: { name: string; inbound: VmessInbound; port: number; legacy: boolean; deadlineMs: number }[] =
  []

before(async () => {
  echo = await startEchoServer()
  for (const legacy of [true, false]) {
    for (const [name, who, deadlineMs] of [
      ['main', user, DEADLINE_MS],
      ['small threshold', small.user, TRICKLE_DEADLINE_MS],
    ] as const) {
      const inbound = testVmessInbound([who], {
        handshakeTimeoutMs: deadlineMs,
        metrics,
        ...(legacy ? {} : { legacy: undefined, legacyPolicy: 'refuse' as const }),
      })
      servers.push({
        name: `${name}, legacy ${legacy ? 'on' : 'off'}`,
        inbound,
        port: await listenVmess(inbound),
        legacy,
        deadlineMs,
      })
    }
  }
})
after(async () => {
  for (const server of servers) await closeVmess(server.inbound)
  await echo.close()
})

const serverNamed = (name: string) => servers.find((s) => s.name === name)!

const AEAD_VARIANTS = [Command.Tcp, Command.Udp, Command.Mux].flatMap((command: CommandValue) =>
  (command === Command.Mux ? [''] : Object.values(ADDRESSES)).flatMap((host) =>
    [0, 15].map((padding) => ({ command, host, padding })),
  ),
)

function freshContext(users: UserDirectory, legacy: LegacyAuthTable | undefined) {
  return {
    users,
    legacy,
    authIds: new AuthIdReplayFilter(),
    sessions: new SessionHistory(),
    now: () => Math.floor(Date.now() / 1000),
  }
}

test('ServerHandshake refuses every single-bit flip of an AEAD header with a drain, never accepts it', () => {
  const users = new UserDirectory([user])
  const legacy = new LegacyAuthTable([user])
  const failures: string[] = []
  let flips = 0
  for (const variant of AEAD_VARIANTS) {
    const wire = genuineRequest(user, { ...variant, legacy: false, port: 80 }).wire
    // AuthID ‖ sealed length ‖ nonce ‖ sealed header: the whole of the AEAD request header.
    for (let bit = 0; bit < wire.length * 8; bit++) {
      const queue = new ByteQueue()
      queue.push(flipped(wire, bit))
      const step = new ServerHandshake(freshContext(users, legacy)).advance(queue)
      flips++
      if (step.status !== 'refused' || step.action !== 'drain')
        failures.push(
          `command ${variant.command} ${variant.host} P=${variant.padding} bit ${bit}: ${JSON.stringify(step)}`,
        )
    }
  }
  assert.ok(flips > 10_000)
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${flips} flips`)
})

test('ServerHandshake never accepts a single-bit flip of a legacy header', () => {
  const users = new UserDirectory([user])
  const legacy = new LegacyAuthTable([user])
  const failures: string[] = []
  for (const variant of AEAD_VARIANTS) {
    const wire = genuineRequest(user, { ...variant, legacy: true, port: 80 }).wire
    for (let bit = 0; bit < wire.length * 8; bit++) {
      const queue = new ByteQueue()
      queue.push(flipped(wire, bit))
      const step = new ServerHandshake(freshContext(users, legacy)).advance(queue)
      // A flip may make the header look longer (need-more): it waits for bytes that never come.
      if (step.status === 'accepted' || (step.status === 'refused' && step.action !== 'drain'))
        failures.push(
          `command ${variant.command} ${variant.host} P=${variant.padding} bit ${bit}: ${JSON.stringify(step)}`,
        )
    }
  }
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} flips`)
})

for (const mode of ['fin', 'hold'] as const) {
  test(`every single-bit flip of an AEAD header on the wire draws the reaction of random bytes (${mode})`, async () => {
    const server = serverNamed('main, legacy on')
    const wireOf = () =>
      genuineRequest(user, {
        legacy: false,
        command: Command.Tcp,
        host: ADDRESSES.ipv4,
        port: echo.port,
        padding: 0,
      }).wire
    const length = wireOf().length
    const controls = await pool([0, 1, 2], 3, () =>
      probe(server.port, randomBytes(length), { mode, deadlineMs: DEADLINE_MS }),
    )
    const control = reactionClass(controls[0]!)
    assert.ok(
      controls.every((c) => reactionClass(c) === control && isSilent(c)),
      controls.map(reactionClass).join('; '),
    )
    const failures: string[] = []
    // A fresh genuine request per flip, so every flip reaches the seal instead of the replay filter.
    await pool(
      Array.from({ length: length * 8 }, (_, bit) => bit),
      CONCURRENCY,
      async (bit) => {
        const reaction = await probe(server.port, flipped(wireOf(), bit), { mode, deadlineMs: DEADLINE_MS })
        if (reactionClass(reaction) !== control) failures.push(`bit ${bit}: ${reactionClass(reaction)}`)
      },
    )
    assert.deepEqual(
      failures.slice(0, 10),
      [],
      `${failures.length} flips differ from random bytes (${control})`,
    )
  })
}

/** The probes of docs/security.md §4.2 N4 that do not depend on a server: name and bytes. */
function corpus(): { name: string; bytes: Buffer }[] {
  const lengths = [...GFW_PROBE_LENGTHS, 0, 1, 100, 500, 1_000, 2_000, 5_000]
  return [
    ...lengths.map((length) => ({ name: `random ${length} bytes`, bytes: randomBytes(length) })),
    { name: 'HTTP GET', bytes: HTTP_GET },
    { name: 'TLS ClientHello', bytes: tlsClientHello() },
    { name: 'SSH banner', bytes: SSH_BANNER },
  ]
}

test('the probe corpus draws one class per length, that of random bytes, legacy on and off', async () => {
  const failures: string[] = []
  const runs: { server: (typeof servers)[number]; name: string; bytes: Buffer; mode: ProbeMode }[] = []
  for (const server of servers.filter((s) => s.name.startsWith('main'))) {
    // Replays of a genuine first packet (header and first chunk) that really went through.
    const request = genuineRequest(user, {
      legacy: false,
      command: Command.Tcp,
      host: ADDRESSES.ipv4,
      port: echo.port,
      padding: 7,
    })
    const first = Buffer.concat([request.wire, firstChunk(request, randomBytes(200))])
    const genuine = await connectTcp(server.port)
    genuine.on('error', () => undefined)
    genuine.write(first)
    await new Promise((resolve) => setTimeout(resolve, 50))
    genuine.destroy()
    const inputs = [...corpus(), ...gfwReplays(first)]
    for (let round = 0; round < scaled(1, 10); round++)
      for (const input of inputs)
        for (const mode of ['fin', 'hold'] as const) runs.push({ server, ...input, mode })
  }
  await pool(runs, CONCURRENCY, async ({ server, name, bytes, mode }) => {
    const [reaction, control] = await Promise.all([
      probe(server.port, bytes, { mode, deadlineMs: DEADLINE_MS }),
      probe(server.port, randomBytes(bytes.length), { mode, deadlineMs: DEADLINE_MS }),
    ])
    const expected =
      mode === 'fin'
        ? '0 bytes, client closed first, fin, prompt'
        : `0 bytes, server closed first, fin, ${bytes.length >= threshold ? 'prompt' : 'deadline'}`
    if (reactionClass(reaction) !== reactionClass(control) || reactionClass(reaction) !== expected)
      failures.push(
        `${server.name} ${mode} ${name}: ${reactionClass(reaction)}; random: ${reactionClass(control)}`,
      )
  })
  assert.deepEqual(failures, [])
})

test('a 1-byte trickle closes at the drain threshold whatever the bytes, legacy on and off', async () => {
  const failures: string[] = []
  for (const server of servers.filter((s) => s.name.startsWith('small'))) {
    const inputs = [
      { name: 'random', bytes: randomBytes(small.threshold + 30) },
      { name: 'HTTP GET', bytes: Buffer.concat([HTTP_GET, Buffer.alloc(small.threshold)]) },
      { name: 'SSH banner', bytes: Buffer.concat([SSH_BANNER, Buffer.alloc(small.threshold)]) },
      { name: 'zeros', bytes: Buffer.alloc(small.threshold + 30) },
    ]
    await pool(inputs, inputs.length, async ({ name, bytes }) => {
      const reaction = await probe(server.port, bytes, {
        mode: 'hold',
        deadlineMs: server.deadlineMs,
        trickle: { head: 0, size: 1, intervalMs: TRICKLE_INTERVAL_MS },
      })
      if (
        !isSilent(reaction) ||
        reaction.when !== 'prompt' ||
        Math.abs(reaction.sentBeforeClose - small.threshold) > 1
      )
        failures.push(
          `${server.name} ${name}: ${reactionClass(reaction)} after ${reaction.sentBeforeClose} bytes (threshold ${small.threshold})`,
        )
    })
  }
  assert.deepEqual(failures, [])
})

test('the 16-probe legacy attack (v2ray-core#2523) sees the same close point for every P, legacy on and off', async () => {
  const failures: string[] = []
  const attack = async (server: (typeof servers)[number]): Promise<void> => {
    // The genuine connection the attacker captured.
    const padding = 3
    const request = genuineRequest(small.user, {
      legacy: true,
      command: Command.Tcp,
      host: ADDRESSES.ipv4,
      port: echo.port,
      padding,
    })
    const genuine = await connectTcp(server.port)
    genuine.on('error', () => undefined)
    genuine.write(Buffer.concat([request.wire, firstChunk(request, randomBytes(10))]))
    await new Promise((resolve) => setTimeout(resolve, 50))
    genuine.destroy()
    const zeros = Buffer.alloc(small.threshold)
    const trickle = { head: 54, size: 1, intervalMs: TRICKLE_INTERVAL_MS }
    const probes = [
      ...Array.from({ length: 16 }, (_, p) => ({
        name: `P=${p}`,
        bytes: Buffer.concat([legacyAttackProbe(request.wire, padding, p), zeros]),
      })),
      { name: 'random 54 bytes', bytes: Buffer.concat([randomBytes(54), zeros]) },
    ]
    // One after another, as the attack runs them (the first probe taints the captured auth).
    const points: string[] = []
    for (const { name, bytes } of probes) {
      const reaction = await probe(server.port, bytes, {
        mode: 'hold',
        deadlineMs: server.deadlineMs,
        trickle,
      })
      points.push(`${name}: ${reactionClass(reaction)} after ${reaction.sentBeforeClose} bytes`)
      if (!isSilent(reaction) || Math.abs(reaction.sentBeforeClose - small.threshold) > 1)
        failures.push(`${server.name} ${points.at(-1)}`)
    }
  }
  await Promise.all(servers.filter((s) => s.name.startsWith('small')).map(attack))
  assert.deepEqual(failures, [])
  await waitFor(
    () => metrics.open === 0,
    10_000,
    () => `connections still open: ${JSON.stringify([...metrics.phases])}`,
  )
})

failOnLeakedHandles()
