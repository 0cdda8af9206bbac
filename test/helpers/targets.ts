import { createHash } from 'node:crypto'
import { createServer, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { FreedomOutbound } from '../../src/outbound/freedom.js'
import type { ConnectionContext, Dispatcher, PacketChannel } from '../../src/outbound/outbound.js'
import type { Destination } from '../../src/types.js'
import { listen } from './net.js'

/** What a scripted target does with each connection. */
export type TargetBehaviour = (socket: Socket, target: ScriptedTarget) => void

/** A TCP target on 127.0.0.1 that records how each connection ended. */
export interface ScriptedTarget {
  readonly port: number
  /** Connections open now. */
  readonly open: Set<Socket>
  /** Connections that ended with a FIN from the proxy, and those reset (RST) by it. */
  readonly ended: { count: number }
  readonly reset: { count: number }
  close(): Promise<void>
}

/** Starts a target whose connections follow `behaviour`. */
export async function startTarget(behaviour: TargetBehaviour): Promise<ScriptedTarget> {
  const open = new Set<Socket>()
  const ended = { count: 0 }
  const reset = { count: 0 }
  const made: { target?: ScriptedTarget } = {}
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    open.add(socket)
    socket.on('close', () => open.delete(socket))
    socket.on('end', () => ended.count++)
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET') reset.count++
      socket.destroy()
    })
    behaviour(socket, made.target!)
  })
  const port = await listen(server)
  const target: ScriptedTarget = {
    port,
    open,
    ended,
    reset,
    close: () =>
      new Promise((resolve) => {
        for (const socket of open) socket.destroy()
        server.close(() => resolve())
      }),
  }
  made.target = target
  return target
}

/** Echoes, and half-closes after the proxy does. */
export const echo: TargetBehaviour = (socket) => socket.pipe(socket)

/** Reads everything; `replyAfterMs` after the proxy's FIN, writes `reply` and ends. */
export function replyAfterFin(replyAfterMs: number, reply: Buffer): TargetBehaviour {
  return (socket) => {
    socket.resume()
    socket.on('end', () => {
      setTimeout(() => {
        if (!socket.destroyed) socket.end(reply)
      }, replyAfterMs)
    })
  }
}

/** Resets the connection once `afterBytes` bytes came in (0: at once). */
export function resetAfter(afterBytes: number): TargetBehaviour {
  return (socket) => {
    let received = 0
    const check = (): void => {
      if (received >= afterBytes && !socket.destroyed) socket.resetAndDestroy()
    }
    socket.on('data', (bytes: Buffer) => {
      received += bytes.length
      check()
    })
    if (afterBytes === 0) setImmediate(check)
  }
}

/** Pushes `total` pseudo-random bytes as fast as the proxy takes them, then ends; `sent` gets their SHA-256. */
export function push(total: number, sent: { sha256: string }): TargetBehaviour {
  return (socket) => {
    socket.resume()
    const hash = createHash('sha256')
    const block = createHash('sha512').update('tsray push').digest()
    const piece = Buffer.alloc(64 * 1024)
    let written = 0
    const pump = (): void => {
      while (written < total) {
        for (let i = 0; i < piece.length; i += block.length) {
          block.writeUInt32BE(written + i, 0)
          block.copy(piece, i)
        }
        const slice = piece.subarray(0, Math.min(piece.length, total - written))
        hash.update(slice)
        written += slice.length
        // A copy per write: `piece` is reused.
        if (!socket.write(Buffer.from(slice))) {
          socket.once('drain', pump)
          return
        }
      }
      sent.sha256 = hash.digest('hex')
      socket.end()
    }
    pump()
  }
}

/**
 * A dispatcher that goes direct (freedom), except to the special ports below: there it waits
 * `SLOW_DIAL_MS` and then dials the real port `slowTo`, or waits and fails with ETIMEDOUT.
 */
export class TestDispatcher implements Dispatcher {
  static readonly SLOW_PORT = 1
  static readonly TIMEOUT_PORT = 2
  static readonly SLOW_DIAL_MS = 1_500
  readonly #freedom = new FreedomOutbound({ tag: 'direct', connectTimeoutMs: 5_000 })
  slowTo = 0

  async dialTcp(destination: Destination, context: ConnectionContext): Promise<Duplex> {
    if (destination.port === TestDispatcher.SLOW_PORT) {
      await new Promise((resolve) => setTimeout(resolve, TestDispatcher.SLOW_DIAL_MS))
      return this.#freedom.dialTcp({ ...destination, port: this.slowTo }, context)
    }
    if (destination.port === TestDispatcher.TIMEOUT_PORT) {
      await new Promise((resolve) => setTimeout(resolve, 300))
      throw Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })
    }
    return this.#freedom.dialTcp(destination, context)
  }

  openUdp(context: ConnectionContext): PacketChannel {
    return this.#freedom.openUdp(context)
  }
}
