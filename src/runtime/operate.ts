// The operator's side of an instance: the counters of `stats`, the VMess inbounds whose users the
// API (or a reload) changes, and the API listener. build.ts hands each piece over through one
// method; nothing here runs per byte except the meters (src/stats/metered.ts).
import { createApiServer } from '../api/api-server.js'
import type { ApiVmessUser, InboundUserControl } from '../api/handler-service.js'
import type { TsrayConfig } from '../config/schema.js'
import type { VmessInbound } from '../inbound/vmess.js'
import type { Logs } from '../observe/log.js'
import type { Dispatcher, Outbound } from '../outbound/outbound.js'
import { createUser, type VmessUser } from '../protocol/user.js'
import { meterDispatcher, meterOutbound } from '../stats/metered.js'
import { StatsManager } from '../stats/stats-manager.js'
import type { Listener } from './instance.js'

function toApiUser(user: VmessUser): ApiVmessUser {
  return { email: user.email, level: user.level, id: user.uuid, alterId: user.alterIds.length }
}

/** Adds and removes the users of one VMess inbound; new handshakes see a change at once. */
export function vmessUserControl(inbound: VmessInbound): InboundUserControl {
  return {
    add(user) {
      let created: VmessUser
      try {
        created = createUser({ id: user.id, alterId: user.alterId, level: user.level, email: user.email })
      } catch (error) {
        return { invalid: error instanceof Error ? error.message : String(error) }
      }
      const refused = inbound.users.add(created)
      if (refused !== undefined) return 'exists'
      inbound.usersChanged()
      return undefined
    },
    remove(email) {
      const removed = inbound.users.remove(email)
      if (removed === 'no-email' || removed === 'not-found') return removed
      inbound.usersChanged()
      return undefined
    },
    list(email) {
      if (email === undefined) return inbound.users.users.map(toApiUser)
      const user = inbound.users.find(email)
      return user === undefined ? [] : [toApiUser(user)]
    },
  }
}

/** Counters, the inbounds the API may change, and the API listener of one instance. */
export class OperateRuntime {
  readonly stats: StatsManager | undefined
  readonly #config: TsrayConfig
  readonly #vmess = new Map<string, VmessInbound>()
  readonly #others = new Set<string>()

  constructor(config: TsrayConfig) {
    this.#config = config
    this.stats = config.operate?.stats === undefined ? undefined : new StatsManager()
    for (const tag of config.operate?.api?.inboundTags ?? []) this.#others.add(tag)
  }

  /** The outbound, counting into `outbound>>>TAG>>>…` when the policy asks. */
  outbound(outbound: Outbound): Outbound {
    const policy = this.#config.operate?.stats
    if (this.stats === undefined || policy === undefined) return outbound
    return meterOutbound(outbound, { stats: this.stats, policy })
  }

  /** The dispatcher of the inbound `tag`, counting per inbound and per user when the policy asks. */
  dispatcher(tag: string, dispatcher: Dispatcher): Dispatcher {
    const policy = this.#config.operate?.stats
    if (this.stats === undefined || policy === undefined) return dispatcher
    return meterDispatcher(dispatcher, {
      tag,
      stats: this.stats,
      policy,
      levelOf: (email) => this.#levelOf(email),
    })
  }

  /** Records an inbound: a VMess one can be changed by the API and by a reload. */
  inbound(tag: string, vmess?: VmessInbound): void {
    if (vmess === undefined) this.#others.add(tag)
    else this.#vmess.set(tag, vmess)
  }

  /** The VMess inbound tagged `tag`. */
  vmessInbound(tag: string): VmessInbound | undefined {
    return this.#vmess.get(tag)
  }

  /** The API listener, when the config has an `api` that says where to listen. */
  apiListener(logs: Logs): Listener | undefined {
    const api = this.#config.operate?.api
    if (api?.listen === undefined) return undefined
    const server = createApiServer({
      listen: api.listen,
      services: api.services,
      stats: this.stats,
      inbounds: (tag) => {
        const vmess = this.#vmess.get(tag)
        if (vmess !== undefined) return vmessUserControl(vmess)
        return this.#others.has(tag) ? 'not-vmess' : undefined
      },
      logger: logs.logger.child({ component: 'api' }),
    })
    return {
      tag: api.tag,
      protocol: 'api',
      listen: () => server.listen(),
      close: (grace) => server.close(grace),
    }
  }

  #levelOf(email: string): number | undefined {
    for (const inbound of this.#vmess.values()) {
      const user = inbound.users.find(email)
      if (user !== undefined) return user.level
    }
    return undefined
  }
}
