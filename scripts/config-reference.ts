/**
 * Generates docs/configuration.md from the config schema: every key the loader knows, with what tsray
 * does with it. Run `npm run docs:config` after changing the schema; test/docs/configuration.test.ts
 * fails while the page and the schema disagree.
 *
 * The schema is walked as the loader walks it: as the JSON Schema of its input side that z.toJSONSchema
 * makes (properties, items, additionalProperties, nullable anyOf), with each key's rule (ignored or
 * refused, with the reason the loader prints) carried there as metadata (src/config/keys.ts).
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { z } from 'zod'
import { type KeyNode, keyNodeOf, keyRuleOf, type KeyRule } from '../src/config/keys.js'
import * as schema from '../src/config/schema.js'

/** What tsray does with a key. */
export type KeyStatus =
  | 'supported'
  | 'tsray extension'
  | 'accepted, not used'
  | 'ignored, warns when set'
  | 'ignored with a warning'
  | 'refused'
  | 'off only'

export interface KeyEntry {
  /** JSON path with `[]` for list elements and `<name>` for map keys. */
  readonly path: string
  readonly status: KeyStatus
  /** The loader's own words (warning or error), or a note from KEY_NOTES. */
  readonly note: string
}

/** A section of the config and the schema that reads it. */
export interface SchemaRoot {
  readonly title: string
  readonly path: string
  readonly schema: z.ZodType
  readonly intro?: string
}

/** tsray's own keys, which V2Ray and Xray do not have, and what each does. */
export const TSRAY_KEYS: Readonly<Record<string, string>> = {
  'inbounds[].admission':
    "Limits on an inbound's concurrent TCP connections (VMess, SOCKS, HTTP, dokodemo-door); a connection over one is closed before any byte is read or sent (README, Security).",
  'inbounds[].admission.maxConnections':
    'Connections open at once on the inbound (a positive integer); no limit when absent.',
  'inbounds[].admission.maxConnectionsPerSource':
    'Connections open at once from one source IP (a positive integer); no limit when absent.',
  'log.format':
    '`"text"` (default): V2Ray\'s lines, `2026/12/06 02:41:31 [Warning] …`; `"json"`: one JSON object per line.',
  'inbounds[].settings.legacyHeader':
    '`"accept"` (default, as V2Ray 4.34), `"warn"` (accept and log each legacy header) or `"refuse"` (drain it like any unknown request).',
  'outbounds[].settings.maxChunkLength':
    'The largest whole chunk the outbound writes over TCP, 1024–65535; default 65535, which V2Ray, Xray and tsray servers read. Set 16450 for a sing-box or mihomo server.',
}

/**
 * Keys read only to check they ask for nothing tsray lacks: the off value passes, anything else is
 * refused with the reason in the note.
 */
export const OFF_ONLY_KEYS: Readonly<Record<string, string>> = {
  'inbounds[].settings.followRedirect': 'transparent proxying is not supported yet',
  'inbounds[].streamSettings.tcpSettings.acceptProxyProtocol': 'the PROXY protocol is not supported yet',
  'inbounds[].streamSettings.wsSettings.acceptProxyProtocol': 'the PROXY protocol is not supported yet',
  'inbounds[].streamSettings.wsSettings.useBrowserForwarding': 'browser forwarding is not supported',
  'inbounds[].streamSettings.httpupgradeSettings.acceptProxyProtocol':
    'the PROXY protocol is not supported yet',
  'inbounds[].streamSettings.sockopt.tproxy': '`"off"` only: transparent proxying is not supported yet',
  'inbounds[].streamSettings.sockopt.acceptProxyProtocol': 'the PROXY protocol is not supported yet',
  'transport.tcpSettings.acceptProxyProtocol': 'the PROXY protocol is not supported yet',
}

/** Notes on keys whose status alone does not say enough. */
export const KEY_NOTES: Readonly<Record<string, string>> = {
  'log.access': '`""` or absent: the console; a path: that file; `"none"`: off.',
  'log.error': '`""` or absent: the console; a path: that file; `"none"`: off.',
  'inbounds[].port':
    'A number, a numeric string, or `"env:NAME"` to read it from the environment. Port ranges are refused.',
  'inbounds[].settings.clients[].id':
    'A UUID, or `"env:NAME"` to read it from the environment. Another string of 1–30 bytes becomes a UUIDv5 as in Xray (with a warning); one that looks like a cut UUID is refused.',
  'outbounds[].settings.vnext[].users[].id':
    'As `inbounds[].settings.clients[].id`: a UUID, `"env:NAME"`, or a 1–30-byte string mapped to a UUIDv5.',
  'inbounds[].settings.clients[].security':
    'Clients choose their own security; V2Ray reads and ignores this key.',
  'inbounds[].settings.default': "Defaults for users added through V2Ray's API, which tsray does not have.",
  'inbounds[].sniffing': 'Warns when `enabled` is true: tsray does not sniff traffic.',
  'inbounds[].settings.allowTransparent': 'Warns when true: tsray answers only proxy requests.',
  'inbounds[].streamSettings.tlsSettings.enableSessionResumption':
    'Warns when true: tsray leaves TLS session resumption to Node.',
  'inbounds[].streamSettings.tlsSettings.fingerprint':
    "Warns when set: Node cannot imitate a browser's TLS handshake (uTLS), so tsray sends Node's own.",
  'inbounds[].streamSettings.security': '`"none"` or `"tls"`; `"xtls"` and `"reality"` are refused.',
  'inbounds[].streamSettings.network':
    '`"tcp"`, `"ws"`, `"httpupgrade"`; other transports (`kcp`, `h2`, `quic`, `grpc` …) are refused by name.',
  'transport.tcpSettings.header.type':
    '`"none"` only here: an HTTP header belongs in each `streamSettings.tcpSettings`.',
  'policy.levels.<name>.bufferSize': 'Accepted; no effect yet (tsray sizes its buffers by its own budgets).',
  'policy.levels.<name>.statsUserUplink':
    'With `"stats": {}`: counts `user>>>EMAIL>>>traffic>>>uplink` (payload bytes), as V2Ray.',
  'policy.levels.<name>.statsUserDownlink':
    'With `"stats": {}`: counts `user>>>EMAIL>>>traffic>>>downlink` (payload bytes), as V2Ray.',
  'policy.levels.<name>.statsUserOnline': 'With `"stats": {}`: Xray\'s `user>>>EMAIL>>>online` map of IPs.',
  'policy.system':
    'With `"stats": {}`: `statsInbound*`/`statsOutbound*` count `inbound>>>TAG>>>…`, `outbound>>>TAG>>>…`.',
  'routing.balancers': 'Warns when not empty: balancers are not supported yet.',
  'routing.rules[].domain':
    'Plain, `domain:`, `full:`, `regexp:`, `keyword:`; `geosite:` is refused (no geo files).',
  'routing.rules[].ip': 'CIDR or `geoip:private`; other `geoip:` lists are refused (no geo files).',
  'api.services':
    "Read: `HandlerService` and `StatsService` are served, under both cores' package names; others warn.",
  'api.listen':
    'Xray\'s key: `"127.0.0.1:10085"`; without it the inbound routed to `api.tag` gives the address.',
  stats: 'Turns the counters on (`policy` says which); read by the StatsService and Prometheus.',
  api: 'The gRPC API (HandlerService, StatsService) as V2Ray/Xray serve it. See its own section.',
  'outbounds[].mux.concurrency':
    '1–1024 sub-sessions per connection; 0 or absent means 8; negative turns Mux off.',
  'outbounds[].settings.vnext[].users[].experiments':
    '`AuthenticatedLength` and `NoTerminationSignal`, as v2fly v5 JSON spells them.',
  'metrics.listen':
    'Xray\'s key: `"127.0.0.1:9100"`, `"[::1]:9100"` or `":9100"`; Prometheus text at `GET /metrics`.',
  'policy.levels.<name>.handshake': 'Seconds; default 60.',
  'policy.levels.<name>.connIdle': 'Seconds; default 300.',
  'policy.levels.<name>.uplinkOnly': 'Seconds; default 1.',
  'policy.levels.<name>.downlinkOnly': 'Seconds; default 1.',
}

/** Extra words for a section, by its JSON path. */
const SECTION_INTROS: Readonly<Record<string, string>> = {
  'inbounds[].streamSettings': 'The same keys apply to `outbounds[].streamSettings`.',
  api: "The gRPC API listens where the inbound routed to `api.tag` listens (or at Xray's `api.listen`); see docs/operating.md §8.",
}

/**
 * The sections of a config, in the order the page lists them: the loader's own table (CONFIG_SECTIONS,
 * a JSON path with the protocol in parentheses for settings), with streamSettings after the inbound
 * settings, since inbounds and outbounds share it.
 */
export function schemaRoots(): SchemaRoot[] {
  const roots: SchemaRoot[] = []
  const add = (name: string, sectionSchema: z.ZodType): void => {
    const match = /^(.*?)(?: \((.+)\))?$/.exec(name)
    const path = match?.[1] ?? name
    const protocol = match?.[2]
    let title = path === '' ? 'Top level' : `\`${path}\``
    if (protocol !== undefined) title += ` of \`"${protocol}"\``
    if (path === 'inbounds[].streamSettings') title += ' and `outbounds[].streamSettings`'
    const intro = SECTION_INTROS[path]
    roots.push({ title, path, schema: sectionSchema, ...(intro === undefined ? {} : { intro }) })
  }
  const sections = Object.entries(schema.CONFIG_SECTIONS)
  const firstOutbound = sections.findIndex(([name]) => name.startsWith('outbounds'))
  sections.forEach(([name, sectionSchema], index) => {
    if (index === firstOutbound) add('inbounds[].streamSettings', schema.streamSettingsSchema)
    add(name, sectionSchema)
  })
  return roots
}

type Shape =
  | { readonly kind: 'object'; readonly properties: Readonly<Record<string, KeyNode>> }
  | { readonly kind: 'list'; readonly element: KeyNode }
  | { readonly kind: 'map'; readonly value: KeyNode }
  | { readonly kind: 'value'; readonly read: boolean }

/** The other branch of a nullable value (`anyOf: [X, {type: "null"}]`), or undefined for any other node. */
function nonNullBranch(node: KeyNode): KeyNode | undefined {
  const branches = node.anyOf ?? node.oneOf
  if (branches?.length !== 2) return undefined
  const others = branches.filter((branch) => branch.type !== 'null')
  return others.length === 1 ? others[0] : undefined
}

/** The key rule on a node or on the value inside it when it is nullable. */
function ruleOf(node: KeyNode): KeyRule | undefined {
  const rule = keyRuleOf(node)
  if (rule !== undefined) return rule
  const inner = nonNullBranch(node)
  return inner === undefined ? undefined : ruleOf(inner)
}

/** What a node holds: an object's keys, a list's element, a map's value, or a value. */
function shapeOf(node: KeyNode): Shape {
  const inner = nonNullBranch(node)
  if (inner !== undefined) return shapeOf(inner)
  if (node.properties !== undefined) return { kind: 'object', properties: node.properties }
  if (node.items !== undefined) return { kind: 'list', element: node.items }
  if (typeof node.additionalProperties === 'object') return { kind: 'map', value: node.additionalProperties }
  // A value the loader accepts and never reads is marked by anyValue(); a leaf reader is a value it reads.
  return { kind: 'value', read: node.tsrayUnread !== true }
}

/** Paths read as sections of their own (`inbounds` is the list whose elements are `inbounds[]`). */
function sectionPaths(): Set<string> {
  const paths = schemaRoots().map((root) => root.path.replace(/\[\]$/, ''))
  return new Set([...paths, 'outbounds[].streamSettings'])
}

/** Keys src/config/operate.ts reads from the merged JSON rather than through the schema. */
const READ_BESIDE_THE_SCHEMA = new Set([
  'stats',
  'api.services',
  'api.listen',
  'policy.system',
  'policy.levels.<name>.statsUserUplink',
  'policy.levels.<name>.statsUserDownlink',
  'policy.levels.<name>.statsUserOnline',
])

function statusOf(path: string, key: KeyNode, sections: Set<string>): { status: KeyStatus; note: string } {
  const rule = ruleOf(key)
  const section = sections.has(path) ? 'See its own section.' : ''
  const note = KEY_NOTES[path] ?? section
  if (rule?.refuse !== undefined) return { status: 'refused', note: rule.refuse }
  if (rule?.ignore !== undefined) return { status: 'ignored with a warning', note: rule.ignore }
  const offOnly = OFF_ONLY_KEYS[path]
  if (offOnly !== undefined) return { status: 'off only', note: offOnly }
  const extension = TSRAY_KEYS[path]
  if (extension !== undefined) return { status: 'tsray extension', note: extension }
  const shape = shapeOf(key)
  if (READ_BESIDE_THE_SCHEMA.has(path)) return { status: 'supported', note }
  if (shape.kind === 'value' && !shape.read) {
    if (rule?.advise !== undefined) return { status: 'ignored, warns when set', note }
    if (section !== '') return { status: 'supported', note }
    return { status: 'accepted, not used', note }
  }
  return { status: 'supported', note }
}

/** Every key under `root`, depth first, in schema order. */
export function keysOf(root: SchemaRoot): KeyEntry[] {
  const out: KeyEntry[] = []
  const sections = sectionPaths()
  const visit = (node: KeyNode, path: string): void => {
    const shape = shapeOf(node)
    if (shape.kind === 'list') return visit(shape.element, `${path}[]`)
    if (shape.kind === 'map') return visit(shape.value, `${path}.<name>`)
    if (shape.kind !== 'object') return
    for (const [name, key] of Object.entries(shape.properties)) {
      const keyPath = path === '' ? name : `${path}.${name}`
      const { status, note } = statusOf(keyPath, key, sections)
      if (sections.has(keyPath) && root.path !== keyPath) {
        out.push({ path: keyPath, status, note })
        continue
      }
      out.push({ path: keyPath, status, note })
      if (status === 'supported' || status === 'tsray extension') visit(key, keyPath)
    }
  }
  visit(keyNodeOf(root.schema), root.path)
  return out
}

const STATUS_TEXT: Readonly<Record<KeyStatus, string>> = {
  supported: 'supported',
  'tsray extension': '**tsray extension**',
  'accepted, not used': 'accepted, not used',
  'ignored, warns when set': 'ignored; warns when it asks for something',
  'ignored with a warning': 'ignored with a warning',
  refused: '**refused**',
  'off only': 'only its off value; **refused** otherwise',
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

/** The whole page. */
export function renderConfigReference(): string {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from the config schema by scripts/config-reference.ts (`npm run docs:config`). Do not edit by hand. -->',
    '',
    'tsray reads V2Ray v4 JSON configs (`tsray run -c config.json`). This page lists every key the loader knows',
    'and what it does with it:',
    '',
    '- **supported**: read and honoured as V2Ray does.',
    "- **tsray extension**: tsray's own key; V2Ray and Xray would warn about it or ignore it.",
    "- **accepted, not used**: valid in V2Ray's format, has no effect in tsray, and causes no warning.",
    '- **ignored; warns when it asks for something**: no effect; a warning when its value would matter.',
    '- **ignored with a warning**: dropped, with the warning shown in the last column.',
    '- **only its off value**: `false` (or `"off"`) is accepted, anything else refused.',
    '- **refused**: the config is not started, with the error shown in the last column; running without',
    '  the feature would change what the config means.',
    '',
    "Keys are matched as V2Ray's decoder matches them: exactly, else ignoring case (with a warning asking for",
    'the exact spelling). `null` means "not set". A key the loader does not know is dropped with the warning',
    '"unknown key, ignored". Values are checked too: a wrong value is an error with its JSON path. See',
    '[migrating.md](migrating.md) for what this means for an existing V2Ray or Xray config.',
    '',
  ]
  for (const root of schemaRoots()) {
    lines.push(`## ${root.title}`, '')
    if (root.intro !== undefined) lines.push(root.intro, '')
    lines.push('| key | status | notes |', '| --- | --- | --- |')
    for (const entry of keysOf(root)) {
      lines.push(`| \`${cell(entry.path)}\` | ${STATUS_TEXT[entry.status]} | ${cell(entry.note)} |`)
    }
    lines.push('')
  }
  return lines.join('\n')
}

export const CONFIG_REFERENCE_PATH = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url))

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--write')) writeFileSync(CONFIG_REFERENCE_PATH, renderConfigReference())
  else process.stdout.write(renderConfigReference())
}
