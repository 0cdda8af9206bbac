import type { Duplex } from 'node:stream'
import { TransportError } from '../errors.js'
import { encodeMuxFrame, type MuxFrame, MuxStatus } from '../protocol/mux-frame.js'
import { MuxConnection, type MuxSession, MuxStream } from '../streams/mux-connection.js'
import type { Destination } from '../types.js'
import type { PacketChannel } from './outbound.js'

/** V2Ray refuses a `mux.concurrency` above this. */
export const MAX_MUX_CONCURRENCY = 1024
/** Sub-sessions one connection carries in its life; then it takes no more and closes once empty (V2Ray's MaxConnection). */
export const MAX_SESSIONS_PER_MUX_CONNECTION = 128
/** A connection without sub-sessions for this long is closed (V2Ray checks every 16 s). */
export const MUX_IDLE_CLOSE_MS = 16_000
/** A New frame waits this long for the first data to carry, as V2Ray's `writeFirstPayload` does. */
export const MUX_FIRST_DATA_WAIT_MS = 100
/** Most destinations one UDP channel opens sub-sessions to; datagrams to more are dropped. */
export const MAX_MUX_UDP_SESSIONS_PER_CHANNEL = 256
/** Largest datagram sent in a UDP sub-session: V2Ray 4.34 drops the whole connection on a bigger one (its `buf.Size`). */
export const MAX_MUX_CLIENT_UDP_PAYLOAD = 2048
/** Datagrams a UDP sub-session holds while its connection is being opened; later ones are dropped. */
export const MAX_MUX_UDP_PENDING_DATAGRAMS = 16

/** Settings of a multiplexing VMess outbound. */
export interface MuxClientOptions {
  /** Most sub-sessions open at once on one connection (V2Ray `mux.concurrency`). */
  readonly concurrency: number
  /** Opens one Mux.Cool connection: a VMess request with Cmd 3, as a plaintext Duplex. */
  readonly connect: () => Promise<Duplex>
  /** Overrides `MUX_IDLE_CLOSE_MS`. */
  readonly idleCloseMs?: number
}

/**
 * The client side of Mux.Cool (docs/protocol.md §8), as V2Ray's `mux` outbound setting: TCP streams and UDP
 * destinations become sub-sessions of shared VMess connections, at most `concurrency` at once on
 * each; when every connection is full a new one is opened, and idle ones close.
 *
 * @example
 * const mux = new MuxClient({ concurrency: 8, connect: () => outbound.open(Command.Mux, target) })
 * const stream = await mux.dialTcp({ network: 'tcp', host: 'example.com', port: 80 })
 */
export class MuxClient {
  readonly #options: MuxClientOptions
  readonly #connections = new Set<ClientConnection>()
  #closed = false

  constructor(options: MuxClientOptions) {
    const { concurrency } = options
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_MUX_CONCURRENCY) {
      throw new TransportError(
        'MUX_CONCURRENCY_INVALID',
        `Cannot multiplex: concurrency is ${concurrency}, expected 1 to ${MAX_MUX_CONCURRENCY}`,
      )
    }
    this.#options = options
  }

  /** Connections open or being opened. */
  get connectionCount(): number {
    return this.#connections.size
  }

  /** Opens a TCP sub-stream to `destination`; it names the target with its first data. */
  async dialTcp(destination: Destination): Promise<Duplex> {
    const { connection, sessionId } = this.#reserve()
    return connection.attach(
      sessionId,
      (mux) =>
        new MuxStream(mux, sessionId, {
          open: { host: destination.host, port: destination.port },
          firstDataWaitMs: MUX_FIRST_DATA_WAIT_MS,
        }),
    )
  }

  /** A datagram channel: one UDP sub-session per destination, as V2Ray 4.34 sends UDP through mux. */
  openUdp(): PacketChannel {
    return new MuxPacketChannel(this)
  }

  /** Closes every connection and drops their sub-sessions. */
  close(): void {
    this.#closed = true
    for (const connection of this.#connections) connection.close()
    this.#connections.clear()
  }

  /** A session ID on a connection with room, opening a new connection when all are full. */
  reserve(): { connection: ClientConnection; sessionId: number } {
    return this.#reserve()
  }

  #reserve(): { connection: ClientConnection; sessionId: number } {
    if (this.#closed)
      throw new TransportError('MUX_CLOSED', 'Cannot open mux sub-session: the client is closed')
    let chosen: ClientConnection | undefined
    for (const connection of this.#connections) {
      if (!connection.isFull(this.#options.concurrency)) {
        chosen = connection
        break
      }
    }
    if (chosen === undefined) {
      const connection = new ClientConnection(this.#options, () => this.#connections.delete(connection))
      this.#connections.add(connection)
      chosen = connection
    }
    return { connection: chosen, sessionId: chosen.reserve() }
  }
}

/** One VMess Mux.Cool connection of a client, from the moment it is asked for. */
class ClientConnection {
  readonly #ready: Promise<MuxConnection>
  readonly #idleCloseMs: number
  readonly #onGone: () => void
  #mux: MuxConnection | undefined
  #allocated = 0
  #reserved = 0
  #closed = false
  #idleTimer: NodeJS.Timeout | undefined

  constructor(options: MuxClientOptions, onGone: () => void) {
    this.#idleCloseMs = options.idleCloseMs ?? MUX_IDLE_CLOSE_MS
    this.#onGone = onGone
    this.#ready = options.connect().then(
      (transport) => {
        const mux = new MuxConnection(transport, {
          onSessionCount: () => this.#checkIdle(),
          // The server stops only when it is shutting down or failed: nothing more will work here.
          onInputEnd: () => this.close(),
          onProtocolError: () => this.#gone(),
          onClose: () => this.#gone(),
        })
        this.#mux = mux
        if (this.#closed) mux.end()
        return mux
      },
      (error: unknown) => {
        this.#gone()
        throw error
      },
    )
    // A failed dial is reported to every waiting attach; this keeps it from being unhandled.
    this.#ready.catch(() => undefined)
  }

  get #active(): number {
    return (this.#mux?.sessionCount ?? 0) + this.#reserved
  }

  isFull(concurrency: number): boolean {
    return this.#closed || this.#allocated >= MAX_SESSIONS_PER_MUX_CONNECTION || this.#active >= concurrency
  }

  /** Takes the next session ID (V2Ray counts 1, 2, 3 …). */
  reserve(): number {
    clearTimeout(this.#idleTimer)
    this.#allocated++
    this.#reserved++
    return this.#allocated
  }

  /** Waits for the connection and registers the session `create` makes for a reserved ID. */
  async attach<T extends MuxSession>(sessionId: number, create: (mux: MuxConnection) => T): Promise<T> {
    let mux: MuxConnection
    try {
      mux = await this.#ready
    } finally {
      this.#reserved--
    }
    try {
      if (this.#closed || mux.closed) {
        throw new TransportError('MUX_CLOSED', 'Cannot open mux sub-session: the connection closed')
      }
      const session = create(mux)
      mux.add(sessionId, session)
      return session
    } finally {
      this.#checkIdle()
    }
  }

  /** Takes no more sessions, drops the open ones and ends the VMess connection. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#idleTimer)
    this.#onGone()
    const mux = this.#mux
    if (mux === undefined) return
    mux.forEachSession((session) => session.connectionClosed())
    mux.end()
  }

  #checkIdle(): void {
    if (this.#closed || this.#active > 0) {
      clearTimeout(this.#idleTimer)
      return
    }
    if (this.#allocated >= MAX_SESSIONS_PER_MUX_CONNECTION) {
      this.close()
      return
    }
    clearTimeout(this.#idleTimer)
    this.#idleTimer = setTimeout(() => {
      if (this.#active === 0) this.close()
    }, this.#idleCloseMs)
  }

  #gone(): void {
    this.#closed = true
    clearTimeout(this.#idleTimer)
    this.#onGone()
  }
}

/** UDP through mux: one sub-session per destination, one datagram per frame (docs/protocol.md §8). */
class MuxPacketChannel implements PacketChannel {
  readonly #client: MuxClient
  readonly #sessions = new Map<string, MuxUdpClientSession>()
  #onPacket: (payload: Buffer, from: Destination) => void = () => undefined
  readonly #onClose: ((error?: Error) => void)[] = []
  #closed = false

  constructor(client: MuxClient) {
    this.#client = client
  }

  send(payload: Buffer, to: Destination): void {
    if (this.#closed || payload.length === 0 || payload.length > MAX_MUX_CLIENT_UDP_PAYLOAD) return
    const key = `${to.host}|${to.port}`
    let session = this.#sessions.get(key)
    if (session === undefined) {
      if (this.#sessions.size >= MAX_MUX_UDP_SESSIONS_PER_CHANNEL) return
      let slot: ReturnType<MuxClient['reserve']>
      try {
        slot = this.#client.reserve()
      } catch {
        return
      }
      session = new MuxUdpClientSession(slot, to, {
        onPacket: (reply, from) => this.#onPacket(reply, from),
        onGone: () => {
          if (this.#sessions.get(key) === session) this.#sessions.delete(key)
        },
      })
      this.#sessions.set(key, session)
    }
    session.send(payload)
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
    for (const session of [...this.#sessions.values()]) session.close()
    this.#sessions.clear()
    for (const handler of this.#onClose) handler()
  }
}

/** One UDP sub-session of a client: New (UDP, destination) with the first datagram, then Keep frames. */
class MuxUdpClientSession implements MuxSession {
  readonly #sessionId: number
  readonly #destination: Destination
  readonly #events: { onPacket: (payload: Buffer, from: Destination) => void; onGone: () => void }
  #mux: MuxConnection | undefined
  #pending: Buffer[] | undefined = []
  #opened = false
  #closed = false

  constructor(
    slot: { connection: ClientConnection; sessionId: number },
    destination: Destination,
    events: { onPacket: (payload: Buffer, from: Destination) => void; onGone: () => void },
  ) {
    this.#sessionId = slot.sessionId
    this.#destination = destination
    this.#events = events
    slot.connection
      .attach(slot.sessionId, (mux) => {
        this.#mux = mux
        return this
      })
      .then(
        () => this.#flush(),
        () => this.#finish(),
      )
  }

  send(payload: Buffer): void {
    if (this.#closed) return
    if (this.#pending !== undefined) {
      if (this.#pending.length < MAX_MUX_UDP_PENDING_DATAGRAMS) this.#pending.push(payload)
      return
    }
    this.#write(payload)
  }

  receive(data: Buffer, frame: MuxFrame): void {
    if (this.#closed || data.length === 0) return
    // An XUDP-speaking server names the source of each reply; V2Ray's replies come from the target.
    const from: Destination =
      frame.host !== undefined && frame.port !== undefined
        ? { network: 'udp', host: frame.host, port: frame.port }
        : this.#destination
    this.#events.onPacket(data, from)
  }

  peerEnded(): void {
    this.#finish()
  }

  connectionInputEnded(): void {
    this.#finish()
  }

  connectionClosed(): void {
    this.#finish()
  }

  /** Sends End and forgets the session. */
  close(): void {
    if (this.#closed) return
    if (this.#opened) {
      this.#mux?.sendControl(encodeMuxFrame({ sessionId: this.#sessionId, status: MuxStatus.End, option: 0 }))
    }
    this.#finish()
  }

  #flush(): void {
    const pending = this.#pending ?? []
    this.#pending = undefined
    if (this.#closed) {
      // Closed while the connection was being opened: it registered us meanwhile.
      this.#mux?.remove(this.#sessionId, this)
      return
    }
    for (const payload of pending) this.#write(payload)
  }

  #write(payload: Buffer): void {
    try {
      this.#writeFrame(payload)
    } catch {
      // A destination a frame cannot name (a domain over 255 bytes): nothing can be sent to it.
      this.#finish()
    }
  }

  #writeFrame(payload: Buffer): void {
    const mux = this.#mux
    if (mux === undefined) return
    if (!this.#opened) {
      this.#opened = true
      // The New frame must arrive, or every later datagram is for an unknown session: never drop it.
      mux.sendControl(
        encodeMuxFrame({
          sessionId: this.#sessionId,
          status: MuxStatus.New,
          option: 0,
          network: 'udp',
          host: this.#destination.host,
          port: this.#destination.port,
          data: payload,
        }),
      )
      return
    }
    mux.sendDatagram(
      encodeMuxFrame({ sessionId: this.#sessionId, status: MuxStatus.Keep, option: 0, data: payload }),
    )
  }

  #finish(): void {
    if (this.#closed) return
    this.#closed = true
    this.#pending = undefined
    this.#mux?.remove(this.#sessionId, this)
    this.#events.onGone()
  }
}
