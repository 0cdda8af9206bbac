import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import { test } from 'node:test'
import { z } from 'zod'
import {
  CONFIG_REFERENCE_PATH,
  KEY_NOTES,
  OFF_ONLY_KEYS,
  TSRAY_KEYS,
  keysOf,
  renderConfigReference,
  schemaRoots,
} from '../../scripts/config-reference.js'
import { keyNodeOf } from '../../src/config/keys.js'
import { validateConfig } from '../../src/config/load.js'
import * as schema from '../../src/config/schema.js'

const allKeys = schemaRoots().flatMap((root) => keysOf(root))
const byPath = new Map(allKeys.map((entry) => [entry.path, entry]))

void test('docs/configuration.md is what scripts/config-reference.ts generates from the schema', () => {
  assert.equal(
    readFileSync(CONFIG_REFERENCE_PATH, 'utf8'),
    renderConfigReference(),
    'docs/configuration.md is stale: run `npm run docs:config` and commit the result',
  )
})

void test('every key the generator annotates exists in the schema', () => {
  for (const path of [...Object.keys(TSRAY_KEYS), ...Object.keys(OFF_ONLY_KEYS), ...Object.keys(KEY_NOTES)]) {
    const known =
      byPath.has(path) || allKeys.some((entry) => entry.path.endsWith(`.${path}`) || entry.path === path)
    assert.ok(known, `${path} is annotated in scripts/config-reference.ts but is not a key of the schema`)
  }
})

void test('the reference lists every exported schema of the config module', () => {
  // A section added to the schema without a place on the page would silently go undocumented.
  // Reached means: the JSON Schema the loader reads the export with (src/config/keys.ts) is part of a
  // section's, every field alike (a wrapper such as a default may add fields around it).
  const sections = schemaRoots().map((root) => keyNodeOf(root.schema))
  const contains = (node: unknown, target: Readonly<Record<string, unknown>>): boolean => {
    if (typeof node !== 'object' || node === null) return false
    const fields = node as Readonly<Record<string, unknown>>
    if (Object.entries(target).every(([field, value]) => isDeepStrictEqual(fields[field], value))) return true
    return Object.values(fields).some((child) => contains(child, target))
  }
  /** The export's JSON Schema, or undefined for a leaf reader (JSON Schema's "any": it has no keys to place). */
  const keysNode = (target: z.ZodType): Readonly<Record<string, unknown>> | undefined => {
    const fields = Object.entries(keyNodeOf(target)).filter(([field]) => field !== '$schema')
    const node: Readonly<Record<string, unknown>> = Object.fromEntries(fields)
    return 'properties' in node || 'items' in node || 'additionalProperties' in node ? node : undefined
  }
  const exported: Array<[string, z.ZodType]> = []
  for (const [name, value] of Object.entries(schema) as Array<[string, unknown]>) {
    if (value instanceof z.ZodType) exported.push([name, value])
    else if (typeof value === 'object' && value !== null) {
      for (const [key, inner] of Object.entries(value) as Array<[string, unknown]>) {
        if (inner instanceof z.ZodType) exported.push([`${name}.${key}`, inner])
      }
    }
  }
  const withKeys = exported.flatMap(([name, value]) => {
    const node = keysNode(value)
    return node === undefined ? [] : [[name, node] as const]
  })
  assert.ok(withKeys.length >= 10, 'the schema module exports its section schemas')
  for (const [name, node] of withKeys) {
    assert.ok(
      sections.some((section) => contains(section, node)),
      `${name} is not on docs/configuration.md`,
    )
  }
})

void test('the statuses on the page are what the loader does with a config', () => {
  // One key of each status, loaded for real: refused keys fail, ignored ones warn, extensions are read.
  const settings = { clients: [{ id: 'b831381d-6324-4d53-ad4f-8cda48b30811' }] }
  const base = {
    inbounds: [{ port: 10086, protocol: 'vmess', settings }],
    outbounds: [{ protocol: 'freedom' }],
  }
  assert.equal(byPath.get('reverse')?.status, 'refused')
  assert.throws(() => validateConfig({ ...base, reverse: {} }), /reverse/)
  assert.equal(byPath.get('fakedns')?.status, 'ignored with a warning')
  const ignored = validateConfig({ ...base, fakedns: [] })
  assert.ok(ignored.warnings.some((warning) => warning.startsWith('fakedns:')))
  // stats is read beside the schema (src/config/operate.ts): supported, and no warning.
  assert.equal(byPath.get('stats')?.status, 'supported')
  assert.deepEqual(validateConfig({ ...base, stats: {} }).warnings, [])
  assert.equal(byPath.get('inbounds[].settings.legacyHeader')?.status, 'tsray extension')
  const extension = validateConfig({
    ...base,
    inbounds: [{ port: 10086, protocol: 'vmess', settings: { ...settings, legacyHeader: 'refuse' } }],
  })
  assert.deepEqual(extension.warnings, [])
  assert.equal(byPath.get('inbounds[].streamSettings.sockopt.tproxy')?.status, 'off only')
})
