import type { Socket } from 'node:net'

/** After we stop writing, how long a closing connection may linger before it is destroyed. */
export const CLOSE_LINGER_MS = 2_000

/**
 * Closes with a FIN, never an RST: stop writing, keep reading and discarding (unread bytes would
 * make the kernel send RST), and destroy once the peer closes or the linger time passes.
 */
export function closeGracefully(socket: Socket): void {
  if (socket.destroyed) return
  socket.removeAllListeners('data')
  socket.on('data', () => undefined)
  socket.end()
  socket.resume()
  const timer = setTimeout(() => socket.destroy(), CLOSE_LINGER_MS)
  socket.once('close', () => clearTimeout(timer))
}
