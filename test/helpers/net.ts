import { createHash, randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { connect, createServer, type Server, type Socket } from 'node:net'

/** SHA-256 hex of the bytes. */
export const sha256Hex = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

/** A TCP echo server on 127.0.0.1 that echoes everything and half-closes after the client does. */
export async function startEchoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    socket.pipe(socket)
  })
  const port = await listen(server)
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

/** A UDP echo server on 127.0.0.1. */
export async function startUdpEchoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const socket = createSocket('udp4')
  socket.on('message', (payload, remote) => socket.send(payload, remote.port, remote.address))
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()))
  return { port: socket.address().port, close: () => new Promise((resolve) => socket.close(() => resolve())) }
}

/** Listens on 127.0.0.1:0 and resolves with the port. */
export function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      resolve(typeof address === 'object' && address !== null ? address.port : 0)
    })
  })
}

/** Connects to 127.0.0.1:port. */
export function connectTcp(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true }, () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

/** Writes `data`, half-closes, and collects everything until the peer ends. */
export function exchange(socket: Socket, data: Buffer, options?: { timeoutMs?: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`exchange timed out after ${chunks.reduce((n, c) => n + c.length, 0)} bytes`))
    }, options?.timeoutMs ?? 20_000)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.resume()
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.on('end', () => {
      clearTimeout(timer)
      socket.end()
      resolve(Buffer.concat(chunks))
    })
    socket.end(data)
  })
}

/** Random test data. */
export const randomData = (length: number): Buffer => randomBytes(length)

/** Reads exactly `length` bytes from a socket (paused mode, so bytes after them stay buffered). */
export function readExactly(socket: Socket, length: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer)
      socket.off('readable', tryRead)
      socket.off('end', onEnd)
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`read timed out waiting for ${length} bytes (${socket.readableLength} buffered)`))
    }, timeoutMs)
    const onEnd = (): void => {
      cleanup()
      reject(new Error(`connection ended before ${length} bytes arrived`))
    }
    function tryRead(): void {
      const chunk = socket.read(length) as Buffer | null
      if (chunk === null) return
      cleanup()
      if (chunk.length < length) reject(new Error(`connection ended after ${chunk.length}/${length} bytes`))
      else resolve(chunk)
    }
    socket.on('readable', tryRead)
    socket.on('end', onEnd)
    tryRead()
  })
}

/** Sends each datagram to 127.0.0.1:port from one socket and collects as many replies. */
export async function udpRoundTrip(port: number, datagrams: Buffer[]): Promise<Buffer[]> {
  const socket = createSocket('udp4')
  const got: Buffer[] = []
  try {
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()))
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`UDP: ${got.length}/${datagrams.length} datagrams came back`)),
        10_000,
      )
      socket.on('message', (payload) => {
        got.push(payload)
        if (got.length === datagrams.length) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    for (const datagram of datagrams) {
      socket.send(datagram, port, '127.0.0.1')
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await done
    // Each datagram once: wait a little for duplicates that must not come.
    await new Promise((resolve) => setTimeout(resolve, 100))
    return got
  } finally {
    socket.close()
  }
}
