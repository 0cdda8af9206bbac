import { ProtocolError } from '../errors.js'
import { contained } from '../streams/contain.js'
import { abortConnection } from '../transport/tcp.js'
import { countDroppedDatagram, MAX_QUEUED_DATAGRAMS_PER_TUNNEL } from '../budgets.js'
import { createHmac } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { secureRandomInt } from '../crypto/random.js'
import { ByteQueue } from '../protocol/byte-queue.js'
import { Command, Security } from '../protocol/constants.js'
import type { LegacyAuthTable } from '../protocol/legacy-auth.js'
import type { AuthIdReplayFilter, SessionHistory } from '../protocol/replay-filter.js'
import { type RefusalReason, ServerHandshake } from '../protocol/server-handshake.js'
import type { AuthIdMatch, UserDirectory } from '../protocol/user-directory.js'
import type { VmessUser } from '../protocol/user.js'
import { relay, resetStream, type RelayTimeouts } from '../streams/relay.js'
import type { Dispatcher } from '../outbound/outbound.js'
import { VmessServerStream } from '../streams/vmess-server-stream.js'
import type { PeerInfo } from '../transport/transport.js'
import type { Logger } from '../types.js'
import { formatHostPort } from '../transport/tcp.js'
import { closeGracefully } from './close.js'
import { serveMux } from './mux-server.js'
import { servePacketAddr } from './packet-addr.js'
import { isPacketAddrDomain } from '../protocol/udp-packet.js'
import { VmessUsers } from './vmess-users.js'

export { AUTH_SCAN_SHARD_USERS } from './vmess-users.js'

/** Legacy header policy: accept (V2Ray 4.34), accept and warn per connection, or refuse. */
export type LegacyHeaderPolicy = 'accept' | 'warn' | 'refuse'

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

/** Where a VMess connection stands, for the tunnels-by-phase gauge. */
export type VmessPhase = 'handshake' | 'draining' | 'connecting' | 'open' | 'closing'

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

/** One accepted or refused tunnel, for the access log. */
export interface AccessRecord {
  readonly source: string
  readonly destination: string
  readonly status: 'accepted' | 'rejected'
  readonly user: string
  readonly reason?: string
}

/** Per-server drain shape: D = 16 + 38 + B + r, r ∈ [0, R) per connection (docs/protocol.md §9). */
export function drainShape(users: readonly VmessUser[]): { base: number; spread: number } {
  const hmac = createHmac('sha256', 'tsray drain')
  for (const user of [...users].sort((a, b) => a.id.compare(b.id))) hmac.update(user.id)
  const seed = hmac.digest()
  return { base: 16 + 38 + (seed.readUInt16BE(0) % 3266), spread: 1 + (seed.readUInt8(2) % 64) }
}

/**
 * Why the inbound itself ends a handshake, beside the refusals of the header parser (RefusalReason);
 * every one goes through one reporting path: access log, rate-limited log, metric.
 */
export const INBOUND_REFUSALS = [
  'HANDSHAKE_TIMEOUT',
  'HEADER_INCOMPLETE',
  'HEADER_EOF',
  'INSECURE_ENCRYPTION',
  'AUTH_SCAN_OVERLOAD',
  'CHUNK_AUTH_FAILED',
  'CHUNK_TOO_LONG',
  'CHUNK_TRUNCATED',
] as const
type InboundRefusal = (typeof INBOUND_REFUSALS)[number]
const isInboundRefusal = (code: string): code is InboundRefusal =>
  (INBOUND_REFUSALS as readonly string[]).includes(code)

/** Refusals logged at most once per client IP per this period. */
export const REFUSAL_LOG_PERIOD_MS = 60_000
const MAX_REFUSAL_LOG_ENTRIES = 10_000
/**
 * Above this many users the AuthID scan runs in shards of this many (≈ 0.5 ms each), between other
 * work, so a flood of junk against a very large user set cannot stall the event loop.
 */
/** Most AuthID scans waiting for their turn; more are refused as unknown (silently, as any refusal). */
export const MAX_PENDING_AUTH_SCANS = 1024
/** How long one turn of the scan scheduler may run before the event loop gets a turn. */
const AUTH_SCAN_SLICE_MS = 2
/** Most client IPs whose last matching shard is remembered, to try that shard first. */
const MAX_SCAN_HINTS = 10_000
/** Legacy table HMACs computed synchronously per accepted connection; the rest continue in slices. */
const LEGACY_SYNC_BUDGET = 256
/** Legacy table HMACs per slice of the background refresh (≈ 1 ms). */
const LEGACY_SLICE_BUDGET = 384
const AUTH_LENGTH = 16

const nowSeconds = (): number => Math.floor(Date.now() / 1000)
/** What a scan refused for lack of room returns: an unknown AuthID, told apart by identity. */
const SCAN_OVERLOADED: AuthIdMatch = { status: 'unknown' }
/** A user's clock skew is logged at most once per this period. */
const CLOCK_SKEW_LOG_PERIOD_MS = 60_000

/** One AuthID being matched shard by shard. */
interface PendingScan {
  readonly authId: Buffer
  readonly now: number
  readonly ip: string
  /** Shard tried first (the client IP's last match), then the others in order. */
  readonly first: number
  next: number
  skewed: AuthIdMatch | undefined
  cancelled: boolean
  readonly done: (match: AuthIdMatch) => void
}

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
  #drain: { base: number; spread: number }
  readonly #lastRefusalLog = new Map<string, number>()
  readonly #lastSkewLog = new Map<string, number>()
  readonly #users: VmessUsers
  readonly #scanHints = new Map<string, number>()
  #scans: PendingScan[] = []
  #scanning = false
  readonly #legacyRefreshing = new WeakSet<LegacyAuthTable>()
  readonly #tunnels = new Map<VmessServerStream, Tunnel>()

  constructor(options: VmessInboundOptions) {
    this.#options = options
    this.#drain = drainShape(options.users.users)
    const legacy = options.legacyPolicy === 'refuse' ? undefined : options.legacy
    this.#users = new VmessUsers(options.users, legacy, (table) => this.#refreshLegacy(table))
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
    this.#drain = drainShape(this.#users.users)
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
    const options = this.#options
    const source = formatHostPort(peer.remoteAddress, peer.remotePort)
    const legacy = this.#users.legacy(nowSeconds())
    if (legacy !== undefined) this.#refreshLegacy(legacy)
    const queue = new ByteQueue()
    const handshake = new ServerHandshake({
      users: options.users,
      legacy,
      authIds: options.authIds,
      sessions: options.sessions,
      now: nowSeconds,
    })
    const phase = this.#track(socket)
    // Drawn per connection and counted from the first byte: a header still incomplete when it is
    // reached ends there too, so a cut-short genuine header closes where random bytes would (docs/protocol.md §9).
    const threshold = this.#drain.base + secureRandomInt(0, this.#drain.spread)
    let received = 0
    let draining = false
    let accepted = false
    let closed = false
    let inputEnded = false
    let match: AuthIdMatch | undefined
    let overloaded = false
    let scan: PendingScan | undefined
    const stop = (): void => {
      socket.off('data', onDataContained)
      socket.off('end', onEndContained)
      if (scan !== undefined) scan.cancelled = true
    }
    // Every ending an outsider can cause goes through here: no byte sent, a FIN, unread bytes discarded.
    const close = (): void => {
      closed = true
      stop()
      clearTimeout(deadline)
      phase('closing')
      closeGracefully(socket)
    }
    const deadline = setTimeout(() => {
      if (!draining) this.#refused(source, 'HANDSHAKE_TIMEOUT')
      close()
    }, options.handshakeTimeoutMs)
    const endOfInput = (): void => {
      if (!draining) {
        handshake.onEndOfInput()
        this.#refused(source, 'HEADER_EOF')
      }
      close()
    }
    const onEnd = (): void => {
      inputEnded = true
      // A client may send its whole request and FIN while its AuthID is still being matched.
      if (scan === undefined || match !== undefined) endOfInput()
    }
    const drain = (): void => {
      draining = true
      phase('draining')
      queue.drain()
      if (received >= threshold) close()
    }
    const advance = (): void => {
      if (match === undefined && this.#users.shards !== undefined && queue.length >= AUTH_LENGTH) {
        if (scan !== undefined) return
        const started = this.#startScan(
          Buffer.from(queue.peek(AUTH_LENGTH)),
          peer.remoteAddress,
          (result) => {
            match = result
            advance()
            if (accepted || closed) return
            if (inputEnded) endOfInput()
            else socket.resume()
          },
        )
        if (!('authId' in started)) {
          match = started
          overloaded = started === SCAN_OVERLOADED
        } else {
          // Hold further bytes in the socket until the scan decides.
          socket.pause()
          scan = started
          return
        }
      }
      const step = handshake.advance(queue, match === undefined ? undefined : { match })
      if (step.status === 'need-more') {
        if (received < threshold) return
        handshake.onEndOfInput()
        this.#refused(source, 'HEADER_INCOMPLETE')
        close()
        return
      }
      if (step.status === 'refused') {
        if (step.skewSeconds !== undefined) this.#options.metrics?.clockSkew?.(step.skewSeconds)
        this.#refused(source, overloaded ? 'AUTH_SCAN_OVERLOAD' : step.reason)
        if (step.reason === 'AUTH_CLOCK_SKEW') this.#logClockSkew(handshake.clockSkew)
        if (step.action === 'close') close()
        else drain()
        return
      }
      stop()
      clearTimeout(deadline)
      accepted = true
      const header = step.header
      if (options.disableInsecureEncryption && isInsecure(header.security, header.options)) {
        this.#refused(source, 'INSECURE_ENCRYPTION')
        phase('closing')
        closeGracefully(socket)
        return
      }
      if (step.kind === 'legacy' && options.legacyPolicy === 'warn') {
        options.logger.warn({ source, user: step.user.email }, 'client used the legacy (alterId) header')
      }
      socket.pause()
      // The client's EOF may have come while its AuthID was matched: the stream is told, not re-sent it.
      const stream = new VmessServerStream(socket, {
        header,
        kind: step.kind,
        buffered: queue,
        inputEnded,
      })
      // A body that fails to open (CHUNK_AUTH_FAILED, CHUNK_TOO_LONG, CHUNK_TRUNCATED) is reported like a refusal.
      stream.on('error', (error: Error) => {
        if (error instanceof ProtocolError && isInboundRefusal(error.code)) this.#refused(source, error.code)
      })
      phase('open')
      this.#tunnels.set(stream, { socket, stream, target: undefined, phase })
      socket.once('close', () => this.#tunnels.delete(stream))
      this.#serve(stream, step.user, source)
    }
    const onData = (bytes: Buffer): void => {
      received += bytes.length
      if (draining) {
        if (received >= threshold) close()
        return
      }
      queue.push(bytes)
      if (scan !== undefined && match === undefined) {
        // The AuthID scan is still running: the bytes wait, and the threshold still applies.
        if (received >= threshold) {
          this.#refused(source, 'HEADER_INCOMPLETE')
          close()
        }
        return
      }
      advance()
    }
    // A throw anywhere in the handshake (or in the tunnel set up from it) fails this connection only.
    const onFault = (error: unknown): void => {
      this.#fault(source, accepted ? 'tunnel' : 'handshake', error)
      stop()
      clearTimeout(deadline)
      abortConnection(socket)
    }
    const onDataContained = contained(onData, onFault)
    const onEndContained = contained(onEnd, onFault)
    socket.on('data', onDataContained)
    socket.on('end', onEndContained)
  }

  /** Reports a tunnel that failed because one of its handlers threw: logged once, counted. */
  #fault(source: string, stage: string, error: unknown): void {
    this.#options.metrics?.tunnelFault?.(stage)
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    this.#options.logger.warn({ source, stage, err: reason }, 'tunnel closed: a handler threw')
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

  #refused(source: string, reason: RefusalReason | InboundRefusal): void {
    this.#options.metrics?.refused(reason)
    this.#options.onAccess?.({ source, destination: '', status: 'rejected', user: '', reason })
    const ip = source.slice(0, source.lastIndexOf(':'))
    const now = Date.now()
    const last = this.#lastRefusalLog.get(ip)
    if (last !== undefined && now - last < REFUSAL_LOG_PERIOD_MS) return
    if (this.#lastRefusalLog.size >= MAX_REFUSAL_LOG_ENTRIES) this.#lastRefusalLog.clear()
    this.#lastRefusalLog.set(ip, now)
    this.#options.logger.info({ source, reason }, 'refused VMess handshake')
  }

  /** Logs a client's clock skew with its size and sign (`AUTH_CLOCK_SKEW +183 s`), once per user per minute. */
  #logClockSkew(skew: { readonly user: VmessUser; readonly seconds: number } | undefined): void {
    if (skew === undefined) return
    const key = skew.user.email !== '' ? skew.user.email : skew.user.id.toString('hex')
    const now = Date.now()
    const last = this.#lastSkewLog.get(key)
    if (last !== undefined && now - last < CLOCK_SKEW_LOG_PERIOD_MS) return
    if (this.#lastSkewLog.size >= MAX_REFUSAL_LOG_ENTRIES) this.#lastSkewLog.clear()
    this.#lastSkewLog.set(key, now)
    const text = `${skew.seconds >= 0 ? '+' : '-'}${Math.abs(skew.seconds)} s`
    this.#options.logger.warn({ user: key, skewSeconds: skew.seconds }, `AUTH_CLOCK_SKEW ${text}`)
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

  /**
   * Matches an AuthID against the shards: the client IP's last matching shard at once, the rest in
   * turns of the event loop, round-robin with other pending scans. Returns the match when the first
   * shard decided it, else the pending scan (`done` is called unless it is cancelled).
   */
  #startScan(authId: Buffer, ip: string, done: (match: AuthIdMatch) => void): AuthIdMatch | PendingScan {
    const shards = this.#users.shards!
    const hint = this.#scanHints.get(ip)
    const scan: PendingScan = {
      authId,
      now: nowSeconds(),
      ip,
      first: hint !== undefined && hint < shards.length ? hint : 0,
      next: 0,
      skewed: undefined,
      cancelled: false,
      done,
    }
    const result = this.#scanStep(scan)
    if (result !== undefined) return result
    // Refused as unknown, and reported once (by the caller) as AUTH_SCAN_OVERLOAD.
    if (this.#scans.length >= MAX_PENDING_AUTH_SCANS) return SCAN_OVERLOADED
    this.#scans.push(scan)
    if (!this.#scanning) {
      this.#scanning = true
      setImmediate(() => this.#runScans())
    }
    return scan
  }

  /** Tries the scan's next shard; the match once decided, undefined while shards remain. */
  #scanStep(scan: PendingScan): AuthIdMatch | undefined {
    const shards = this.#users.shards!
    const k = scan.next++
    const index = k === 0 ? scan.first : k - 1 < scan.first ? k - 1 : k
    const result = shards[index]!.matchAuthId(scan.authId, scan.now)
    if (result.status === 'found') {
      if (this.#scanHints.size >= MAX_SCAN_HINTS) this.#scanHints.clear()
      this.#scanHints.set(scan.ip, index)
      return result
    }
    if (result.status === 'clock-skew') scan.skewed ??= result
    if (scan.next < shards.length) return undefined
    return scan.skewed ?? { status: 'unknown' }
  }

  #runScans(): void {
    const until = performance.now() + AUTH_SCAN_SLICE_MS
    while (this.#scans.length > 0 && performance.now() < until) {
      const scan = this.#scans.shift()!
      if (scan.cancelled) continue
      const result = this.#scanStep(scan)
      if (result === undefined) this.#scans.push(scan)
      else scan.done(result)
    }
    if (this.#scans.length > 0) setImmediate(() => this.#runScans())
    else this.#scanning = false
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

function isInsecure(security: number, options: number): boolean {
  return security === Security.Aes128Cfb || security === Security.None || options === 0
}

/** Moves datagrams between a VMess UDP stream (one chunk each) and a packet channel. */
function serveUdp(
  stream: VmessServerStream,
  channel: import('../outbound/outbound.js').PacketChannel,
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
