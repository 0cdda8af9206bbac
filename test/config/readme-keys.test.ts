import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { keyPaths } from '../../src/config/keys.js'
import { CONFIG_SECTIONS } from '../../src/config/sections.js'

const README = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')

/** The "Config keys" section of the README. */
function keyTable(): string {
  const start = README.indexOf('## Config keys')
  const end = README.indexOf('\n## ', start + 1)
  assert.ok(start >= 0 && end > start, 'README.md has a "## Config keys" section')
  return README.slice(start, end)
}

test("the README's config key table names every key the config schema reads", () => {
  const table = keyTable()
  const missing: string[] = []
  for (const [section, schema] of Object.entries(CONFIG_SECTIONS)) {
    for (const path of keyPaths(schema)) {
      const key = path.split('.').pop()?.replace(/\[\]$/, '') ?? ''
      // Named as `key`, or as the last or an inner part of a dotted name: `log.loglevel`, `tlsSettings.certificates`.
      const named = new RegExp(`[\`.]${key}(?:\\[\\])?[\`.(: ]`).test(table)
      if (!named) missing.push(section === '' ? path : `${section}.${path}`)
    }
  }
  assert.deepEqual(missing, [])
})

test('keyPaths lists nested keys, list entries and the keys of rules', () => {
  const dns = keyPaths(CONFIG_SECTIONS.dns!)
  assert.ok(dns.includes('hosts') && dns.includes('servers') && dns.includes('clientIp'))
  const inbound = keyPaths(CONFIG_SECTIONS['inbounds[]']!)
  assert.ok(inbound.includes('streamSettings.tlsSettings.certificates[].certificateFile'), inbound.join(' '))
  assert.ok(inbound.includes('streamSettings.kcpSettings'), 'ignored keys are keys too')
})
