import { randomBytes } from 'node:crypto'

/** An HTTP/1.1 GET as a web crawler or prober sends it. */
export const HTTP_GET = Buffer.from(
  'GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\nConnection: close\r\n\r\n',
  'latin1',
)

/** An SSH client identification line (RFC 4253 §4.2). */
export const SSH_BANNER = Buffer.from('SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n', 'latin1')

/**
 * A TLS 1.3 ClientHello record for example.com of 517 bytes (the size browsers pad to): record
 * header, handshake header, random, session ID, cipher suites, and SNI, groups, versions, key share
 * and padding extensions.
 */
export function tlsClientHello(): Buffer {
  const u16 = (n: number): Buffer => Buffer.of(n >> 8, n & 0xff)
  const ext = (type: number, body: Buffer): Buffer => Buffer.concat([u16(type), u16(body.length), body])
  const host = Buffer.from('example.com')
  const sni = ext(0x0000, Buffer.concat([u16(host.length + 3), Buffer.of(0), u16(host.length), host]))
  const groups = ext(0x000a, Buffer.concat([u16(6), u16(0x001d), u16(0x0017), u16(0x0018)]))
  const versions = ext(0x002b, Buffer.of(4, 0x03, 0x04, 0x03, 0x03))
  const signatures = ext(0x000d, Buffer.concat([u16(4), u16(0x0403), u16(0x0804)]))
  const keyShare = ext(0x0033, Buffer.concat([u16(36), u16(0x001d), u16(32), randomBytes(32)]))
  const suites = Buffer.concat([u16(6), u16(0x1301), u16(0x1302), u16(0x1303)])
  const body = (extensions: Buffer): Buffer =>
    Buffer.concat([
      Buffer.of(0x03, 0x03),
      randomBytes(32),
      Buffer.of(32),
      randomBytes(32),
      suites,
      Buffer.of(1, 0),
      u16(extensions.length),
      extensions,
    ])
  const unpadded = Buffer.concat([sni, groups, versions, signatures, keyShare])
  const fixed = 5 + 4 + body(unpadded).length + 4
  const padding = ext(0x0015, Buffer.alloc(Math.max(0, 517 - fixed)))
  const hello = body(Buffer.concat([unpadded, padding]))
  const handshake = Buffer.concat([Buffer.of(0x01, 0, hello.length >> 8, hello.length & 0xff), hello])
  return Buffer.concat([Buffer.of(0x16, 0x03, 0x01), u16(handshake.length), handshake])
}

/** Lengths of the GFW's random probes NR1 and NR2 (IMC 2020, docs/security.md §1.5). */
export const GFW_PROBE_LENGTHS = [
  7, 8, 9, 11, 12, 13, 15, 16, 17, 21, 22, 23, 32, 33, 34, 40, 41, 42, 48, 49, 50, 221,
]

/**
 * The GFW's replay probes R1–R5 of a genuine first packet (IMC 2020): identical, byte 0 changed,
 * bytes 0–7 and 62–63 changed, byte 16 changed, bytes 6 and 16 changed.
 */
export function gfwReplays(first: Buffer): { name: string; bytes: Buffer }[] {
  const changed = (offsets: number[]): Buffer => {
    const out = Buffer.from(first)
    for (const offset of offsets) if (offset < out.length) out[offset] = out.readUInt8(offset) ^ 0xa5
    return out
  }
  return [
    { name: 'R1 identical replay', bytes: Buffer.from(first) },
    { name: 'R2 byte 0 changed', bytes: changed([0]) },
    { name: 'R3 bytes 0-7 and 62-63 changed', bytes: changed([0, 1, 2, 3, 4, 5, 6, 7, 62, 63]) },
    { name: 'R4 byte 16 changed', bytes: changed([16]) },
    { name: 'R5 bytes 6 and 16 changed', bytes: changed([6, 16]) },
  ]
}

/**
 * The 2020 active-probing attack on the legacy header (v2ray/v2ray-core#2523): the first 16 + 38
 * bytes of a genuine legacy request with the padding nibble P set to `padding` and the body key's
 * last byte changed (so the (key, IV) history does not match), both by flipping CFB ciphertext bits.
 */
export function legacyAttackProbe(genuine: Buffer, originalPadding: number, padding: number): Buffer {
  const probe = Buffer.from(genuine.subarray(0, 16 + 38))
  // Plaintext byte 35 is P ‖ Sec, byte 32 the body key's last byte; both sit in CFB block 2.
  probe[16 + 35] = probe.readUInt8(16 + 35) ^ ((originalPadding ^ padding) << 4)
  probe[16 + 32] = probe.readUInt8(16 + 32) ^ 0x01
  return probe
}
