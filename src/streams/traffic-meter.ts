import type { Duplex } from 'node:stream'

/** Counts the payload a tunnel moves: uplink (client → target) and downlink (target → client). */
export interface TrafficMeter {
  uplink(bytes: number): void
  downlink(bytes: number): void
}

const meters = new WeakMap<Duplex, TrafficMeter>()

/**
 * Attaches a meter to a target stream, for `relay` to call as bytes move; several meters on one
 * stream (user, inbound, outbound) all count. Kept beside the stream so dispatchers and outbounds
 * can meter what they return without every inbound passing counters along.
 */
export function attachTrafficMeter(target: Duplex, meter: TrafficMeter): void {
  const existing = meters.get(target)
  if (existing === undefined) {
    meters.set(target, meter)
    return
  }
  meters.set(target, {
    uplink: (bytes) => {
      existing.uplink(bytes)
      meter.uplink(bytes)
    },
    downlink: (bytes) => {
      existing.downlink(bytes)
      meter.downlink(bytes)
    },
  })
}

/** The meter attached to `target`, if any. */
export function trafficMeterOf(target: Duplex): TrafficMeter | undefined {
  return meters.get(target)
}
