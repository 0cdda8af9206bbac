import type { Duplex } from 'node:stream'

/** After we stop writing, how long a closing connection may linger before it is destroyed. */
export const CLOSE_LINGER_MS = 2_000

/**
 * Closes with a FIN, never an RST: stop writing, keep reading and discarding (unread bytes would
 * make the kernel send RST), and destroy once the peer closes or the linger time passes.
 */
export function closeGracefully(stream: Duplex): void {
  if (stream.destroyed) return
  stream.removeAllListeners('data')
  stream.on('data', () => undefined)
  stream.end()
  stream.resume()
  const timer = setTimeout(() => stream.destroy(), CLOSE_LINGER_MS)
  stream.once('close', () => clearTimeout(timer))
}
