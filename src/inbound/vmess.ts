import { countDroppedDatagram, MAX_QUEUED_DATAGRAMS_PER_TUNNEL } from '../budgets.js'
import { createHmac } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { Command } from '../protocol/constants.js'
import type { LegacyAuthTable } from '../protocol/legacy-auth.js'
import type { AuthIdReplayFilter, SessionHistory } from '../protocol/replay-filter.js'
import type { UserDirectory } from '../protocol/user-directory.js'
import type { VmessUser } from '../protocol/user.js'
import { contained } from '../streams/contain.js'
import { relay, resetStream, type RelayTimeouts } from '../streams/relay.js'
import type { Dispatcher, PacketChannel } from '../outbound/outbound.js'
import type { VmessServerStream } from '../streams/vmess-server-stream.js'
import type { PeerInfo } from '../transport/transport.js'
import type { Logger } from '../types.js'
import { formatHostPort } from '../transport/tcp.js'
import { AuthIdScanner } from './auth-id-scan.js'
import { VmessUsers } from './vmess-users.js'
import { closeGracefully } from './close.js'
import { serveMux } from './mux-server.js'
import { servePacketAddr } from './packet-addr.js'
import { isPacketAddrDomain } from '../protocol/udp-packet.js'
import {
  type HandshakeSettings,
  type LegacyHeaderPolicy,
  type OpenedTunnel,
  VmessHandshakeSession,
  type VmessPhase,
} from './vmess-handshake-session.js'
import { type AccessRecord, VmessReports } from './vmess-refusals.js'

export { MAX_PENDING_AUTH_SCANS } from './auth-id-scan.js'
export { AUTH_SCAN_SHARD_USERS } from './vmess-users.js'
export type { HandshakeState, LegacyHeaderPolicy, VmessPhase } from './vmess-handshake-session.js'
export { type AccessRecord, INBOUND_REFUSALS, REFUSAL_LOG_PERIOD_MS } from './vmess-refusals.js'

/** Everything a VMess inbound needs; built once by runtime/build.ts. */
export interface VmessInboundOptions {
  readonly tag: string
  readonly users: UserDirectory
  readonly legacy: LegacyAuthTable | undefined
  readonly legacyPolicy: LegacyHeaderPolicy
  readonly authIds: AuthIdReplayFilter
  readonly sessions: SessionHistory
  readonly disableInsecureEncryption: boolean
  readonly handshakeTimeoutMs: number
  readonly timeouts: (user: VmessUser) => RelayTimeouts
  readonly dispatcher: Dispatcher
  readonly logger: Logger
  readonly onAccess?: (line: AccessRecord) => void
  /** Counters and gauges for an operator (src/observe/metrics.ts implements them with prom-client). */
  readonly metrics?: VmessInboundMetrics
}

/** What a VMess inbound reports; kept to plain calls so the inbound layer does not import observe/. */
export interface VmessInboundMetrics {
  /** A handshake was refused, or ended before it completed; `reason` as in the access log. */
  refused(reason: string): void
  /** A client's AuthID was refused for its clock: how far off it is, in seconds. */
  clockSkew?(seconds: number): void
  /** A connection entered (+1) or left (−1) `phase`. */
  phase(phase: VmessPhase, delta: 1 | -1): void
  /** Dialling a tunnel's target failed with `code` (ECONNREFUSED, ENOTFOUND, ETIMEDOUT …). */
  targetFailed(code: string): void
  /** Hands over the reader of the bytes this inbound holds in memory for its tunnels. */
  bufferedBytes(read: () => number): void
  /** A handler of one tunnel threw at `stage`; that tunnel was closed. */
  tunnelFault?(stage: string): void
}

/** Per-server drain shape: D = 16 + 38 + B + r, r ∈ [0, R) per connection (docs/protocol.md §9). */
export function drainShape(users: readonly VmessUser[]): { base: number; spread: number } {
  const hmac = createHmac('sha256', 'tsray drain')
  for (const user of [...users].sort((a, b) => a.id.compare(b.id))) hmac.update(user.id)
  const seed = hmac.digest()
  return { base: 16 + 38 + (seed.readUInt16BE(0) % 3266), spread: 1 + (seed.readUInt8(2) % 64) }
}

/** Legacy table HMACs computed synchronously per accepted connection; the rest continue in slices. */
const LEGACY_SYNC_BUDGET = 256
/** Legacy table HMACs per slice of the background refresh (≈ 1 ms). */
const LEGACY_SLICE_BUDGET = 384

const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/** An accepted connection whose header opened: its socket, plaintext stream and (for TCP) target. */
interface Tunnel {
  readonly socket: Duplex
  readonly stream: VmessServerStream
  target: Duplex | undefined
  readonly phase: (next: VmessPhase) => void
}

/**
 * The VMess server: handshake, anti-probing drain, then a tunnel per request (V2Ray's `vmess`
 * inbound). It serves byte streams from any transport (TCP, TLS, WebSocket …) through `accept`.
 */
export class VmessInbound {
  readonly #options: VmessInboundOptions
  readonly #reports: VmessReports
  readonly #settings: HandshakeSettings
  readonly #users: VmessUsers
  readonly #legacyRefreshing = new WeakSet<LegacyAuthTable>()
  readonly #tunnels = new Map<VmessServerStream, Tunnel>()

  constructor(options: VmessInboundOptions) {
    this.#options = options
    this.#reports = new VmessReports(options)
    const legacy = options.legacyPolicy === 'refuse' ? undefined : options.legacy
    const users = new VmessUsers(options.users, legacy, (table) => this.#refreshLegacy(table))
    this.#users = users
    this.#settings = {
      users,
      legacyPolicy: options.legacyPolicy,
      authIds: options.authIds,
      sessions: options.sessions,
      disableInsecureEncryption: options.disableInsecureEncryption,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      logger: options.logger,
      scanner: new AuthIdScanner(() => users.shards),
      reports: this.#reports,
      drain: drainShape(options.users.users),
      opened: (tunnel) => this.#opened(tunnel),
    }
    options.metrics?.bufferedBytes(() => this.bufferedBytes)
    // Build the legacy table now, in slices, rather than under the first connections.
    if (legacy !== undefined) this.#refreshLegacy(legacy)
  }

  /** The users, to add and remove at runtime (the API, a reload); the drain shape follows them. */
  get users(): VmessUsers {
    return this.#users
  }

  /** Recomputes the drain shape after a change of users (docs/protocol.md §9). */
  usersChanged(): void {
    this.#settings.drain = drainShape(this.#users.users)
  }

  /** Bytes held in memory for this inbound's open tunnels: socket and stream buffers, both ways. */
  get bufferedBytes(): number {
    let total = 0
    for (const tunnel of this.#tunnels.values()) {
      total += tunnel.socket.readableLength + tunnel.socket.writableLength
      total += tunnel.stream.readableLength + tunnel.stream.writableLength
      if (tunnel.target !== undefined) total += tunnel.target.readableLength + tunnel.target.writableLength
    }
    return total
  }

  /** Serves one accepted stream; the transport has put an `error` listener on it. */
  accept(socket: Duplex, peer: PeerInfo): void {
    const legacy = this.#users.legacy(nowSeconds())
    if (legacy !== undefined) this.#refreshLegacy(legacy)
    new VmessHandshakeSession(socket, peer, legacy, this.#settings, this.#track(socket))
  }

  /** Takes over a connection whose handshake session opened its header. */
  #opened({ socket, stream, user, source, phase }: OpenedTunnel): void {
    this.#tunnels.set(stream, { socket, stream, target: undefined, phase })
    socket.once('close', () => this.#tunnels.delete(stream))
    this.#serve(stream, user, source)
  }

  #fault(source: string, stage: string, error: unknown): void {
    this.#reports.fault(source, stage, error)
  }

  #serve(stream: VmessServerStream, user: VmessUser, source: string): void {
    const options = this.#options
    const header = stream.header
    const context = { inboundTag: options.tag, source, user: user.email }
    const destination = `${header.command === Command.Udp ? 'udp' : 'tcp'}:${formatHostPort(header.host, header.port)}`
    if (header.command === Command.Mux) {
      // Logged under V2Ray's internal target, then once per sub-session (docs/protocol.md §8).
      options.onAccess?.({ source, destination: 'tcp:v1.mux.cool:0', status: 'accepted', user: user.email })
      serveMux(stream, {
        dispatcher: options.dispatcher,
        context,
        timeouts: options.timeouts(user),
        logger: options.logger,
        ...(options.onAccess !== undefined ? { onAccess: options.onAccess } : {}),
        onFault: (error) => this.#fault(source, 'mux', error),
      })
      return
    }
    options.onAccess?.({ source, destination, status: 'accepted', user: user.email })
    if (header.command === Command.Udp) {
      const channel = options.dispatcher.openUdp(context)
      if (isPacketAddrDomain(header.host)) servePacketAddr(stream, channel)
      else
        serveUdp(stream, channel, { host: header.host, port: header.port }, (error) =>
          this.#fault(source, 'udp', error),
        )
      return
    }
    stream.pause()
    const tunnel = this.#tunnels.get(stream)
    tunnel?.phase('connecting')
    options.dispatcher
      .dialTcp({ network: 'tcp', host: header.host, port: header.port }, context)
      .then(
        (target: Duplex) => {
          // A target that fails mid-stream (reset) is counted like one that could not be reached.
          target.on('error', (error) => options.metrics?.targetFailed(errorCode(error)))
          if (stream.destroyed || tunnel === undefined) {
            // The client went away while the target was dialled.
            resetStream(target)
            return
          }
          tunnel.target = target
          tunnel.phase('open')
          return relay(stream, target, {
            timeouts: options.timeouts(user),
            abort: { client: () => resetStream(tunnel.socket) },
            onFault: (error) => this.#fault(source, 'relay', error),
          })
        },
        (error: unknown) => {
          const code = errorCode(error)
          options.metrics?.targetFailed(code)
          options.logger.info({ source, destination, err: code }, 'cannot reach target')
          if (tunnel === undefined) {
            stream.destroy()
            return
          }
          // Nothing was sent yet: end with a FIN and no response, never an RST.
          tunnel.phase('closing')
          closeGracefully(tunnel.socket)
        },
      )
      .catch(() => stream.destroy())
  }

  /** Counts the connection in `handshake` now, in each later phase, and out when its socket closes. */
  #track(socket: Duplex): (next: VmessPhase) => void {
    const metrics = this.#options.metrics
    if (metrics === undefined) return () => undefined
    let current: VmessPhase | undefined = 'handshake'
    metrics.phase(current, 1)
    socket.once('close', () => {
      if (current !== undefined) metrics.phase(current, -1)
      current = undefined
    })
    return (next) => {
      if (current === undefined || current === next) return
      metrics.phase(current, -1)
      metrics.phase(next, 1)
      current = next
    }
  }

  /** Keeps the legacy table current: a little at once, the rest in slices between other work. */
  #refreshLegacy(table: LegacyAuthTable): void {
    if (this.#legacyRefreshing.has(table) || table.refresh(nowSeconds(), LEGACY_SYNC_BUDGET)) return
    this.#legacyRefreshing.add(table)
    const step = (): void => {
      if (table.refresh(nowSeconds(), LEGACY_SLICE_BUDGET)) this.#legacyRefreshing.delete(table)
      else setImmediate(step)
    }
    setImmediate(step)
  }
}

/** Moves datagrams between a VMess UDP stream (one chunk each) and a packet channel. */
function serveUdp(
  stream: VmessServerStream,
  channel: PacketChannel,
  to: { host: string; port: number },
  onFault: (error: unknown) => void,
): void {
  const destination = { network: 'udp' as const, host: to.host, port: to.port }
  stream.on(
    'data',
    contained(
      (payload: Buffer) => channel.send(payload, destination),
      (error) => {
        onFault(error)
        stream.destroy()
      },
    ),
  )
  channel.onPacket((payload) => {
    if (stream.writableEnded || stream.destroyed) return
    // A client that does not read its replies gets no more than the budget queued; the rest is dropped.
    if (stream.writableLength >= MAX_QUEUED_DATAGRAMS_PER_TUNNEL) {
      countDroppedDatagram()
      return
    }
    stream.write(payload, (error) => error && stream.destroy())
  })
  channel.onClose(() => stream.destroy())
  stream.on('end', () => undefined)
  stream.on('close', () => channel.close())
}

function errorCode(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : String(error)
}
