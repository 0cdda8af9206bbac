import type { Duplex } from 'node:stream'

/** Idle limits of a tunnel (PROTOCOL §9 `policy`), in milliseconds. */
export interface RelayTimeouts {
  /** Both directions open: close after this long with no bytes either way. */
  readonly connIdleMs: number
  /** The downlink ended first: close after this long with no uplink bytes. */
  readonly uplinkOnlyMs: number
  /** The uplink ended first: close after this long with no downlink bytes. */
  readonly downlinkOnlyMs: number
}

/** Bytes moved by a tunnel, per direction. */
export interface RelayStats {
  uplinkBytes: number
  downlinkBytes: number
}

/**
 * Moves bytes both ways between the client side and the target side until both directions end or
 * one side fails, with back-pressure each way (pause on a full write, resume on drain), half-close
 * passed on, and V2Ray's idle timers. Resolves when both sides are closed.
 */
export function relay(
  client: Duplex,
  target: Duplex,
  options: { timeouts: RelayTimeouts; onStats?: (stats: RelayStats) => void },
): Promise<RelayStats> {
  const stats: RelayStats = { uplinkBytes: 0, downlinkBytes: 0 }
  let lastActivity = Date.now()
  let idleLimit = options.timeouts.connIdleMs
  let uplinkDone = false
  let downlinkDone = false

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
    const teardown = (): void => {
      client.destroy()
      target.destroy()
    }
    const checkIdle = (): void => {
      const idle = Date.now() - lastActivity
      if (idle >= idleLimit) {
        teardown()
        return
      }
      timer = setTimeout(checkIdle, idleLimit - idle)
    }
    timer = setTimeout(checkIdle, idleLimit)
    const shorten = (limit: number): void => {
      idleLimit = Math.min(idleLimit, limit)
      lastActivity = Date.now()
      clearTimeout(timer)
      timer = setTimeout(checkIdle, idleLimit)
    }

    const pump = (from: Duplex, to: Duplex, count: (n: number) => void, onEnd: () => void): void => {
      from.on('data', (chunk: Buffer) => {
        lastActivity = Date.now()
        count(chunk.length)
        if (!to.write(chunk)) from.pause()
      })
      to.on('drain', () => from.resume())
      from.on('end', () => {
        to.end()
        onEnd()
      })
      // Inbounds pause sockets while the target is dialled; adding 'data' does not undo that.
      from.resume()
    }
    pump(
      client,
      target,
      (n) => (stats.uplinkBytes += n),
      () => {
        uplinkDone = true
        // Both ended: the sides close once their writes flush; the timer stays as a backstop.
        shorten(downlinkDone ? options.timeouts.uplinkOnlyMs : options.timeouts.downlinkOnlyMs)
      },
    )
    pump(
      target,
      client,
      (n) => (stats.downlinkBytes += n),
      () => {
        downlinkDone = true
        shorten(uplinkDone ? options.timeouts.downlinkOnlyMs : options.timeouts.uplinkOnlyMs)
      },
    )
    client.on('error', teardown)
    target.on('error', teardown)
    client.on('close', () => {
      if (!target.writableEnded) target.destroy()
      finish()
    })
    target.on('close', () => {
      if (!client.writableEnded) client.destroy()
      finish()
    })
  })
}
