import type { Duplex } from 'node:stream'
import { contained } from './contain.js'
import { trafficMeterOf } from './traffic-meter.js'

/** Idle limits of a tunnel (docs/protocol.md §9 `policy`), in milliseconds. */
export interface RelayTimeouts {
  /** Both directions open: close after this long with no bytes either way. */
  readonly connIdleMs: number
  /**
   * The downlink ended first: close after this long with no uplink bytes, counted from the first
   * uplink byte after the downlink ended (before it, `connIdleMs` applies).
   */
  readonly uplinkOnlyMs: number
  /**
   * The uplink ended first: close after this long with no downlink bytes, counted from the first
   * downlink byte after the uplink ended, so a target may take its time to start its reply.
   */
  readonly downlinkOnlyMs: number
}

/** Bytes moved by a tunnel, per direction. */
export interface RelayStats {
  uplinkBytes: number
  downlinkBytes: number
}

/** How to abort one side when the other failed; by default an RST where the stream is a TCP socket. */
export interface RelayAbort {
  readonly client?: () => void
  readonly target?: () => void
}

/** Destroys `stream` with an RST when it is a TCP socket, so the peer learns of the abort; destroy() otherwise. */
export function resetStream(stream: Duplex): void {
  const socket = stream as Duplex & { resetAndDestroy?: () => unknown }
  if (!stream.destroyed && typeof socket.resetAndDestroy === 'function') {
    try {
      socket.resetAndDestroy()
      return
    } catch {
      // Not a TCP handle (a pipe, or not connected): a plain destroy is all there is.
    }
  }
  stream.destroy()
}

/**
 * Moves bytes both ways between the client side and the target side until both directions end or
 * one side fails, with back-pressure each way (pause on a full write, resume on drain), half-close
 * passed on, and V2Ray's idle timers. A side that fails or goes away without ending cleanly aborts
 * the other (RST), so a cut-short transfer never looks complete. Resolves when both sides are closed.
 */
export function relay(
  client: Duplex,
  target: Duplex,
  options: {
    timeouts: RelayTimeouts
    onStats?: (stats: RelayStats) => void
    abort?: RelayAbort
    /** A handler of this tunnel threw: both sides are aborted, and this is told why (once). */
    onFault?: (error: unknown) => void
  },
): Promise<RelayStats> {
  const stats: RelayStats = { uplinkBytes: 0, downlinkBytes: 0 }
  const meter = trafficMeterOf(target)
  const timeouts = options.timeouts
  let lastActivity = Date.now()
  let idleLimit = timeouts.connIdleMs
  let uplinkDone = false
  let downlinkDone = false
  /** After a half-close: the limit to apply from the first byte the remaining direction carries. */
  let armOnUplink: number | undefined
  let armOnDownlink: number | undefined
  let idledOut = false
  /** Directions whose destination is full: bytes are waiting to move, so they are not idle. */
  let stalled = 0

  return new Promise((resolve) => {
    let closed = 0
    let timer: NodeJS.Timeout | undefined
    const finish = (): void => {
      closed++
      if (closed < 2) return
      clearTimeout(timer)
      options.onStats?.(stats)
      resolve(stats)
    }
    const abortClient = (): void => (options.abort?.client ?? (() => resetStream(client)))()
    const abortTarget = (): void => (options.abort?.target ?? (() => resetStream(target)))()
    const checkIdle = (): void => {
      const idle = Date.now() - lastActivity
      // A reader slower than the target is back-pressure, not idleness: the half-close limits do not
      // cut it; only connIdle without a single byte moving does.
      const limit = stalled > 0 ? Math.max(idleLimit, timeouts.connIdleMs) : idleLimit
      if (idle >= limit) {
        idledOut = true
        client.destroy()
        target.destroy()
        return
      }
      timer = setTimeout(checkIdle, Math.min(limit - idle, idleLimit))
    }
    timer = setTimeout(checkIdle, idleLimit)
    const shorten = (limit: number): void => {
      idleLimit = Math.min(idleLimit, limit)
      lastActivity = Date.now()
      clearTimeout(timer)
      timer = setTimeout(checkIdle, idleLimit)
    }

    let faulted = false
    const fault = (error: unknown): void => {
      if (faulted) return
      faulted = true
      abortClient()
      abortTarget()
      options.onFault?.(error)
    }
    const pump = (from: Duplex, to: Duplex, onBytes: (n: number) => void, onEnd: () => void): void => {
      let waiting = false
      from.on(
        'data',
        contained((chunk: Buffer) => {
          lastActivity = Date.now()
          onBytes(chunk.length)
          if (!to.write(chunk)) {
            from.pause()
            if (!waiting) stalled++
            waiting = true
          }
        }, fault),
      )
      to.on('drain', () => {
        // Bytes left our buffers: a slow reader is slow, not idle.
        lastActivity = Date.now()
        if (waiting) stalled--
        waiting = false
        from.resume()
      })
      from.on(
        'end',
        contained(() => {
          to.end()
          onEnd()
        }, fault),
      )
      // Inbounds pause sockets while the target is dialled; adding 'data' does not undo that.
      from.resume()
    }
    pump(
      client,
      target,
      (n) => {
        stats.uplinkBytes += n
        meter?.uplink(n)
        if (armOnUplink !== undefined) shorten(armOnUplink)
        armOnUplink = undefined
      },
      () => {
        uplinkDone = true
        armOnUplink = undefined
        // Both ended: the sides close once their writes flush; the timer stays as a backstop.
        if (downlinkDone) shorten(timeouts.uplinkOnlyMs)
        else armOnDownlink = timeouts.downlinkOnlyMs
      },
    )
    pump(
      target,
      client,
      (n) => {
        stats.downlinkBytes += n
        meter?.downlink(n)
        if (armOnDownlink !== undefined) shorten(armOnDownlink)
        armOnDownlink = undefined
      },
      () => {
        downlinkDone = true
        armOnDownlink = undefined
        if (uplinkDone) shorten(timeouts.downlinkOnlyMs)
        else armOnUplink = timeouts.uplinkOnlyMs
      },
    )
    client.on('error', () => {
      abortTarget()
      client.destroy()
    })
    target.on('error', () => {
      abortClient()
      target.destroy()
    })
    // A side that closes before its end was passed on went away mid-transfer: abort the other.
    client.on('close', () => {
      if (!target.writableEnded && !idledOut) abortTarget()
      finish()
    })
    target.on('close', () => {
      if (!client.writableEnded && !idledOut) abortClient()
      finish()
    })
    // A side already closed before the relay started ('close' was emitted): abort the other.
    if (client.closed) {
      abortTarget()
      finish()
    }
    if (target.closed) {
      abortClient()
      finish()
    }
  })
}
