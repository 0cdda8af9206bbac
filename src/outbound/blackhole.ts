import { Duplex } from 'node:stream'
import type { Destination } from '../types.js'
import type { ConnectionContext, Outbound, PacketChannel } from './outbound.js'

const HTTP_BLOCKED_RESPONSE = 'HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'

/** Drops everything; with `response: "http"` answers an HTTP 403 first (V2Ray's `blackhole`). */
export class BlackholeOutbound implements Outbound {
  readonly tag: string
  readonly #httpResponse: boolean

  constructor(options: { tag: string; httpResponse: boolean }) {
    this.tag = options.tag
    this.#httpResponse = options.httpResponse
  }

  dialTcp(_destination: Destination, _context: ConnectionContext): Promise<Duplex> {
    const httpResponse = this.#httpResponse
    const sink = new Duplex({
      read() {},
      write(_chunk, _encoding, callback) {
        callback()
      },
      final(callback) {
        callback()
      },
    })
    if (httpResponse) sink.push(HTTP_BLOCKED_RESPONSE)
    sink.push(null)
    return Promise.resolve(sink)
  }

  openUdp(_context: ConnectionContext): PacketChannel {
    const closers: ((error?: Error) => void)[] = []
    return {
      send: () => undefined,
      onPacket: () => undefined,
      onClose: (handler) => void closers.push(handler),
      close: () => closers.splice(0).forEach((handler) => handler()),
    }
  }
}
