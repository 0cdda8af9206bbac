import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import type { Socket } from 'node:net'
import { readSocksReply, socksConnect, socksUdpRoundTrip } from './clients.js'
import { connectTcp, exchange, readExactly, sha256Hex } from './net.js'
import { startTsray } from './tsray.js'
import { freePort } from './v2ray.js'

/** The user every exposure test signs in with. */
export const EXPOSURE_ID = '5783a3e7-e373-51cd-8642-c83782b807c5'

type Tsray = Awaited<ReturnType<typeof startTsray>>

/** A tsray VMess server on 127.0.0.1:0 with a freedom outbound; `extra` merges into its config. */
export async function startVmessServer(extra: { routing?: object; inboundSettings?: object } = {}): Promise<{
  tsray: Tsray
  port: number
}> {
  const tsray = await startTsray({
    inbounds: [
      {
        listen: '127.0.0.1',
        port: await freePort(),
        protocol: 'vmess',
        settings: { clients: [{ id: EXPOSURE_ID }], ...extra.inboundSettings },
      },
    ],
    outbounds: [
      { protocol: 'freedom', tag: 'direct' },
      { protocol: 'blackhole', tag: 'block' },
    ],
    ...(extra.routing !== undefined ? { routing: extra.routing } : {}),
  })
  return { tsray, port: tsray.bound[0]!.port }
}

/** A tsray client: a SOCKS5 inbound (UDP on) sending to the VMess server, or direct when `serverPort` is 0. */
export async function startSocksClient(
  serverPort: number,
  options: { mux?: boolean } = {},
): Promise<{
  tsray: Tsray
  port: number
}> {
  const outbound =
    serverPort === 0
      ? { protocol: 'freedom' }
      : {
          protocol: 'vmess',
          settings: { vnext: [{ address: '127.0.0.1', port: serverPort, users: [{ id: EXPOSURE_ID }] }] },
          ...(options.mux === true ? { mux: { enabled: true, concurrency: 8 } } : {}),
        }
  const tsray = await startTsray({
    inbounds: [
      {
        listen: '127.0.0.1',
        port: await freePort(),
        protocol: 'socks',
        settings: { udp: true, ip: '127.0.0.1' },
      },
    ],
    outbounds: [outbound],
  })
  return { tsray, port: tsray.bound[0]!.port }
}

/** A SOCKS5 UDP association: its control connection and a UDP socket bound on 127.0.0.1. */
export interface SocksAssociation {
  readonly control: Socket
  readonly udp: UdpSocket
  readonly relayPort: number
  send(target: { host: string; port: number }, payload: Buffer): void
  close(): void
}

/** Opens a UDP ASSOCIATE through the SOCKS5 inbound on 127.0.0.1:port. */
export async function associate(port: number): Promise<SocksAssociation> {
  const control = await connectTcp(port)
  control.on('error', () => undefined)
  control.write(Buffer.of(5, 1, 0))
  await readExactly(control, 2)
  control.write(Buffer.of(5, 3, 0, 1, 0, 0, 0, 0, 0, 0))
  const reply = await readSocksReply(control)
  assert.equal(reply.code, 0, 'UDP ASSOCIATE refused')
  const udp = createSocket('udp4')
  udp.on('error', () => undefined)
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()))
  return {
    control,
    udp,
    relayPort: reply.port,
    send: (target, payload) => udp.send(socksUdpDatagram(target, payload), reply.port, '127.0.0.1'),
    close: () => {
      udp.close()
      control.destroy()
    },
  }
}

/** A SOCKS5 UDP request datagram (RFC 1928 §7) for an IPv4 target. */
export function socksUdpDatagram(target: { host: string; port: number }, payload: Buffer): Buffer {
  const port = Buffer.alloc(2)
  port.writeUInt16BE(target.port)
  return Buffer.concat([
    Buffer.of(0, 0, 0, 1),
    Buffer.from(target.host.split('.').map(Number)),
    port,
    payload,
  ])
}

/** A genuine client is served: a TCP echo and a UDP echo through the SOCKS5 inbound match by SHA-256. */
export async function assertServes(
  socksPort: number,
  echo: { tcp: number; udp: number },
  label: string,
): Promise<void> {
  const data = randomBytes(64 * 1024)
  const tunnel = await socksConnect(socksPort, { host: '127.0.0.1', port: echo.tcp })
  const back = await exchange(tunnel, data, { timeoutMs: 10_000 })
  tunnel.destroy()
  assert.equal(sha256Hex(back), sha256Hex(data), `${label}: TCP echo`)
  const datagram = randomBytes(1000)
  const replies = await socksUdpRoundTrip(socksPort, { host: '127.0.0.1', port: echo.udp }, [datagram])
  assert.equal(sha256Hex(replies[0]!), sha256Hex(datagram), `${label}: UDP echo`)
}

/** Records uncaught exceptions and rejections while installed (a crash shows here instead of killing the runner). */
export function recordUncaught(): { errors: unknown[]; uninstall: () => void } {
  const errors: unknown[] = []
  const onError = (error: unknown): void => void errors.push(error)
  process.on('uncaughtException', onError)
  process.on('unhandledRejection', onError)
  return {
    errors,
    uninstall: () => {
      process.off('uncaughtException', onError)
      process.off('unhandledRejection', onError)
    },
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
