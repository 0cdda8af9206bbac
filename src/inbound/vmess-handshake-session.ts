import type { Duplex } from 'node:stream'
import { ProtocolError } from '../errors.js'
import { secureRandomInt } from '../crypto/random.js'
import { ByteQueue } from '../protocol/byte-queue.js'
import { Security } from '../protocol/constants.js'
import type { LegacyAuthTable } from '../protocol/legacy-auth.js'
import type { AuthIdReplayFilter, SessionHistory } from '../protocol/replay-filter.js'
import { ServerHandshake } from '../protocol/server-handshake.js'
import type { AuthIdMatch } from '../protocol/user-directory.js'
import type { VmessUser } from '../protocol/user.js'
import { contained } from '../streams/contain.js'
import { VmessServerStream } from '../streams/vmess-server-stream.js'
import { abortConnection, formatHostPort } from '../transport/tcp.js'
import type { PeerInfo } from '../transport/transport.js'
import type { Logger } from '../types.js'
import { type AuthIdScanner, isPendingScan, type PendingAuthIdScan, SCAN_OVERLOADED } from './auth-id-scan.js'
import { closeGracefully } from './close.js'
import type { VmessUsers } from './vmess-users.js'
import { isInboundRefusal, type VmessReports } from './vmess-refusals.js'

/** Legacy header policy: accept (V2Ray 4.34), accept and warn per connection, or refuse. */
export type LegacyHeaderPolicy = 'accept' | 'warn' | 'refuse'

/** Where a VMess connection stands, for the tunnels-by-phase gauge. */
export type VmessPhase = 'handshake' | 'draining' | 'connecting' | 'open' | 'closing'

/**
 * Where a handshake stands:
 * - `reading`: header bytes are parsed as they come;
 * - `scanning`: the AuthID is matched in the background, further bytes wait (the socket is paused);
 * - `scanning-after-eof`: as `scanning`, but the client has already sent its FIN;
 * - `draining`: refused, bytes are read and discarded up to the drain threshold;
 * - `open`: the header opened and the tunnel is served elsewhere;
 * - `closed`: ended by the inbound (FIN), or aborted after a handler threw.
 */
export type HandshakeState = 'reading' | 'scanning' | 'scanning-after-eof' | 'draining' | 'open' | 'closed'

/** Everything a handshake needs from its inbound, the same for every connection. */
export interface HandshakeSettings {
  /** The users now: they change at runtime (the API, a reload), each handshake reads them as it starts. */
  readonly users: VmessUsers
  readonly legacyPolicy: LegacyHeaderPolicy
  readonly authIds: AuthIdReplayFilter
  readonly sessions: SessionHistory
  readonly disableInsecureEncryption: boolean
  readonly handshakeTimeoutMs: number
  readonly logger: Logger
  /** Matches AuthIDs in the background while the user set is sharded (large); else they are matched inline. */
  readonly scanner: AuthIdScanner
  readonly reports: VmessReports
  /** Drain threshold D = base + r, r ∈ [0, spread) per connection (docs/protocol.md §9); follows the users. */
  drain: { readonly base: number; readonly spread: number }
  /** Takes over a connection whose header opened. */
  readonly opened: (tunnel: OpenedTunnel) => void
}

/** A connection whose header opened, handed from its handshake session to the inbound. */
export interface OpenedTunnel {
  readonly socket: Duplex
  readonly stream: VmessServerStream
  readonly user: VmessUser
  readonly source: string
  readonly phase: (next: VmessPhase) => void
}

const AUTH_LENGTH = 16
const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/**
 * One connection's VMess handshake: reads the header, matches its AuthID, refuses (with the
 * anti-probing drain) or hands the opened tunnel over. Every ending an outsider can cause goes
 * through `#close`: no byte sent, a FIN, unread bytes discarded.
 */
export class VmessHandshakeSession {
  #state: HandshakeState = 'reading'
  readonly #socket: Duplex
  readonly #ip: string
  readonly #source: string
  readonly #settings: HandshakeSettings
  readonly #phase: (next: VmessPhase) => void
  readonly #queue = new ByteQueue()
  readonly #handshake: ServerHandshake
  /** Bytes after which a refused or still incomplete header is closed, counted from the first byte. */
  readonly #threshold: number
  #received = 0
  /** The AuthID's match once a background scan decided it (or the scan was refused). */
  #match: AuthIdMatch | undefined
  #scan: PendingAuthIdScan | undefined
  readonly #deadline: NodeJS.Timeout
  // A throw anywhere in the handshake (or in the tunnel set up from it) fails this connection only.
  readonly #onData = contained(
    (bytes: Buffer) => this.#data(bytes),
    (error) => this.#fault(error),
  )
  readonly #onEnd = contained(
    () => this.#end(),
    (error) => this.#fault(error),
  )
  readonly #onScanned = contained(
    (match: AuthIdMatch) => this.#scanned(match),
    (error) => this.#fault(error),
  )

  /** `legacy`: the legacy (alterId) table now, undefined when there is none or the policy refuses it. */
  constructor(
    socket: Duplex,
    peer: PeerInfo,
    legacy: LegacyAuthTable | undefined,
    settings: HandshakeSettings,
    phase: (next: VmessPhase) => void,
  ) {
    this.#socket = socket
    this.#ip = peer.remoteAddress
    this.#source = formatHostPort(peer.remoteAddress, peer.remotePort)
    this.#settings = settings
    this.#phase = phase
    this.#handshake = new ServerHandshake({
      users: settings.users.directory,
      legacy,
      authIds: settings.authIds,
      sessions: settings.sessions,
      now: nowSeconds,
    })
    // Drawn per connection and counted from the first byte: a header still incomplete when it is
    // reached ends there too, so a cut-short genuine header closes where random bytes would (docs/protocol.md §9).
    this.#threshold = settings.drain.base + secureRandomInt(0, settings.drain.spread)
    this.#deadline = setTimeout(() => this.#timedOut(), settings.handshakeTimeoutMs)
    socket.on('data', this.#onData)
    socket.on('end', this.#onEnd)
    // A reset (or a WebSocket that dies) mid-handshake: no timer, queue or scan outlives the socket.
    socket.once('close', () => {
      if (this.#finished()) return
      this.#stop()
      this.#state = 'closed'
    })
  }

  #data(bytes: Buffer): void {
    this.#received += bytes.length
    if (this.#state === 'draining') {
      if (this.#received >= this.#threshold) this.#close()
      return
    }
    this.#queue.push(bytes)
    if (this.#state === 'scanning') {
      // The AuthID scan is still running: the bytes wait, and the threshold still applies.
      if (this.#received >= this.#threshold) {
        this.#settings.reports.refused(this.#source, 'HEADER_INCOMPLETE')
        this.#close()
      }
      return
    }
    this.#advance(false)
  }

  #end(): void {
    // A client may send its whole request and FIN while its AuthID is still being matched.
    if (this.#state === 'scanning') this.#state = 'scanning-after-eof'
    else this.#endOfInput()
  }

  #scanned(match: AuthIdMatch): void {
    const inputEnded = this.#state === 'scanning-after-eof'
    this.#match = match
    this.#state = 'reading'
    this.#advance(inputEnded)
    if (this.#finished()) return
    if (inputEnded) this.#endOfInput()
    else this.#socket.resume()
  }

  /** Whether the handshake is over: handed over as a tunnel, or closed. */
  #finished(): boolean {
    return this.#state === 'open' || this.#state === 'closed'
  }

  #timedOut(): void {
    if (this.#state !== 'draining') this.#settings.reports.refused(this.#source, 'HANDSHAKE_TIMEOUT')
    this.#close()
  }

  #endOfInput(): void {
    if (this.#state !== 'draining') {
      this.#handshake.onEndOfInput()
      this.#settings.reports.refused(this.#source, 'HEADER_EOF')
    }
    this.#close()
  }

  /** Parses what is buffered; `inputEnded` tells an opened stream the client's FIN already came. */
  #advance(inputEnded: boolean): void {
    const settings = this.#settings
    const queue = this.#queue
    if (this.#match === undefined && settings.scanner.sharded && queue.length >= AUTH_LENGTH) {
      const authId = Buffer.from(queue.peek(AUTH_LENGTH))
      const started = settings.scanner.start(authId, this.#ip, this.#onScanned)
      if (isPendingScan(started)) {
        // Hold further bytes in the socket until the scan decides.
        this.#socket.pause()
        this.#scan = started
        this.#state = 'scanning'
        return
      }
      this.#match = started
    }
    const step = this.#handshake.advance(
      queue,
      this.#match === undefined ? undefined : { match: this.#match },
    )
    if (step.status === 'need-more') {
      if (this.#received < this.#threshold) return
      this.#handshake.onEndOfInput()
      settings.reports.refused(this.#source, 'HEADER_INCOMPLETE')
      this.#close()
      return
    }
    if (step.status === 'refused') {
      const overloaded = this.#match === SCAN_OVERLOADED
      settings.reports.refused(this.#source, overloaded ? 'AUTH_SCAN_OVERLOAD' : step.reason)
      if (step.reason === 'AUTH_CLOCK_SKEW')
        settings.reports.clockSkew(this.#handshake.clockSkew, step.skewSeconds)
      if (step.action === 'close') this.#close()
      else this.#drain()
      return
    }
    this.#stop()
    this.#state = 'open'
    const header = step.header
    if (settings.disableInsecureEncryption && isInsecure(header.security, header.options)) {
      settings.reports.refused(this.#source, 'INSECURE_ENCRYPTION')
      this.#phase('closing')
      closeGracefully(this.#socket)
      this.#state = 'closed'
      return
    }
    if (step.kind === 'legacy' && settings.legacyPolicy === 'warn') {
      settings.logger.warn(
        { source: this.#source, user: step.user.email },
        'client used the legacy (alterId) header',
      )
    }
    this.#socket.pause()
    // The client's EOF may have come while its AuthID was matched: the stream is told, not re-sent it.
    const stream = new VmessServerStream(this.#socket, {
      header,
      kind: step.kind,
      buffered: queue,
      inputEnded,
    })
    // A body that fails to open (CHUNK_AUTH_FAILED, CHUNK_TOO_LONG, CHUNK_TRUNCATED) is reported like a refusal.
    stream.on('error', (error: Error) => {
      if (error instanceof ProtocolError && isInboundRefusal(error.code))
        settings.reports.refused(this.#source, error.code)
    })
    this.#phase('open')
    settings.opened({
      socket: this.#socket,
      stream,
      user: step.user,
      source: this.#source,
      phase: this.#phase,
    })
  }

  #drain(): void {
    this.#state = 'draining'
    this.#phase('draining')
    this.#queue.drain()
    if (this.#received >= this.#threshold) this.#close()
  }

  /** Stops reading the handshake: listeners off, a pending scan cancelled, the deadline cleared. */
  #stop(): void {
    this.#socket.off('data', this.#onData)
    this.#socket.off('end', this.#onEnd)
    this.#scan?.cancel()
    clearTimeout(this.#deadline)
  }

  #close(): void {
    this.#state = 'closed'
    this.#stop()
    this.#phase('closing')
    closeGracefully(this.#socket)
  }

  #fault(error: unknown): void {
    this.#settings.reports.fault(this.#source, this.#state === 'open' ? 'tunnel' : 'handshake', error)
    this.#stop()
    this.#state = 'closed'
    abortConnection(this.#socket)
  }
}

function isInsecure(security: number, options: number): boolean {
  return security === Security.Aes128Cfb || security === Security.None || options === 0
}
