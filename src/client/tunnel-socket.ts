import type { Duplex } from 'node:stream'

/** The net.Socket methods HTTP clients call on a connection (http.Agent, undici) besides the Duplex ones. */
export interface SocketMethods {
  setTimeout(ms: number, callback?: () => void): Duplex
  setNoDelay(noDelay?: boolean): Duplex
  setKeepAlive(enable?: boolean, initialDelayMs?: number): Duplex
  ref(): Duplex
  unref(): Duplex
}

/**
 * Gives a tunnel (a Duplex of plaintext, not a net.Socket) the socket methods HTTP clients call on their
 * connections. `setTimeout` is an idle timer as net.Socket's: 'timeout' is emitted after `ms` without a
 * read or a write, and nothing else happens (the caller decides to destroy). The others have nothing to
 * do on a tunnel: Nagle is off and keep-alive is the transport's own business.
 */
export function asSocket(tunnel: Duplex): Duplex & SocketMethods {
  const socket = tunnel as Duplex & Partial<SocketMethods>
  if (typeof socket.setTimeout === 'function') return socket as Duplex & SocketMethods
  let timer: NodeJS.Timeout | undefined
  let idleMs = 0
  const touch = (): void => {
    timer?.refresh()
  }
  socket.on('data', touch)
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean
  socket.write = ((...args: unknown[]) => {
    touch()
    return write(...args)
  }) as Duplex['write']
  socket.once('close', () => clearTimeout(timer))
  const methods: SocketMethods = {
    setTimeout(ms, callback) {
      clearTimeout(timer)
      timer = undefined
      idleMs = ms
      if (callback !== undefined) socket.once('timeout', callback)
      if (idleMs > 0 && !socket.destroyed) {
        timer = setTimeout(() => socket.emit('timeout'), idleMs)
        timer.unref()
      }
      return socket
    },
    setNoDelay: () => socket,
    setKeepAlive: () => socket,
    ref: () => socket,
    unref: () => socket,
  }
  return Object.assign(socket, methods)
}
