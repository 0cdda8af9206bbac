import { parseConfigText, validateConfig, type ConfigEnvironment } from '../config/load.js'
import { buildInstance } from './build.js'
import type { BoundListener } from './instance.js'

/** How long close() lets open tunnels finish by default, as `tsray run` does on SIGTERM. */
export const DEFAULT_CLOSE_GRACE_MS = 5_000

/** Options of start(). */
export interface StartOptions {
  /** Where `env:NAME` values in the config are looked up; process.env when absent. */
  readonly env?: ConfigEnvironment
  /** Receives the config's warnings (unknown or ignored keys); Node's process.emitWarning when absent. */
  readonly onWarning?: (message: string) => void
}

/** A config running in this process. */
export interface RunningInstance {
  /** Every bound listener, in config order: tag, protocol and the port bound (the OS's pick for port 0). */
  readonly addresses: readonly BoundListener[]
  /** The listener of an inbound tag (`inbound-N` for the Nth untagged inbound); throws when there is none. */
  inbound(tag: string): BoundListener
  /** Stops accepting, lets open tunnels run for `graceMs` (DEFAULT_CLOSE_GRACE_MS), then closes them. */
  close(graceMs?: number): Promise<void>
}

/**
 * Runs a V2Ray v4 JSON config (an object, or its text) in this process, as `tsray run` would, and resolves
 * once every inbound listens. A port of 0 binds a free port, readable from `addresses` or `inbound(tag)`.
 * An invalid config rejects with a ConfigError; a port in use with a TransportError.
 * @example
 * ```ts
 * import { start } from 'tsray'
 *
 * const server = await start({
 *   log: { loglevel: 'none' },
 *   inbounds: [
 *     {
 *       tag: 'vmess',
 *       listen: '127.0.0.1',
 *       port: 0,
 *       protocol: 'vmess',
 *       settings: { clients: [{ id: 'b831381d-6324-4d53-ad4f-8cda48b30811' }] },
 *     },
 *   ],
 *   outbounds: [{ protocol: 'freedom' }],
 * })
 * console.log(`vmess://b831381d-6324-4d53-ad4f-8cda48b30811@127.0.0.1:${server.inbound('vmess').port}#local`)
 * await server.close()
 * ```
 */
export async function start(config: unknown, options: StartOptions = {}): Promise<RunningInstance> {
  const raw = typeof config === 'string' ? parseConfigText(config) : config
  const loaded = validateConfig(raw, options.env === undefined ? {} : { env: options.env })
  const warn = options.onWarning ?? ((message: string) => process.emitWarning(message, 'TsrayWarning'))
  for (const warning of loaded.warnings) warn(warning)
  const instance = buildInstance(loaded.config)
  const addresses = await instance.start()
  let closing: Promise<void> | undefined
  return {
    addresses,
    inbound: (tag) => {
      const found = addresses.find((listener) => listener.tag === tag)
      if (found === undefined) {
        const tags = addresses.map((listener) => `"${listener.tag}"`).join(', ')
        throw new RangeError(`Cannot find inbound "${tag}": the instance listens on ${tags}`)
      }
      return found
    },
    close: (graceMs = DEFAULT_CLOSE_GRACE_MS) => (closing ??= instance.stop(graceMs)),
  }
}
