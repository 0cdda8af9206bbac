// From config files to a TsrayConfig: JSON with comments, merging of several files as `v2ray -c a -c b`
// does, then section-by-section validation with every problem reported at its JSON path.
import { readFile } from 'node:fs/promises'
import { ConfigError } from '../errors.js'
import { readOperateConfig } from './operate.js'
import {
  DEFAULT_LOG_CONFIG,
  apiSchema,
  blackholeOutboundSettingsSchema,
  describeValue,
  dokodemoInboundSettingsSchema,
  formatJsonPath,
  freedomOutboundSettingsSchema,
  httpInboundSettingsSchema,
  inboundProtocolSchema,
  inboundSchema,
  logSchema,
  lookupKey,
  outboundProtocolSchema,
  outboundSchema,
  metricsSchema,
  policySchema,
  readSection,
  routingSchema,
  socksInboundSettingsSchema,
  topLevelSchema,
  transportSchema,
  vmessInboundSettingsSchema,
  vmessOutboundSettingsSchema,
  type ConfigProblem,
  type ConfigReport,
  type InboundConfig,
  type JsonPath,
  type OutboundConfig,
  type PolicyConfig,
  type RoutingConfig,
  type RoutingRule,
  type SocksInboundSettings,
  type TsrayConfig,
  type VmessInboundSettings,
} from './schema.js'
import { parseConfigText } from './json-text.js'
import { mergeConfigs, setKey } from './merge.js'
import { dnsSchema } from './dns.js'
import { joinV3Layout } from './v3-layout.js'
import { isPlainObject } from './paths.js'
import { resolveIdsFromEnv } from './vmess-id.js'

export { mergeConfigs, parseConfigText }

/** A validated config and the warnings about it, each `path: message`. */
export interface LoadedConfig {
  readonly config: TsrayConfig
  readonly warnings: string[]
}

/** Environment variables that `"port": "env:NAME"` may name. */
export type ConfigEnvironment = Readonly<Record<string, string | undefined>>

// ─── Validation ──────────────────────────────────────────────────────────────────────────────────

function formatProblem(problem: ConfigProblem): string {
  return problem.path === '' ? problem.message : `${problem.path}: ${problem.message}`
}

/** One ConfigError for all problems: the first one's path, then one `path: message` line per problem. */
function configErrorOf(problems: readonly ConfigProblem[]): ConfigError {
  const unique = [...new Map(problems.map((problem) => [formatProblem(problem), problem])).values()]
  const [first, ...rest] = unique
  if (first === undefined) return new ConfigError('', 'Cannot use the config')
  return new ConfigError(first.path, [first.message, ...rest.map(formatProblem)].join('\n'))
}

interface Indexed<T> {
  readonly index: number
  readonly value: T
}

function readList<T>(
  value: unknown,
  key: 'inbounds' | 'outbounds',
  report: ConfigReport,
  readEntry: (entry: unknown, path: JsonPath) => T | undefined,
): Indexed<T>[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) {
    report.errors.push({ path: key, message: `${describeValue(value)} is not a list` })
    return []
  }
  const entries: Indexed<T>[] = []
  value.forEach((entry: unknown, index) => {
    const read = readEntry(entry, [key, index])
    if (read !== undefined) entries.push({ index, value: read })
  })
  return entries
}

/** Replaces `"port": "env:NAME"` with the variable's value, as V2Ray does; an unset one stays for the schema to report. */
function resolvePortFromEnv(inbound: unknown, env: ConfigEnvironment): unknown {
  if (!isPlainObject(inbound)) return inbound
  const key = Object.hasOwn(inbound, 'port')
    ? 'port'
    : Object.keys(inbound).find((name) => name.toLowerCase() === 'port')
  const port = key === undefined ? undefined : inbound[key]
  if (key === undefined || typeof port !== 'string' || !port.startsWith('env:')) return inbound
  const resolved = env[port.slice('env:'.length)]
  if (resolved === undefined) return inbound
  const copy: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(inbound)) setKey(copy, name, name === key ? resolved : value)
  return copy
}

function settingsOf(entry: unknown): unknown {
  return lookupKey(entry, 'settings') ?? {}
}

function checkVmessInbound(settings: VmessInboundSettings, path: JsonPath, report: ConfigReport): void {
  if (settings.clients.length === 0) {
    report.warnings.push({
      path: formatJsonPath([...path, 'clients']),
      message: 'no clients: every VMess connection will be refused',
    })
  }
  const emails = new Map<string, number>()
  const ids = new Map<string, number>()
  settings.clients.forEach((client, index) => {
    if (client.email !== undefined) {
      // V2Ray refuses two users whose emails differ only in case.
      const earlier = emails.get(client.email.toLowerCase())
      if (earlier === undefined) emails.set(client.email.toLowerCase(), index)
      else {
        report.errors.push({
          path: formatJsonPath([...path, 'clients', index, 'email']),
          message: `${describeValue(client.email)} is already the email of clients[${earlier}]`,
        })
      }
    }
    const earlier = ids.get(client.id)
    if (earlier === undefined) ids.set(client.id, index)
    else {
      report.warnings.push({
        path: formatJsonPath([...path, 'clients', index, 'id']),
        message: `is also the id of clients[${earlier}]; connections will be credited to one of them`,
      })
    }
  })
}

function checkSocksInbound(settings: SocksInboundSettings, path: JsonPath, report: ConfigReport): void {
  const accountsPath = formatJsonPath([...path, 'accounts'])
  if (settings.auth === 'password' && settings.accounts.length === 0) {
    report.errors.push({ path: accountsPath, message: 'is required when auth is "password"' })
  }
  if (settings.auth === 'noauth' && settings.accounts.length > 0) {
    report.warnings.push({ path: accountsPath, message: 'ignored: auth is "noauth"' })
  }
}

function readInbound(
  entry: unknown,
  path: JsonPath,
  context: { readonly report: ConfigReport; readonly env: ConfigEnvironment },
): InboundConfig | undefined {
  const { report } = context
  const fields = readSection(inboundSchema, resolvePortFromEnv(entry, context.env), { path, report })
  // The settings are read even when other fields are wrong, so that every problem shows at once.
  const protocol = inboundProtocolSchema.safeParse(lookupKey(entry, 'protocol'))
  if (!protocol.success) return undefined
  const settingsPath = [...path, 'settings']
  const section = { path: settingsPath, report }
  switch (protocol.data) {
    case 'vmess': {
      const settings = readSection(vmessInboundSettingsSchema, settingsOf(entry), section)
      if (settings !== undefined) checkVmessInbound(settings, settingsPath, report)
      return fields && settings && { ...fields, protocol: 'vmess', settings }
    }
    case 'socks': {
      const settings = readSection(socksInboundSettingsSchema, settingsOf(entry), section)
      if (settings !== undefined) checkSocksInbound(settings, settingsPath, report)
      return fields && settings && { ...fields, protocol: 'socks', settings }
    }
    case 'http': {
      const settings = readSection(httpInboundSettingsSchema, settingsOf(entry), section)
      return fields && settings && { ...fields, protocol: 'http', settings }
    }
    case 'dokodemo-door': {
      const settings = readSection(dokodemoInboundSettingsSchema, settingsOf(entry), section)
      return fields && settings && { ...fields, protocol: 'dokodemo-door', settings }
    }
  }
}

function readOutbound(entry: unknown, path: JsonPath, report: ConfigReport): OutboundConfig | undefined {
  const fields = readSection(outboundSchema, entry, { path, report })
  const protocol = outboundProtocolSchema.safeParse(lookupKey(entry, 'protocol'))
  if (!protocol.success) return undefined
  const section = { path: [...path, 'settings'], report }
  switch (protocol.data) {
    case 'vmess': {
      const settings = readSection(vmessOutboundSettingsSchema, settingsOf(entry), section)
      return fields && settings && { ...fields, protocol: 'vmess', settings }
    }
    case 'freedom': {
      const settings = readSection(freedomOutboundSettingsSchema, settingsOf(entry), section)
      return fields && settings && { ...fields, protocol: 'freedom', settings }
    }
    case 'blackhole': {
      const settings = readSection(blackholeOutboundSettingsSchema, settingsOf(entry), section)
      return fields && settings && { ...fields, protocol: 'blackhole', settings }
    }
  }
}

function checkUniqueTags(
  entries: readonly Indexed<{ readonly tag: string | undefined }>[],
  key: 'inbounds' | 'outbounds',
  report: ConfigReport,
): void {
  const seen = new Map<string, number>()
  for (const { index, value } of entries) {
    if (value.tag === undefined) continue
    const earlier = seen.get(value.tag)
    if (earlier === undefined) seen.set(value.tag, index)
    else {
      report.errors.push({
        path: formatJsonPath([key, index, 'tag']),
        message: `${describeValue(value.tag)} is already the tag of ${key}[${earlier}]`,
      })
    }
  }
}

function rawTags(list: unknown): Set<string> {
  const tags = new Set<string>()
  if (Array.isArray(list)) {
    for (const entry of list) {
      const tag = lookupKey(entry, 'tag')
      if (typeof tag === 'string' && tag !== '') tags.add(tag)
    }
  }
  return tags
}

/** The inbound tags of the raw routing rules that send to `outboundTag`. */
function inboundTagsRoutedTo(outboundTag: string, routing: unknown): Set<string> {
  const tags = new Set<string>()
  const rules = lookupKey(routing, 'rules')
  if (!Array.isArray(rules)) return tags
  for (const rule of rules) {
    if (lookupKey(rule, 'outboundTag') !== outboundTag) continue
    const inboundTag = lookupKey(rule, 'inboundTag')
    const list: unknown[] =
      typeof inboundTag === 'string' ? inboundTag.split(',') : Array.isArray(inboundTag) ? inboundTag : []
    for (const tag of list) if (typeof tag === 'string') tags.add(tag)
  }
  return tags
}

function hasConditions(rule: RoutingRule): boolean {
  return Object.entries(rule).some(([key, condition]) => key !== 'outboundTag' && condition !== undefined)
}

/**
 * Validates a (merged) V2Ray v4 config and applies the defaults. Unknown keys and ignored V2Ray features
 * become warnings; invalid values and unsupported features throw one ConfigError listing every problem,
 * one `path: message` per line, its `path` being the first problem's.
 * @example
 * const { config, warnings } = validateConfig(parseConfigText(text))
 */
export function validateConfig(
  raw: unknown,
  options: { readonly env?: ConfigEnvironment; readonly skipUnsupportedInbounds?: boolean } = {},
): LoadedConfig {
  if (!isPlainObject(raw)) {
    throw new ConfigError('', `Cannot use the config: it is ${describeValue(raw)}, not a JSON object`)
  }
  const report: ConfigReport = { errors: [], warnings: [] }
  const env = options.env ?? process.env
  const joined = resolveIdsFromEnv(joinV3Layout(raw, report), env)
  const top = readSection(topLevelSchema, joined, { path: [], report })
  if (top === undefined) throw configErrorOf(report.errors)

  const log =
    top.log === undefined ? DEFAULT_LOG_CONFIG : readSection(logSchema, top.log, { path: ['log'], report })
  if (top.transport !== undefined) {
    readSection(transportSchema, top.transport, { path: ['transport'], report })
  }
  const apiTag =
    top.api === undefined ? undefined : readSection(apiSchema, top.api, { path: ['api'], report })?.tag
  // The API's rule and dokodemo-door inbound go with the API; the inbound is not even validated, as
  // V2Ray's examples leave its port out, and kept it would loop to the default route.
  const apiInboundTags = apiTag === undefined ? new Set<string>() : inboundTagsRoutedTo(apiTag, top.routing)
  const inbounds = readList(top.inbounds, 'inbounds', report, (entry, path) => {
    const tag = lookupKey(entry, 'tag')
    const protocol = lookupKey(entry, 'protocol')
    if (options.skipUnsupportedInbounds === true && !inboundProtocolSchema.safeParse(protocol).success) {
      report.warnings.push({
        path: formatJsonPath(path),
        message: `skipped: tsray does not serve ${describeValue(protocol)} inbounds (--skip-unsupported-inbounds)`,
      })
      return undefined
    }
    if (typeof tag !== 'string' || !apiInboundTags.has(tag)) return readInbound(entry, path, { report, env })
    // The API server takes its listen address and port (src/config/operate.ts).
    return undefined
  })
  const outbounds = readList(top.outbounds, 'outbounds', report, (entry, path) =>
    readOutbound(entry, path, report),
  )
  const routing: RoutingConfig | undefined =
    top.routing === undefined
      ? { domainStrategy: 'AsIs', rules: [] }
      : readSection(routingSchema, top.routing, { path: ['routing'], report })
  const dns = top.dns === undefined ? undefined : readSection(dnsSchema, top.dns, { path: ['dns'], report })
  const metrics =
    top.metrics === undefined
      ? undefined
      : readSection(metricsSchema, top.metrics, { path: ['metrics'], report })
  if (metrics !== undefined && metrics.listen === undefined) {
    report.warnings.push({ path: 'metrics', message: 'ignored: without "listen" tsray serves no metrics' })
  }
  const policy: PolicyConfig | undefined =
    top.policy === undefined
      ? { levels: new Map() }
      : readSection(policySchema, top.policy, { path: ['policy'], report })

  checkUniqueTags(inbounds, 'inbounds', report)
  checkUniqueTags(outbounds, 'outbounds', report)
  if (top.outbounds === undefined || (Array.isArray(top.outbounds) && top.outbounds.length === 0)) {
    report.errors.push({
      path: 'outbounds',
      message: 'is empty or absent; at least one outbound is needed (the first one is the default route)',
    })
  }
  if (top.inbounds === undefined || (Array.isArray(top.inbounds) && top.inbounds.length === 0)) {
    report.warnings.push({ path: 'inbounds', message: 'is empty or absent; tsray will listen nowhere' })
  }

  const rules: RoutingRule[] = []
  if (routing !== undefined) {
    // Tags are taken from the raw entries too, so that a broken outbound does not also break every rule naming it.
    const outboundTags = rawTags(top.outbounds)
    const inboundTags = rawTags(top.inbounds)
    routing.rules.forEach((rule, index) => {
      const rulePath = ['routing', 'rules', index]
      if (apiTag !== undefined && rule.outboundTag === apiTag) {
        // It names the inbound that serves the API (src/config/operate.ts).
        return
      }
      if (!hasConditions(rule)) {
        report.errors.push({
          path: formatJsonPath(rulePath),
          message: 'has no conditions (V2Ray refuses a rule without any)',
        })
      }
      if (!outboundTags.has(rule.outboundTag)) {
        report.errors.push({
          path: formatJsonPath([...rulePath, 'outboundTag']),
          message: `no outbound has the tag ${describeValue(rule.outboundTag)}`,
        })
      }
      rule.inboundTag?.forEach((tag, tagIndex) => {
        if (!inboundTags.has(tag)) {
          report.warnings.push({
            path: formatJsonPath([...rulePath, 'inboundTag', tagIndex]),
            message: `no inbound has the tag ${describeValue(tag)}`,
          })
        }
      })
      rules.push(rule)
    })
  }

  const operate = readOperateConfig(raw, apiInboundTags, report)
  if (report.errors.length > 0 || log === undefined || routing === undefined || policy === undefined) {
    throw configErrorOf(report.errors)
  }
  return {
    config: {
      log,
      inbounds: inbounds.map(({ value }) => value),
      outbounds: outbounds.map(({ value }) => value),
      routing: { domainStrategy: routing.domainStrategy, rules },
      policy,
      ...(metrics?.listen !== undefined ? { metrics: { listen: metrics.listen } } : {}),
      ...(dns !== undefined ? { dns } : {}),
      ...(operate.stats !== undefined || operate.api !== undefined ? { operate } : {}),
    },
    warnings: report.warnings.map(formatProblem),
  }
}

async function readStandardInput(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin as AsyncIterable<Buffer | string>) {
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Reads, merges and validates config files in order, as `v2ray -c a.json -c b.json`; the path `-` reads
 * standard input.
 * @example
 * const { config, warnings } = await loadConfigFiles(['/etc/v2ray/config.json'])
 */
export async function loadConfigFiles(
  paths: readonly string[],
  options: {
    readonly readStdin?: () => Promise<string>
    readonly env?: ConfigEnvironment
    readonly skipUnsupportedInbounds?: boolean
  } = {},
): Promise<LoadedConfig> {
  if (paths.length === 0) throw new ConfigError('', 'Cannot load the config: no file given')
  const sources = paths.map((path) => (path === '-' ? 'standard input' : path))
  const docs: unknown[] = []
  for (const [index, path] of paths.entries()) {
    const source = sources[index] ?? path
    let text: string
    try {
      text = path === '-' ? await (options.readStdin ?? readStandardInput)() : await readFile(path, 'utf8')
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      throw new ConfigError('', `Cannot read ${source}: ${reason}`, { cause: error })
    }
    docs.push(parseConfigText(text, { source }))
  }
  return validateConfig(mergeConfigs(docs, { sources }), {
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.skipUnsupportedInbounds === true ? { skipUnsupportedInbounds: true } : {}),
  })
}
