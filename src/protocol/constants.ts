/** Security values as sent in the low nibble of request header byte 35 (docs/protocol.md §5). */
export const Security = {
  Legacy0: 0x00,
  Aes128Cfb: 0x01,
  Auto: 0x02,
  Aes128Gcm: 0x03,
  Chacha20Poly1305: 0x04,
  None: 0x05,
  Zero: 0x06,
} as const
export type SecurityValue = (typeof Security)[keyof typeof Security]

/** Security names as written in configs and links. */
export const SECURITY_NAMES = [
  'aes-128-cfb',
  'aes-128-gcm',
  'chacha20-poly1305',
  'auto',
  'none',
  'zero',
] as const
export type SecurityName = (typeof SECURITY_NAMES)[number]

/** Request option bits (docs/protocol.md §5). */
export const Option = {
  ChunkStream: 0x01,
  ConnectionReuse: 0x02,
  ChunkMasking: 0x04,
  GlobalPadding: 0x08,
  AuthenticatedLength: 0x10,
} as const

/** Request commands (docs/protocol.md §5). */
export const Command = {
  Tcp: 0x01,
  Udp: 0x02,
  Mux: 0x03,
} as const
export type CommandValue = (typeof Command)[keyof typeof Command]

/** Address types of the VMess request header and Mux.Cool frames (docs/protocol.md §5). */
export const AddressType = {
  Ipv4: 0x01,
  Domain: 0x02,
  Ipv6: 0x03,
} as const

/** The AEAD and legacy servers accept |t − now| ≤ this many seconds (docs/protocol.md §3.2, §4.3). */
export const TIME_WINDOW_SECONDS = 120
/** A (user, body key, body IV) tuple is remembered this long (docs/protocol.md §3.2). */
export const SESSION_HISTORY_SECONDS = 180
/** Readers accept chunks up to the 16-bit length limit (docs/protocol.md §7.3). */
export const MAX_CHUNK_LENGTH = 65535
/** Largest whole UDP chunk V2Ray reads without splitting the datagram (docs/protocol.md §8). */
export const MAX_UDP_CHUNK_LENGTH = 2048
/** Largest domain name in an address field. */
export const MAX_DOMAIN_LENGTH = 255
