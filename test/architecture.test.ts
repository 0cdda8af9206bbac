import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SRC = join(ROOT, 'src')

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

/** The layer of a file: its folder under src/, or the file name for top-level files. */
function layerOf(file: string): string {
  const rel = relative(SRC, file)
  return rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : rel
}

function importsOf(source: string): string[] {
  // Examples in doc comments are not imports.
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  const out: string[] = []
  const pattern = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g
  for (const match of text.matchAll(pattern)) out.push(match[1] ?? match[2] ?? '')
  return out
}

/** Which local layers and which packages each layer may import (docs/architecture.md §1). */
const ALLOWED: Record<string, { layers: string[]; packages: string[] }> = {
  'errors.ts': { layers: [], packages: [] },
  'types.ts': { layers: [], packages: [] },
  'budgets.ts': { layers: [], packages: [] },
  'index.ts': { layers: ['*'], packages: [] },
  crypto: {
    layers: ['crypto', 'errors.ts'],
    packages: ['node:crypto', 'node:zlib', 'node:module', 'node:url'],
  },
  protocol: {
    layers: ['protocol', 'crypto', 'errors.ts', 'types.ts', 'budgets.ts'],
    packages: ['node:crypto'],
  },
  streams: {
    layers: ['streams', 'protocol', 'crypto', 'errors.ts', 'types.ts', 'budgets.ts'],
    packages: ['node:stream'],
  },
  transport: {
    // config/types.ts: the settings a transport runs on are the types the config loader gives back.
    layers: ['transport', 'config/types.ts', 'errors.ts', 'types.ts', 'budgets.ts'],
    packages: [
      'node:net',
      'node:tls',
      'node:http',
      'node:http2',
      'node:https',
      'node:stream',
      'node:crypto',
      'node:fs',
      'node:module',
      'ws',
    ],
  },
  outbound: {
    layers: ['outbound', 'protocol', 'streams', 'transport', 'crypto', 'errors.ts', 'types.ts', 'budgets.ts'],
    packages: ['node:stream', 'node:dgram', 'node:dns/promises', 'node:net'],
  },
  inbound: {
    layers: [
      'inbound',
      'outbound',
      'protocol',
      'streams',
      'transport',
      'crypto',
      'errors.ts',
      'types.ts',
      'budgets.ts',
    ],
    packages: ['node:stream', 'node:dgram', 'node:net', 'node:http', 'node:crypto'],
  },
  config: {
    layers: ['config', 'protocol', 'errors.ts', 'types.ts', 'budgets.ts'],
    packages: ['zod', 'node:fs/promises'],
  },
  observe: {
    layers: ['observe', 'config', 'errors.ts', 'types.ts', 'budgets.ts'],
    packages: ['pino', 'sonic-boom', 'prom-client', 'node:http', 'node:module'],
  },
  runtime: {
    layers: [
      'runtime',
      'inbound',
      'outbound',
      'protocol',
      'streams',
      'transport',
      'config',
      'observe',
      'stats',
      'api',
      'crypto',
      'errors.ts',
      'types.ts',
      'budgets.ts',
    ],
    packages: ['node:net', 'node:stream', 'node:dns/promises'],
  },
  stats: { layers: ['stats', 'streams', 'outbound', 'config', 'types.ts'], packages: ['node:stream'] },
  api: {
    layers: ['api', 'stats', 'errors.ts', 'types.ts'],
    packages: ['@grpc/grpc-js', 'node:v8', 'node:perf_hooks'],
  },
  client: {
    layers: ['client', 'config', 'outbound', 'protocol', 'transport', 'errors.ts', 'types.ts'],
    packages: ['node:http', 'node:https', 'node:net', 'node:stream', 'node:tls', 'undici'],
  },
  cli: {
    layers: [
      'cli',
      'runtime',
      'config',
      'observe',
      'protocol',
      'crypto',
      'errors.ts',
      'types.ts',
      'budgets.ts',
    ],
    packages: [
      'node:util',
      'node:fs',
      'node:fs/promises',
      'node:crypto',
      'node:os',
      'node:path',
      'node:v8',
      'qrcode',
    ],
  },
}

test('src/ layers import only what docs/architecture.md §1 allows', () => {
  const problems: string[] = []
  for (const file of sourceFiles(SRC)) {
    const layer = layerOf(file)
    const rules = ALLOWED[layer]
    if (rules === undefined) {
      problems.push(`${relative(ROOT, file)}: layer "${layer}" has no rule`)
      continue
    }
    for (const specifier of importsOf(readFileSync(file, 'utf8'))) {
      if (specifier.startsWith('.')) {
        const targetFile = join(file, '..', specifier.replace(/\.js$/, '.ts'))
        const target = layerOf(targetFile)
        const allowed = rules.layers.includes(target) || rules.layers.includes(relative(SRC, targetFile))
        if (!rules.layers.includes('*') && !allowed) {
          problems.push(`${relative(ROOT, file)} imports ${specifier} (layer ${target})`)
        }
      } else if (!rules.packages.includes(specifier)) {
        problems.push(`${relative(ROOT, file)} imports package ${specifier}`)
      }
    }
  }
  assert.deepEqual(problems, [])
})

test('the protocol core and crypto are pure: no timers, no sockets, no Math.random', () => {
  const problems: string[] = []
  for (const file of sourceFiles(SRC).filter((f) => ['protocol', 'crypto'].includes(layerOf(f)))) {
    const text = readFileSync(file, 'utf8')
    // One exception: the native addon's loader reads its environment switch (TSRAY_NATIVE).
    const own =
      relative(SRC, file) === 'crypto/native.ts' ? text.replace(/process\.env\[NATIVE_SWITCH\]/g, '') : text
    for (const word of ['setTimeout', 'setInterval', 'setImmediate', 'Math.random', 'process.', 'console.']) {
      if (own.includes(word)) problems.push(`${relative(ROOT, file)} uses ${word}`)
    }
  }
  assert.deepEqual(problems, [])
})

test('the architecture check catches a wrong-way import', () => {
  // The rule table must refuse what docs/architecture.md forbids, or the test above proves nothing.
  assert.ok(!ALLOWED.protocol!.packages.includes('node:net'))
  assert.ok(!ALLOWED.protocol!.layers.includes('streams'))
  assert.deepEqual(importsOf("import { connect } from 'node:net'\nexport { x } from './y.js'"), [
    'node:net',
    './y.js',
  ])
})
