// A running instance takes a re-read config (SIGHUP, `tsray reload`): VMess users and routing rules
// change in place, open tunnels untouched; what only a restart can change is reported, not applied.
import type { InboundConfig, TsrayConfig } from '../config/schema.js'
import type { VmessInbound } from '../inbound/vmess.js'
import type { Dispatcher } from '../outbound/outbound.js'
import { createUser, type VmessUser } from '../protocol/user.js'
import type { Destination } from '../types.js'
import type { ConnectionContext, PacketChannel } from '../outbound/outbound.js'
import type { Duplex } from 'node:stream'

/** What a reload did: each change applied, and each one that needs a restart. */
export interface ReloadReport {
  readonly applied: string[]
  readonly needsRestart: string[]
}

/** The dispatcher behind every inbound, whose routing a reload replaces; tunnels already routed keep theirs. */
export class SwitchableDispatcher implements Dispatcher {
  #current: Dispatcher

  constructor(initial: Dispatcher) {
    this.#current = initial
  }

  replace(next: Dispatcher): void {
    this.#current = next
  }

  dialTcp(destination: Destination, context: ConnectionContext): Promise<Duplex> {
    return this.#current.dialTcp(destination, context)
  }

  openUdp(context: ConnectionContext): PacketChannel {
    return this.#current.openUdp(context)
  }
}

/** JSON with Maps written as entry lists, to compare config sections. */
function stable(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner instanceof Map ? [...inner.entries()] : inner,
  )
}

/** A user's identity across configs: its email, or its id when it has none. */
function userKey(user: { email: string; uuid: string }): string {
  return user.email === '' ? `id:${user.uuid}` : `email:${user.email.toLowerCase()}`
}

/** An inbound without its users, to compare what only a restart changes. */
function withoutUsers(inbound: InboundConfig): string {
  if (inbound.protocol !== 'vmess') return stable(inbound)
  return stable({ ...inbound, settings: { ...inbound.settings, clients: [] } })
}

/** Brings a VMess inbound's users to `clients`: removed, added, or replaced where id or level changed. */
function applyUsers(
  tag: string,
  inbound: VmessInbound,
  clients: readonly { id: string; alterId: number; level: number; email?: string | undefined }[],
  report: ReloadReport,
): void {
  const wanted = new Map<string, VmessUser>()
  for (const client of clients) {
    const user = createUser({
      id: client.id,
      alterId: client.alterId,
      level: client.level,
      email: client.email ?? '',
    })
    wanted.set(userKey(user), user)
  }
  const current = new Map(inbound.users.users.map((user) => [userKey(user), user]))
  let removed = 0
  let added = 0
  for (const [key, user] of current) {
    const next = wanted.get(key)
    const same =
      next !== undefined &&
      next.uuid === user.uuid &&
      next.level === user.level &&
      next.alterIds.length === user.alterIds.length
    if (same) {
      wanted.delete(key)
      continue
    }
    inbound.users.removeUser(user)
    removed++
  }
  for (const user of wanted.values()) {
    if (inbound.users.add(user) === undefined) added++
  }
  if (removed + added > 0) {
    inbound.usersChanged()
    report.applied.push(`inbound "${tag}": ${added} user(s) added, ${removed} removed`)
  }
}

/**
 * Applies `next` to a running instance built from `current`: users of VMess inbounds and the routing
 * rules (through `replaceRouting`, which builds a router from `next`). Inbounds, outbounds, log,
 * policy, stats and API settings that differ are listed as needing a restart.
 */
export function reloadInstance(
  current: TsrayConfig,
  next: TsrayConfig,
  options: {
    vmessInbound: (tag: string) => VmessInbound | undefined
    replaceRouting: (config: TsrayConfig) => void
  },
): ReloadReport {
  const report: ReloadReport = { applied: [], needsRestart: [] }
  const tagOf = (inbound: InboundConfig, index: number): string => inbound.tag ?? `inbound-${index}`
  const before = new Map(current.inbounds.map((inbound, index) => [tagOf(inbound, index), inbound]))
  const after = new Map(next.inbounds.map((inbound, index) => [tagOf(inbound, index), inbound]))
  for (const [tag, inbound] of after) {
    const old = before.get(tag)
    if (old === undefined) {
      report.needsRestart.push(`inbound "${tag}" is new`)
      continue
    }
    if (withoutUsers(old) !== withoutUsers(inbound)) {
      report.needsRestart.push(`inbound "${tag}": its protocol, listen address, port or transport changed`)
      continue
    }
    const vmess = options.vmessInbound(tag)
    if (inbound.protocol === 'vmess' && vmess !== undefined)
      applyUsers(tag, vmess, inbound.settings.clients, report)
  }
  for (const tag of before.keys())
    if (!after.has(tag)) report.needsRestart.push(`inbound "${tag}" was removed`)
  if (stable(current.outbounds) !== stable(next.outbounds)) report.needsRestart.push('outbounds changed')
  else if (stable(current.routing) !== stable(next.routing)) {
    options.replaceRouting(next)
    report.applied.push(`routing: ${next.routing.rules.length} rule(s) now apply to new connections`)
  }
  for (const section of ['log', 'metrics', 'operate'] as const)
    if (stable(current[section]) !== stable(next[section]))
      report.needsRestart.push(`${section === 'operate' ? 'api, stats or their policy' : section} changed`)
  if (stable(current.policy) !== stable(next.policy)) report.needsRestart.push('policy changed')
  return report
}
