import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { createServer, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { connectTcp, listen, readExactly } from './net.js'

/** Opens a SOCKS5 CONNECT (no auth, or user/pass) through 127.0.0.1:port and returns the tunnel. */
export async function socksConnect(
  port: number,
  target: { host: string; port: number },
  auth?: { user: string; pass: string },
): Promise<Socket> {
  const socket = await connectTcp(port)
  socket.write(Buffer.of(5, 1, auth === undefined ? 0 : 2))
  const method = await readExactly(socket, 2)
  if (method.readUInt8(1) === 2 && auth !== undefined) {
    socket.write(
      Buffer.concat([
        Buffer.of(1, auth.user.length),
        Buffer.from(auth.user),
        Buffer.of(auth.pass.length),
        Buffer.from(auth.pass),
      ]),
    )
    const status = await readExactly(socket, 2)
    if (status.readUInt8(1) !== 0) {
      socket.destroy()
      throw new Error('SOCKS authentication refused')
    }
  } else if (method.readUInt8(1) !== 0) {
    socket.destroy()
    throw new Error(`SOCKS method ${method.readUInt8(1)} refused`)
  }
  socket.write(socksRequest(1, target))
  const reply = await readSocksReply(socket)
  if (reply.code !== 0) {
    socket.destroy()
    throw Object.assign(new Error(`SOCKS reply ${reply.code}`), { reply: reply.code })
  }
  return socket
}

function socksRequest(command: number, target: { host: string; port: number }): Buffer {
  const port = Buffer.alloc(2)
  port.writeUInt16BE(target.port)
  const v4 = /^\d+\.\d+\.\d+\.\d+$/.test(target.host)
  const address = v4
    ? Buffer.concat([Buffer.of(1), Buffer.from(target.host.split('.').map(Number))])
    : Buffer.concat([Buffer.of(3, target.host.length), Buffer.from(target.host)])
  return Buffer.concat([Buffer.of(5, command, 0), address, port])
}

/** Reads a SOCKS5 reply: its code and bound address. */
export async function readSocksReply(socket: Socket): Promise<{ code: number; host: string; port: number }> {
  const head = await readExactly(socket, 4)
  const type = head.readUInt8(3)
  const length = type === 1 ? 4 : type === 4 ? 16 : (await readExactly(socket, 1)).readUInt8(0)
  const address = await readExactly(socket, length + 2)
  const host =
    type === 1 ? Array.from(address.subarray(0, 4)).join('.') : address.subarray(0, length).toString()
  return { code: head.readUInt8(1), host, port: address.readUInt16BE(length) }
}

/** UDP ASSOCIATE through a SOCKS5 inbound: sends datagrams to `target` and collects the replies. */
export async function socksUdpRoundTrip(
  port: number,
  target: { host: string; port: number },
  datagrams: Buffer[],
): Promise<Buffer[]> {
  const control = await connectTcp(port)
  const udp = createSocket('udp4')
  try {
    control.write(Buffer.of(5, 1, 0))
    await readExactly(control, 2)
    control.write(socksRequest(3, { host: '0.0.0.0', port: 0 }))
    const reply = await readSocksReply(control)
    if (reply.code !== 0) throw new Error(`UDP ASSOCIATE refused: ${reply.code}`)
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()))
    const header = socksRequest(0, target).subarray(3)
    const got: Buffer[] = []
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`SOCKS UDP: ${got.length}/${datagrams.length} came back`)),
        10_000,
      )
      udp.on('message', (message) => {
        got.push(message.subarray(3 + 1 + 4 + 2))
        if (got.length === datagrams.length) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    for (const datagram of datagrams) {
      udp.send(Buffer.concat([Buffer.of(0, 0, 0), header, datagram]), reply.port, '127.0.0.1')
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await done
    return got
  } finally {
    udp.close()
    control.destroy()
  }
}

/** An HTTP server on 127.0.0.1 whose `/bytes/N` returns N random bytes with their SHA-256 in a header. */
export async function startContentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const server: Server = createServer((request, response) => {
    const match = /^\/bytes\/(\d+)$/.exec(request.url ?? '')
    if (match === null) {
      response.writeHead(404).end()
      return
    }
    const body = randomBytes(Number(match[1]))
    response.writeHead(200, {
      'content-type': 'application/octet-stream',
      'x-sha256': createHash('sha256').update(body).digest('hex'),
    })
    response.end(body)
  })
  const port = await listen(server)
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Runs curl and returns the body, the x-sha256 header and the body's own SHA-256. */
export function curl(
  args: string[],
): Promise<{ status: number; expectedSha: string; actualSha: string; length: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['--silent', '--show-error', '--max-time', '20', '--include', '--output', '-', ...args],
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error !== null) {
          reject(new Error(`curl failed: ${stderr.toString()}`))
          return
        }
        // With --include and a proxy tunnel there may be several heads; the body follows the last one.
        let rest = stdout
        let head = ''
        for (;;) {
          const end = rest.indexOf('\r\n\r\n')
          if (end < 0) break
          head = rest.subarray(0, end).toString('latin1')
          rest = rest.subarray(end + 4)
          if (!/^HTTP\/1\.1 200 Connection established/i.test(head)) break
        }
        const status = Number(/^HTTP\/\S+ (\d+)/.exec(head)?.[1] ?? 0)
        const expectedSha = /x-sha256: ([0-9a-f]+)/i.exec(head)?.[1] ?? ''
        resolve({
          status,
          expectedSha,
          actualSha: createHash('sha256').update(rest).digest('hex'),
          length: rest.length,
        })
      },
    )
  })
}
