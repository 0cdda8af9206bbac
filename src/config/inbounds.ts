// `inbounds[]`: the common part and the settings of each inbound protocol.
import { z } from 'zod'
import { DEFAULT_LEGACY_HEADER_MODE } from './defaults.js'
import { advised, anyValue, ignored, refused, withRule } from './keys.js'
import { describeValue, lookupKey } from './paths.js'
import {
  adviseShortId,
  fail,
  Failure,
  leaf,
  optional,
  protocolReader,
  readAlterId,
  readBoolean,
  readEmail,
  readHost,
  readLevel,
  readListenAddress,
  readListenPort,
  readPortNumber,
  readRequiredString,
  readTag,
  readTimeoutMs,
  readUserLevel,
  readVmessId,
  uniqueNetworks,
} from './readers.js'
import { checkStream, streamSettingsSchema, TCP_STREAM } from './stream-settings.js'
import { readOffOnly } from './stream-tcp.js'
import {
  type Account,
  type DokodemoInboundSettings,
  type HttpInboundSettings,
  INBOUND_PROTOCOLS,
  type InboundCommon,
  type InboundProtocol,
  type LegacyHeaderMode,
  type Network,
  type SocksInboundSettings,
  type VmessClient,
  type VmessInboundSettings,
} from './types.js'

const KNOWN_INBOUND_PROTOCOLS = ['shadowsocks', 'vless', 'trojan', 'mtproto', 'hysteria2']

/** `inbounds[].protocol`. */
export const inboundProtocolSchema = leaf(
  protocolReader(INBOUND_PROTOCOLS, KNOWN_INBOUND_PROTOCOLS, 'inbound'),
)

/** `inbounds[]` without its `settings`, which are read by protocol. `port` has had "env:" resolved. */
export const inboundSchema = z
  .object({
    tag: leaf(readTag),
    listen: leaf(readListenAddress),
    port: leaf(readListenPort),
    protocol: inboundProtocolSchema,
    settings: anyValue(),
    streamSettings: streamSettingsSchema.optional(),
    sniffing: advised((value) =>
      lookupKey(value, 'enabled') === true ? 'ignored: tsray does not sniff traffic' : undefined,
    ),
    allocate: ignored('tsray listens on one port per inbound'),
    domainOverride: ignored('tsray does not sniff traffic'),
  })
  .superRefine(checkStream('inbound'))
  .transform((inbound): InboundCommon & { readonly protocol: InboundProtocol } => ({
    tag: inbound.tag,
    listen: inbound.listen,
    port: inbound.port,
    protocol: inbound.protocol,
    stream: inbound.streamSettings ?? TCP_STREAM,
  }))

const vmessClientSchema = z
  .object({
    id: withRule(leaf(readVmessId), { advise: adviseShortId }),
    alterId: leaf(readAlterId),
    email: leaf(readEmail),
    level: leaf(readLevel),
    // Clients choose their own security; a V2Ray server reads this key and ignores it.
    security: anyValue(),
  })
  .transform((client): VmessClient => ({
    id: client.id,
    alterId: client.alterId,
    email: client.email,
    level: client.level,
  }))

const LEGACY_HEADER_MODES: readonly LegacyHeaderMode[] = ['accept', 'warn', 'refuse']

function readLegacyHeaderMode(value: unknown): LegacyHeaderMode | Failure {
  if (value === undefined) return DEFAULT_LEGACY_HEADER_MODE
  const mode = LEGACY_HEADER_MODES.find((candidate) => candidate === value)
  return mode ?? fail(`${describeValue(value)} is not one of "accept", "warn", "refuse"`)
}

/** `settings` of a VMess inbound. */
export const vmessInboundSettingsSchema = z
  .object({
    clients: z.array(vmessClientSchema).optional(),
    disableInsecureEncryption: leaf(optional(readBoolean, false)),
    legacyHeader: leaf(readLegacyHeaderMode),
    // Defaults for users added through V2Ray's API, which tsray does not have.
    default: anyValue(),
    detour: refused('not supported: tsray has no dynamic ports'),
    features: z.object({ detour: refused('not supported: tsray has no dynamic ports') }).optional(),
  })
  .transform((settings): VmessInboundSettings => ({
    clients: settings.clients ?? [],
    disableInsecureEncryption: settings.disableInsecureEncryption,
    legacyHeader: settings.legacyHeader,
  }))

function readAccountField(value: unknown): string | Failure {
  const text = readRequiredString(value)
  if (text instanceof Failure) return text
  return Buffer.byteLength(text, 'utf8') <= 255 ? text : fail('is longer than 255 bytes')
}

const accountSchema = z
  .object({ user: leaf(readAccountField), pass: leaf(readAccountField) })
  .transform((account): Account => ({ user: account.user, pass: account.pass }))

function readSocksAuth(value: unknown): 'noauth' | 'password' | Failure {
  if (value === undefined || value === 'noauth') return 'noauth'
  if (value === 'password') return 'password'
  return fail(`${describeValue(value)} is not a SOCKS auth method (supported: "noauth", "password")`)
}

/** `settings` of a SOCKS inbound. */
export const socksInboundSettingsSchema = z
  .object({
    auth: leaf(readSocksAuth),
    accounts: z.array(accountSchema).optional(),
    udp: leaf(optional(readBoolean, false)),
    ip: leaf(optional(readHost, undefined)),
    timeout: leaf(readTimeoutMs),
    userLevel: leaf(readUserLevel),
  })
  .transform((settings): SocksInboundSettings => ({
    auth: settings.auth,
    accounts: settings.accounts ?? [],
    udp: settings.udp,
    ip: settings.ip,
    timeoutMs: settings.timeout,
    userLevel: settings.userLevel,
  }))

/** `settings` of an HTTP proxy inbound. */
export const httpInboundSettingsSchema = z
  .object({
    accounts: z.array(accountSchema).optional(),
    allowTransparent: advised((value) =>
      value === true ? 'ignored: tsray answers only proxy requests' : undefined,
    ),
    timeout: leaf(readTimeoutMs),
    userLevel: leaf(readUserLevel),
  })
  .transform((settings): HttpInboundSettings => ({
    accounts: settings.accounts ?? [],
    timeoutMs: settings.timeout,
    userLevel: settings.userLevel,
  }))

/** `settings` of a dokodemo-door inbound. */
export const dokodemoInboundSettingsSchema = z
  .object({
    address: leaf(readHost),
    port: leaf(readPortNumber),
    network: leaf(optional(uniqueNetworks, ['tcp'] as Network[])),
    followRedirect: leaf(readOffOnly('followRedirect (transparent proxying)')),
    timeout: leaf(readTimeoutMs),
    userLevel: leaf(readUserLevel),
  })
  .transform((settings): DokodemoInboundSettings => ({
    address: settings.address,
    port: settings.port,
    networks: settings.network,
    timeoutMs: settings.timeout,
    userLevel: settings.userLevel,
  }))

/** The settings schema of each inbound protocol. */
export const inboundSettingsSchemas = {
  vmess: vmessInboundSettingsSchema,
  socks: socksInboundSettingsSchema,
  http: httpInboundSettingsSchema,
  'dokodemo-door': dokodemoInboundSettingsSchema,
} as const
