import { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { secureRandom, secureRandomInt } from '../crypto/random.js'
import { createClientRequest, resolveSecurity } from '../protocol/client-request.js'
import { Command, type CommandValue, type SecurityName } from '../protocol/constants.js'
import type { VmessUser } from '../protocol/user.js'
import { VmessClientStream, type VmessStreamOptions } from '../streams/vmess-client-stream.js'
import { connectTcpEagerly } from '../transport/tcp.js'
import type { StreamDialer } from '../transport/transport.js'
import { TransportError } from '../errors.js'
import type { Destination, Logger } from '../types.js'
import { MuxClient } from './mux-client.js'
import type { ConnectionContext, Outbound, PacketChannel } from './outbound.js'

/** Most VMess UDP sessions one channel opens (one per destination) before it drops new destinations. */
export const MAX_UDP_SESSIONS_PER_CHANNEL = 256

/**
 * How long a connection waits for the first response from a server that has not answered lately. A
 * server that refuses the user (wrong id, clock more than 120 s off) or is no VMess server says nothing
 * and would hold the app until an idle timeout; a working one answers as soon as the target does, and
 * servers bound their own target connects at 10 s (tsray's CONNECT_TIMEOUT_MS), so 15 s leaves room for
 * that and a slow first answer while telling the user within a page load's patience.
 */
export const SILENT_SERVER_TIMEOUT_MS = 15_000
/**
 * A server that answered within this long accepts the user: later connections wait on their targets as
 * long as the apps do (a long poll can take minutes before its first byte).
 */
export const SERVER_VERIFIED_MS = 60_000
/** One diagnostic line of each kind per server in this long, so a failing server does not flood the log. */
export const DIAGNOSTIC_INTERVAL_MS = 10_000

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

/** One user of a server (`vnext[].users[]`). */
export interface VmessServerUser {
  readonly user: VmessUser
  readonly legacy: boolean
  readonly security: SecurityName
}

/** One server of `vnext` with its users. */
export interface VmessServerEntry {
  readonly host: string
  readonly port: number
  readonly users: readonly VmessServerUser[]
}

/**
 * V2Ray's dialling of `vnext` (proxy/vmess/outbound): up to this many attempts, each to the next server
 * in round-robin order, waiting 200 ms, 400 ms, 800 ms … between them (common/retry ExponentialBackoff(5, 200)).
 */
export const VNEXT_DIAL_ATTEMPTS = 5
export const VNEXT_RETRY_DELAY_MS = 200

/** `host:port`, IPv6 in brackets, as diagnostics name a server. */
function serverNameOf(server: { host: string; port: number }): string {
  return server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`
}

/** Resolves once a socket still connecting is connected; rejects when it fails. */
function connected(stream: Duplex): Promise<void> {
  if (!(stream instanceof Socket) || !stream.connecting) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const onConnect = (): void => {
      stream.off('error', onError)
      resolve()
    }
    const onError = (error: Error): void => {
      stream.off('connect', onConnect)
      reject(error)
    }
    stream.once('connect', onConnect)
    stream.once('error', onError)
  })
}

/** Sends every connection to a VMess server (V2Ray's `vmess` outbound). */
export class VmessOutbound implements Outbound {
  readonly tag: string
  readonly #servers: readonly VmessServerEntry[]
  #nextServer = 0
  readonly #dial: StreamDialer
  readonly #mux: MuxClient | undefined
  readonly #streamOptions: VmessStreamOptions
  readonly #logger: Logger | undefined
  readonly #silentTimeoutMs: number
  readonly #lastResponseAt = new Map<string, number>()
  readonly #lastReportAt = new Map<string, number>()

  constructor(options: {
    tag: string
    /** One server and user; `servers` for several. */
    server?: VmessServerSettings
    /** `vnext`: tried round-robin with failover, a user picked at random per connection (as V2Ray). */
    servers?: readonly VmessServerEntry[]
    connectTimeoutMs: number
    /** Largest whole chunk written over TCP: TCP_CHUNK_LENGTH by default, SING_CHUNK_LENGTH for a sing-box or mihomo server. */
    maxChunkLength?: number
    /** The transport to the server (TLS, WebSocket …); plain TCP when absent. */
    dial?: StreamDialer
    /** Mux.Cool (V2Ray `mux.enabled`): streams and UDP share Cmd 3 connections (PROTOCOL §8). */
    mux?: VmessMuxSettings
    /** Where a server that cannot be dialled or does not answer is reported. */
    logger?: Logger
    /** SILENT_SERVER_TIMEOUT_MS by default. */
    silentServerTimeoutMs?: number
  }) {
    this.tag = options.tag
    const single = options.server
    this.#servers =
      options.servers ??
      (single === undefined
        ? []
        : [
            {
              host: single.host,
              port: single.port,
              users: [{ user: single.user, legacy: single.legacy, security: single.security }],
            },
          ])
    if (this.#servers.length === 0 || this.#servers.some((server) => server.users.length === 0)) {
      throw new TypeError('Cannot create a VMess outbound: it needs a server with a user')
    }
    this.#logger = options.logger
    this.#silentTimeoutMs = options.silentServerTimeoutMs ?? SILENT_SERVER_TIMEOUT_MS
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
    const { socket, server } = await this.#connect()
    const users = server.users
    // V2Ray picks one of the server's users at random per connection (ServerSpec.PickUser).
    const account = users[users.length === 1 ? 0 : secureRandomInt(0, users.length)]
    if (account === undefined) throw new TypeError('Cannot open a VMess connection: the server has no user')
    const wire = resolveSecurity(account.security, { udp: command === Command.Udp })
    const request = createClientRequest(account.user, {
      legacy: account.legacy,
      security: wire.security,
      options: wire.options,
      command,
      host: destination.host,
      port: destination.port,
      now: Math.floor(Date.now() / 1000),
      random: secureRandom,
    })
    const stream = new VmessClientStream(socket, request, this.#streamOptions)
    // A socket still connecting that fails never reached the server; later errors (a reset the server
    // relays from the target) are the tunnel's and pass through as they are.
    let reached = !(socket instanceof Socket) || !socket.connecting
    if (!reached) socket.once('connect', () => (reached = true))
    socket.on('error', (error) => stream.destroy(reached ? error : this.#unreachable(error, server)))
    this.#watchForSilence(stream, server)
    return stream
  }

  /** A connection to the next server; with several, one that failed to connect is followed by the next. */
  async #connect(): Promise<{ socket: Duplex; server: VmessServerEntry }> {
    const servers = this.#servers
    if (servers.length === 1) {
      const server = servers[0] as VmessServerEntry
      // A socket still connecting is used at once: the header and the client's first data wait in it.
      try {
        const dialed = this.#dial(server.host, server.port)
        return { socket: dialed instanceof Promise ? await dialed : dialed, server }
      } catch (error) {
        throw this.#unreachable(error, server)
      }
    }
    let lastError: unknown
    let lastServer = servers[0] as VmessServerEntry
    let delayMs = VNEXT_RETRY_DELAY_MS
    for (let attempt = 0; attempt < VNEXT_DIAL_ATTEMPTS; attempt += 1) {
      if (attempt > 0) {
        await new Promise((resolve) => setTimeout(resolve, delayMs))
        delayMs *= 2
      }
      const server = servers[this.#nextServer % servers.length] as VmessServerEntry
      this.#nextServer = (this.#nextServer + 1) % servers.length
      let socket: Duplex | undefined
      try {
        const dialed = this.#dial(server.host, server.port)
        socket = dialed instanceof Promise ? await dialed : dialed
        await connected(socket)
        return { socket, server }
      } catch (error) {
        socket?.destroy()
        lastError = error
        lastServer = server
      }
    }
    throw this.#unreachable(lastError, lastServer)
  }

  /** Logs `message` unless a line of this kind about this server went out in the last DIAGNOSTIC_INTERVAL_MS. */
  #report(kind: string, server: string, fields: object, message: string): void {
    const now = Date.now()
    const key = `${kind} ${server}`
    if (now - (this.#lastReportAt.get(key) ?? -Infinity) < DIAGNOSTIC_INTERVAL_MS) return
    this.#lastReportAt.set(key, now)
    this.#logger?.warn({ server, ...fields }, message)
  }

  /** A failure before the server said anything is the server's (down, wrong address, TLS), not the target's. */
  #unreachable(error: unknown, server: VmessServerEntry): TransportError {
    const name = serverNameOf(server)
    const cause = error as Error & { code?: unknown }
    const code = typeof cause.code === 'string' ? cause.code : 'ERROR'
    const message = `Cannot reach VMess server ${name}: ${cause.message}`
    this.#report('unreachable', name, { reason: code }, `cannot reach VMess server ${name}`)
    return new TransportError('SERVER_UNREACHABLE', message, { cause })
  }

  /** Ends a connection to a server that has not answered lately and says nothing for #silentTimeoutMs. */
  #watchForSilence(stream: VmessClientStream, server: VmessServerEntry): void {
    const name = serverNameOf(server)
    const started = Date.now()
    let timer: NodeJS.Timeout | undefined
    const check = (): void => {
      if (stream.destroyed) return
      if (Date.now() - (this.#lastResponseAt.get(name) ?? -Infinity) < SERVER_VERIFIED_MS) {
        timer = setTimeout(check, this.#silentTimeoutMs)
        return
      }
      const seconds = Math.round((Date.now() - started) / 1000)
      const message = `no response from ${name} in ${seconds} s: wrong user id, clock off, or not a VMess server here`
      this.#report('silent', name, {}, message)
      stream.destroy(new TransportError('SERVER_SILENT', `Cannot use VMess server: ${message}`))
    }
    timer = setTimeout(check, this.#silentTimeoutMs)
    let answered = false
    stream.once('response', () => {
      answered = true
      this.#lastResponseAt.set(name, Date.now())
      clearTimeout(timer)
    })
    // Some servers close a refused connection instead of holding it (V2Ray once its drain is done).
    stream.on('error', (error: Error & { code?: unknown }) => {
      if (answered || error.code !== 'RESPONSE_TRUNCATED') return
      if (Date.now() - (this.#lastResponseAt.get(name) ?? -Infinity) < SERVER_VERIFIED_MS) return
      const seconds = Math.round((Date.now() - started) / 1000)
      this.#report(
        'silent',
        name,
        {},
        `no response from ${name} before it closed the connection (${seconds} s): wrong user id, clock off, or not a VMess server here (or it could not reach the target)`,
      )
    })
    stream.once('close', () => clearTimeout(timer))
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
    void session.then((stream) => {
      if (stream === undefined || stream.destroyed || payload.length > stream.maxDatagram) return
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
