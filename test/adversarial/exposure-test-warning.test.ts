import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

// `tsray test` keeps V2Ray's semantics (a config reaches what its routing allows) but warns when a
// VMess inbound others can reach may send tunnels to private targets.
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))
const ID = '5783a3e7-e373-51cd-8642-c83782b807c5'

function tsrayTest(config: object): Promise<{ code: number; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tsray-warn-'))
  const path = join(dir, 'config.json')
  writeFileSync(path, JSON.stringify(config))
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, 'test', '-c', path], (error, _stdout, stderr) =>
      resolve({ code: error === null ? 0 : Number(error.code), stderr }),
    )
  })
}

const inbound = (listen: string): object => ({
  listen,
  port: 10086,
  protocol: 'vmess',
  settings: { clients: [{ id: ID }] },
})

test('tsray test warns about a public VMess inbound that can reach private targets', async () => {
  const result = await tsrayTest({ inbounds: [inbound('0.0.0.0')], outbounds: [{ protocol: 'freedom' }] })
  assert.equal(result.code, 0)
  assert.match(result.stderr, /warning: inbounds\[0\] \(vmess on 0\.0\.0\.0:10086\).*geoip:private/)
})

test('tsray test is quiet when private targets are blocked, or the inbound is on loopback', async () => {
  const blocked = await tsrayTest({
    inbounds: [inbound('0.0.0.0')],
    outbounds: [{ protocol: 'freedom' }, { protocol: 'blackhole', tag: 'block' }],
    routing: { rules: [{ type: 'field', ip: ['geoip:private'], outboundTag: 'block' }] },
  })
  assert.equal(blocked.stderr, '')
  const loopback = await tsrayTest({ inbounds: [inbound('127.0.0.1')], outbounds: [{ protocol: 'freedom' }] })
  assert.equal(loopback.stderr, '')
})
