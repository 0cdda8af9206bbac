// `outbounds[]`: the common part, `mux`, and the settings of each outbound protocol.
import { z } from 'zod'
import { SECURITY_NAMES, type SecurityName } from '../protocol/constants.js'
import { DEFAULT_VMESS_SECURITY } from './defaults.js'
import { anyValue, refused, withRule } from './keys.js'
import { describeValue } from './paths.js'
import {
  adviseShortId,
  adviseUnknownWord,
  fail,
  Failure,
  integerReader,
  leaf,
  optional,
  protocolReader,
  readAlterId,
  readBoolean,
  readEmail,
  readHost,
  readIpAddress,
  readLevel,
  readPortNumber,
  readString,
  readTag,
  readTimeoutMs,
  readUserLevel,
  readVmessId,
  spellingReader,
} from './readers.js'
import { checkStream, streamSettingsSchema, TCP_STREAM } from './stream-settings.js'
import {
  type BlackholeOutboundSettings,
  type FreedomDomainStrategy,
  type FreedomOutboundSettings,
  type MuxConfig,
  type OutboundCommon,
  type OutboundProtocol,
  type VmessOutboundSettings,
  type VmessServer,
  type VmessUser,
  OUTBOUND_PROTOCOLS,
} from './types.js'

const KNOWN_OUTBOUND_PROTOCOLS = [
  'http',
  'socks',
  'shadowsocks',
  'vless',
  'trojan',
  'mtproto',
  'dns',
  'loopback',
]

/** `outbounds[].protocol`. */
export const outboundProtocolSchema = leaf(
  protocolReader(OUTBOUND_PROTOCOLS, KNOWN_OUTBOUND_PROTOCOLS, 'outbound'),
)

/** V2Ray's `mux.concurrency` when it is 0 or absent. */
const DEFAULT_MUX_CONCURRENCY = 8
/** V2Ray refuses to start with a `mux.concurrency` above this. */
const MAX_MUX_CONCURRENCY = 1024

/** `mux.concurrency` as V2Ray reads it: an int16, 0 meaning 8 and a negative value turning mux off. */
function readMuxConcurrency(value: unknown): number | Failure {
  if (value === undefined) return 0
  const valid = typeof value === 'number' && Number.isInteger(value)
  if (valid && value >= -32768 && value <= MAX_MUX_CONCURRENCY) return value
  return fail(
    `${describeValue(value)} is not a mux concurrency (1–${MAX_MUX_CONCURRENCY}; 0 means ${DEFAULT_MUX_CONCURRENCY}, a negative value turns mux off)`,
  )
}

/** `outbounds[].mux` (Mux.Cool, docs/protocol.md §8). */
const muxSchema = z
  .object({
    enabled: leaf(optional(readBoolean, false)),
    concurrency: leaf(readMuxConcurrency),
  })
  .transform((mux): MuxConfig => ({
    enabled: mux.enabled && mux.concurrency >= 0,
    concurrency: mux.concurrency > 0 ? mux.concurrency : DEFAULT_MUX_CONCURRENCY,
  }))

/** `outbounds[]` without its `settings`, which are read by protocol. */
export const outboundSchema = z
  .object({
    tag: leaf(readTag),
    protocol: outboundProtocolSchema,
    settings: anyValue(),
    streamSettings: streamSettingsSchema.optional(),
    sendThrough: leaf(optional(readIpAddress, undefined)),
    mux: muxSchema.optional(),
    proxySettings: refused('not supported yet: tsray does not chain outbounds'),
  })
  .superRefine(checkStream('outbound'))
  .superRefine((outbound, context) => {
    // Only a VMess outbound can carry Mux.Cool; V2Ray would send freedom's sub-sessions to "v1.mux.cool".
    if (outbound.mux?.enabled === true && outbound.protocol !== 'vmess') {
      context.addIssue({
        code: 'custom',
        path: ['mux', 'enabled'],
        message: 'Mux.Cool (mux.enabled) is not supported yet',
      })
    }
  })
  .transform((outbound): OutboundCommon & { readonly protocol: OutboundProtocol } => ({
    tag: outbound.tag,
    protocol: outbound.protocol,
    stream: outbound.streamSettings ?? TCP_STREAM,
    sendThrough: outbound.sendThrough,
    // Present only when on, so outbounds without Mux.Cool read as before.
    ...(outbound.mux?.enabled === true ? { mux: outbound.mux } : {}),
  }))

const FREEDOM_STRATEGIES: Readonly<Record<string, FreedomDomainStrategy>> = {
  asis: 'AsIs',
  useip: 'UseIP',
  use_ip: 'UseIP',
  useip4: 'UseIPv4',
  useipv4: 'UseIPv4',
  use_ipv4: 'UseIPv4',
  use_ip_v4: 'UseIPv4',
  use_ip4: 'UseIPv4',
  useip6: 'UseIPv6',
  useipv6: 'UseIPv6',
  use_ipv6: 'UseIPv6',
  use_ip_v6: 'UseIPv6',
  use_ip6: 'UseIPv6',
}

/** `redirect` of freedom: "host:port" as Go's SplitHostPort reads it; an empty host or port 0 keeps the request's. */
function readRedirect(value: unknown): FreedomOutboundSettings['redirect'] | Failure {
  if (value === undefined || value === '') return undefined
  if (typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(value)
  const port = Number(match?.[3])
  if (match === null || port > 65535) return fail(`${describeValue(value)} is not "host:port"`)
  const host = match[1] ?? match[2] ?? ''
  return { host: host === '' ? undefined : host, port: port === 0 ? undefined : port }
}

/** `settings` of a freedom outbound. */
export const freedomOutboundSettingsSchema = z
  .object({
    domainStrategy: withRule(leaf(spellingReader(FREEDOM_STRATEGIES, 'AsIs')), {
      advise: adviseUnknownWord(Object.keys(FREEDOM_STRATEGIES), 'a freedom domain strategy', 'AsIs'),
    }),
    redirect: leaf(readRedirect),
    timeout: leaf(readTimeoutMs),
    userLevel: leaf(readUserLevel),
  })
  .transform((settings): FreedomOutboundSettings => ({
    domainStrategy: settings.domainStrategy,
    redirect: settings.redirect,
    timeoutMs: settings.timeout,
    userLevel: settings.userLevel,
  }))

function readBlackholeResponse(value: unknown): 'none' | 'http' | Failure {
  if (value === undefined) return 'none'
  const type = typeof value === 'string' ? value.toLowerCase() : value
  if (type === 'none' || type === 'http') return type
  return fail(`${describeValue(value)} is not a blackhole response type (supported: "none", "http")`)
}

/** `settings` of a blackhole outbound. */
export const blackholeOutboundSettingsSchema = z
  .object({ response: z.object({ type: leaf(readBlackholeResponse) }).optional() })
  .transform((settings): BlackholeOutboundSettings => ({ response: settings.response?.type ?? 'none' }))

const SECURITY_SPELLINGS: Readonly<Record<string, SecurityName>> = Object.fromEntries(
  SECURITY_NAMES.map((name) => [name, name]),
)

const EXPERIMENTS = ['AuthenticatedLength', 'NoTerminationSignal']

function adviseExperiments(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  const unknown = value.split(/[|,\s]+/).filter((word) => word !== '' && !EXPERIMENTS.includes(word))
  return unknown.length === 0
    ? undefined
    : `${unknown.map((word) => describeValue(word)).join(', ')} ignored (known: ${EXPERIMENTS.join(', ')})`
}

/** The keys of one VMess user, in `vnext[].users[]` and at the top of Xray's short form. */
const vmessUserShape = {
  id: withRule(leaf(readVmessId), { advise: adviseShortId }),
  alterId: leaf(readAlterId),
  security: withRule(leaf(spellingReader(SECURITY_SPELLINGS, DEFAULT_VMESS_SECURITY)), {
    advise: adviseUnknownWord(SECURITY_NAMES, 'a VMess security', DEFAULT_VMESS_SECURITY),
  }),
  level: leaf(readLevel),
  email: leaf(readEmail),
  experiments: withRule(leaf(optional(readString, '')), { advise: adviseExperiments }),
}

const vmessUserObject = z.object(vmessUserShape)

function toVmessUser(user: z.output<typeof vmessUserObject>): VmessUser {
  return {
    id: user.id,
    alterId: user.alterId,
    security: user.security,
    level: user.level,
    email: user.email,
    // v2fly v5 looks for the words anywhere in the string.
    authenticatedLength: user.experiments.includes('AuthenticatedLength'),
    noTerminationSignal: user.experiments.includes('NoTerminationSignal'),
  }
}

const vmessUserSchema = vmessUserObject.transform(toVmessUser)

const vmessServerSchema = z
  .object({
    address: leaf(readHost),
    port: leaf(readPortNumber),
    users: z.array(vmessUserSchema).min(1),
  })
  .transform((server): VmessServer => ({ address: server.address, port: server.port, users: server.users }))

/** Bounds of `maxChunkLength`: the whole chunk, length field included, as a VMess length field holds it. */
const MIN_CHUNK_LENGTH_SETTING = 1_024
const MAX_CHUNK_LENGTH_SETTING = 65_535

/**
 * Xray's short form of one server and user: `address`, `port`, `id`, `security`, `level`, `email` beside
 * `vnext` (Xray's VMessOutboundConfig). Xray reads it when `address` is set; its VMess has no alterId.
 */
const shortFormShape = {
  address: leaf(optional(readHost, undefined)),
  port: leaf(optional(readPortNumber, undefined)),
  id: withRule(leaf(optional(readVmessId, undefined)), { advise: adviseShortId }),
  security: vmessUserShape.security,
  level: vmessUserShape.level,
  email: vmessUserShape.email,
  experiments: vmessUserShape.experiments,
}

/** `settings` of a VMess outbound: `vnext`, or Xray's short form. */
export const vmessOutboundSettingsSchema = z
  .object({
    vnext: z.array(vmessServerSchema).min(1).optional(),
    ...shortFormShape,
    maxChunkLength: leaf(
      optional(integerReader(MIN_CHUNK_LENGTH_SETTING, MAX_CHUNK_LENGTH_SETTING), undefined),
    ),
  })
  .superRefine((settings, context) => {
    const missing = (key: string): void =>
      context.addIssue({ code: 'custom', path: [key], message: 'is required' })
    if (settings.address === undefined) {
      if (settings.vnext === undefined) missing('vnext')
      return
    }
    if (settings.port === undefined) missing('port')
    if (settings.id === undefined) missing('id')
  })
  .transform((settings): VmessOutboundSettings => {
    const { address, port, id } = settings
    const vnext =
      address !== undefined && port !== undefined && id !== undefined
        ? [{ address, port, users: [toVmessUser({ ...settings, id, alterId: 0 })] }]
        : (settings.vnext ?? [])
    return {
      vnext,
      ...(settings.maxChunkLength !== undefined ? { maxChunkLength: settings.maxChunkLength } : {}),
    }
  })

/** The settings schema of each outbound protocol. */
export const outboundSettingsSchemas = {
  vmess: vmessOutboundSettingsSchema,
  freedom: freedomOutboundSettingsSchema,
  blackhole: blackholeOutboundSettingsSchema,
} as const
