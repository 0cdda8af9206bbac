// `policy` and the effective policy of a user level.
import { z } from 'zod'
import {
  BUFFER_SIZE_BYTES,
  CONN_IDLE_MS,
  DOWNLINK_ONLY_MS,
  HANDSHAKE_TIMEOUT_MS,
  UPLINK_ONLY_MS,
} from './defaults.js'
import { advised, anyValue } from './keys.js'
import { integerReader, leaf, MAX_INT32, MAX_UINT32, optional, readUint32 } from './readers.js'
import { type EffectivePolicy, type LevelPolicy, type PolicyConfig, type TsrayConfig } from './types.js'

/** The effective policy of a user level: the configured values of that level, V2Ray's defaults for the rest. */
export function levelPolicy(config: Pick<TsrayConfig, 'policy'>, level: number): EffectivePolicy {
  const configured = config.policy.levels.get(level)
  const ms = (seconds: number | undefined, fallbackMs: number): number =>
    seconds === undefined ? fallbackMs : seconds * 1000
  const bufferSize = configured?.bufferSize
  return {
    handshakeMs: ms(configured?.handshake, HANDSHAKE_TIMEOUT_MS),
    connIdleMs: ms(configured?.connIdle, CONN_IDLE_MS),
    uplinkOnlyMs: ms(configured?.uplinkOnly, UPLINK_ONLY_MS),
    downlinkOnlyMs: ms(configured?.downlinkOnly, DOWNLINK_ONLY_MS),
    bufferBytes: bufferSize === undefined ? BUFFER_SIZE_BYTES : bufferSize < 0 ? Infinity : bufferSize * 1024,
  }
}

const optionalSeconds = leaf(optional(readUint32, undefined))
// Read by src/config/operate.ts (counters need a "stats": {} section there).
const adviseStats = (): string | undefined => undefined

const levelPolicySchema = z
  .object({
    handshake: optionalSeconds,
    connIdle: optionalSeconds,
    uplinkOnly: optionalSeconds,
    downlinkOnly: optionalSeconds,
    bufferSize: leaf(optional(integerReader(-MAX_INT32 - 1, MAX_INT32), undefined)),
    statsUserUplink: advised(adviseStats),
    statsUserDownlink: advised(adviseStats),
    statsUserOnline: advised(adviseStats),
  })
  .transform((level): LevelPolicy => ({
    handshake: level.handshake,
    connIdle: level.connIdle,
    uplinkOnly: level.uplinkOnly,
    downlinkOnly: level.downlinkOnly,
    bufferSize: level.bufferSize,
  }))

/** `policy`: levels keyed by the level number as a string. */
export const policySchema = z
  .object({
    levels: z.record(z.string(), levelPolicySchema).optional(),
    system: anyValue(),
  })
  .transform((policy, context): PolicyConfig => {
    const levels = new Map<number, LevelPolicy>()
    for (const [key, level] of Object.entries(policy.levels ?? {})) {
      const number = /^\d{1,10}$/.test(key) ? Number(key) : NaN
      if (number <= MAX_UINT32) levels.set(number, level)
      else
        context.addIssue({ code: 'custom', path: ['levels', key], message: `"${key}" is not a level number` })
    }
    return { levels }
  })
