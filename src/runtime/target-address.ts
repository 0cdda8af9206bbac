import { isIP } from 'node:net'

// The resolver (getaddrinfo, inet_aton) accepts IPv4 in shorthand, decimal, octal and hex forms, so
// "127.1", "2130706433" and "0x7f000001" all dial loopback. Routing must see the address that will be
// dialled, not the spelling: every host goes through canonicalTarget before a rule matches it.

const PART = /^(?:0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)$/i

/** The value of one inet_aton part (decimal, 0-octal or 0x-hex), or undefined when it is not one. */
function partValue(part: string): number | undefined {
  if (!PART.test(part)) return undefined
  const lower = part.toLowerCase()
  const value = lower.startsWith('0x')
    ? lower.length === 2
      ? 0
      : Number.parseInt(lower.slice(2), 16)
    : lower.length > 1 && lower.startsWith('0')
      ? Number.parseInt(lower, 8)
      : Number(lower)
  return Number.isSafeInteger(value) ? value : undefined
}

/** "a", "a.b", "a.b.c" or "a.b.c.d" as inet_aton reads them, as dotted IPv4; undefined otherwise. */
export function inetAtonIpv4(host: string): string | undefined {
  const parts = host.split('.')
  if (parts.length > 4 || parts.some((part) => part === '')) return undefined
  const values = parts.map(partValue)
  if (values.some((value) => value === undefined)) return undefined
  const numbers = values as number[]
  const last = numbers[numbers.length - 1]!
  const head = numbers.slice(0, -1)
  if (head.some((value) => value > 255) || last >= 2 ** (8 * (4 - head.length))) return undefined
  let address = 0
  for (const value of head) address = address * 256 + value
  address = address * 2 ** (8 * (4 - head.length)) + last
  return [24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join('.')
}

/** An IPv4 address carried in an IPv6 literal (::ffff:a.b.c.d or ::ffff:hhhh:hhhh), else undefined. */
function mappedIpv4(ipv6: string): string | undefined {
  const lower = ipv6.toLowerCase()
  const dotted = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower)
  if (dotted !== null && isIP(dotted[1]!) === 4) return dotted[1]
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower)
  if (hex === null) return undefined
  const high = Number.parseInt(hex[1]!, 16)
  const low = Number.parseInt(hex[2]!, 16)
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`
}

/**
 * The host as routing should see it: IP literals in any spelling the resolver accepts become plain
 * IPv4 or IPv6 text (brackets dropped, IPv4-mapped IPv6 as IPv4), and "localhost" names (RFC 6761
 * §6.3) become 127.0.0.1; any other domain is returned as is.
 */
export function canonicalTarget(host: string): string {
  const literal = canonicalIpLiteral(host)
  if (literal !== undefined) return literal
  const lower = (host.endsWith('.') ? host.slice(0, -1) : host).toLowerCase()
  return lower === 'localhost' || lower.endsWith('.localhost') ? '127.0.0.1' : host
}

/** An IP literal in any spelling the resolver accepts, as plain IPv4 or IPv6 text; undefined for a domain. */
export function canonicalIpLiteral(host: string): string | undefined {
  const unbracketed = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  const family = isIP(unbracketed)
  if (family === 6) return mappedIpv4(unbracketed) ?? unbracketed.toLowerCase()
  if (family === 4) return unbracketed
  return inetAtonIpv4(unbracketed.endsWith('.') ? unbracketed.slice(0, -1) : unbracketed)
}
