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

/** A validated config and the warnings about it, each `path: message`. */
export interface LoadedConfig {
  readonly config: TsrayConfig
  readonly warnings: string[]
}

/** Environment variables that `"port": "env:NAME"` may name. */
export type ConfigEnvironment = Readonly<Record<string, string | undefined>>

// ─── JSON with comments ──────────────────────────────────────────────────────────────────────────

/** JSON nested deeper than this is refused rather than risking the stack; real configs nest about 8 deep. */
const MAX_JSON_DEPTH = 256

function lineAndColumn(text: string, position: number): { line: number; column: number } {
  let line = 1
  let lineStart = 0
  for (
    let index = text.indexOf('\n');
    index !== -1 && index < position;
    index = text.indexOf('\n', index + 1)
  ) {
    line += 1
    lineStart = index + 1
  }
  return { line, column: position - lineStart + 1 }
}

const NUMBER_PATTERN = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const ESCAPE_PATTERN = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y

/**
 * Parses the text of a config file: JSON plus the comments V2Ray accepts (`//`, `/* *\/` and `#` outside
 * strings). Throws ConfigError naming the source, line and column of a syntax error.
 * @example
 * parseConfigText('{ "log": { "loglevel": "info" } // verbose\n}', { source: 'config.json' })
 */
export function parseConfigText(text: string, options: { readonly source?: string } = {}): unknown {
  const source = options.source ?? 'the config'
  let position = 0

  const fail = (message: string, at = position): never => {
    const { line, column } = lineAndColumn(text, at)
    throw new ConfigError('', `Cannot parse ${source}: ${message} at line ${line}, column ${column}`)
  }

  const skipSpaceAndComments = (): void => {
    while (position < text.length) {
      const char = text[position]
      if (char === ' ' || char === '\t' || char === '\n' || char === '\r' || char === '\uFEFF') position += 1
      else if (char === '#' || text.startsWith('//', position)) {
        const end = text.indexOf('\n', position)
        position = end === -1 ? text.length : end + 1
      } else if (text.startsWith('/*', position)) {
        const end = text.indexOf('*/', position + 2)
        if (end === -1) fail('a /* comment is never closed')
        position = end + 2
      } else return
    }
  }

  const readString = (): string => {
    const start = position
    position += 1
    for (;;) {
      const char = text[position]
      if (char === undefined) return fail('a string is never closed', start)
      if (char === '"') break
      if (char === '\\') {
        ESCAPE_PATTERN.lastIndex = position
        if (!ESCAPE_PATTERN.test(text)) fail('a bad escape sequence in a string')
        position = ESCAPE_PATTERN.lastIndex
      } else if (char < ' ') fail('a control character (write it as an escape) in a string')
      else position += 1
    }
    position += 1
    return JSON.parse(text.slice(start, position)) as string
  }

  const readValue = (depth: number): unknown => {
    skipSpaceAndComments()
    const char = text[position]
    if (char === undefined) return fail('the text ends where a value is expected')
    if (char === '{' || char === '[') {
      if (depth >= MAX_JSON_DEPTH) fail(`values nested more than ${MAX_JSON_DEPTH} deep`)
      return char === '{' ? readObject(depth + 1) : readArray(depth + 1)
    }
    if (char === '"') return readString()
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, position)) {
        position += word.length
        return value
      }
    }
    NUMBER_PATTERN.lastIndex = position
    const number = NUMBER_PATTERN.exec(text)
    if (number !== null) {
      position = NUMBER_PATTERN.lastIndex
      return Number(number[0])
    }
    const word = /[^\s,:[\]{}"]{1,24}/y
    word.lastIndex = position
    const token = word.exec(text)?.[0]
    return fail(
      token === undefined
        ? `${JSON.stringify(char)} where a value is expected`
        : `${JSON.stringify(token)} is not a JSON value`,
    )
  }

  const readObject = (depth: number): Record<string, unknown> => {
    const object: Record<string, unknown> = {}
    position += 1
    skipSpaceAndComments()
    if (text[position] === '}') {
      position += 1
      return object
    }
    for (;;) {
      skipSpaceAndComments()
      if (text[position] === '}') fail("a comma before '}' (JSON allows no trailing comma)")
      if (text[position] !== '"') fail('a key in double quotes is expected')
      const key = readString()
      skipSpaceAndComments()
      if (text[position] !== ':') fail(`':' is expected after the key ${JSON.stringify(key)}`)
      position += 1
      // defineProperty: a "__proto__" key must stay a plain key, as JSON.parse keeps it.
      Object.defineProperty(object, key, {
        value: readValue(depth),
        enumerable: true,
        writable: true,
        configurable: true,
      })
      skipSpaceAndComments()
      if (text[position] === ',') position += 1
      else if (text[position] === '}') {
        position += 1
        return object
      } else fail("',' or '}' is expected")
    }
  }

  const readArray = (depth: number): unknown[] => {
    const array: unknown[] = []
    position += 1
    skipSpaceAndComments()
    if (text[position] === ']') {
      position += 1
      return array
    }
    for (;;) {
      skipSpaceAndComments()
      if (text[position] === ']') fail("a comma before ']' (JSON allows no trailing comma)")
      array.push(readValue(depth))
      skipSpaceAndComments()
      if (text[position] === ',') position += 1
      else if (text[position] === ']') {
        position += 1
        return array
      } else fail("',' or ']' is expected")
    }
  }

  skipSpaceAndComments()
  if (position === text.length) throw new ConfigError('', `Cannot parse ${source}: it holds no JSON value`)
  const value = readValue(0)
  skipSpaceAndComments()
  if (position < text.length) fail('more text after the JSON value')
  return value
}

// ─── Merging ─────────────────────────────────────────────────────────────────────────────────────

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function setKey(object: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true })
}

function tagOf(entry: unknown): string | undefined {
  const tag = isPlainObject(entry) ? entry['tag'] : undefined
  return typeof tag === 'string' && tag !== '' ? tag : undefined
}

/** Arrays whose entries a later file replaces by tag instead of appending. */
const TAGGED_LISTS = new Set(['inbounds', 'outbounds'])

function mergeValues(base: unknown, over: unknown, path: JsonPath): unknown {
  // A null in a later file leaves the earlier value, as V2Ray's merger does.
  if (over === null && base !== undefined) return base
  if (isPlainObject(base) && isPlainObject(over)) {
    const merged: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(base)) setKey(merged, key, value)
    for (const [key, value] of Object.entries(over)) {
      setKey(
        merged,
        key,
        mergeValues(Object.hasOwn(merged, key) ? merged[key] : undefined, value, [...path, key]),
      )
    }
    return merged
  }
  if (Array.isArray(base) && Array.isArray(over)) {
    const earlier: unknown[] = base
    const copies = over.map((entry, index) => mergeValues(undefined, entry, [...path, index]))
    if (path.length !== 1 || !TAGGED_LISTS.has(String(path[0]))) return [...earlier, ...copies]
    const merged = [...earlier]
    for (const entry of copies) {
      const tag = tagOf(entry)
      const index = tag === undefined ? -1 : earlier.findIndex((existing) => tagOf(existing) === tag)
      if (index === -1) merged.push(entry)
      else merged[index] = entry
    }
    return merged
  }
  if (isPlainObject(over)) return mergeValues({}, over, path)
  if (Array.isArray(over)) return over.map((entry, index) => mergeValues(undefined, entry, [...path, index]))
  return over
}

/**
 * Merges config documents in order, as V2Ray does with several `-c` files: objects merge key by key and
 * later scalars win; `inbounds` and `outbounds` entries append, except that an entry whose `tag` matches
 * an entry of the earlier files replaces it; other arrays (`routing.rules`) concatenate.
 */
export function mergeConfigs(
  docs: readonly unknown[],
  options: { readonly sources?: readonly string[] } = {},
): unknown {
  let merged: unknown = {}
  docs.forEach((doc, index) => {
    if (!isPlainObject(doc)) {
      const source = options.sources?.[index] ?? `config ${index + 1}`
      throw new ConfigError('', `Cannot merge ${source}: it holds ${describeValue(doc)}, not a JSON object`)
    }
    merged = mergeValues(merged, doc, [])
  })
  return merged
}

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
  const top = readSection(topLevelSchema, raw, { path: [], report })
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
