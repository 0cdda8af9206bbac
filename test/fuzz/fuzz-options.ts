import { FULL_SCALE } from '../helpers/probe.js'

/** Inputs per target in `npm test`, where 200,000 does not fit the time budget (see README "Adversarial tests"). */
const CI_INPUTS: Readonly<Record<string, number>> = {
  // Each input with a valid AuthID costs four KDFs of src/crypto/kdf.ts (≈ 0.15 ms; 0.3 ms when re-sealed).
  'aead-header': 20_000,
  'aead-header-sealed': 10_000,
  config: 50_000,
}
const DEFAULT_CI_INPUTS = 200_000
const FULL_INPUTS = 10_000_000

/** Inputs for `target`: TSRAY_FUZZ_INPUTS, else 10,000,000 with TSRAY_FULL=1, else the CI figure. */
export function fuzzInputs(target: string): number {
  const forced = Number(process.env.TSRAY_FUZZ_INPUTS)
  if (Number.isInteger(forced) && forced > 0) return forced
  return FULL_SCALE ? FULL_INPUTS : (CI_INPUTS[target] ?? DEFAULT_CI_INPUTS)
}

/** The run's seed: fixed in CI, so a failure replays; TSRAY_FUZZ_SEED explores further. */
export const FUZZ_SEED = process.env.TSRAY_FUZZ_SEED ?? 'tsray-ci-1'
