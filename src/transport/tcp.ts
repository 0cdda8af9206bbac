import { connect, type Socket } from 'node:net'
import { TransportError } from '../errors.js'

/** Connects a TCP socket with Nagle off and half-close allowed; rejects on error or timeout. */
export function dialTcp(
  host: string,
  port: number,
  options: { timeoutMs: number; localAddress?: string },
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port,
      allowHalfOpen: true,
      noDelay: true,
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(
        new TransportError(
          'ETIMEDOUT',
          `Cannot connect to ${host}:${port}: no answer in ${options.timeoutMs} ms`,
        ),
      )
    }, options.timeoutMs)
    const onError = (error: NodeJS.ErrnoException): void => {
      clearTimeout(timer)
      reject(
        new TransportError(error.code ?? 'ECONNECT', `Cannot connect to ${host}:${port}: ${error.message}`, {
          cause: error,
        }),
      )
    }
    socket.once('error', onError)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.off('error', onError)
      resolve(socket)
    })
  })
}
