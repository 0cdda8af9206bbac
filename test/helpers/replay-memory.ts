import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { AuthIdReplayFilter } from '../../src/protocol/replay-filter.js'

/** What the child reports. */
export interface ReplayLoadReport {
  readonly handshakes: number
  readonly falseRefusals: number
  readonly replaysTried: number
  readonly replaysAccepted: number
  readonly remembered: number
  readonly peakRemembered: number
  readonly bytesPerEntry: number
  readonly tableBytesPerEntry: number
  readonly ms: number
}

const CHILD_ENV = 'TSRAY_REPLAY_LOAD_CHILD'
const START = 1_700_000_000

/**
 * Feeds `handshakes` fresh AuthIDs at `rate` per simulated second from clients whose clocks are
 * off by −120…+120 s (fake clock), replays one recent AuthID every 997 handshakes, and measures the
 * filter's memory per remembered AuthID after GC. Runs in this process (needs --expose-gc).
 */
export async function runReplayLoad(handshakes: number, rate: number): Promise<ReplayLoadReport> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('runReplayLoad needs node --expose-gc')
  await settleMemory(gc)
  const before = process.memoryUsage()
  const filter = new AuthIdReplayFilter()
  const batch = 65_536
  let ids = randomBytes(16 * batch)
  let falseRefusals = 0
  let replaysTried = 0
  let replaysAccepted = 0
  let peak = 0
  const recent: { id: Buffer; time: number }[] = []
  const started = performance.now()
  for (let i = 0; i < handshakes; i++) {
    if (i % batch === 0 && i > 0) ids = randomBytes(16 * batch)
    const now = START + Math.floor(i / rate)
    // Deterministic spread of client clock offsets over the whole window.
    const offset = ((i * 7_919) % 241) - 120
    const id = ids.subarray((i % batch) * 16, (i % batch) * 16 + 16)
    if (!filter.accept(id, now + offset, now)) falseRefusals++
    if (i % 997 === 0) {
      recent.push({ id: Buffer.from(id), time: now + offset })
      if (recent.length > 300) recent.shift()
      // Replay one seen up to ~150 s ago: still inside its window, so the filter must refuse it.
      const old = recent[(i * 31) % recent.length]!
      if (Math.abs(old.time - now) <= 120) {
        replaysTried++
        if (filter.accept(old.id, old.time, now)) replaysAccepted++
      }
    }
    if (filter.size > peak) peak = filter.size
  }
  const ms = performance.now() - started
  ids = Buffer.alloc(0)
  recent.length = 0
  await settleMemory(gc)
  const after = process.memoryUsage()
  const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers)
  return {
    handshakes,
    falseRefusals,
    replaysTried,
    replaysAccepted,
    remembered: filter.size,
    peakRemembered: peak,
    bytesPerEntry: grown / filter.size,
    tableBytesPerEntry: filter.byteLength / filter.size,
    ms,
  }
}

/** GC until freed ArrayBuffers are really returned (V8 sweeps their backing stores concurrently). */
export async function settleMemory(gc: () => void): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 30))
  }
}

/** Runs `runReplayLoad` in a child `node --expose-gc`, so the heap measured is the filter's alone. */
export function replayLoadInChild(handshakes: number, rate: number): Promise<ReplayLoadReport> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--expose-gc', fileURLToPath(import.meta.url)],
      { env: { ...process.env, [CHILD_ENV]: JSON.stringify({ handshakes, rate }) }, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`replay load child failed: ${error.message}\n${stderr}`))
        else resolve(JSON.parse(stdout) as ReplayLoadReport)
      },
    )
  })
}

// Only when started by replayLoadInChild (the test runner also loads this file, as a module).
const request = process.env[CHILD_ENV]
if (request !== undefined) {
  const { handshakes, rate } = JSON.parse(request) as { handshakes: number; rate: number }
  void runReplayLoad(handshakes, rate).then((report) => process.stdout.write(JSON.stringify(report)))
}
