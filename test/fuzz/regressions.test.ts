import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { test } from 'node:test'
import { checkInput, confirmSlow, REGRESSIONS_DIR, savedRegressions } from './harness.js'
import { FUZZ_TARGETS } from './targets.js'

test('every input the fuzzer ever saved in test/fuzz/regressions/ still parses within the limits', async () => {
  assert.ok(existsSync(REGRESSIONS_DIR), `${REGRESSIONS_DIR} is missing`)
  const problems: string[] = []
  for (const { target: name, file, input } of savedRegressions()) {
    const target = FUZZ_TARGETS.find((t) => t.name === name)
    if (target === undefined) {
      problems.push(`${file}: no fuzz target named ${name}`)
      continue
    }
    const result = checkInput(target, input)
    const problem =
      result.problem !== undefined && result.slowOnly
        ? (await confirmSlow(target, [input]))[0]?.problem
        : result.problem
    if (problem !== undefined) problems.push(`${file}: ${problem}`)
  }
  assert.deepEqual(problems, [])
})
