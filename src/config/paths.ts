// JSON paths and the problems found at them, and V2Ray's case-insensitive key lookup.

/** A JSON path as segments: object keys and array indexes. */
export type JsonPath = readonly (string | number)[]

/** One error or warning about a config, at a JSON path. */
export interface ConfigProblem {
  readonly path: string
  readonly message: string
}

/** Where the reading of a config collects what it finds. */
export interface ConfigReport {
  readonly errors: ConfigProblem[]
  readonly warnings: ConfigProblem[]
}

/** `inbounds[0].settings.clients[1].id`; keys that are not identifiers are quoted: `policy.levels["0"]`. */
export function formatJsonPath(path: readonly PropertyKey[]): string {
  let text = ''
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`
    else {
      const key = String(segment)
      if (/^[A-Za-z_$][\w$]*$/.test(key)) text += text === '' ? key : `.${key}`
      else text += `[${JSON.stringify(key)}]`
    }
  }
  return text
}

/** A value as a config message quotes it: strings in JSON quotes, shortened; lists and objects by kind. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value)
    return quoted.length > 64 ? `${quoted.slice(0, 60)}…"` : quoted
  }
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object' && value !== null) return 'an object'
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value)
  return typeof value === 'symbol' || typeof value === 'function' ? typeof value : 'null'
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The value of `key` in a JSON object, matched as V2Ray does: exactly, else ignoring case. */
export function lookupKey(object: unknown, key: string): unknown {
  if (!isPlainObject(object)) return undefined
  if (Object.hasOwn(object, key)) return object[key]
  const lower = key.toLowerCase()
  for (const [name, value] of Object.entries(object)) if (name.toLowerCase() === lower) return value
  return undefined
}
