import { FULL_SCALE } from '../helpers/probe.js'

/** Inputs per target in `npm test`. */
const CI_INPUTS = 200_000
const FULL_INPUTS = 10_000_000

/** Inputs per target: TSRAY_FUZZ_INPUTS, else 10,000,000 with TSRAY_FULL=1, else 200,000. */
export function fuzzInputs(): number {
  const forced = Number(process.env.TSRAY_FUZZ_INPUTS)
  if (Number.isInteger(forced) && forced > 0) return forced
  return FULL_SCALE ? FULL_INPUTS : CI_INPUTS
}

/** The run's seed: fixed in CI, so a failure replays; TSRAY_FUZZ_SEED explores further. */
export const FUZZ_SEED = process.env.TSRAY_FUZZ_SEED ?? 'tsray-ci-1'
