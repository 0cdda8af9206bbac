import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { getHeapStatistics } from 'node:v8'
import { TsrayError } from '../../src/errors.js'
import { mutate } from './mutator.js'
import { Rng } from './rng.js'
import type { FuzzTarget } from './targets.js'

/** No input may take longer than this to parse (the best of several runs, so a GC pause does not count). */
export const MAX_INPUT_MS = 1
/** No input may allocate more buffer memory than this beyond its own size: a whole 64 KiB chunk, and a little. */
export const MAX_INPUT_ALLOCATION = 66 * 1024
/** Runs of a slow or big input before it counts as a failure. */
const RECHECKS = 10

/** Where failing inputs are kept, one file per input, and replayed by test/fuzz/regressions.test.ts. */
export const REGRESSIONS_DIR = fileURLToPath(new URL('../../../test/fuzz/regressions/', import.meta.url))

/** Why an input failed. */
export interface FuzzFailure {
  readonly target: string
  readonly problem: string
  readonly input: Buffer
  readonly file: string | undefined
}

/** Figures of a run. */
export interface FuzzReport {
  readonly target: string
  readonly inputs: number
  readonly ms: number
  readonly slowestMs: number
  readonly largestAllocation: number
  readonly failures: FuzzFailure[]
  /** Inputs that were only too slow: `confirmSlow` decides, away from the busy loop. */
  readonly slow: Buffer[]
}

interface Measure {
  readonly error: unknown
  readonly ms: number
  readonly allocation: number
}

function measure(target: FuzzTarget, input: Buffer): Measure {
  // The input's own hash seeds its splits, so a saved input replays exactly.
  const rng = new Rng(createHash('sha256').update(input).digest('hex'))
  const parse = target.prepare(input, rng)
  const before = getHeapStatistics()
  const start = process.hrtime.bigint()
  let error: unknown
  try {
    parse()
  } catch (caught) {
    error = caught ?? new Error('threw a nullish value')
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  const after = getHeapStatistics()
  // Buffer memory (V8 external memory) beyond one copy of the input: what a length field could make
  // a parser reserve. JS-heap garbage (the KDF's, zod's) is bounded by the time limit instead. A GC
  // during the parse can only make this smaller; re-runs confirm a large value.
  const allocation = after.external_memory - before.external_memory - input.length
  return { error, ms, allocation }
}

/** Checks one input: a TsrayError or nothing, fast enough, small enough. Returns the problem, if any. */
export function checkInput(
  target: FuzzTarget,
  input: Buffer,
): { problem: string | undefined; slowOnly: boolean; ms: number; allocation: number } {
  let result = measure(target, input)
  if (result.error !== undefined && !(result.error instanceof TsrayError)) {
    const error = result.error as { name?: string; message?: string; stack?: string }
    return {
      problem: `untyped exception: ${error.stack ?? `${error.name}: ${error.message}`}`,
      slowOnly: false,
      ms: result.ms,
      allocation: result.allocation,
    }
  }
  let ms = result.ms
  let allocation = result.allocation
  for (let i = 0; i < RECHECKS && (ms > MAX_INPUT_MS || allocation > MAX_INPUT_ALLOCATION); i++) {
    result = measure(target, input)
    ms = Math.min(ms, result.ms)
    allocation = Math.min(allocation, result.allocation)
  }
  if (allocation > MAX_INPUT_ALLOCATION)
    return {
      problem: `allocated ${allocation} bytes (limit ${MAX_INPUT_ALLOCATION})`,
      slowOnly: false,
      ms,
      allocation,
    }
  if (ms > MAX_INPUT_MS)
    return { problem: `took ${ms.toFixed(2)} ms (limit ${MAX_INPUT_MS} ms)`, slowOnly: true, ms, allocation }
  return { problem: undefined, slowOnly: false, ms, allocation }
}

/**
 * Re-times inputs that were only too slow, 20 times each, 25 ms apart: wall time on a shared machine
 * includes waiting for a core, and the best of runs spread out is the input's own cost. Those still
 * over the limit are failures, saved like any other.
 */
export async function confirmSlow(target: FuzzTarget, inputs: readonly Buffer[]): Promise<FuzzFailure[]> {
  const failures: FuzzFailure[] = []
  for (const input of inputs) {
    let best = Infinity
    for (let i = 0; i < 20 && best > MAX_INPUT_MS; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25))
      best = Math.min(best, measure(target, input).ms)
    }
    if (best > MAX_INPUT_MS) {
      const problem = `took ${best.toFixed(2)} ms (limit ${MAX_INPUT_MS} ms)`
      failures.push({ target: target.name, problem, input, file: save(target.name, input) })
    }
  }
  return failures
}

function save(target: string, input: Buffer): string | undefined {
  const dir = join(REGRESSIONS_DIR, target)
  const file = join(dir, `${createHash('sha256').update(input).digest('hex').slice(0, 16)}.bin`)
  try {
    mkdirSync(dir, { recursive: true })
    writeFileSync(file, input)
    return file
  } catch {
    return undefined
  }
}

/** Runs `inputs` mutated inputs (the seeds first) through `target`, from the text seed `seed`. */
export function fuzz(
  target: FuzzTarget,
  options: { inputs: number; seed: string; maxFailures?: number },
): FuzzReport {
  const rng = new Rng(`${target.name}:${options.seed}`)
  const seeds = target.seeds(rng)
  const failures: FuzzFailure[] = []
  const slow: Buffer[] = []
  let slowestMs = 0
  let largestAllocation = 0
  const started = performance.now()
  let count = 0
  for (
    ;
    count < options.inputs && failures.length < (options.maxFailures ?? 10) && slow.length < 1_000;
    count++
  ) {
    const input = count < seeds.length ? seeds[count]! : mutate(rng.pick(seeds), rng, seeds)
    const result = checkInput(target, input)
    slowestMs = Math.max(slowestMs, result.ms)
    largestAllocation = Math.max(largestAllocation, result.allocation)
    if (result.problem !== undefined && result.slowOnly) slow.push(input)
    else if (result.problem !== undefined) {
      failures.push({ target: target.name, problem: result.problem, input, file: save(target.name, input) })
    }
  }
  return {
    target: target.name,
    inputs: count,
    ms: performance.now() - started,
    slowestMs,
    largestAllocation,
    failures,
    slow,
  }
}

/** The saved failing inputs of every target: target name and bytes. */
export function savedRegressions(): { target: string; file: string; input: Buffer }[] {
  let targets: string[]
  try {
    targets = readdirSync(REGRESSIONS_DIR, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
  } catch {
    return []
  }
  return targets.flatMap((target) =>
    readdirSync(join(REGRESSIONS_DIR, target))
      .filter((name) => name.endsWith('.bin'))
      .map((name) => ({
        target,
        file: join(target, name),
        input: readFileSync(join(REGRESSIONS_DIR, target, name)),
      })),
  )
}
