import { connectTcp, readExactly } from './net.js'

/**
 * Sends `data` through a TCP port that leads to an echo server and reads the same number of bytes back,
 * without waiting for a half-close (V2Ray's freedom does not pass one on). Closes the connection after.
 */
export async function echoThrough(port: number, data: Buffer, timeoutMs = 20_000): Promise<Buffer> {
  const socket = await connectTcp(port)
  try {
    socket.write(data)
    return await readExactly(socket, data.length, timeoutMs)
  } finally {
    socket.destroy()
  }
}
