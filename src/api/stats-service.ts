// StatsService: V2Ray's GetStats, QueryStats and GetSysStats, and Xray's online-user calls.
import { getHeapStatistics } from 'node:v8'
import { PerformanceObserver } from 'node:perf_hooks'
import { type StatsManager, statNames } from '../stats/stats-manager.js'
import { apiErrors } from './errors.js'
import {
  type ApiDialect,
  decodeGetStatsRequest,
  decodeQueryStatsRequest,
  decodeUsersStatsRequest,
  encodeGetStatsResponse,
  encodeOnlineIpListResponse,
  encodeQueryStatsResponse,
  encodeStringList,
  encodeSysStatsResponse,
  encodeUsersStatsResponse,
  type Stat,
  type UserStat,
} from './messages.js'

/** A unary method: request bytes in, response bytes out, or an ApiCallError. */
export type ApiMethod = (request: Buffer, dialect: ApiDialect) => Buffer

/** Garbage collections seen since the API started, for GetSysStats' NumGC and PauseTotalNs. */
class GcTally {
  count = 0
  pauseNs = 0
  readonly #observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      this.count++
      this.pauseNs += Math.round(entry.duration * 1e6)
    }
  })

  constructor() {
    this.#observer.observe({ entryTypes: ['gc'] })
  }

  stop(): void {
    this.#observer.disconnect()
  }
}

const USER_PREFIX = 'user>>>'
const ONLINE_SUFFIX = '>>>online'

/** The StatsService methods over `stats`; `stop` ends the GC observer. */
export function createStatsService(stats: StatsManager): {
  methods: Record<string, ApiMethod>
  stop: () => void
} {
  const gc = new GcTally()
  const methods: Record<string, ApiMethod> = {
    GetStats(bytes, dialect) {
      const request = decodeGetStatsRequest(bytes)
      const counter = stats.findCounter(request.name)
      if (counter === undefined) throw apiErrors.statNotFound(dialect, request.name)
      const value = request.reset ? counter.set(0) : counter.value
      return encodeGetStatsResponse({ name: request.name, value })
    },
    QueryStats(bytes) {
      // The pattern is a plain substring, as V2Ray 4.34 and Xray match it; "" matches every counter.
      const request = decodeQueryStatsRequest(bytes)
      const found: Stat[] = []
      for (const [name, counter] of stats.counters()) {
        if (!name.includes(request.pattern)) continue
        found.push({ name, value: request.reset ? counter.set(0) : counter.value })
      }
      return encodeQueryStatsResponse(found)
    },
    GetSysStats() {
      const heap = getHeapStatistics()
      const memory = process.memoryUsage()
      return encodeSysStatsResponse({
        // Go's goroutines have no Node counterpart; the event loop's active handles and requests come closest.
        numGoroutine: process.getActiveResourcesInfo().length,
        numGC: gc.count,
        alloc: memory.heapUsed + memory.external,
        totalAlloc: heap.total_heap_size + memory.external,
        sys: memory.rss,
        mallocs: 0,
        frees: 0,
        liveObjects: 0,
        pauseTotalNs: gc.pauseNs,
        uptime: Math.floor((Date.now() - stats.startedAt) / 1000),
      })
    },
    GetStatsOnline(bytes, dialect) {
      const request = decodeGetStatsRequest(bytes)
      const map = stats.findOnlineMap(request.name)
      if (map === undefined) throw apiErrors.statNotFound(dialect, request.name)
      return encodeGetStatsResponse({ name: request.name, value: map.count })
    },
    GetStatsOnlineIpList(bytes, dialect) {
      const request = decodeGetStatsRequest(bytes)
      const map = stats.findOnlineMap(request.name)
      if (map === undefined) throw apiErrors.statNotFound(dialect, request.name)
      return encodeOnlineIpListResponse(request.name, map.ips())
    },
    GetAllOnlineUsers() {
      const names: string[] = []
      for (const [name, map] of stats.onlineMaps()) if (map.count > 0) names.push(name)
      return encodeStringList(names)
    },
    GetUsersStats(bytes) {
      const request = decodeUsersStatsRequest(bytes)
      const users = new Map<string, UserStat>()
      for (const [name, map] of stats.onlineMaps()) {
        if (map.count === 0) continue
        const email = name.slice(USER_PREFIX.length, name.length - ONLINE_SUFFIX.length)
        const ips = [...map.ips()].map(([ip, lastSeen]) => ({ ip, lastSeen }))
        users.set(email, { email, ips })
      }
      if (request.includeTraffic) {
        for (const [email, user] of users) {
          const up = stats.findCounter(statNames.userUplink(email))
          const down = stats.findCounter(statNames.userDownlink(email))
          users.set(email, {
            ...user,
            traffic: {
              uplink: up === undefined ? 0 : request.reset ? up.set(0) : up.value,
              downlink: down === undefined ? 0 : request.reset ? down.set(0) : down.value,
            },
          })
        }
      }
      return encodeUsersStatsResponse([...users.values()])
    },
  }
  return { methods, stop: () => gc.stop() }
}
