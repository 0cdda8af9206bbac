// V2Ray's stats feature: named counters and (Xray) per-user online IP maps. Counters are registered
// on first use and never removed, so a user's counters outlive the user; reading with reset returns
// the old value and starts again from zero.

/** One named counter (V2Ray's `stats.Counter`). */
export class StatCounter {
  value = 0
  /** Everything ever counted, untouched by resets (for Prometheus, whose counters only grow). */
  total = 0

  add(bytes: number): void {
    this.value += bytes
    this.total += bytes
  }

  /** Sets the value and returns the old one (V2Ray's `Set`, used for reset). */
  set(value: number): number {
    const old = this.value
    this.value = value
    return old
  }
}

/** Addresses Xray leaves out of online maps: the machine itself. */
const LOOPBACK_ADDRESSES = new Set(['127.0.0.1', '::1', '[::1]'])

/** The IPs a user is connected from: one reference per open connection, last seen in Unix seconds (Xray's OnlineMap). */
export class OnlineMap {
  readonly #entries = new Map<string, { refs: number; lastSeen: number }>()

  /** Counts one connection from `ip`; the returned function, called once, counts it out. */
  add(ip: string, nowSeconds: number): () => void {
    if (LOOPBACK_ADDRESSES.has(ip)) return () => undefined
    const entry = this.#entries.get(ip)
    if (entry === undefined) this.#entries.set(ip, { refs: 1, lastSeen: nowSeconds })
    else {
      entry.refs++
      entry.lastSeen = nowSeconds
    }
    let released = false
    return () => {
      if (released) return
      released = true
      const current = this.#entries.get(ip)
      if (current === undefined) return
      if (--current.refs <= 0) this.#entries.delete(ip)
    }
  }

  get count(): number {
    return this.#entries.size
  }

  /** IP → last seen (Unix seconds). */
  ips(): Map<string, number> {
    return new Map([...this.#entries].map(([ip, entry]) => [ip, entry.lastSeen]))
  }
}

/** All counters and online maps of an instance, by name. */
export class StatsManager {
  readonly #counters = new Map<string, StatCounter>()
  readonly #online = new Map<string, OnlineMap>()
  /** When the stats started, for the API's uptime. */
  readonly startedAt = Date.now()

  /** The counter called `name`, registered now if it is new. */
  counter(name: string): StatCounter {
    let counter = this.#counters.get(name)
    if (counter === undefined) {
      counter = new StatCounter()
      this.#counters.set(name, counter)
    }
    return counter
  }

  /** The counter called `name`, if any traffic registered it. */
  findCounter(name: string): StatCounter | undefined {
    return this.#counters.get(name)
  }

  /** Every counter, in the order they were registered. */
  counters(): IterableIterator<[string, StatCounter]> {
    return this.#counters.entries()
  }

  /** Every counter's name and monotonic total. */
  *totals(): IterableIterator<readonly [string, number]> {
    for (const [name, counter] of this.#counters) yield [name, counter.total]
  }

  /** The online map called `name`, registered now if it is new. */
  onlineMap(name: string): OnlineMap {
    let map = this.#online.get(name)
    if (map === undefined) {
      map = new OnlineMap()
      this.#online.set(name, map)
    }
    return map
  }

  findOnlineMap(name: string): OnlineMap | undefined {
    return this.#online.get(name)
  }

  /** Every online map, by name. */
  onlineMaps(): IterableIterator<[string, OnlineMap]> {
    return this.#online.entries()
  }
}

/** V2Ray's counter names. */
export const statNames = {
  userUplink: (email: string) => `user>>>${email}>>>traffic>>>uplink`,
  userDownlink: (email: string) => `user>>>${email}>>>traffic>>>downlink`,
  userOnline: (email: string) => `user>>>${email}>>>online`,
  inboundUplink: (tag: string) => `inbound>>>${tag}>>>traffic>>>uplink`,
  inboundDownlink: (tag: string) => `inbound>>>${tag}>>>traffic>>>downlink`,
  outboundUplink: (tag: string) => `outbound>>>${tag}>>>traffic>>>uplink`,
  outboundDownlink: (tag: string) => `outbound>>>${tag}>>>traffic>>>downlink`,
} as const
