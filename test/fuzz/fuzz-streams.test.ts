import assert from 'node:assert/strict'
import { test } from 'node:test'
import { confirmSlow, fuzz } from './harness.js'
import { FUZZ_SEED, fuzzInputs } from './fuzz-options.js'
import { FUZZ_TARGETS } from './targets.js'

// Stream and text parsers: chunk opener (every security and option), Mux.Cool, SOCKS5, HTTP proxy, links, config.
for (const name of [
  'chunk-opener',
  'mux-frame',
  'socks5',
  'http-proxy',
  'share-link',
  'share-link-json',
  'config',
  'packet-addr',
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
