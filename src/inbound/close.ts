import type { Duplex } from 'node:stream'
import { canHalfClose } from '../transport/transport.js'

/** After we stop writing, how long a closing connection may linger before it is destroyed. */
export const CLOSE_LINGER_MS = 2_000

/**
 * Closes with a FIN, never an RST: stop writing, keep reading and discarding (unread bytes would
 * make the kernel send RST), and destroy once the peer closes or the linger time passes. A stream
 * that cannot half-close (WebSocket) is destroyed at once, which sends its clean close (frame 1000):
 * its end() would tell the peer nothing until the linger time ran out.
 */
export function closeGracefully(stream: Duplex): void {
  if (stream.destroyed) return
  if (!canHalfClose(stream)) {
    stream.destroy()
    return
  }
  stream.removeAllListeners('data')
  stream.on('data', () => undefined)
  stream.end()
  stream.resume()
  const timer = setTimeout(() => stream.destroy(), CLOSE_LINGER_MS)
  stream.once('close', () => clearTimeout(timer))
}
