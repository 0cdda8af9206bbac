// `streamSettings` (network, security, each transport's settings) and the top-level `transport` defaults.
import { z } from 'zod'
import { advised, anyValue, type AnyValue, ignored, refused, withRule } from './keys.js'
import { NETWORK_IDS, NETWORKS, networkOfConfigName } from './networks.js'
import { describeValue, type JsonPath, lookupKey } from './paths.js'
import {
  adviseUnknownWord,
  fail,
  Failure,
  integerReader,
  leaf,
  MAX_INT32,
  optional,
  readBoolean,
  readString,
  readStringList,
} from './readers.js'
import { grpcSettingsSchema, httpSettingsSchema } from './stream-http2.js'
import {
  readHeaderName,
  readHeaderValue,
  readOffOnly,
  readRequestHeaders,
  readTcpHeaderType,
  tcpSettingsSchema,
} from './stream-tcp.js'
import {
  type HttpUpgradeConfig,
  type PemSource,
  type StreamConfig,
  type StreamSecurityConfig,
  type TlsCertificateConfig,
  type TlsConfig,
  type WebSocketConfig,
} from './types.js'

/** The networks tsray runs, as the table spells them in messages. */
const RUNNING_NETWORKS = NETWORK_IDS.filter((id) => NETWORKS[id].runs)
const SUPPORTED_NETWORKS = RUNNING_NETWORKS.map((id) => `"${NETWORKS[id].configNames[0]}"`).join(', ')

function readTransportNetwork(value: unknown): StreamConfig['network'] | Failure {
  if (value === undefined) return 'tcp'
  if (typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
  const network = networkOfConfigName(value)
  // The table's running networks are the ones StreamConfig has.
  if (network !== undefined && NETWORKS[network].runs) return network as StreamConfig['network']
  if (network !== undefined) {
    return fail(`${describeValue(value)} is not supported yet (supported: ${SUPPORTED_NETWORKS})`)
  }
  return fail(`${describeValue(value)} is not a V2Ray transport (supported: ${SUPPORTED_NETWORKS})`)
}

/** `security`: V2Ray 4.34 turns on TLS for "tls" in any case and reads every other word as none. */
function readStreamSecurity(value: unknown): 'none' | 'tls' | Failure {
  if (value !== undefined && typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
  const security = value?.toLowerCase()
  if (security === 'xtls' || security === 'reality') {
    return fail(`${describeValue(value)} is not supported yet (supported: "none", "tls")`)
  }
  return security === 'tls' ? 'tls' : 'none'
}

/** A path as V2Ray's GetNormalizedPath writes it, and Xray's `ed` query parameter taken out of it. */
function splitEarlyDataParameter(raw: string): { path: string; ed: number } {
  const path = raw === '' ? '/' : raw.startsWith('/') ? raw : `/${raw}`
  const query = path.indexOf('?')
  if (query < 0) return { path, ed: 0 }
  const parameters = new URLSearchParams(path.slice(query + 1))
  const ed = parameters.get('ed')
  if (ed === null || ed === '') return { path, ed: 0 }
  parameters.delete('ed')
  const rest = parameters.toString()
  // Go's strconv.Atoi: anything but an integer reads as 0 (no early data).
  const bytes = /^\d{1,10}$/.test(ed) ? Math.min(Number(ed), MAX_INT32) : 0
  return { path: `${path.slice(0, query)}${rest === '' ? '' : `?${rest}`}`, ed: bytes }
}

function readRequestPath(value: unknown): string | Failure {
  const path = readString(value)
  if (path instanceof Failure) return path
  return /^[\x21-\x7e]*$/.test(path) && !path.includes('#')
    ? path
    : fail(`${describeValue(value)} is not a request path (no spaces, control characters or "#")`)
}

/** The Host to send: `host`, else a `Host` entry of `headers` (any case), which is then not sent twice. */
function splitHost(
  host: string,
  headers: readonly [string, string][],
): {
  host: string | undefined
  headers: [string, string][]
} {
  const fromHeaders = headers.find(([name]) => name.toLowerCase() === 'host')?.[1]
  return {
    host: host !== '' ? host : fromHeaders,
    headers: headers.filter(([name]) => name.toLowerCase() !== 'host'),
  }
}

const wsSettingsSchema = z
  .object({
    path: leaf(optional(readRequestPath, '')),
    host: leaf(optional(readHeaderValue, '')),
    headers: leaf(optional(readRequestHeaders, [])),
    maxEarlyData: leaf(optional(integerReader(0, MAX_INT32), 0)),
    earlyDataHeaderName: leaf(optional(readHeaderName, '')),
    acceptProxyProtocol: leaf(readOffOnly('the PROXY protocol')),
    useBrowserForwarding: leaf(readOffOnly('browser forwarding (useBrowserForwarding)')),
  })
  .transform((ws): WebSocketConfig => {
    const { path, ed } = splitEarlyDataParameter(ws.path)
    const { host, headers } = splitHost(ws.host, ws.headers)
    const earlyData =
      ws.maxEarlyData > 0
        ? {
            maxBytes: ws.maxEarlyData,
            headerName: ws.earlyDataHeaderName === '' ? undefined : ws.earlyDataHeaderName,
          }
        : ed > 0
          ? { maxBytes: ed, headerName: 'Sec-WebSocket-Protocol' }
          : undefined
    return { path, host, requireHost: ws.host !== '', headers, earlyData }
  })

const httpUpgradeSettingsSchema = z
  .object({
    path: leaf(optional(readRequestPath, '')),
    host: leaf(optional(readHeaderValue, '')),
    headers: leaf(optional(readRequestHeaders, [])),
    acceptProxyProtocol: leaf(readOffOnly('the PROXY protocol')),
  })
  .transform((upgrade): HttpUpgradeConfig => {
    const { path, ed } = splitEarlyDataParameter(upgrade.path)
    return { path, ...splitHost(upgrade.host, upgrade.headers), earlyData: ed > 0 }
  })

/** `certificate` / `key` lines; V2Ray joins them with "\n". */
function readPemLines(value: unknown): string | Failure {
  const lines = typeof value === 'string' ? [value] : readStringList(value)
  if (lines instanceof Failure) return lines
  return lines.join('\n')
}

function readCertificateUsage(value: unknown): 'encipherment' | 'verify' | Failure {
  const usage = typeof value === 'string' ? value.toLowerCase() : value
  if (usage === 'issue') {
    return fail('"issue" is not supported: tsray does not issue certificates on the fly (use "encipherment")')
  }
  if (usage !== undefined && typeof usage !== 'string') return fail(`${describeValue(value)} is not a string`)
  return usage === 'verify' ? 'verify' : 'encipherment'
}

const optionalText = leaf(optional(readString, ''))

const tlsCertificateSchema = z
  .object({
    certificateFile: optionalText,
    certificate: leaf(optional(readPemLines, '')),
    keyFile: optionalText,
    key: leaf(optional(readPemLines, '')),
    usage: withRule(leaf(readCertificateUsage), {
      advise: adviseUnknownWord(['encipherment', 'verify', 'issue'], 'a certificate usage', 'encipherment'),
    }),
  })
  .transform((entry, context): TlsCertificateConfig => {
    // As V2Ray's readFileOrString: the file wins over inline lines.
    const source = (file: string, inline: string): PemSource | undefined =>
      file !== '' ? { file } : inline !== '' ? { inline } : undefined
    const certificate = source(entry.certificateFile, entry.certificate)
    if (certificate === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['certificateFile'],
        message: 'is required (or the certificate lines)',
      })
      return z.NEVER
    }
    return { certificate, key: source(entry.keyFile, entry.key), usage: entry.usage }
  })

const tlsSettingsSchema = z
  .object({
    serverName: optionalText,
    alpn: leaf(optional(readStringList, [])),
    allowInsecure: withRule(leaf(optional(readBoolean, false)), {
      advise: (value) =>
        value === true
          ? 'the server certificate is not checked: anyone on the path can read and change the traffic'
          : undefined,
    }),
    certificates: z.array(tlsCertificateSchema).optional(),
    disableSystemRoot: leaf(optional(readBoolean, false)),
    enableSessionResumption: advised((value) =>
      value === true ? 'ignored: tsray leaves TLS session resumption to Node' : undefined,
    ),
    fingerprint: advised((value) =>
      typeof value === 'string' && value !== ''
        ? `${describeValue(value)} ignored: Node cannot imitate a browser's TLS handshake (uTLS), so tsray sends Node's own`
        : undefined,
    ),
    pinnedPeerCertificateChainSha256: refused('not supported yet: tsray does not pin certificates'),
    pinnedPeerCertSha256: refused('not supported yet: tsray does not pin certificates'),
  })
  .transform((tls): TlsConfig => ({
    serverName: tls.serverName === '' ? undefined : tls.serverName,
    alpn: tls.alpn.length === 0 ? undefined : tls.alpn,
    allowInsecure: tls.allowInsecure,
    certificates: tls.certificates ?? [],
    disableSystemRoot: tls.disableSystemRoot,
  }))

export const TCP_STREAM: StreamConfig = { network: 'tcp', security: 'none' }

const DEFAULT_TLS: TlsConfig = {
  serverName: undefined,
  alpn: undefined,
  allowInsecure: false,
  certificates: [],
  disableSystemRoot: false,
}

const onlyFor = (network: string): string => `used only when network is "${network}"`

/** The settings keys of the networks tsray does not run, each ignored with the network it belongs to. */
function otherNetworksSettings(): Record<string, AnyValue> {
  return Object.fromEntries(
    NETWORK_IDS.filter((id) => !NETWORKS[id].runs).flatMap((id) => {
      const { settingsKeys, configNames } = NETWORKS[id]
      return settingsKeys.map((key, index) => [key, ignored(onlyFor(configNames[index] ?? configNames[0]))])
    }),
  )
}

/** Warns about the settings of a transport or security that `network` and `security` do not select. */
function adviseUnusedStreamSettings(value: unknown): string | undefined {
  const network = readTransportNetwork(lookupKey(value, 'network'))
  const security = readStreamSecurity(lookupKey(value, 'security'))
  if (network instanceof Failure || security instanceof Failure) return undefined
  const unused = RUNNING_NETWORKS.filter((id) => id !== network)
    .flatMap((id) => NETWORKS[id].settingsKeys.map((key) => ({ key, id })))
    .filter(({ key }) => lookupKey(value, key) !== undefined)
    .map(({ key, id }) => `${key} (${onlyFor(NETWORKS[id].configNames[0])})`)
  if (security !== 'tls' && lookupKey(value, 'tlsSettings') !== undefined) {
    unused.push('tlsSettings (used only when security is "tls")')
  }
  return unused.length === 0 ? undefined : `ignored: ${unused.join(', ')}`
}

/** `streamSettings` of an inbound or outbound: TCP (with optional HTTP header), WebSocket, HTTPUpgrade, h2 or gRPC, each with optional TLS. */
export const streamSettingsSchema = withRule(
  z
    .object({
      network: leaf(readTransportNetwork),
      security: withRule(leaf(readStreamSecurity), {
        advise: adviseUnknownWord(['', 'none', 'tls', 'xtls', 'reality'], 'a stream security', 'none'),
      }),
      tlsSettings: tlsSettingsSchema.optional(),
      xtlsSettings: ignored('used only when security is "xtls"'),
      realitySettings: ignored('used only when security is "reality"'),
      tcpSettings: tcpSettingsSchema.optional(),
      wsSettings: wsSettingsSchema.optional(),
      httpupgradeSettings: httpUpgradeSettingsSchema.optional(),
      httpSettings: httpSettingsSchema.optional(),
      grpcSettings: grpcSettingsSchema.optional(),
      gunSettings: grpcSettingsSchema.optional(),
      ...otherNetworksSettings(),
      sockopt: z
        .object({
          mark: ignored('tsray does not set SO_MARK'),
          tcpFastOpen: ignored('tsray does not set TCP Fast Open'),
          tproxy: leaf((value: unknown): 'off' | Failure =>
            value === undefined || value === 'off'
              ? 'off'
              : fail(`${describeValue(value)} is not supported yet (transparent proxying)`),
          ),
          acceptProxyProtocol: leaf(readOffOnly('the PROXY protocol')),
        })
        .optional(),
    })
    .transform((stream): StreamConfig => {
      const security: StreamSecurityConfig =
        stream.security === 'tls'
          ? { security: 'tls', tls: stream.tlsSettings ?? DEFAULT_TLS }
          : { security: 'none' }
      switch (stream.network) {
        case 'tcp':
          return stream.tcpSettings === undefined
            ? { network: 'tcp', ...security }
            : { network: 'tcp', ...security, httpHeader: stream.tcpSettings }
        case 'ws':
          return { network: 'ws', ...security, ws: stream.wsSettings ?? wsSettingsSchema.parse({}) }
        case 'httpupgrade':
          return {
            network: 'httpupgrade',
            ...security,
            httpUpgrade: stream.httpupgradeSettings ?? httpUpgradeSettingsSchema.parse({}),
          }
        case 'h2':
          return { network: 'h2', ...security, h2: stream.httpSettings ?? httpSettingsSchema.parse({}) }
        case 'grpc':
          // v2fly reads gunSettings when it is there, else grpcSettings.
          return {
            network: 'grpc',
            ...security,
            grpc: stream.gunSettings ?? stream.grpcSettings ?? grpcSettingsSchema.parse({}),
          }
      }
    }),
  { advise: adviseUnusedStreamSettings },
)

/**
 * What a stream cannot do on this inbound or outbound: transports other than plain TCP carry VMess only, and
 * a TLS server needs a certificate with its key. Paths are relative to `streamSettings`.
 */
export function streamProblems(
  stream: StreamConfig,
  options: { readonly protocol: string; readonly side: 'inbound' | 'outbound' },
): { readonly path: JsonPath; readonly message: string }[] {
  const problems: { path: JsonPath; message: string }[] = []
  if (options.protocol !== 'vmess') {
    if (stream.network !== 'tcp') {
      problems.push({
        path: ['network'],
        message: `"${stream.network}" is not supported yet (supported: "tcp")`,
      })
    } else if (stream.httpHeader !== undefined) {
      problems.push({
        path: ['tcpSettings', 'header', 'type'],
        message: '"http" is not supported yet (supported: "none")',
      })
    }
    if (stream.security === 'tls') {
      problems.push({ path: ['security'], message: '"tls" is not supported yet (supported: "none")' })
    }
  } else if (
    options.side === 'inbound' &&
    stream.tls !== undefined &&
    !stream.tls.certificates.some((entry) => entry.usage === 'encipherment' && entry.key !== undefined)
  ) {
    problems.push({
      path: ['tlsSettings', 'certificates'],
      message:
        'has no certificate with a key; a TLS server needs one (certificateFile and keyFile, or certificate and key)',
    })
  }
  return problems
}

/** A superRefine for inboundSchema and outboundSchema that reports `streamProblems`. */
export function checkStream(side: 'inbound' | 'outbound') {
  return (
    entry: { readonly protocol: string; readonly streamSettings?: StreamConfig | undefined },
    context: { addIssue(issue: { code: 'custom'; path: PropertyKey[]; message: string }): void },
  ): void => {
    for (const problem of streamProblems(entry.streamSettings ?? TCP_STREAM, {
      protocol: entry.protocol,
      side,
    })) {
      context.addIssue({
        code: 'custom',
        path: ['streamSettings', ...problem.path],
        message: problem.message,
      })
    }
  }
}

const MOVE_TO_STREAM_SETTINGS =
  'not supported: tsray reads transport settings only from each streamSettings; move them there'

/** Top-level `transport`: V2Ray's defaults for every streamSettings. tsray refuses the ones that would change a supported transport. */
export const transportSchema = z.object({
  tcpSettings: z
    .object({
      header: z
        .object({ type: leaf(readTcpHeaderType), request: anyValue(), response: anyValue() })
        .optional(),
      acceptProxyProtocol: leaf(readOffOnly('the PROXY protocol')),
    })
    .superRefine((tcp, context) => {
      if (tcp.header?.type === 'http') {
        context.addIssue({
          code: 'custom',
          path: ['header', 'type'],
          message: `"http" is ${MOVE_TO_STREAM_SETTINGS}`,
        })
      }
    })
    .optional(),
  wsSettings: refused(MOVE_TO_STREAM_SETTINGS),
  httpupgradeSettings: refused(MOVE_TO_STREAM_SETTINGS),
  httpSettings: refused(MOVE_TO_STREAM_SETTINGS),
  grpcSettings: refused(MOVE_TO_STREAM_SETTINGS),
  gunSettings: refused(MOVE_TO_STREAM_SETTINGS),
  ...otherNetworksSettings(),
})
