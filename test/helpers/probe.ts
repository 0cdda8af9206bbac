import { connect, type Socket } from 'node:net'

/** Scale of the adversarial tests: `TSRAY_FULL=1` runs the full-scale figures of README "Adversarial tests". */
export const FULL_SCALE = process.env.TSRAY_FULL === '1'

/** Picks the CI or the full-scale value. */
export const scaled = <T>(ci: T, full: T): T => (FULL_SCALE ? full : ci)

/** A copy of `wire` with bit `bit` (0 = the first byte's lowest bit) flipped. */
export function flipped(wire: Buffer, bit: number): Buffer {
  const out = Buffer.from(wire)
  out[bit >> 3] = out.readUInt8(bit >> 3) ^ (1 << (bit & 7))
  return out
}

/** How a probe is sent: FIN after the input, or hold the connection open after it. */
export type ProbeMode = 'fin' | 'hold'

/** What the probe client does. */
export interface ProbeOptions {
  readonly mode: ProbeMode
  /** The server's handshake deadline, to recognise a close that it caused. */
  readonly deadlineMs: number
  /** Send `head` bytes at once, then `size` bytes every `intervalMs` (a trickle). */
  readonly trickle?: { readonly head: number; readonly size: number; readonly intervalMs: number }
  /** Local address to connect from (any 127.0.0.0/8 address works on Linux). */
  readonly localAddress?: string
}

/**
 * The reaction of a server to an input (docs/security.md §4.3): what it sent, who closed first, with a
 * FIN or an RST, and when: `prompt` after the client's last byte or FIN and before the deadline
 * (client EOF or the drain threshold), `deadline` at the handshake deadline, `early` before the
 * client's last action, `never`.
 */
export interface Reaction {
  readonly bytes: number
  readonly closer: 'server' | 'client' | 'none'
  readonly close: 'fin' | 'rst' | 'none'
  readonly when: 'prompt' | 'deadline' | 'early' | 'never'
  /** Bytes the client had sent when the server closed (the close point of a trickle). */
  readonly sentBeforeClose: number
  readonly afterMs: number
}

/** The comparable part of a reaction. */
export function reactionClass(reaction: Reaction): string {
  return `${reaction.bytes} bytes, ${reaction.closer} closed first, ${reaction.close}, ${reaction.when}`
}

/** What every refusal must look like: no byte, a FIN, never an RST. */
export function isSilent(reaction: Reaction): boolean {
  return reaction.bytes === 0 && reaction.close === 'fin'
}

/** Connects to 127.0.0.1:port, sends `input` as `options` say, and records the server's reaction. */
export function probe(port: number, input: Buffer, options: ProbeOptions): Promise<Reaction> {
  const trickle = options.trickle
  const trickleMs =
    trickle === undefined ? 0 : Math.ceil((input.length - trickle.head) / trickle.size) * trickle.intervalMs
  const waitMs = options.deadlineMs + Math.max(2_000, options.deadlineMs) + trickleMs
  return new Promise((resolve, reject) => {
    // Taken before the connect: the server's deadline starts at its accept, which comes after this
    // (and may come well before this process sees 'connect' when its event loop is busy).
    const start = performance.now()
    let connected = false
    const socket: Socket = connect({
      port,
      host: '127.0.0.1',
      allowHalfOpen: true,
      noDelay: true,
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    })
    let bytes = 0
    let sent = 0
    let lastActionAt = 0
    let finAt: number | undefined
    let endAt: number | undefined
    let resetAt: number | undefined
    let sentAtClose = 0
    let interval: NodeJS.Timeout | undefined
    let settled = false
    const serverClosed = (): boolean => endAt !== undefined || resetAt !== undefined
    const settle = (): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearInterval(interval)
      const closedAt = endAt ?? resetAt
      let when: Reaction['when'] = 'never'
      if (closedAt !== undefined) {
        // The deadline is recognised by time; any other close that follows the client's last action
        // is "prompt" (at its EOF, or at the drain threshold its bytes reached): on a loaded machine
        // that can take a while, so no tighter window is asserted.
        const sinceStart = closedAt - start
        if (
          sinceStart >= options.deadlineMs - 5 &&
          sinceStart <= options.deadlineMs + Math.max(1_000, options.deadlineMs)
        )
          when = 'deadline'
        else if (closedAt >= lastActionAt && sinceStart < options.deadlineMs - 5) when = 'prompt'
        else when = 'early'
      }
      resolve({
        bytes,
        closer:
          closedAt === undefined ? 'none' : finAt !== undefined && finAt <= closedAt ? 'client' : 'server',
        close: resetAt !== undefined ? 'rst' : endAt !== undefined ? 'fin' : 'none',
        when,
        sentBeforeClose: sentAtClose,
        afterMs: closedAt === undefined ? -1 : closedAt - start,
      })
    }
    const timer = setTimeout(() => {
      socket.destroy()
      settle()
    }, waitMs)
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length))
    socket.on('end', () => {
      if (!serverClosed()) {
        endAt = performance.now()
        sentAtClose = sent
      }
      clearInterval(interval)
      socket.end()
    })
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!connected) {
        clearTimeout(timer)
        reject(error)
        return
      }
      if ((error.code === 'ECONNRESET' || error.code === 'EPIPE') && resetAt === undefined) {
        resetAt = performance.now()
        sentAtClose = sent
      }
    })
    socket.on('close', settle)
    const write = (piece: Buffer): void => {
      if (piece.length === 0 || serverClosed() || socket.destroyed) return
      socket.write(piece)
      sent += piece.length
      lastActionAt = performance.now()
    }
    const finish = (): void => {
      if (options.mode === 'fin' && !serverClosed() && !socket.destroyed) {
        finAt = performance.now()
        lastActionAt = finAt
        socket.end()
      }
    }
    socket.once('connect', () => {
      connected = true
      lastActionAt = performance.now()
      if (trickle === undefined) {
        write(input)
        finish()
        return
      }
      write(input.subarray(0, trickle.head))
      let offset = trickle.head
      interval = setInterval(() => {
        if (offset >= input.length || serverClosed()) {
          clearInterval(interval)
          finish()
          return
        }
        write(input.subarray(offset, offset + trickle.size))
        offset += trickle.size
      }, trickle.intervalMs)
    })
  })
}

/** Runs `run` over `items` with at most `limit` in flight; results in input order. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  run: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await run(items[index]!, index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}
