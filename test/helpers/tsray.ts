import { validateConfig } from '../../src/config/load.js'
import { createLogs } from '../../src/observe/log.js'
import { buildInstance } from '../../src/runtime/build.js'
import type { BoundListener, Instance } from '../../src/runtime/instance.js'

/** Builds and starts a tsray instance in this process from a V2Ray v4 JSON config object. */
export async function startTsray(
  config: object,
): Promise<{ instance: Instance; bound: BoundListener[]; stop: () => Promise<void> }> {
  const loaded = validateConfig(config)
  const instance = buildInstance(loaded.config, {
    logs: createLogs({ level: 'none', access: { to: 'none' }, error: { to: 'none' } }),
  })
  const bound = await instance.start()
  return { instance, bound, stop: () => instance.stop(200) }
}
