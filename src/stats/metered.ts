// Where the counters are fed: a dispatcher wrapper counts per user and per inbound, an outbound
// wrapper per outbound. Both count payload (what the tunnel carries, as V2Ray's dispatcher counts a
// user's link), through the meter that `relay` reads, and datagrams as they pass.
import type { Duplex } from 'node:stream'
import type { StatsPolicy } from '../config/operate.js'
import type { ConnectionContext, Dispatcher, Outbound, PacketChannel } from '../outbound/outbound.js'
import { attachTrafficMeter, type TrafficMeter } from '../streams/traffic-meter.js'
import type { Destination } from '../types.js'
import { type StatCounter, type StatsManager, statNames } from './stats-manager.js'

/** The level of a user by email, or undefined when the name is not a VMess user's email. */
export type UserLevelOf = (email: string) => number | undefined

function meterOf(up: StatCounter | undefined, down: StatCounter | undefined): TrafficMeter | undefined {
  if (up === undefined && down === undefined) return undefined
  return {
    uplink: (bytes) => up?.add(bytes),
    downlink: (bytes) => down?.add(bytes),
  }
}

function combine(meters: (TrafficMeter | undefined)[]): TrafficMeter | undefined {
  const present = meters.filter((meter): meter is TrafficMeter => meter !== undefined)
  if (present.length <= 1) return present[0]
  return {
    uplink: (bytes) => present.forEach((meter) => meter.uplink(bytes)),
    downlink: (bytes) => present.forEach((meter) => meter.downlink(bytes)),
  }
}

/** Counts a packet channel's datagrams: sent ones uplink, received ones downlink. */
function meterChannel(channel: PacketChannel, meter: TrafficMeter): PacketChannel {
  return {
    send(payload: Buffer, to: Destination) {
      meter.uplink(payload.length)
      channel.send(payload, to)
    },
    onPacket(handler) {
      channel.onPacket((payload, from) => {
        meter.downlink(payload.length)
        handler(payload, from)
      })
    },
    onClose: (handler) => channel.onClose(handler),
    close: () => channel.close(),
  }
}

/**
 * Wraps the dispatcher of the inbound `tag`: each tunnel counts into the inbound's counters and,
 * for a VMess user with an email whose level turns them on, the user's counters and online map.
 * User counters are registered at the user's first tunnel, as V2Ray's dispatcher does.
 */
export function meterDispatcher(
  dispatcher: Dispatcher,
  options: { tag: string; stats: StatsManager; policy: StatsPolicy; levelOf: UserLevelOf },
): Dispatcher {
  const { stats, policy, tag } = options
  const inbound = meterOf(
    policy.inboundUplink ? stats.counter(statNames.inboundUplink(tag)) : undefined,
    policy.inboundDownlink ? stats.counter(statNames.inboundDownlink(tag)) : undefined,
  )
  const userMeter = (context: ConnectionContext): { meter?: TrafficMeter; release?: () => void } => {
    if (context.user === '') return {}
    const level = options.levelOf(context.user)
    if (level === undefined) return {}
    const switches = policy.levels.get(level)
    if (switches === undefined) return {}
    const meter = meterOf(
      switches.uplink ? stats.counter(statNames.userUplink(context.user)) : undefined,
      switches.downlink ? stats.counter(statNames.userDownlink(context.user)) : undefined,
    )
    if (!switches.online) return meter === undefined ? {} : { meter }
    const ip = context.source.slice(0, context.source.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1')
    const release = stats.onlineMap(statNames.userOnline(context.user)).add(ip, Math.floor(Date.now() / 1000))
    return meter === undefined ? { release } : { meter, release }
  }
  return {
    async dialTcp(destination: Destination, context: ConnectionContext): Promise<Duplex> {
      const user = userMeter(context)
      let target: Duplex
      try {
        target = await dispatcher.dialTcp(destination, context)
      } catch (error) {
        user.release?.()
        throw error
      }
      const meter = combine([user.meter, inbound])
      if (meter !== undefined) attachTrafficMeter(target, meter)
      if (user.release !== undefined) target.once('close', user.release)
      return target
    },
    openUdp(context: ConnectionContext): PacketChannel {
      const user = userMeter(context)
      const channel = dispatcher.openUdp(context)
      if (user.release !== undefined) channel.onClose(user.release)
      const meter = combine([user.meter, inbound])
      return meter === undefined ? channel : meterChannel(channel, meter)
    },
  }
}

/** Wraps an outbound so its tunnels count into `outbound>>>TAG>>>traffic>>>…` when the policy says so. */
export function meterOutbound(
  outbound: Outbound,
  options: { stats: StatsManager; policy: StatsPolicy },
): Outbound {
  const { stats, policy } = options
  const meter = meterOf(
    policy.outboundUplink ? stats.counter(statNames.outboundUplink(outbound.tag)) : undefined,
    policy.outboundDownlink ? stats.counter(statNames.outboundDownlink(outbound.tag)) : undefined,
  )
  if (meter === undefined) return outbound
  return {
    tag: outbound.tag,
    async dialTcp(destination: Destination, context: ConnectionContext): Promise<Duplex> {
      const target = await outbound.dialTcp(destination, context)
      attachTrafficMeter(target, meter)
      return target
    },
    openUdp: (context: ConnectionContext) => meterChannel(outbound.openUdp(context), meter),
  }
}
