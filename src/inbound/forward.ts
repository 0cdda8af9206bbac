import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, isIPv6, type Server, type Socket } from 'node:net'
import type { PacketChannel } from '../outbound/outbound.js'
import type { Destination } from '../types.js'
import { admitTcp } from './admission.js'
import { closeGracefully } from './close.js'
import { dialFor, type ProxyInboundOptions, relaySocket, sourceOf } from './common.js'
import { closeServer, formatHostPort, listenServer } from '../transport/tcp.js'

/** Port-forward settings (V2Ray's `dokodemo-door` with a fixed address). */
export interface ForwardInboundOptions extends ProxyInboundOptions {
  readonly target: { host: string; port: number }
  readonly tcp: boolean
  readonly udp: boolean
  /** UDP sessions (one per client address) close after this long without traffic. */
  readonly udpIdleMs: number
}

/** Most concurrent UDP client addresses one forward inbound serves. */
export const MAX_FORWARD_UDP_SESSIONS = 4096

/** Forwards every TCP connection and UDP datagram to one fixed destination. */
export class ForwardInbound {
  readonly #options: ForwardInboundOptions
  readonly #server: Server | undefined
  readonly #connections = new Set<Socket>()
  #udp: UdpSocket | undefined
  readonly #udpSessions = new Map<string, { channel: PacketChannel; timer: NodeJS.Timeout }>()

  constructor(options: ForwardInboundOptions) {
    this.#options = options
    if (options.tcp) {
      this.#server = createServer(
        { allowHalfOpen: true, noDelay: true },
        admitTcp(options.admission, options.logger, (socket) => this.#accept(socket)),
      )
    }
  }

  /** Listens on TCP and/or UDP; resolves with the bound port. */
  async listen(): Promise<number> {
    const options = this.#options
    let port = options.port
    if (this.#server !== undefined) port = await listenServer(this.#server, options.listen, port)
    if (options.udp) port = await this.#listenUdp(port)
    return port
  }

  async close(graceMs: number): Promise<void> {
    for (const session of this.#udpSessions.values()) {
      clearTimeout(session.timer)
      session.channel.close()
    }
    this.#udpSessions.clear()
    this.#udp?.close()
    if (this.#server !== undefined) await closeServer(this.#server, this.#connections, graceMs)
  }

  #accept(socket: Socket): void {
    this.#connections.add(socket)
    socket.on('close', () => this.#connections.delete(socket))
    socket.on('error', () => socket.destroy())
    socket.pause()
    const options = this.#options
    const destination: Destination = { network: 'tcp', host: options.target.host, port: options.target.port }
    const context = { inboundTag: options.tag, source: sourceOf(socket), user: '' }
    dialFor(options, destination, context).then(
      (target) => {
        if (socket.destroyed) target.destroy()
        else void relaySocket(socket, [], target, options.timeouts)
      },
      () => closeGracefully(socket),
    )
  }

  #listenUdp(port: number): Promise<number> {
    const options = this.#options
    const udp = createSocket(isIPv6(options.listen) ? 'udp6' : 'udp4')
    this.#udp = udp
    udp.on('message', (payload, remote) => {
      const key = formatHostPort(remote.address, remote.port)
      let session = this.#udpSessions.get(key)
      if (session === undefined) {
        if (this.#udpSessions.size >= MAX_FORWARD_UDP_SESSIONS) return
        const channel = options.dispatcher.openUdp({ inboundTag: options.tag, source: key, user: '' })
        const timer = setTimeout(() => channel.close(), options.udpIdleMs)
        session = { channel, timer }
        this.#udpSessions.set(key, session)
        channel.onPacket((reply) => {
          timer.refresh()
          udp.send(reply, remote.port, remote.address)
        })
        channel.onClose(() => {
          clearTimeout(timer)
          this.#udpSessions.delete(key)
        })
        options.onAccess?.({
          source: key,
          destination: `udp:${formatHostPort(options.target.host, options.target.port)}`,
          status: 'accepted',
          user: '',
        })
      }
      session.timer.refresh()
      session.channel.send(payload, { network: 'udp', host: options.target.host, port: options.target.port })
    })
    return new Promise((resolve, reject) => {
      udp.once('error', reject)
      udp.bind(port, options.listen, () => {
        udp.off('error', reject)
        udp.on('error', () => undefined)
        resolve(udp.address().port)
      })
    })
  }
}
