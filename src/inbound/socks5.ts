import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, isIPv6, type Server, type Socket } from 'node:net'
import { ByteQueue } from '../protocol/byte-queue.js'
import {
  encodeSocksAuthReply,
  encodeSocksMethodSelection,
  encodeSocksReply,
  encodeSocksUdpDatagram,
  parseSocksGreeting,
  parseSocksPasswordAuth,
  parseSocksRequest,
  parseSocksUdpDatagram,
  SocksCommand,
  SocksMethod,
  SocksReply,
  type SocksReplyValue,
  socksReplyForError,
} from '../protocol/socks5.js'
import { admitTcp } from './admission.js'
import { closeGracefully } from './close.js'
import { dialFor, type ProxyInboundOptions, relaySocket, sourceOf } from './common.js'
import { closeServer, listenServer } from '../transport/tcp.js'

/** SOCKS5 inbound settings (V2Ray's `socks` inbound). */
export interface Socks5InboundOptions extends ProxyInboundOptions {
  /** user → password; empty means no authentication. */
  readonly accounts: ReadonlyMap<string, string>
  readonly udp: boolean
  /** Address announced in UDP ASSOCIATE replies; defaults to the TCP connection's local address. */
  readonly udpAddress?: string
}

/** The reply code for a failed dial, by the error's code (RFC 1928 §6). */
export function socksReplyForDialError(error: unknown): SocksReplyValue {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : ''
  switch (code) {
    case 'ECONNREFUSED':
      return SocksReply.ConnectionRefused
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ETIMEDOUT':
      return SocksReply.HostUnreachable
    case 'ENETUNREACH':
      return SocksReply.NetworkUnreachable
    case 'NOT_ALLOWED':
      return SocksReply.NotAllowed
    default:
      return SocksReply.GeneralFailure
  }
}

/** A SOCKS5 proxy server: CONNECT and UDP ASSOCIATE, optional user/password (RFC 1928, 1929). */
export class Socks5Inbound {
  readonly #options: Socks5InboundOptions
  readonly #server: Server
  readonly #connections = new Set<Socket>()

  constructor(options: Socks5InboundOptions) {
    this.#options = options
    this.#server = createServer(
      { allowHalfOpen: true, noDelay: true },
      admitTcp(options.admission, options.logger, (socket) => this.#accept(socket)),
    )
  }

  listen(): Promise<number> {
    return listenServer(this.#server, this.#options.listen, this.#options.port)
  }

  close(graceMs: number): Promise<void> {
    return closeServer(this.#server, this.#connections, graceMs)
  }

  #accept(socket: Socket): void {
    this.#connections.add(socket)
    socket.on('close', () => this.#connections.delete(socket))
    socket.on('error', () => socket.destroy())
    const options = this.#options
    const queue = new ByteQueue()
    let phase: 'greeting' | 'auth' | 'request' | 'done' = 'greeting'
    let user = ''
    const deadline = setTimeout(() => socket.destroy(), options.handshakeTimeoutMs)
    const fail = (reply?: Buffer): void => {
      phase = 'done'
      clearTimeout(deadline)
      if (reply !== undefined) socket.write(reply)
      closeGracefully(socket)
    }
    const onData = (bytes: Buffer): void => {
      queue.push(bytes)
      try {
        while (phase !== 'done') {
          if (phase === 'greeting') {
            const greeting = parseSocksGreeting(queue)
            if (greeting === undefined) return
            const wanted = options.accounts.size > 0 ? SocksMethod.UsernamePassword : SocksMethod.NoAuth
            if (!greeting.methods.includes(wanted))
              return fail(encodeSocksMethodSelection(SocksMethod.NoAcceptable))
            socket.write(encodeSocksMethodSelection(wanted))
            phase = wanted === SocksMethod.UsernamePassword ? 'auth' : 'request'
          } else if (phase === 'auth') {
            const auth = parseSocksPasswordAuth(queue)
            if (auth === undefined) return
            if (options.accounts.get(auth.username) !== auth.password)
              return fail(encodeSocksAuthReply(false))
            user = auth.username
            socket.write(encodeSocksAuthReply(true))
            phase = 'request'
          } else {
            const request = parseSocksRequest(queue)
            if (request === undefined) return
            phase = 'done'
            clearTimeout(deadline)
            socket.off('data', onData)
            socket.off('end', onEnd)
            socket.pause()
            const context = { inboundTag: options.tag, source: sourceOf(socket), user }
            if (request.command === SocksCommand.Connect) {
              this.#connect(
                socket,
                queue,
                { network: 'tcp', host: request.host, port: request.port },
                context,
              )
            } else if (request.command === SocksCommand.UdpAssociate && options.udp) {
              this.#associate(socket, context, request.port)
            } else {
              fail(encodeSocksReply(SocksReply.CommandNotSupported))
            }
          }
        }
      } catch (error) {
        fail(phase === 'request' ? encodeSocksReply(socksReplyForError(error)) : undefined)
      }
    }
    const onEnd = (): void => fail()
    socket.on('data', onData)
    socket.on('end', onEnd)
  }

  #connect(
    socket: Socket,
    queue: ByteQueue,
    destination: { network: 'tcp'; host: string; port: number },
    context: { inboundTag: string; source: string; user: string },
  ): void {
    dialFor(this.#options, destination, context).then(
      (target) => {
        if (socket.destroyed) {
          target.destroy()
          return
        }
        const local = { host: socket.localAddress ?? '0.0.0.0', port: socket.localPort ?? 0 }
        socket.write(encodeSocksReply(SocksReply.Succeeded, local))
        socket.resume()
        void relaySocket(socket, queue.drain(), target, this.#options.timeouts)
      },
      (error: unknown) => {
        socket.write(encodeSocksReply(socksReplyForDialError(error)))
        closeGracefully(socket)
      },
    )
  }

  /**
   * UDP ASSOCIATE: datagrams are taken only from the associating client's IP and from the port it
   * named in its request, or (port 0) the port of its first datagram; replies go to that address
   * alone (RFC 1928 §7), so another local socket can neither use the relay nor receive its replies.
   */
  #associate(
    socket: Socket,
    context: { inboundTag: string; source: string; user: string },
    requestedPort: number,
  ): void {
    const options = this.#options
    const localAddress = socket.localAddress ?? '127.0.0.1'
    const udp: UdpSocket = createSocket(isIPv6(localAddress) ? 'udp6' : 'udp4')
    const channel = options.dispatcher.openUdp(context)
    let client: { address: string; port: number } | undefined =
      requestedPort === 0 ? undefined : { address: socket.remoteAddress ?? '', port: requestedPort }
    let cleaned = false
    const cleanup = (): void => {
      if (cleaned) return
      cleaned = true
      channel.close()
      udp.close()
      socket.destroy()
    }
    udp.on('error', cleanup)
    udp.on('message', (datagram, remote) => {
      // Only the client that opened the association may use it (RFC 1928 §7).
      if (remote.address !== socket.remoteAddress) return
      if (client === undefined) client = { address: remote.address, port: remote.port }
      else if (client.port !== remote.port) return
      try {
        const parsed = parseSocksUdpDatagram(datagram)
        channel.send(parsed.payload, { network: 'udp', host: parsed.host, port: parsed.port })
      } catch {
        // Fragmented or malformed datagrams are dropped, as UDP allows.
      }
    })
    channel.onPacket((payload, from) => {
      if (client === undefined) return
      udp.send(
        encodeSocksUdpDatagram({ host: from.host, port: from.port }, payload),
        client.port,
        client.address,
      )
    })
    channel.onClose(() => socket.destroy())
    udp.bind(0, localAddress, () => {
      const bound = udp.address()
      socket.write(
        encodeSocksReply(SocksReply.Succeeded, {
          host: options.udpAddress ?? localAddress,
          port: bound.port,
        }),
      )
      options.onAccess?.({
        source: context.source,
        destination: 'udp:associate',
        status: 'accepted',
        user: context.user,
      })
      socket.resume()
      socket.on('data', () => undefined)
      socket.on('end', cleanup)
      socket.on('close', cleanup)
    })
  }
}
