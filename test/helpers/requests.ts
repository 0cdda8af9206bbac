import { createHash } from 'node:crypto'
import { secureRandom } from '../../src/crypto/random.js'
import { drainShape, type VmessInboundMetrics, type VmessPhase } from '../../src/inbound/vmess.js'
import { ChunkSealer } from '../../src/protocol/chunk-sealer.js'
import {
  createClientRequest,
  type ClientRequest,
  resolveSecurity,
} from '../../src/protocol/client-request.js'
import { Command, type CommandValue, type SecurityName } from '../../src/protocol/constants.js'
import { requestBodyParams } from '../../src/protocol/session-keys.js'
import { createUser, formatUuid, type VmessUser } from '../../src/protocol/user.js'

/** A deterministic UUID for test user number `index`. */
export function testUuid(label: string, index: number): string {
  return formatUuid(createHash('sha256').update(`${label} ${index}`).digest().subarray(0, 16))
}

/**
 * A user whose server-side drain threshold (docs/protocol.md §9) is exactly `base` ∈ [min, max] with no
 * per-connection spread, so a probe's close point is deterministic.
 */
export function userWithDrain(options: { min: number; max: number; alterId?: number; email?: string }): {
  user: VmessUser
  threshold: number
} {
  for (let index = 0; index < 1_000_000; index++) {
    const uuid = testUuid('tsray drain', index)
    const shape = drainShape([{ id: Buffer.from(uuid.replaceAll('-', ''), 'hex') } as VmessUser])
    if (shape.spread !== 1 || shape.base < options.min || shape.base > options.max) continue
    const user = createUser({ id: uuid, alterId: options.alterId ?? 0, email: options.email ?? 'probe@test' })
    return { user, threshold: shape.base }
  }
  throw new Error(`no user with a drain threshold in [${options.min}, ${options.max}]`)
}

/** The address kinds a request header can carry. */
export const ADDRESSES = { ipv4: '127.0.0.1', domain: 'example.com', ipv6: '::1' } as const

/** A genuine client request with its header padding forced to `padding` (0–15). */
export function genuineRequest(
  user: VmessUser,
  options: {
    legacy: boolean
    command: CommandValue
    host: string
    port: number
    padding: number
    security?: SecurityName
    now?: number
  },
): ClientRequest {
  const wire = resolveSecurity(options.security ?? 'aes-128-gcm', { udp: options.command === Command.Udp })
  let first = true
  return createClientRequest(user, {
    legacy: options.legacy,
    security: wire.security,
    options: wire.options,
    command: options.command,
    host: options.host,
    port: options.port,
    now: options.now ?? Math.floor(Date.now() / 1000),
    random: (length) => {
      const bytes = Buffer.from(secureRandom(length))
      if (first && length === 34) bytes[33] = (bytes.readUInt8(33) & 0xf0) | options.padding
      first = false
      return bytes
    },
  })
}

/** The request's first body chunk carrying `payload`, as a client sends it right after the header. */
export function firstChunk(request: ClientRequest, payload: Buffer): Buffer {
  return new ChunkSealer(requestBodyParams(request.header)).seal(payload)
}

/** Counts what a VMess inbound reports, in memory. */
export class MemoryMetrics implements VmessInboundMetrics {
  readonly refusals = new Map<string, number>()
  readonly phases = new Map<VmessPhase, number>()
  readonly targetFailures = new Map<string, number>()
  readonly #readers: (() => number)[] = []

  refused(reason: string): void {
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1)
  }

  phase(phase: VmessPhase, delta: 1 | -1): void {
    this.phases.set(phase, (this.phases.get(phase) ?? 0) + delta)
  }

  targetFailed(code: string): void {
    this.targetFailures.set(code, (this.targetFailures.get(code) ?? 0) + 1)
  }

  bufferedBytes(read: () => number): void {
    this.#readers.push(read)
  }

  /** Bytes the inbound holds for its tunnels now. */
  get buffered(): number {
    return this.#readers.reduce((sum, read) => sum + read(), 0)
  }

  /** Connections in any phase now. */
  get open(): number {
    let total = 0
    for (const count of this.phases.values()) total += count
    return total
  }

  /** Refusals of any reason so far. */
  get refusedTotal(): number {
    let total = 0
    for (const count of this.refusals.values()) total += count
    return total
  }
}

/** Waits until `condition()` holds, polling, or throws after `timeoutMs` with `describe()`. */
export async function waitFor(
  condition: () => boolean,
  timeoutMs: number,
  describe: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
