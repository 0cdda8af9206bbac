import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import type { VmessInbound } from '../../src/inbound/vmess.js'
import { Command, type CommandValue } from '../../src/protocol/constants.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { startEchoServer } from '../helpers/net.js'
import { isSilent, pool, probe, type ProbeMode, reactionClass, scaled } from '../helpers/probe.js'
import {
  ADDRESSES,
  firstChunk,
  genuineRequest,
  MemoryMetrics,
  userWithDrain,
  waitFor,
} from '../helpers/requests.js'
import { closeVmess, listenVmess, testVmessInbound } from '../helpers/vmess-server.js'

// Every byte-length prefix of genuine AEAD and legacy headers (each command, address type, padding 0
// and 15) must draw the reaction random bytes of the same length draw (docs/security.md §4.2 N1).
const DEADLINE_MS = 1_500
const CONCURRENCY = 100
const LONG_DOMAIN = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.example`
// The threshold lies inside the long-domain headers, so cut-short headers cross it too.
const { user, threshold } = userWithDrain({ min: 150, max: 230, alterId: 2 })
const metrics = new MemoryMetrics()
let echo: Awaited<ReturnType<typeof startEchoServer>>
let inbound: VmessInbound
let port = 0

before(async () => {
  echo = await startEchoServer()
  inbound = testVmessInbound([user], { handshakeTimeoutMs: DEADLINE_MS, metrics })
  port = await listenVmess(inbound)
})
after(async () => {
  await closeVmess(inbound)
  await echo.close()
})

interface Variant {
  readonly name: string
  readonly legacy: boolean
  readonly command: CommandValue
  readonly host: string
  readonly padding: number
}

function variants(): Variant[] {
  const out: Variant[] = []
  for (const legacy of [false, true]) {
    for (const padding of [0, 15]) {
      out.push({ name: 'mux', legacy, command: Command.Mux, host: '', padding })
      for (const command of [Command.Tcp, Command.Udp]) {
        for (const [address, host] of [...Object.entries(ADDRESSES), ['long domain', LONG_DOMAIN]]) {
          out.push({
            name: `${command === Command.Tcp ? 'tcp' : 'udp'} ${address}`,
            legacy,
            command,
            host: host!,
            padding,
          })
        }
      }
    }
  }
  return out.map((v) => ({ ...v, name: `${v.legacy ? 'legacy' : 'aead'} ${v.name} P=${v.padding}` }))
}

/** The header alone (a fresh genuine request each call, so no prefix is a replay of another). */
function headerWire(variant: Variant): Buffer {
  return genuineRequest(user, { ...variant, port: echo.port }).wire
}

function expectedClass(mode: ProbeMode, length: number): string {
  if (mode === 'fin') return '0 bytes, client closed first, fin, prompt'
  return `0 bytes, server closed first, fin, ${length >= threshold ? 'prompt' : 'deadline'}`
}

/** The reaction class of random bytes of each length, measured once per (mode, length). */
const controls = new Map<string, string>()
async function controlClass(mode: ProbeMode, length: number): Promise<string> {
  const key = `${mode} ${length}`
  let known = controls.get(key)
  if (known === undefined) {
    known = reactionClass(await probe(port, randomBytes(length), { mode, deadlineMs: DEADLINE_MS }))
    controls.set(key, known)
  }
  return known
}

for (const mode of ['fin', 'hold'] as const) {
  test(`every prefix of a genuine header draws the reaction of random bytes (${mode})`, async () => {
    const all = variants()
    // CI: every prefix in FIN mode; in hold mode (each waits for the deadline) every prefix of the
    // padding-15 variants and every 4th of the others. TSRAY_FULL=1: every prefix of every variant.
    const cases = all.flatMap((variant) => {
      const length = headerWire(variant).length
      return Array.from({ length }, (_, cut) => ({ variant, cut })).filter(
        ({ variant: v, cut }) => mode === 'fin' || v.padding === 15 || cut % scaled(4, 1) === 0,
      )
    })
    const failures: string[] = []
    const results = await pool(cases, CONCURRENCY, async ({ variant, cut }) => {
      const reaction = await probe(port, headerWire(variant).subarray(0, cut), {
        mode,
        deadlineMs: DEADLINE_MS,
      })
      const control = await controlClass(mode, cut)
      const got = reactionClass(reaction)
      if (got !== control || got !== expectedClass(mode, cut) || !isSilent(reaction)) {
        failures.push(`${variant.name} cut at ${cut}: ${got}; random bytes: ${control}`)
      }
      return reaction
    })
    assert.ok(results.length > 1_000, `only ${results.length} prefixes`)
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} prefixes differ from random bytes`)
    await waitFor(
      () => metrics.open === 0,
      5_000,
      () => `connections still open: ${JSON.stringify([...metrics.phases])}`,
    )
  })
}

test('a genuine header with its first chunk cut short and a FIN draws no byte, like random bytes', async () => {
  const failures: string[] = []
  for (const variant of variants().filter((v) => v.command !== Command.Udp)) {
    // These requests are opened: a domain must resolve here, or the dial holds the client's EOF.
    const host =
      variant.host === ADDRESSES.domain || variant.host === LONG_DOMAIN ? 'localhost' : variant.host
    for (const at of ['1', '2', '17', 'last'] as const) {
      // A fresh request per cut, and the cut taken from its own chunk (padding makes lengths differ).
      const fresh = genuineRequest(user, { ...variant, host, port: echo.port })
      const chunk = firstChunk(fresh, randomBytes(100))
      const cut = at === 'last' ? chunk.length - 1 : Number(at)
      const wire = Buffer.concat([fresh.wire, chunk.subarray(0, cut)])
      const reaction = await probe(port, wire, { mode: 'fin', deadlineMs: DEADLINE_MS })
      if (reactionClass(reaction) !== expectedClass('fin', wire.length))
        failures.push(`${variant.name} chunk cut at ${cut} of ${chunk.length}: ${reactionClass(reaction)}`)
    }
  }
  assert.deepEqual(failures, [])
})

failOnLeakedHandles()
