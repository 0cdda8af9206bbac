import { ProtocolError } from '../errors.js'
import { decodeVmessAddress, encodeVmessAddress } from './address.js'
import { ByteQueue } from './byte-queue.js'

/** Readers refuse frames whose metadata is longer than this (docs/protocol.md §8). */
export const MAX_MUX_METADATA_LENGTH = 512
/** The data length is a 2-byte field. */
export const MAX_MUX_DATA_LENGTH = 0xffff
/** Bytes of an XUDP GlobalID (docs/protocol.md §8). */
export const XUDP_GLOBAL_ID_LENGTH = 8
/** Xray sends XUDP on this session ID (docs/protocol.md §8). */
export const XUDP_SESSION_ID = 0

// Session ID (2), status (1), option (1): every frame's metadata starts with these.
const FIXED_METADATA_LENGTH = 4

/** Frame status (docs/protocol.md §8). */
export const MuxStatus = {
  New: 0x01,
  Keep: 0x02,
  End: 0x03,
  KeepAlive: 0x04,
} as const
export type MuxStatusValue = (typeof MuxStatus)[keyof typeof MuxStatus]

/** Frame option bits (docs/protocol.md §8). */
export const MuxOption = {
  Data: 0x01,
  Error: 0x02,
} as const

/** Network byte of a New frame, and of an XUDP Keep frame's address (docs/protocol.md §8). */
export const MuxNetwork = {
  Tcp: 0x01,
  Udp: 0x02,
} as const

/**
 * One Mux.Cool frame. `network`, `host` and `port` come with New frames, and `host`/`port` with
 * XUDP Keep frames that carry a per-datagram address; `globalId` with XUDP New frames. `data` is
 * present when `option` has `MuxOption.Data` (an encoder sets that bit when `data` is given).
 */
export interface MuxFrame {
  readonly sessionId: number
  readonly status: MuxStatusValue
  readonly option: number
  readonly network?: 'tcp' | 'udp'
  readonly host?: string
  readonly port?: number
  readonly globalId?: Buffer
  readonly data?: Buffer
}

function invalid(message: string): ProtocolError {
  return new ProtocolError('MUX_INVALID', `Cannot read mux frame: ${message}`)
}

/** Reads port (2) ‖ ATyp ‖ address at `offset` of the metadata; the address must end inside it. */
function readPortAddress(metadata: Buffer, offset: number): { host: string; port: number; end: number } {
  if (offset + 2 > metadata.length) throw invalid(`metadata of ${metadata.length} bytes ends inside the port`)
  const port = metadata.readUInt16BE(offset)
  const address = decodeVmessAddress(metadata, offset + 2)
  if (address === undefined) throw invalid(`metadata of ${metadata.length} bytes ends inside the address`)
  return { host: address.host, port, end: address.end }
}

/** Parses the metadata that follows the length field. */
function readMetadata(metadata: Buffer): MuxFrame {
  const sessionId = metadata.readUInt16BE(0)
  const status = metadata.readUInt8(2)
  const option = metadata.readUInt8(3)
  const base = { sessionId, option }
  switch (status) {
    case MuxStatus.New: {
      if (metadata.length < FIXED_METADATA_LENGTH + 1) throw invalid('New frame has no network byte')
      const networkByte = metadata.readUInt8(4)
      if (networkByte !== MuxNetwork.Tcp && networkByte !== MuxNetwork.Udp) {
        throw invalid(`network is ${networkByte}, expected 1 (TCP) or 2 (UDP)`)
      }
      const network = networkByte === MuxNetwork.Tcp ? 'tcp' : 'udp'
      const { host, port, end } = readPortAddress(metadata, 5)
      // XUDP: a GlobalID may follow a UDP target; anything else after the address is an unknown extension.
      if (network === 'udp' && metadata.length - end >= XUDP_GLOBAL_ID_LENGTH) {
        const globalId = Buffer.from(metadata.subarray(end, end + XUDP_GLOBAL_ID_LENGTH))
        return { ...base, status, network, host, port, globalId }
      }
      return { ...base, status, network, host, port }
    }
    case MuxStatus.Keep: {
      // XUDP Keep: `02 | port | addr` names the datagram's peer; other extensions are skipped.
      if (metadata.length > FIXED_METADATA_LENGTH && metadata.readUInt8(4) === MuxNetwork.Udp) {
        const { host, port } = readPortAddress(metadata, 5)
        return { ...base, status, host, port }
      }
      return { ...base, status }
    }
    case MuxStatus.End:
    case MuxStatus.KeepAlive:
      return { ...base, status }
    default:
      throw invalid(`status is ${status}, expected 1 to 4`)
  }
}

/**
 * Parses one frame, or returns undefined until all of it (metadata and data) is buffered.
 * Consumes the frame only when it returns one.
 */
export function parseMuxFrame(queue: ByteQueue): MuxFrame | undefined {
  if (queue.length < 2) return undefined
  const metadataLength = queue.uint16At(0)
  if (metadataLength > MAX_MUX_METADATA_LENGTH) {
    throw new ProtocolError(
      'MUX_METADATA_TOO_LONG',
      `Cannot read mux frame: metadata length is ${metadataLength}, limit is ${MAX_MUX_METADATA_LENGTH}`,
    )
  }
  if (metadataLength < FIXED_METADATA_LENGTH) {
    throw invalid(`metadata length is ${metadataLength}, at least ${FIXED_METADATA_LENGTH} expected`)
  }
  const headLength = 2 + metadataLength
  if (queue.length < headLength) return undefined
  const hasData = (queue.byteAt(2 + 3) & MuxOption.Data) !== 0
  let dataLength = 0
  if (hasData) {
    if (queue.length < headLength + 2) return undefined
    // A 2-byte field: never more than MAX_MUX_DATA_LENGTH.
    dataLength = queue.uint16At(headLength)
    if (queue.length < headLength + 2 + dataLength) return undefined
  }
  const frame = readMetadata(queue.peek(headLength).subarray(2))
  queue.skip(headLength)
  if (!hasData) return frame
  queue.skip(2)
  return { ...frame, data: queue.consume(dataLength) }
}

/** A push parser: feed received bytes, get every frame they complete. */
export class MuxFrameParser {
  #queue = new ByteQueue()

  /** Bytes received and not yet part of a returned frame. */
  get bufferedLength(): number {
    return this.#queue.length
  }

  /** Appends `bytes` (kept by reference) and returns the frames completed so far. */
  push(bytes: Buffer): MuxFrame[] {
    this.#queue.push(bytes)
    const frames: MuxFrame[] = []
    for (let frame = parseMuxFrame(this.#queue); frame !== undefined; frame = parseMuxFrame(this.#queue)) {
      frames.push(frame)
    }
    return frames
  }
}

function encodingError(message: string): ProtocolError {
  return new ProtocolError('MUX_INVALID', `Cannot encode mux frame: ${message}`)
}

function checkUint16(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff)
    throw encodingError(`${what} ${value} is out of range`)
}

/** port (2) ‖ ATyp ‖ address, as Mux.Cool and XUDP write a target. */
function encodePortAddress(host: string, port: number): Buffer {
  checkUint16(port, 'port')
  const address = encodeVmessAddress(host)
  const out = Buffer.allocUnsafe(2 + address.length)
  out.writeUInt16BE(port, 0)
  address.copy(out, 2)
  return out
}

/**
 * The wire bytes of one frame: metadata length ‖ metadata ‖ (data length ‖ data).
 * @example
 * encodeMuxFrame({ sessionId: 1, status: MuxStatus.New, option: 0, network: 'tcp', host: '127.0.0.1', port: 80, data })
 */
export function encodeMuxFrame(frame: MuxFrame): Buffer {
  checkUint16(frame.sessionId, 'session ID')
  if (!Number.isInteger(frame.option) || frame.option < 0 || frame.option > 0xff) {
    throw encodingError(`option ${frame.option} is out of range`)
  }
  const { host, port, data } = frame
  if ((host === undefined) !== (port === undefined)) throw encodingError('host and port go together')
  const extra: Buffer[] = []
  if (frame.status === MuxStatus.New) {
    if (frame.network === undefined || host === undefined || port === undefined) {
      throw encodingError('a New frame needs network, host and port')
    }
    extra.push(
      Buffer.of(frame.network === 'tcp' ? MuxNetwork.Tcp : MuxNetwork.Udp),
      encodePortAddress(host, port),
    )
    if (frame.globalId !== undefined) {
      if (frame.network !== 'udp') throw encodingError('a GlobalID goes with a UDP target only')
      if (frame.globalId.length !== XUDP_GLOBAL_ID_LENGTH) {
        throw encodingError(`GlobalID is ${frame.globalId.length} bytes, expected ${XUDP_GLOBAL_ID_LENGTH}`)
      }
      extra.push(frame.globalId)
    }
  } else if (host !== undefined && port !== undefined) {
    if (frame.status !== MuxStatus.Keep) throw encodingError('only New and Keep frames carry an address')
    extra.push(Buffer.of(MuxNetwork.Udp), encodePortAddress(host, port))
  }
  const extraLength = extra.reduce((sum, part) => sum + part.length, 0)
  const metadataLength = FIXED_METADATA_LENGTH + extraLength
  if (metadataLength > MAX_MUX_METADATA_LENGTH) {
    throw encodingError(`metadata length is ${metadataLength}, limit is ${MAX_MUX_METADATA_LENGTH}`)
  }
  const option = frame.option | (data === undefined ? 0 : MuxOption.Data)
  const hasData = (option & MuxOption.Data) !== 0
  const dataLength = data?.length ?? 0
  if (dataLength > MAX_MUX_DATA_LENGTH) {
    throw encodingError(`data length is ${dataLength}, limit is ${MAX_MUX_DATA_LENGTH}`)
  }
  const out = Buffer.allocUnsafe(2 + metadataLength + (hasData ? 2 + dataLength : 0))
  out.writeUInt16BE(metadataLength, 0)
  out.writeUInt16BE(frame.sessionId, 2)
  out.writeUInt8(frame.status, 4)
  out.writeUInt8(option, 5)
  let offset = 6
  for (const part of extra) offset += part.copy(out, offset)
  if (hasData) {
    out.writeUInt16BE(dataLength, offset)
    if (data !== undefined) data.copy(out, offset + 2)
  }
  return out
}
