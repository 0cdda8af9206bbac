// Key rules (ignored, refused and advised keys) and the key-level reading that zod cannot express: V2Ray's
// case-insensitive keys, unknown keys warned with their full JSON path, null read as absent.
import { z } from 'zod'
import { type ConfigReport, describeValue, formatJsonPath, isPlainObject, type JsonPath } from './paths.js'

/** What to do with a key besides validating it. */
export interface KeyRule {
  /** A V2Ray feature tsray does without: drop the key with this warning. */
  readonly ignore?: string
  /** A V2Ray feature tsray cannot honour: refuse the config with this message. */
  readonly refuse?: string
  /** A warning about a value the schema accepts. */
  readonly advise?: (value: unknown) => string | undefined
}

/**
 * Key rules are zod metadata, read back through z.toJSONSchema. It copies metadata as JSON, so the
 * registry holds a rule's index in `rules` (an advice is a function). `tsrayUnread` marks a value the
 * loader accepts and never reads, which JSON Schema cannot tell from a custom reader's "any".
 */
interface KeyMetadata {
  readonly tsrayKeyRule?: number
  readonly tsrayUnread?: true
}
const keyRules = z.registry<KeyMetadata>()
const rules: KeyRule[] = []

/** A key whose value tsray does not read (zod 4 makes a bare z.unknown() key required). */
export function anyValue() {
  const schema = z.unknown().optional()
  keyRules.add(schema, { tsrayUnread: true })
  return schema
}
export type AnyValue = ReturnType<typeof anyValue>

export function withRule<T extends z.ZodType>(schema: T, rule: KeyRule): T {
  keyRules.add(schema, { ...keyRules.get(schema), tsrayKeyRule: rules.push(rule) - 1 })
  return schema
}

export const ignored = (reason: string): AnyValue => withRule(anyValue(), { ignore: reason })
export const refused = (reason: string): AnyValue => withRule(anyValue(), { refuse: reason })
/** A key whose value does not matter to tsray but is warned about when it asks for something. */
export const advised = (advise: (value: unknown) => string | undefined): AnyValue =>
  withRule(anyValue(), { advise })

/**
 * The keys a schema reads, as zod's JSON Schema of its input side describes them, with our key rules
 * (the part of JSON Schema the loader and docs/configuration.md use).
 */
export interface KeyNode extends KeyMetadata {
  readonly type?: string | readonly string[]
  readonly properties?: Readonly<Record<string, KeyNode>>
  readonly items?: KeyNode
  readonly additionalProperties?: KeyNode | boolean
  readonly anyOf?: readonly KeyNode[]
  readonly oneOf?: readonly KeyNode[]
}

/** The rule `withRule` attached to the schema a node was made from, if any. */
export function keyRuleOf(node: KeyNode): KeyRule | undefined {
  return node.tsrayKeyRule === undefined ? undefined : rules[node.tsrayKeyRule]
}

const keyNodes = new WeakMap<z.ZodType, KeyNode>()

/** `schema` as JSON Schema with its key rules; made once per schema object. */
export function keyNodeOf(schema: z.ZodType): KeyNode {
  let node = keyNodes.get(schema)
  if (node === undefined) {
    // io "input": what the JSON may hold before transforms; "any" for the custom readers JSON Schema cannot say.
    node = z.toJSONSchema(schema, {
      io: 'input',
      unrepresentable: 'any',
      metadata: keyRules,
    }) as KeyNode
    keyNodes.set(schema, node)
  }
  return node
}

/**
 * Prepares a JSON value for `schema`: renames keys written in another case (V2Ray's Go decoder matches
 * keys ignoring case), drops null values (Go reads them as "not set"), drops unknown and ignored keys
 * with a warning, reports refused keys, and runs the advice of each key, all with full JSON paths.
 */
export function normaliseKeys(
  schema: z.ZodType,
  value: unknown,
  path: JsonPath,
  report: ConfigReport,
): unknown {
  return normaliseNode(keyNodeOf(schema), value, path, report)
}

function normaliseNode(node: KeyNode, value: unknown, path: JsonPath, report: ConfigReport): unknown {
  if (node.items !== undefined && Array.isArray(value)) {
    const element = node.items
    return value.map((item, index) => normaliseNode(element, item, [...path, index], report))
  }
  if (!isPlainObject(value)) return value
  const shape = node.properties
  if (shape === undefined) {
    const valueNode = node.additionalProperties
    if (typeof valueNode !== 'object') return value
    const copy: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) {
      if (item === null) continue
      // defineProperty: a "__proto__" key must stay a plain key.
      Object.defineProperty(copy, key, {
        value: normaliseNode(valueNode, item, [...path, key], report),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
    return copy
  }
  const known = Object.keys(shape)
  const copy: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) {
    if (item === null) continue
    const keyPath = formatJsonPath([...path, key])
    let name = Object.hasOwn(shape, key) ? key : undefined
    if (name === undefined) {
      const match = known.find((candidate) => candidate.toLowerCase() === key.toLowerCase())
      if (match === undefined) {
        report.warnings.push({ path: keyPath, message: 'unknown key, ignored' })
        continue
      }
      if (Object.hasOwn(value, match)) {
        report.warnings.push({ path: keyPath, message: `ignored: "${match}" is also set` })
        continue
      }
      report.warnings.push({
        path: keyPath,
        message: `read as "${match}" (V2Ray matches keys ignoring case; write "${match}")`,
      })
      name = match
    }
    const child = shape[name]
    if (child === undefined) continue
    const rule = keyRuleOf(child)
    const childPath = [...path, name]
    if (rule?.refuse !== undefined) {
      report.errors.push({ path: formatJsonPath(childPath), message: rule.refuse })
      continue
    }
    if (rule?.ignore !== undefined) {
      report.warnings.push({ path: formatJsonPath(childPath), message: `ignored: ${rule.ignore}` })
      continue
    }
    const advice = rule?.advise?.(item)
    if (advice !== undefined) report.warnings.push({ path: formatJsonPath(childPath), message: advice })
    copy[name] = normaliseNode(child, item, childPath, report)
  }
  return copy
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
  record: 'an object',
}

/** A zod issue in plain words (the path is added by the caller). */
export function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'custom':
      return issue.message
    case 'invalid_type':
      if (issue.input === undefined) return 'is required'
      return `${describeValue(issue.input)} is not ${TYPE_NAMES[issue.expected] ?? issue.expected}`
    case 'too_small':
      if (issue.origin === 'array') {
        return Number(issue.minimum) <= 1
          ? 'is empty; at least one entry is needed'
          : `needs at least ${issue.minimum} entries`
      }
      return `${describeValue(issue.input)} is less than ${issue.minimum}`
    case 'too_big':
      if (issue.origin === 'array') return `has more than ${issue.maximum} entries`
      return `${describeValue(issue.input)} is more than ${issue.maximum}`
    case 'invalid_value':
      return `${describeValue(issue.input)} is not one of ${issue.values.map((item) => describeValue(item)).join(', ')}`
    case 'invalid_union':
    case 'invalid_format':
    case 'invalid_key':
    case 'invalid_element':
    case 'not_multiple_of':
    case 'unrecognized_keys':
      return `${describeValue(issue.input)} is not valid: ${issue.message}`
  }
}

/**
 * Reads one section of a config: normalises its keys, validates it with `schema`, and reports every
 * problem at its JSON path. Gives undefined when the section has errors.
 */
export function readSection<T>(
  schema: z.ZodType<T>,
  value: unknown,
  options: { readonly path: JsonPath; readonly report: ConfigReport },
): T | undefined {
  const { path, report } = options
  const prepared = normaliseKeys(schema, value, path, report)
  const result = schema.safeParse(prepared, { reportInput: true })
  if (result.success) return result.data
  for (const issue of result.error.issues) {
    report.errors.push({ path: formatJsonPath([...path, ...issue.path]), message: describeIssue(issue) })
  }
  return undefined
}

/** Every key `schema` reads (its rules included), as dotted paths; `[]` marks a list entry, `*` a map value. */
export function keyPaths(schema: z.ZodType): string[] {
  const paths: string[] = []
  const walk = (node: KeyNode, prefix: string): void => {
    if (node.items !== undefined) walk(node.items, `${prefix}[]`)
    if (typeof node.additionalProperties === 'object') walk(node.additionalProperties, `${prefix}.*`)
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const path = prefix === '' ? key : `${prefix}.${key}`
      paths.push(path)
      walk(child, path)
    }
  }
  walk(keyNodeOf(schema), '')
  return paths
}
