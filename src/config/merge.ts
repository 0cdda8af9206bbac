// Several config files into one, as `v2ray -c a -c b` merges them.
import { ConfigError } from '../errors.js'
import { describeValue, isPlainObject, type JsonPath } from './paths.js'

/** Sets a key, keeping a "__proto__" key a plain key. */
export function setKey(object: Record<string, unknown>, key: string, value: unknown): void {
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
