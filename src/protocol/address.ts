import { ProtocolError } from '../errors.js'
import { AddressType, MAX_DOMAIN_LENGTH } from './constants.js'

/** An address as carried on the wire: its VMess type and its text form (IP literal or domain). */
export interface WireAddress {
  readonly type: (typeof AddressType)[keyof typeof AddressType]
  readonly host: string
}

const IPV4_PATTERN = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

/** The 4 bytes of an IPv4 literal, or undefined when `text` is not one. */
export function parseIpv4(text: string): Buffer | undefined {
  if (!IPV4_PATTERN.test(text)) return undefined
  return Buffer.from(text.split('.').map(Number))
}

/** The 16 bytes of an IPv6 literal (brackets and an embedded IPv4 tail allowed), or undefined. */
export function parseIpv6(text: string): Buffer | undefined {
  let s = text
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1)
  if (!s.includes(':') || s.includes('%')) return undefined
  const out = Buffer.alloc(16)
  let tailWords: number[] = []
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const parseWords = (part: string): number[] | undefined => {
    if (part === '') return []
    const words: number[] = []
    const groups = part.split(':')
    for (let i = 0; i < groups.length; i++) {
      const group = groups[i]!
      if (i === groups.length - 1 && group.includes('.')) {
        const v4 = parseIpv4(group)
        if (v4 === undefined) return undefined
        words.push(v4.readUInt16BE(0), v4.readUInt16BE(2))
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined
        words.push(parseInt(group, 16))
      }
    }
    return words
  }
  const head = parseWords(halves[0]!)
  if (head === undefined) return undefined
  if (halves.length === 2) {
    const tail = parseWords(halves[1]!)
    if (tail === undefined || head.length + tail.length > 7) return undefined
    tailWords = tail
  } else if (head.length !== 8) {
    return undefined
  }
  head.forEach((word, i) => out.writeUInt16BE(word, i * 2))
  tailWords.forEach((word, i) => out.writeUInt16BE(word, 16 - (tailWords.length - i) * 2))
  return out
}

/** Text of 4 or 16 address bytes (IPv6 in RFC 5952 form). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.')
  const words: number[] = []
  for (let i = 0; i < 16; i += 2) words.push((bytes[i]! << 8) | bytes[i + 1]!)
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = words.map((w) => w.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}

const DOMAIN_PATTERN = /^[A-Za-z0-9\-._]+$/

/** Classifies a host: an IP literal (IPv4 or IPv6) or a domain (docs/protocol.md §5 address rules). */
export function classifyHost(host: string): WireAddress {
  if (parseIpv4(host) !== undefined) return { type: AddressType.Ipv4, host }
  const v6 = parseIpv6(host)
  if (v6 !== undefined) return { type: AddressType.Ipv6, host: formatIp(v6) }
  return { type: AddressType.Domain, host }
}

/** Whether `host` is an IP literal. */
export function isIpLiteral(host: string): boolean {
  return parseIpv4(host) !== undefined || parseIpv6(host) !== undefined
}

/** The address bytes of `host` without the port: ATyp ‖ address (VMess numbering). */
export function encodeVmessAddress(host: string): Buffer {
  const address = classifyHost(host)
  switch (address.type) {
    case AddressType.Ipv4:
      return Buffer.concat([Buffer.of(AddressType.Ipv4), parseIpv4(address.host)!])
    case AddressType.Ipv6:
      return Buffer.concat([Buffer.of(AddressType.Ipv6), parseIpv6(address.host)!])
    case AddressType.Domain: {
      const name = Buffer.from(host, 'latin1')
      if (name.length === 0 || name.length > MAX_DOMAIN_LENGTH || !DOMAIN_PATTERN.test(host)) {
        throw new ProtocolError('ADDRESS_INVALID', `Cannot encode address: "${host}" is not a valid domain`)
      }
      return Buffer.concat([Buffer.of(AddressType.Domain, name.length), name])
    }
  }
}

/**
 * Decodes ATyp ‖ address at `offset` of `bytes` (VMess numbering). Returns the host and the offset
 * after it, or undefined when `bytes` ends first. A domain that parses as an IP is read as that IP.
 */
export function decodeVmessAddress(bytes: Buffer, offset: number): { host: string; end: number } | undefined {
  if (offset >= bytes.length) return undefined
  const type = bytes.readUInt8(offset)
  switch (type) {
    case AddressType.Ipv4:
      if (offset + 5 > bytes.length) return undefined
      return { host: formatIp(bytes.subarray(offset + 1, offset + 5)), end: offset + 5 }
    case AddressType.Ipv6:
      if (offset + 17 > bytes.length) return undefined
      return { host: formatIp(bytes.subarray(offset + 1, offset + 17)), end: offset + 17 }
    case AddressType.Domain: {
      if (offset + 2 > bytes.length) return undefined
      const length = bytes.readUInt8(offset + 1)
      if (offset + 2 + length > bytes.length) return undefined
      const name = bytes.toString('latin1', offset + 2, offset + 2 + length)
      if (length === 0 || !DOMAIN_PATTERN.test(name)) {
        throw new ProtocolError('ADDRESS_INVALID', `Cannot read address: domain "${name}" is not valid`)
      }
      return { host: classifyHost(name).host, end: offset + 2 + length }
    }
    default:
      throw new ProtocolError('ADDRESS_INVALID', `Cannot read address: type ${type} is unknown`)
  }
}
