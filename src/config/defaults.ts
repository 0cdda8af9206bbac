// Defaults a V2Ray v4 config falls back to when a key is absent. The policy values are V2Ray's code
// defaults since mid-2020 (and Xray's), not the 4/300/2/5 s its documentation still gives (docs/protocol.md §9).

/** `handshake`: one read deadline covering the whole request-header read, drain included. */
export const HANDSHAKE_TIMEOUT_MS = 60_000
/** `connIdle`: a connection with no traffic in either direction for this long is closed. */
export const CONN_IDLE_MS = 300_000
/** `uplinkOnly`: how long the uplink may stay idle once the downlink has ended. */
export const UPLINK_ONLY_MS = 1_000
/** `downlinkOnly`: how long the downlink may stay idle once the uplink has ended. */
export const DOWNLINK_ONLY_MS = 1_000
/** `bufferSize`: the per-connection buffer between inbound and outbound, V2Ray's value on amd64. */
export const BUFFER_SIZE_BYTES = 512 * 1024

/** `log.loglevel` when absent or not a level V2Ray knows. */
export const DEFAULT_LOG_LEVEL = 'warning'
/** `inbounds[].listen` when absent: every IPv4 address. */
export const DEFAULT_LISTEN_ADDRESS = '0.0.0.0'
/** `users[].security` of a VMess outbound when absent or not a word V2Ray knows. */
export const DEFAULT_VMESS_SECURITY = 'auto'
/** tsray's `settings.legacyHeader` of a VMess inbound: accept MD5-authenticated headers, as V2Ray 4.34 does. */
export const DEFAULT_LEGACY_HEADER_MODE = 'accept'

/** Largest `alterId` (a 16-bit field in V2Ray's config). */
export const MAX_ALTER_ID = 65535
/** Largest user `level` (a byte in V2Ray's config). */
export const MAX_USER_LEVEL = 255
/** A VMess id that is not a UUID may be this long at most; Xray maps such ids to a UUIDv5 (docs/protocol.md §1). */
export const MAX_NON_UUID_ID_BYTES = 30

/** What `geoip:private` stands for in routing rules: v2fly/geoip's "private" list, so no geoip.dat is needed. */
export const PRIVATE_IP_RANGES: readonly string[] = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '255.255.255.255/32',
  '::/128',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
  'ff00::/8',
]
