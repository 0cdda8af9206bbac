import { ProtocolError } from '../errors.js'
import { MuxOption, MuxStatus } from './mux-frame.js'

/** V2Ray and Xray split a TCP sub-stream into frames of at most this much data (docs/protocol.md §8). */
export const MUX_STREAM_FRAME_DATA = 8 * 1024

// Metadata length (2) ‖ session ID (2) ‖ status (1) ‖ option (1) ‖ data length (2).
const KEEP_FRAME_OVERHEAD = 8

/**
 * The Keep frames that carry `data` of one sub-stream, split every `MUX_STREAM_FRAME_DATA` bytes as
 * V2Ray writes them (docs/protocol.md §8), sized first and written into one buffer.
 */
export function encodeKeepFrames(sessionId: number, data: Buffer): Buffer {
  if (!Number.isInteger(sessionId) || sessionId < 0 || sessionId > 0xffff) {
    throw new ProtocolError('MUX_INVALID', `Cannot encode mux frame: session ID ${sessionId} is out of range`)
  }
  const frames = Math.ceil(data.length / MUX_STREAM_FRAME_DATA)
  const out = Buffer.allocUnsafe(data.length + frames * KEEP_FRAME_OVERHEAD)
  let offset = 0
  for (let start = 0; start < data.length; start += MUX_STREAM_FRAME_DATA) {
    const piece = data.subarray(start, start + MUX_STREAM_FRAME_DATA)
    out.writeUInt16BE(4, offset)
    out.writeUInt16BE(sessionId, offset + 2)
    out.writeUInt8(MuxStatus.Keep, offset + 4)
    out.writeUInt8(MuxOption.Data, offset + 5)
    out.writeUInt16BE(piece.length, offset + 6)
    offset += KEEP_FRAME_OVERHEAD + piece.copy(out, offset + KEEP_FRAME_OVERHEAD)
  }
  return out
}
