import type { Readable } from 'node:stream'

/**
 * Pushes the payloads one read of the wire opened. A byte stream gets them as one buffer: a peer that
 * writes small chunks (V2Ray: 2 KiB) yields ~32 payloads per 64 KiB read, and one copy here costs less
 * than 32 writes downstream, each a system call. Object (datagram) streams get one push per payload.
 * Returns false when the reader wants no more for now.
 */
export function pushPayloads(stream: Readable, payloads: readonly Buffer[]): boolean {
  if (payloads.length === 0) return true
  if (payloads.length === 1 || stream.readableObjectMode) {
    let more = true
    for (const payload of payloads) more = stream.push(payload)
    return more
  }
  return stream.push(Buffer.concat(payloads))
}
