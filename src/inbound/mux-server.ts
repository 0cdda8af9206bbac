import type { Duplex } from 'node:stream'
import type { ProtocolError } from '../errors.js'
import type { ConnectionContext, Dispatcher, PacketChannel } from '../outbound/outbound.js'
import {
  encodeMuxFrame,
  type MuxFrame,
  MuxOption,
  MuxStatus,
  XUDP_SESSION_ID,
} from '../protocol/mux-frame.js'
import { MuxConnection, type MuxSession, MuxStream } from '../streams/mux-connection.js'
import { relay, type RelayTimeouts } from '../streams/relay.js'
import { formatHostPort } from '../transport/tcp.js'
import type { Destination, Logger } from '../types.js'

/** Most sub-sessions open at once on one Mux.Cool connection; a New frame beyond it is refused with End. */
export const MAX_MUX_SESSIONS = 128
/** Largest datagram sent back on a plain UDP sub-session: V2Ray 4.34 reads none bigger (its `buf.Size`). */
export const MAX_MUX_UDP_PAYLOAD = 2048
/** Largest datagram sent back on an XUDP session: Xray's own sender limit (8 KiB buffer less 666). */
export const MAX_XUDP_PAYLOAD = 8192 - 666

/** What serving one Mux.Cool connection needs from the VMess inbound. */
export interface MuxServerOptions {
  /** A sub-session's handler threw: the Mux connection is closed and this is told why. */
  readonly onFault?: (error: unknown) => void
  readonly dispatcher: Dispatcher
  /** The VMess connection's client and user; every sub-session is routed with it. */
  readonly context: ConnectionContext
  /** The user's policy: idle limits of each TCP sub-stream; `connIdleMs` also for UDP and the empty connection. */
  readonly timeouts: RelayTimeouts
  readonly logger: Logger
  readonly onAccess?: (record: {
    source: string
    destination: string
    status: 'accepted' | 'rejected'
    user: string
    reason?: string
  }) => void
}

/**
 * Serves the plaintext body of a VMess Mux.Cool request (Cmd 3, docs/protocol.md §8): each New frame opens a
 * TCP or UDP sub-session routed through the dispatcher, Keep frames carry its data, End closes it.
 * XUDP (Xray's UDP on session 0, or any UDP New with a GlobalID) is answered with the peer's address on
 * every datagram. Malformed frames close the connection; a connection without sub-sessions closes
 * after `connIdleMs`, and once the client has finished sending, when its last sub-session ends.
 *
 * @example
 * serveMux(stream, { dispatcher, context, timeouts, logger })
 */
export function serveMux(stream: Duplex, options: MuxServerOptions): void {
  const { context, logger } = options
  let idleTimer: NodeJS.Timeout | undefined
  let floodLogged = false
  // Dials in flight, including those of sessions a reused ID replaced: each holds a socket until it
  // settles, so they count against the session cap as much as registered sessions do.
  const dials = { pending: 0 }
  const armIdle = (): void => {
    clearTimeout(idleTimer)
    idleTimer = setTimeout(() => connection.end(), options.timeouts.connIdleMs)
  }
  const connection: MuxConnection = new MuxConnection(stream, {
    onNew: (frame) => {
      if (
        (!connection.has(frame.sessionId) && connection.sessionCount >= MAX_MUX_SESSIONS) ||
        dials.pending >= MAX_MUX_SESSIONS
      ) {
        connection.sendControl(
          encodeMuxFrame({ sessionId: frame.sessionId, status: MuxStatus.End, option: MuxOption.Error }),
        )
        if (!floodLogged) {
          floodLogged = true
          logger.info(
            { source: context.source, user: context.user, limit: MAX_MUX_SESSIONS },
            'mux sub-session refused: too many open on one connection',
          )
        }
        return
      }
      openSession(connection, frame, options, dials)
    },
    onSessionCount: (count) => {
      if (count > 0) {
        clearTimeout(idleTimer)
        return
      }
      if (connection.inputEnded) connection.end()
      else armIdle()
    },
    onInputEnd: () => {
      // The client sends no more: every sub-session's uplink ends with it (as V2Ray closes them all).
      connection.forEachSession((session) => session.connectionInputEnded())
      if (connection.sessionCount === 0) connection.end()
    },
    onProtocolError: (error: ProtocolError) => {
      logger.info(
        { source: context.source, user: context.user, reason: error.code, err: error.message },
        'closing mux connection: bad frame',
      )
    },
    onClose: () => clearTimeout(idleTimer),
    onFault: (error) => options.onFault?.(error),
  })
  armIdle()
}

function openSession(
  connection: MuxConnection,
  frame: MuxFrame,
  options: MuxServerOptions,
  dials: { pending: number },
): void {
  // The parser guarantees network, host and port on a New frame.
  const destination: Destination = {
    network: frame.network ?? 'tcp',
    host: frame.host ?? '',
    port: frame.port ?? 0,
  }
  if (destination.network === 'udp') {
    openUdpSession(connection, frame, destination, options)
    return
  }
  const { context } = options
  const label = `tcp:${formatHostPort(destination.host, destination.port)}`
  const stream = new MuxStream(connection, frame.sessionId)
  stream.on('error', () => undefined)
  connection.add(frame.sessionId, stream)
  dials.pending++
  options.dispatcher
    .dialTcp(destination, context)
    .finally(() => dials.pending--)
    .then(
      (target: Duplex) => {
        target.on('error', () => undefined)
        options.onAccess?.({
          source: context.source,
          destination: label,
          status: 'accepted',
          user: context.user,
        })
        if (stream.destroyed) {
          target.destroy()
          return
        }
        return relay(stream, target, {
          timeouts: options.timeouts,
          ...(options.onFault !== undefined ? { onFault: options.onFault } : {}),
        })
      },
      (error: unknown) => {
        const reason =
          typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'ERROR'
        options.onAccess?.({
          source: context.source,
          destination: label,
          status: 'rejected',
          user: context.user,
          reason,
        })
        options.logger.info(
          { source: context.source, destination: label, err: reason },
          'cannot reach target',
        )
        stream.destroy()
      },
    )
    .catch(() => stream.destroy())
}

function openUdpSession(
  connection: MuxConnection,
  frame: MuxFrame,
  destination: Destination,
  options: MuxServerOptions,
): void {
  const { context } = options
  options.onAccess?.({
    source: context.source,
    destination: `udp:${formatHostPort(destination.host, destination.port)}`,
    status: 'accepted',
    user: context.user,
  })
  const xudp = frame.sessionId === XUDP_SESSION_ID || frame.globalId !== undefined
  // Xray ignores an all-zero GlobalID; a real one may resume a channel, but only for the same user.
  const resumeKey =
    frame.globalId === undefined || frame.globalId.every((byte) => byte === 0)
      ? undefined
      : `${context.inboundTag}\u0000${context.user}\u0000${frame.globalId.toString('hex')}`
  const channel =
    resumeKey === undefined
      ? options.dispatcher.openUdp(context)
      : claimXudpChannel(resumeKey, connection, options)
  const session = new MuxUdpSession(connection, frame.sessionId, {
    destination,
    channel,
    xudp,
    idleMs: options.timeouts.connIdleMs,
    lastRepliesMs: options.timeouts.downlinkOnlyMs,
    ...(resumeKey !== undefined ? { resumeKey } : {}),
  })
  const entry = resumeKey === undefined ? undefined : xudpChannels.get(resumeKey)
  if (entry !== undefined) entry.owner = session
  connection.add(frame.sessionId, session)
}

/** How long the UDP channel of an XUDP session outlives its lost connection, for the client to resume it (Xray: 1 min). */
export const XUDP_RESUME_WINDOW_MS = 60_000
/** Most XUDP channels kept for resumption at once; beyond it the oldest is closed. */
export const MAX_XUDP_RESUMABLE_CHANNELS = 1024

/** An XUDP session's UDP channel by GlobalID: its source port survives reconnects (full cone, as Xray). */
interface XudpEntry {
  readonly channel: PacketChannel
  owner: MuxUdpSession | undefined
  expiry: NodeJS.Timeout | undefined
}
const xudpChannels = new Map<string, XudpEntry>()

/** The channel kept under `key` (taken over from the session holding it, if any), or a new one. */
function claimXudpChannel(key: string, connection: MuxConnection, options: MuxServerOptions): PacketChannel {
  const existing = xudpChannels.get(key)
  if (existing !== undefined) {
    clearTimeout(existing.expiry)
    existing.expiry = undefined
    const previous = existing.owner
    existing.owner = undefined
    previous?.handOver(connection)
    return existing.channel
  }
  if (xudpChannels.size >= MAX_XUDP_RESUMABLE_CHANNELS) {
    const [oldestKey, oldest] = xudpChannels.entries().next().value as [string, XudpEntry]
    xudpChannels.delete(oldestKey)
    clearTimeout(oldest.expiry)
    oldest.channel.close()
  }
  const channel = options.dispatcher.openUdp(options.context)
  xudpChannels.set(key, { channel, owner: undefined, expiry: undefined })
  channel.onClose(() => {
    const entry = xudpChannels.get(key)
    if (entry?.channel !== channel) return
    clearTimeout(entry.expiry)
    xudpChannels.delete(key)
  })
  return channel
}

/**
 * A UDP sub-session: each frame's data is one datagram, sent to the frame's own address when an XUDP
 * Keep frame names one, else to the New frame's target; replies go back as Keep frames, with their
 * source address when the client speaks XUDP (docs/protocol.md §8).
 */
class MuxUdpSession implements MuxSession {
  readonly #connection: MuxConnection
  readonly #sessionId: number
  readonly #destination: Destination
  readonly #channel: PacketChannel
  readonly #lastRepliesMs: number
  readonly #resumeKey: string | undefined
  #idleTimer: NodeJS.Timeout
  #xudp: boolean
  #closed = false

  constructor(
    connection: MuxConnection,
    sessionId: number,
    options: {
      destination: Destination
      channel: PacketChannel
      xudp: boolean
      idleMs: number
      /** After the client stops sending on the connection, replies are awaited this long. */
      lastRepliesMs: number
      /** An XUDP GlobalID's key: the channel outlives a lost connection under it. */
      resumeKey?: string
    },
  ) {
    this.#connection = connection
    this.#sessionId = sessionId
    this.#destination = options.destination
    this.#channel = options.channel
    this.#xudp = options.xudp
    this.#lastRepliesMs = options.lastRepliesMs
    this.#resumeKey = options.resumeKey
    this.#idleTimer = setTimeout(() => this.#close({ sendEnd: true, keepChannel: false }), options.idleMs)
    this.#channel.onPacket((payload, from) => this.#reply(payload, from))
    this.#channel.onClose(() => this.#close({ sendEnd: true, keepChannel: false }))
  }

  receive(data: Buffer, frame: MuxFrame): void {
    if (this.#closed || data.length === 0) return
    this.#idleTimer.refresh()
    if (frame.status === MuxStatus.Keep && frame.host !== undefined && frame.port !== undefined) {
      // A per-datagram address: the client speaks XUDP, so it reads addresses on replies too.
      this.#xudp = true
      this.#channel.send(data, { network: 'udp', host: frame.host, port: frame.port })
      return
    }
    this.#channel.send(data, this.#destination)
  }

  peerEnded(): void {
    this.#close({ sendEnd: false, keepChannel: false })
  }

  connectionInputEnded(): void {
    if (this.#closed) return
    clearTimeout(this.#idleTimer)
    this.#idleTimer = setTimeout(
      () => this.#close({ sendEnd: true, keepChannel: false }),
      this.#lastRepliesMs,
    )
  }

  connectionClosed(): void {
    if (this.#resumeKey === undefined) {
      this.#close({ sendEnd: false, keepChannel: false })
      return
    }
    // Lost, not ended: keep the channel (and its source port) for the client to resume.
    this.#close({ sendEnd: false, keepChannel: true })
    const entry = xudpChannels.get(this.#resumeKey)
    if (entry === undefined || entry.channel !== this.#channel) return
    entry.owner = undefined
    this.#channel.onPacket(() => undefined)
    entry.expiry = setTimeout(() => this.#channel.close(), XUDP_RESUME_WINDOW_MS)
  }

  /** A New frame with the same GlobalID took the channel over; End tells the old connection's client. */
  handOver(to: MuxConnection): void {
    this.#close({ sendEnd: to !== this.#connection, keepChannel: true })
  }

  #reply(payload: Buffer, from: Destination): void {
    if (this.#closed) return
    this.#idleTimer.refresh()
    if (payload.length === 0 || payload.length > (this.#xudp ? MAX_XUDP_PAYLOAD : MAX_MUX_UDP_PAYLOAD)) return
    const frame = encodeMuxFrame({
      sessionId: this.#sessionId,
      status: MuxStatus.Keep,
      option: 0,
      data: payload,
      ...(this.#xudp ? { host: from.host, port: from.port } : {}),
    })
    this.#connection.sendDatagram(frame)
  }

  #close(how: { sendEnd: boolean; keepChannel: boolean }): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#idleTimer)
    if (!how.keepChannel) this.#channel.close()
    if (how.sendEnd) {
      this.#connection.sendControl(
        encodeMuxFrame({ sessionId: this.#sessionId, status: MuxStatus.End, option: 0 }),
      )
    }
    this.#connection.remove(this.#sessionId, this)
  }
}
