import type { TsrayConfig } from '../config/schema.js'
import type { Logs } from '../observe/log.js'
import type { ReloadReport } from './reload.js'

/** Anything that listens: every inbound. */
export interface Listener {
  readonly tag: string
  readonly protocol: string
  listen(): Promise<number>
  close(graceMs: number): Promise<void>
}

/** A bound listener. */
export interface BoundListener {
  readonly tag: string
  readonly protocol: string
  readonly port: number
}

/** A built config: its listeners and logs. `start` binds them all, `stop` closes them. */
export class Instance {
  readonly #listeners: readonly Listener[]
  readonly logs: Logs
  #started: Listener[] = []

  readonly #reload: ((next: TsrayConfig) => ReloadReport) | undefined

  constructor(options: {
    listeners: readonly Listener[]
    logs: Logs
    reload?: (next: TsrayConfig) => ReloadReport
  }) {
    this.#listeners = options.listeners
    this.logs = options.logs
    this.#reload = options.reload
  }

  /** Applies a re-read config to the running instance: users and routing live, the rest reported (src/runtime/reload.ts). */
  reload(next: TsrayConfig): ReloadReport {
    if (this.#reload === undefined) return { applied: [], needsRestart: ['this instance cannot reload'] }
    return this.#reload(next)
  }

  /** Binds every inbound; if one fails (port in use) the ones already bound are closed and it rejects. */
  async start(): Promise<BoundListener[]> {
    const bound: BoundListener[] = []
    try {
      for (const listener of this.#listeners) {
        const port = await listener.listen()
        this.#started.push(listener)
        bound.push({ tag: listener.tag, protocol: listener.protocol, port })
        this.logs.logger.info({ tag: listener.tag, protocol: listener.protocol, port }, 'inbound listening')
      }
    } catch (error) {
      await this.stop(0)
      throw error
    }
    return bound
  }

  /** Stops accepting, lets open tunnels run for `graceMs`, then closes them. */
  async stop(graceMs: number): Promise<void> {
    const started = this.#started
    this.#started = []
    await Promise.all(started.map((listener) => listener.close(graceMs)))
    await this.logs.close()
  }
}
