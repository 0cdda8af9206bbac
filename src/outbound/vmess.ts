import { countDroppedDatagram, MAX_QUEUED_DATAGRAMS_PER_TUNNEL } from '../budgets.js'
import type { Duplex } from 'node:stream'
import { secureRandom } from '../crypto/random.js'
import { createClientRequest, resolveSecurity } from '../protocol/client-request.js'
import { Command, type CommandValue, type SecurityName } from '../protocol/constants.js'
import type { VmessUser } from '../protocol/user.js'
import { VmessClientStream, type VmessStreamOptions } from '../streams/vmess-client-stream.js'
import { connectTcpEagerly } from '../transport/tcp.js'
import type { StreamDialer } from '../transport/transport.js'
import type { Destination } from '../types.js'
import { MuxClient } from './mux-client.js'
import type { ConnectionContext, Outbound, PacketChannel } from './outbound.js'

/** Most VMess UDP sessions one channel opens (one per destination) before it drops new destinations. */
export const MAX_UDP_SESSIONS_PER_CHANNEL = 256

/** `mux` of a VMess outbound. */
export interface VmessMuxSettings {
  /** Most sub-sessions at once on one connection (V2Ray `mux.concurrency`, 1–1024). */
  readonly concurrency: number
  /** How long a connection without sub-sessions stays open; V2Ray's 16 s when absent. */
  readonly idleCloseMs?: number
}

// V2Ray's internal target of a Mux.Cool request; the header itself carries no address (PROTOCOL §8).
const MUX_COOL_DESTINATION: Destination = { network: 'tcp', host: 'v1.mux.cool', port: 0 }

/** The VMess server and user an outbound speaks to. */
export interface VmessServerSettings {
  readonly host: string
  readonly port: number
  readonly user: VmessUser
  /** alterId > 0 sends the legacy header, as V2Ray 4.34 does (PROTOCOL §10). */
  readonly legacy: boolean
  readonly security: SecurityName
}

/** Sends every connection to a VMess server (V2Ray's `vmess` outbound). */
export class VmessOutbound implements Outbound {
  readonly tag: string
  readonly #server: VmessServerSettings
  readonly #dial: StreamDialer
  readonly #mux: MuxClient | undefined
  readonly #streamOptions: VmessStreamOptions

  constructor(options: {
    tag: string
    server: VmessServerSettings
    connectTimeoutMs: number
    /** Largest whole chunk written over TCP: TCP_CHUNK_LENGTH by default, SING_CHUNK_LENGTH for a sing-box or mihomo server. */
    maxChunkLength?: number
    /** The transport to the server (TLS, WebSocket …); plain TCP when absent. */
    dial?: StreamDialer
    /** Mux.Cool (V2Ray `mux.enabled`): streams and UDP share Cmd 3 connections (PROTOCOL §8). */
    mux?: VmessMuxSettings
  }) {
    this.tag = options.tag
    this.#server = options.server
    this.#streamOptions =
      options.maxChunkLength === undefined ? {} : { maxChunkLength: options.maxChunkLength }
    this.#dial =
      options.dial ?? ((host, port) => connectTcpEagerly(host, port, { timeoutMs: options.connectTimeoutMs }))
    this.#mux =
      options.mux === undefined
        ? undefined
        : new MuxClient({
            concurrency: options.mux.concurrency,
            connect: () => this.open(Command.Mux, MUX_COOL_DESTINATION),
            ...(options.mux.idleCloseMs !== undefined ? { idleCloseMs: options.mux.idleCloseMs } : {}),
          })
  }

  /** Opens a VMess connection to the server carrying `command` to `destination`. */
  async open(command: CommandValue, destination: Destination): Promise<VmessClientStream> {
    const server = this.#server
    // A socket still connecting is used at once: the header and the client's first data wait in it.
    const dialed = this.#dial(server.host, server.port)
    const socket = dialed instanceof Promise ? await dialed : dialed
    const wire = resolveSecurity(server.security, { udp: command === Command.Udp })
    const request = createClientRequest(server.user, {
      legacy: server.legacy,
      security: wire.security,
      options: wire.options,
      command,
      host: destination.host,
      port: destination.port,
      now: Math.floor(Date.now() / 1000),
      random: secureRandom,
    })
    const stream = new VmessClientStream(socket, request, this.#streamOptions)
    socket.on('error', (error) => stream.destroy(error))
    return stream
  }

  dialTcp(destination: Destination, _context: ConnectionContext): Promise<Duplex> {
    if (this.#mux !== undefined) return this.#mux.dialTcp(destination)
    return this.open(Command.Tcp, destination)
  }

  openUdp(_context: ConnectionContext): PacketChannel {
    if (this.#mux !== undefined) return this.#mux.openUdp()
    return new VmessPacketChannel(this)
  }

  /** Closes the shared Mux.Cool connections, if any (plain connections belong to their tunnels). */
  close(): void {
    this.#mux?.close()
  }
}

/** UDP over VMess: one Cmd 2 connection per destination, one chunk per datagram (PROTOCOL §8). */
class VmessPacketChannel implements PacketChannel {
  readonly #outbound: VmessOutbound
  readonly #sessions = new Map<string, Promise<VmessClientStream | undefined>>()
  /** Datagrams waiting for their session's connection to open, per session key. */
  readonly #opening = new Map<string, number>()
  #onPacket: (payload: Buffer, from: Destination) => void = () => undefined
  readonly #onClose: ((error?: Error) => void)[] = []
  #closed = false

  constructor(outbound: VmessOutbound) {
    this.#outbound = outbound
  }

  send(payload: Buffer, to: Destination): void {
    if (this.#closed || payload.length === 0) return
    const key = `${to.host}|${to.port}`
    let session = this.#sessions.get(key)
    if (session === undefined) {
      if (this.#sessions.size >= MAX_UDP_SESSIONS_PER_CHANNEL) return
      session = this.#open(key, to)
      this.#sessions.set(key, session)
    }
    const waiting = this.#opening.get(key) ?? 0
    // A server that does not read (or an app that floods) gets at most the budget queued per session.
    if (waiting >= MAX_QUEUED_DATAGRAMS_PER_TUNNEL) {
      countDroppedDatagram()
      return
    }
    this.#opening.set(key, waiting + 1)
    void session.then((stream) => {
      const left = (this.#opening.get(key) ?? 1) - 1
      if (left === 0) this.#opening.delete(key)
      else this.#opening.set(key, left)
      if (stream === undefined || stream.destroyed || payload.length > stream.maxDatagram) return
      if (stream.writableLength >= MAX_QUEUED_DATAGRAMS_PER_TUNNEL) {
        countDroppedDatagram()
        return
      }
      stream.write(payload)
    })
  }

  async #open(key: string, to: Destination): Promise<VmessClientStream | undefined> {
    try {
      const stream = await this.#outbound.open(Command.Udp, { network: 'udp', host: to.host, port: to.port })
      if (this.#closed) {
        stream.destroy()
        return undefined
      }
      stream.on('data', (payload: Buffer) => this.#onPacket(payload, to))
      stream.on('error', () => undefined)
      stream.on('close', () => this.#sessions.delete(key))
      return stream
    } catch {
      this.#sessions.delete(key)
      return undefined
    }
  }

  onPacket(handler: (payload: Buffer, from: Destination) => void): void {
    this.#onPacket = handler
  }

  onClose(handler: (error?: Error) => void): void {
    this.#onClose.push(handler)
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const session of this.#sessions.values()) void session.then((stream) => stream?.destroy())
    this.#sessions.clear()
    for (const handler of this.#onClose) handler()
  }
}
