import { createHash, randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { readExactly } from './net.js'

/** RFC 6455 opcodes used by the tests. */
export const Opcode = { Text: 1, Binary: 2, Close: 8, Ping: 9 } as const

/** A WebSocket frame as RFC 6455 §5.2 lays it out; a client's is masked. `length` overrides the declared length. */
export function encodeFrame(
  payload: Buffer,
  options: { opcode?: number; masked?: boolean; fin?: boolean; length?: number } = {},
): Buffer {
  const length = options.length ?? payload.length
  const masked = options.masked ?? true
  const head: number[] = [((options.fin ?? true) ? 0x80 : 0) | (options.opcode ?? Opcode.Binary)]
  const maskBit = masked ? 0x80 : 0
  if (length < 126) head.push(maskBit | length)
  else if (length < 65_536) head.push(maskBit | 126, length >> 8, length & 0xff)
  else {
    const big = Buffer.alloc(8)
    big.writeBigUInt64BE(BigInt(length))
    head.push(maskBit | 127, ...big)
  }
  if (!masked) return Buffer.concat([Buffer.from(head), payload])
  const mask = randomBytes(4)
  const body = Buffer.from(payload)
  for (let i = 0; i < body.length; i++) body.writeUInt8(body.readUInt8(i) ^ mask.readUInt8(i % 4), i)
  return Buffer.concat([Buffer.from(head), mask, body])
}

/** Reads one frame from a socket (paused mode): its opcode and unmasked payload. */
export async function readFrame(socket: Socket): Promise<{ opcode: number; payload: Buffer }> {
  const head = await readExactly(socket, 2)
  const opcode = head.readUInt8(0) & 0x0f
  const masked = (head.readUInt8(1) & 0x80) !== 0
  let length = head.readUInt8(1) & 0x7f
  if (length === 126) length = (await readExactly(socket, 2)).readUInt16BE(0)
  else if (length === 127) length = Number((await readExactly(socket, 8)).readBigUInt64BE(0))
  const mask = masked ? await readExactly(socket, 4) : undefined
  const payload = length === 0 ? Buffer.alloc(0) : Buffer.from(await readExactly(socket, length))
  if (mask !== undefined) {
    for (let i = 0; i < payload.length; i++)
      payload.writeUInt8(payload.readUInt8(i) ^ mask.readUInt8(i % 4), i)
  }
  return { opcode, payload }
}

/** Reads an HTTP head byte by byte from a socket in paused mode. */
export async function readHead(socket: Socket): Promise<string> {
  let text = ''
  while (!text.endsWith('\r\n\r\n')) text += (await readExactly(socket, 1)).toString('latin1')
  return text
}

/** Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
}
