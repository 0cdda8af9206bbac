// Every transport network V2Ray and Xray name, in one table: how a config spells it, where its settings live,
// whether tsray runs it, and how share links write it. The schema (stream-settings.ts), the share links
// (share-link.ts) and the transports (transport/stream-settings.ts, through StreamConfig) follow this table.

/** A network in the spelling of share links (v2rayN's `net`; `h2` for HTTP/2). */
export type NetworkId =
  'tcp' | 'kcp' | 'ws' | 'h2' | 'quic' | 'grpc' | 'httpupgrade' | 'xhttp' | 'domainsocket'

/** A share link's names for its host, path and header type fields (the first name is the one written). */
export interface UriFieldNames {
  readonly host: readonly [string, ...string[]]
  readonly path: readonly [string, ...string[]]
  readonly headerType: readonly [string, ...string[]]
}

/** One network. */
export interface NetworkEntry {
  /** `streamSettings.network` words that select it, lower case; the first is V2Ray's own. */
  readonly configNames: readonly [string, ...string[]]
  /** Its settings objects in `streamSettings` and the top-level `transport`. */
  readonly settingsKeys: readonly string[]
  /** tsray runs it; the others are refused by name. */
  readonly runs: boolean
  /** Share links: other spellings of `net`/`type` read as this network, and the URI's field names. */
  readonly link?: { readonly aliases: readonly string[]; readonly uri: UriFieldNames }
  /** A client sends an HTTP Host on it, which TLS takes as the server name when a link gives none. */
  readonly httpHost: boolean
}

const HTTP_URI_FIELDS: UriFieldNames = { host: ['host'], path: ['path'], headerType: ['headerType'] }

/** Every network, keyed by its share-link name. */
export const NETWORKS: Readonly<Record<NetworkId, NetworkEntry>> = {
  tcp: {
    configNames: ['tcp'],
    settingsKeys: ['tcpSettings'],
    runs: true,
    link: { aliases: ['', 'raw'], uri: HTTP_URI_FIELDS },
    httpHost: false,
  },
  ws: {
    configNames: ['ws', 'websocket'],
    settingsKeys: ['wsSettings'],
    runs: true,
    link: { aliases: ['websocket'], uri: HTTP_URI_FIELDS },
    httpHost: true,
  },
  httpupgrade: {
    configNames: ['httpupgrade'],
    settingsKeys: ['httpupgradeSettings'],
    runs: true,
    link: { aliases: [], uri: HTTP_URI_FIELDS },
    httpHost: true,
  },
  h2: {
    configNames: ['http', 'h2'],
    settingsKeys: ['httpSettings'],
    runs: true,
    link: { aliases: [], uri: HTTP_URI_FIELDS },
    httpHost: true,
  },
  grpc: {
    configNames: ['grpc', 'gun'],
    settingsKeys: ['grpcSettings', 'gunSettings'],
    runs: true,
    link: {
      aliases: [],
      uri: { host: ['authority', 'host'], path: ['serviceName', 'path'], headerType: ['mode', 'headerType'] },
    },
    httpHost: false,
  },
  kcp: {
    configNames: ['kcp', 'mkcp'],
    settingsKeys: ['kcpSettings'],
    runs: false,
    link: { aliases: ['mkcp'], uri: { host: ['host'], path: ['seed', 'path'], headerType: ['headerType'] } },
    httpHost: false,
  },
  quic: {
    configNames: ['quic'],
    settingsKeys: ['quicSettings'],
    runs: false,
    link: {
      aliases: [],
      uri: { host: ['quicSecurity', 'host'], path: ['key', 'path'], headerType: ['headerType'] },
    },
    httpHost: false,
  },
  xhttp: {
    configNames: ['xhttp', 'splithttp'],
    settingsKeys: ['xhttpSettings', 'splithttpSettings'],
    runs: false,
    link: {
      aliases: ['splithttp'],
      uri: { host: ['host'], path: ['path'], headerType: ['mode', 'headerType'] },
    },
    httpHost: true,
  },
  domainsocket: {
    configNames: ['domainsocket', 'ds'],
    settingsKeys: ['dsSettings'],
    runs: false,
    httpHost: false,
  },
}

/** Networks in table order. */
export const NETWORK_IDS = Object.keys(NETWORKS) as NetworkId[]

/** The network a `streamSettings.network` word selects (any case), if V2Ray or Xray has it. */
export function networkOfConfigName(word: string): NetworkId | undefined {
  const lower = word.toLowerCase()
  return NETWORK_IDS.find((id) => NETWORKS[id].configNames.includes(lower))
}

/** The network whose settings live under `key` of `streamSettings`. */
export function networkOfSettingsKey(key: string): NetworkId | undefined {
  return NETWORK_IDS.find((id) => NETWORKS[id].settingsKeys.includes(key))
}

/** A share link's field names for the network's host, path and header type. */
export function uriFieldNames(id: NetworkId): UriFieldNames {
  return NETWORKS[id].link?.uri ?? HTTP_URI_FIELDS
}
