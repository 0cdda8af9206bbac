import type { Duplex } from 'node:stream'

/** Who is on the other end of an accepted stream (for TLS or WebSocket, the TCP peer or a trusted X-Forwarded-For). */
export interface PeerInfo {
  readonly remoteAddress: string
  readonly remotePort: number
}

/** Receives each accepted stream; the transport has already put an `error` listener on it. */
export type StreamHandler = (stream: Duplex, peer: PeerInfo) => void

/** A listening transport (TCP, TLS, WebSocket …) that hands plain byte streams to a handler. */
export interface StreamServer {
  /** Starts listening; resolves with the bound port, rejects with a clear message (port in use). */
  listen(): Promise<number>
  /** Stops accepting; streams still open after `graceMs` are destroyed. */
  close(graceMs: number): Promise<void>
}

/**
 * Opens a byte stream to a server over some transport. A Duplex returned at once (not a promise) is
 * still connecting: it takes writes, sends them once connected, and reports a failed connection as
 * 'error'. That lets a proxy answer its client without waiting a round trip, as V2Ray does.
 */
export type StreamDialer = (host: string, port: number) => Promise<Duplex> | Duplex

/**
 * Marks a byte stream that cannot half-close (WebSocket): ending its writable side sends nothing, so the
 * peer learns of a close only when the stream is destroyed.
 */
export interface WholeCloseStream {
  readonly halfClose: false
}

/** False for a stream that marks itself as a WholeCloseStream; true for TCP, TLS and the rest. */
export function canHalfClose(stream: Duplex): boolean {
  return (stream as Partial<WholeCloseStream>).halfClose !== false
}
