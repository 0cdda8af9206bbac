import { connect, createServer, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { TransportError } from '../errors.js'
import type { StreamHandler, StreamServer } from './transport.js'

/**
 * A TCP socket to host:port, returned while it connects (writes wait in it until then), with Nagle off
 * and half-close allowed; it is destroyed with a TransportError when no connection is made in time.
 */
export function connectTcpEagerly(
  host: string,
  port: number,
  options: { timeoutMs: number; localAddress?: string | undefined },
): Socket {
  const local = options.localAddress !== undefined ? { localAddress: options.localAddress } : {}
  const socket = connect({ host, port, allowHalfOpen: true, noDelay: true, ...local })
  const timer = setTimeout(() => {
    socket.destroy(
      new TransportError(
        'ETIMEDOUT',
        `Cannot connect to ${host}:${port}: no answer in ${options.timeoutMs} ms`,
      ),
    )
  }, options.timeoutMs)
  const stop = (): void => clearTimeout(timer)
  socket.once('connect', stop)
  socket.once('close', stop)
  return socket
}

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

/** host:port with IPv6 in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** Listens and resolves with the bound port, or rejects with a clear message (port in use). */
export function listenServer(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const reason = error.code === 'EADDRINUSE' ? 'the port is in use' : error.message
      reject(
        new TransportError(
          error.code ?? 'ELISTEN',
          `Cannot listen on ${formatHostPort(host, port)}: ${reason}`,
          {
            cause: error,
          },
        ),
      )
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      server.on('error', () => undefined)
      const address = server.address()
      resolve(typeof address === 'object' && address !== null ? address.port : port)
    })
  })
}

/** Stops accepting and destroys remaining connections after `graceMs`. */
export function closeServer(server: Server, connections: Set<Duplex>, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      for (const socket of connections) socket.destroy()
    }, graceMs)
    server.close(() => {
      clearTimeout(timer)
      resolve()
    })
    if (connections.size === 0) clearTimeout(timer)
  })
}

/** Tracks a server's open connections so `closeServer` can end them after the grace period. */
export function trackConnection(connections: Set<Duplex>, socket: Duplex): void {
  connections.add(socket)
  socket.on('close', () => connections.delete(socket))
}

/** Plain TCP: every accepted socket is the stream. */
export function createTcpStreamServer(options: {
  listen: string
  port: number
  onStream: StreamHandler
}): StreamServer {
  const connections = new Set<Duplex>()
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    trackConnection(connections, socket)
    socket.on('error', () => socket.destroy())
    options.onStream(socket, {
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
    })
  })
  return {
    listen: () => listenServer(server, options.listen, options.port),
    close: (graceMs) => closeServer(server, connections, graceMs),
  }
}
