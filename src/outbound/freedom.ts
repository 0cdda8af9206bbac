import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { Duplex } from 'node:stream'
import { countDroppedDatagram, MAX_QUEUED_DATAGRAM_BYTES } from '../budgets.js'
import { secureRandomInt } from '../crypto/random.js'
import { dialTcp } from '../transport/tcp.js'
import type { Destination } from '../types.js'
import type { ConnectionContext, Outbound, PacketChannel } from './outbound.js'

/** Largest datagram accepted from a target; bigger ones cannot be carried back anyway. */
export const MAX_UDP_DATAGRAM = 65_507
/** A UDP channel with no traffic this long is closed. */
export const UDP_IDLE_MS = 60_000

/** The IPs of a domain as the instance's DNS gives them: 0 any family, 4 or 6 one family. */
export type ResolveDomain = (host: string, family: 0 | 4 | 6) => Promise<readonly string[]>

/** `settings.domainStrategy`: AsIs leaves domains to the system's connect; the others resolve them first. */
export type FreedomDomainStrategy = 'AsIs' | 'UseIP' | 'UseIPv4' | 'UseIPv6'

/** Direct connections to the target (V2Ray's `freedom`). */
export class FreedomOutbound implements Outbound {
  readonly tag: string
  readonly #connectTimeoutMs: number
  readonly #redirect: Redirect | undefined
  readonly #strategy: FreedomDomainStrategy
  readonly #resolve: ResolveDomain | undefined
  readonly #sendThrough: string | undefined

  constructor(options: {
    tag: string
    connectTimeoutMs: number
    redirect?: Redirect
    domainStrategy?: FreedomDomainStrategy
    /** V2Ray's DNS for UseIP*; absent: the system resolver. */
    resolve?: ResolveDomain
    /** The local address to connect from (`sendThrough`). */
    sendThrough?: string
  }) {
    this.tag = options.tag
    this.#connectTimeoutMs = options.connectTimeoutMs
    this.#redirect = options.redirect
    this.#strategy = options.domainStrategy ?? 'AsIs'
    this.#resolve = options.resolve
    this.#sendThrough = options.sendThrough
  }

  async dialTcp(destination: Destination, _context: ConnectionContext): Promise<Duplex> {
    const target = redirected(destination, this.#redirect)
    const host = await this.#resolveTarget(target.host)
    return dialTcp(host, target.port, {
      timeoutMs: this.#connectTimeoutMs,
      ...(this.#sendThrough !== undefined ? { localAddress: this.#sendThrough } : {}),
    })
  }

  /**
   * The address to connect to: with UseIP* a domain becomes one of its IPs picked at random, of the
   * strategy's family or else sendThrough's; when the DNS has none the domain is kept (V2Ray's resolveIP).
   */
  async #resolveTarget(host: string): Promise<string> {
    if (this.#strategy === 'AsIs' || isIP(host) !== 0) return host
    const local = this.#sendThrough === undefined ? 0 : isIP(this.#sendThrough)
    const family =
      this.#strategy === 'UseIPv4'
        ? 4
        : this.#strategy === 'UseIPv6'
          ? 6
          : local === 4 || local === 6
            ? local
            : 0
    const resolve = this.#resolve ?? systemResolve
    const addresses = await resolve(host, family).catch(() => [])
    if (addresses.length === 0) return host
    return addresses[secureRandomInt(0, addresses.length)] ?? host
  }

  openUdp(_context: ConnectionContext): PacketChannel {
    return new FreedomPacketChannel(this.#redirect, this.#sendThrough, (host) => this.#resolveTarget(host))
  }
}

async function systemResolve(host: string, family: 0 | 4 | 6): Promise<readonly string[]> {
  return (await lookup(host, { all: true, family })).map((entry) => entry.address)
}

/** `settings.redirect`: a part left undefined keeps the request's host or port. */
export interface Redirect {
  readonly host?: string | undefined
  readonly port?: number | undefined
}

function redirected(destination: Destination, redirect: Redirect | undefined): Destination {
  if (redirect === undefined) return destination
  return {
    network: destination.network,
    host: redirect.host ?? destination.host,
    port: redirect.port ?? destination.port,
  }
}

class FreedomPacketChannel implements PacketChannel {
  readonly #sockets = new Map<4 | 6, UdpSocket>()
  readonly #redirect: Redirect | undefined
  #onPacket: (payload: Buffer, from: Destination) => void = () => undefined
  #onClose: ((error?: Error) => void)[] = []
  #closed = false
  #idleTimer: NodeJS.Timeout
  /** Bytes handed to dgram whose send has not completed. */
  #queuedBytes = 0
  readonly #sendThrough: string | undefined
  readonly #resolveTarget: (host: string) => Promise<string>

  constructor(
    redirect: Redirect | undefined,
    sendThrough: string | undefined,
    resolveTarget: (host: string) => Promise<string>,
  ) {
    this.#redirect = redirect
    this.#sendThrough = sendThrough
    this.#resolveTarget = resolveTarget
    this.#idleTimer = setTimeout(() => this.close(), UDP_IDLE_MS)
  }

  send(payload: Buffer, to: Destination): void {
    if (this.#closed) return
    this.#idleTimer.refresh()
    const target = redirected(to, this.#redirect)
    // A signed-in user may still ask for port 0 or 70000: dgram would throw, so such a datagram is dropped.
    if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65_535) {
      countDroppedDatagram()
      return
    }
    const family = isIP(target.host)
    if (family !== 0) {
      this.#sendTo(family === 6 ? 6 : 4, payload, target.port, target.host)
      return
    }
    // Datagrams waiting for their name to resolve count against the same budget as those queued to send.
    if (this.#queuedBytes + payload.length > MAX_QUEUED_DATAGRAM_BYTES) {
      countDroppedDatagram()
      return
    }
    this.#queuedBytes += payload.length
    // UseIP* resolves with the instance's DNS; a domain left as it is goes to the system resolver.
    this.#resolveTarget(target.host)
      .then((host) => (isIP(host) !== 0 ? { address: host, family: isIP(host) } : lookup(host)))
      .then(
        (resolved) => {
          this.#queuedBytes -= payload.length
          if (!this.#closed)
            this.#sendTo(resolved.family === 6 ? 6 : 4, payload, target.port, resolved.address)
        },
        () => {
          // An unresolvable destination drops the datagram, as UDP would.
          this.#queuedBytes -= payload.length
        },
      )
      .catch(() => countDroppedDatagram())
  }

  /** Sends unless the socket's queue is over budget (a target that never answers, a closed port). */
  #sendTo(family: 4 | 6, payload: Buffer, port: number, address: string): void {
    const socket = this.#socket(family)
    if (this.#queuedBytes + payload.length > MAX_QUEUED_DATAGRAM_BYTES) {
      countDroppedDatagram()
      return
    }
    this.#queuedBytes += payload.length
    try {
      socket.send(payload, port, address, () => {
        this.#queuedBytes -= payload.length
      })
    } catch {
      // An address dgram refuses (a malformed literal) drops the datagram, never the process.
      this.#queuedBytes -= payload.length
      countDroppedDatagram()
    }
  }

  #socket(family: 4 | 6): UdpSocket {
    let socket = this.#sockets.get(family)
    if (socket !== undefined) return socket
    socket = createSocket(family === 6 ? 'udp6' : 'udp4')
    socket.on('error', (error) => this.#close(error))
    // sendThrough binds the socket of its own family; the other family sends from any address.
    if (this.#sendThrough !== undefined && isIP(this.#sendThrough) === family)
      socket.bind(0, this.#sendThrough)
    socket.on('message', (payload, remote) => {
      this.#idleTimer.refresh()
      this.#onPacket(payload, { network: 'udp', host: remote.address, port: remote.port })
    })
    this.#sockets.set(family, socket)
    return socket
  }

  onPacket(handler: (payload: Buffer, from: Destination) => void): void {
    this.#onPacket = handler
  }

  onClose(handler: (error?: Error) => void): void {
    this.#onClose.push(handler)
  }

  close(): void {
    this.#close()
  }

  #close(error?: Error): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#idleTimer)
    for (const socket of this.#sockets.values()) socket.close()
    for (const handler of this.#onClose) handler(error)
  }
}
