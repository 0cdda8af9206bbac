import { createHmac } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { secureRandomInt } from '../crypto/random.js'
import { ByteQueue } from '../protocol/byte-queue.js'
import { Command, Security } from '../protocol/constants.js'
import type { LegacyAuthTable } from '../protocol/legacy-auth.js'
import type { AuthIdReplayFilter, SessionHistory } from '../protocol/replay-filter.js'
import { type RefusalReason, ServerHandshake } from '../protocol/server-handshake.js'
import type { UserDirectory } from '../protocol/user-directory.js'
import type { VmessUser } from '../protocol/user.js'
import { relay, type RelayTimeouts } from '../streams/relay.js'
import type { Dispatcher } from '../outbound/outbound.js'
import { VmessServerStream } from '../streams/vmess-server-stream.js'
import type { PeerInfo } from '../transport/transport.js'
import type { Logger } from '../types.js'
import { formatHostPort } from '../transport/tcp.js'
import { closeGracefully } from './close.js'

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
}

/** One accepted or refused tunnel, for the access log. */
export interface AccessRecord {
  readonly source: string
  readonly destination: string
  readonly status: 'accepted' | 'rejected'
  readonly user: string
  readonly reason?: string
}

/** Per-server drain shape: D = 16 + 38 + B + r, r ∈ [0, R) per connection (PROTOCOL §9). */
export function drainShape(users: readonly VmessUser[]): { base: number; spread: number } {
  const hmac = createHmac('sha256', 'tsray drain')
  for (const user of [...users].sort((a, b) => a.id.compare(b.id))) hmac.update(user.id)
  const seed = hmac.digest()
  return { base: 16 + 38 + (seed.readUInt16BE(0) % 3266), spread: 1 + (seed.readUInt8(2) % 64) }
}

/** Refusals logged at most once per client IP per this period. */
export const REFUSAL_LOG_PERIOD_MS = 60_000
const MAX_REFUSAL_LOG_ENTRIES = 10_000

/**
 * The VMess server: handshake, anti-probing drain, then a tunnel per request (V2Ray's `vmess`
 * inbound). It serves byte streams from any transport (TCP, TLS, WebSocket …) through `accept`.
 */
export class VmessInbound {
  readonly #options: VmessInboundOptions
  readonly #drain: { base: number; spread: number }
  readonly #lastRefusalLog = new Map<string, number>()

  constructor(options: VmessInboundOptions) {
    this.#options = options
    this.#drain = drainShape(options.users.users)
  }

  /** Serves one accepted stream; the transport has put an `error` listener on it. */
  accept(socket: Duplex, peer: PeerInfo): void {
    const options = this.#options
    const source = formatHostPort(peer.remoteAddress, peer.remotePort)
    const queue = new ByteQueue()
    const handshake = new ServerHandshake({
      users: options.users,
      legacy: options.legacyPolicy === 'refuse' ? undefined : options.legacy,
      authIds: options.authIds,
      sessions: options.sessions,
      now: () => Math.floor(Date.now() / 1000),
    })
    let received = 0
    const deadline = setTimeout(() => {
      this.#refused(source, 'HANDSHAKE_TIMEOUT')
      closeGracefully(socket)
    }, options.handshakeTimeoutMs)
    const onEnd = (): void => {
      handshake.onEndOfInput()
      clearTimeout(deadline)
      closeGracefully(socket)
    }
    const onData = (bytes: Buffer): void => {
      received += bytes.length
      queue.push(bytes)
      const step = handshake.advance(queue)
      if (step.status === 'need-more') return
      socket.off('data', onData)
      socket.off('end', onEnd)
      if (step.status === 'refused') {
        this.#refused(source, step.reason)
        if (step.action === 'close') {
          clearTimeout(deadline)
          closeGracefully(socket)
        } else {
          this.#drainThenClose(socket, received, deadline)
        }
        return
      }
      const header = step.header
      if (options.disableInsecureEncryption && isInsecure(header.security, header.options)) {
        clearTimeout(deadline)
        this.#refused(source, 'INSECURE_ENCRYPTION')
        closeGracefully(socket)
        return
      }
      clearTimeout(deadline)
      if (step.kind === 'legacy' && options.legacyPolicy === 'warn') {
        options.logger.warn({ source, user: step.user.email }, 'client used the legacy (alterId) header')
      }
      socket.pause()
      const stream = new VmessServerStream(socket, { header, kind: step.kind, buffered: queue })
      stream.on('error', () => undefined)
      this.#serve(stream, step.user, source)
    }
    socket.on('data', onData)
    socket.on('end', onEnd)
  }

  #serve(stream: VmessServerStream, user: VmessUser, source: string): void {
    const options = this.#options
    const header = stream.header
    const context = { inboundTag: options.tag, source, user: user.email }
    const destination = `${header.command === Command.Udp ? 'udp' : 'tcp'}:${formatHostPort(header.host, header.port)}`
    if (header.command === Command.Mux) {
      options.onAccess?.({
        source,
        destination: 'mux',
        status: 'rejected',
        user: user.email,
        reason: 'MUX_UNSUPPORTED',
      })
      options.logger.info({ source, user: user.email }, 'Mux.Cool (command 3) is not supported yet; closing')
      stream.destroy()
      return
    }
    options.onAccess?.({ source, destination, status: 'accepted', user: user.email })
    if (header.command === Command.Udp) {
      serveUdp(stream, options.dispatcher.openUdp(context), { host: header.host, port: header.port })
      return
    }
    stream.pause()
    options.dispatcher
      .dialTcp({ network: 'tcp', host: header.host, port: header.port }, context)
      .then(
        (target: Duplex) => {
          target.on('error', () => undefined)
          return relay(stream, target, { timeouts: options.timeouts(user) })
        },
        (error: unknown) => {
          options.logger.info({ source, destination, err: errorCode(error) }, 'cannot reach target')
          stream.destroy()
        },
      )
      .catch(() => stream.destroy())
  }

  #drainThenClose(socket: Duplex, received: number, deadline: NodeJS.Timeout): void {
    const threshold = this.#drain.base + secureRandomInt(0, this.#drain.spread)
    const done = (): void => {
      clearTimeout(deadline)
      closeGracefully(socket)
    }
    if (received >= threshold) {
      done()
      return
    }
    let total = received
    socket.on('data', (bytes: Buffer) => {
      total += bytes.length
      if (total >= threshold) done()
    })
    socket.on('end', done)
  }

  #refused(source: string, reason: RefusalReason | 'HANDSHAKE_TIMEOUT' | 'INSECURE_ENCRYPTION'): void {
    this.#options.onAccess?.({ source, destination: '', status: 'rejected', user: '', reason })
    const ip = source.slice(0, source.lastIndexOf(':'))
    const now = Date.now()
    const last = this.#lastRefusalLog.get(ip)
    if (last !== undefined && now - last < REFUSAL_LOG_PERIOD_MS) return
    if (this.#lastRefusalLog.size >= MAX_REFUSAL_LOG_ENTRIES) this.#lastRefusalLog.clear()
    this.#lastRefusalLog.set(ip, now)
    this.#options.logger.info({ source, reason }, 'refused VMess handshake')
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
): void {
  const destination = { network: 'udp' as const, host: to.host, port: to.port }
  stream.on('data', (payload: Buffer) => channel.send(payload, destination))
  channel.onPacket((payload) => {
    if (!stream.writableEnded && !stream.destroyed)
      stream.write(payload, (error) => error && stream.destroy())
  })
  channel.onClose(() => stream.destroy())
  stream.on('end', () => undefined)
  stream.on('close', () => channel.close())
}

function errorCode(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : String(error)
}
