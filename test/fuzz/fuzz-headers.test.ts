import assert from 'node:assert/strict'
import { test } from 'node:test'
import { confirmSlow, fuzz } from './harness.js'
import { FUZZ_SEED, fuzzInputs } from './fuzz-options.js'
import { FUZZ_TARGETS } from './targets.js'

// Header parsers: AEAD (on the wire and behind the seal), legacy (on the wire and behind the CFB), response.
for (const name of [
  'aead-header',
  'aead-header-sealed',
  'legacy-header',
  'legacy-header-plain',
  'response-header',
]) {
  const target = FUZZ_TARGETS.find((t) => t.name === name)!
  const inputs = fuzzInputs()
  test(`fuzz ${name}: ${inputs} inputs (seed ${FUZZ_SEED}), no crash, only TsrayError, ≤ 1 ms and ≤ 66 KiB each`, async (t) => {
    const report = fuzz(target, { inputs, seed: FUZZ_SEED })
    t.diagnostic(
      `${report.inputs} inputs in ${(report.ms / 1000).toFixed(1)} s; slowest ${report.slowestMs.toFixed(2)} ms, ` +
        `largest allocation ${report.largestAllocation} B beyond the input`,
    )
    const failures = [...report.failures, ...(await confirmSlow(target, report.slow))]
    assert.deepEqual(
      failures.map((f) => `${f.problem} (saved as ${f.file ?? 'not saved'})`),
      [],
    )
    assert.equal(report.inputs, inputs)
  })
}
