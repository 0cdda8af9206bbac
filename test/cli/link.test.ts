// `tsray link` as a user runs it: both link forms in, outbound JSON or a QR code out, the links of a
// config, and a refusal (exit 1) for a link or id that cannot work.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { formatVmessLink, parseVmessLink, type VmessLink } from '../../src/config/share-link.js'
import { runCli } from '../helpers/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'tsray-link-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const LINK: VmessLink = {
  remark: 'home',
  address: 'vpn.example.com',
  port: 443,
  id: randomUUID(),
  alterId: 0,
  security: 'aes-128-gcm',
  network: 'ws',
  headerType: 'none',
  host: 'vpn.example.com',
  path: '/ray',
  tls: true,
}

async function tsray(args: string[], env?: Record<string, string>) {
  const run = runCli(args, env === undefined ? undefined : { env })
  const code = await run.exited
  return { code, stdout: run.stdout(), stderr: run.stderr() }
}

for (const form of ['v2rayn', 'uri'] as const) {
  test(`tsray link reads the ${form} form and prints the outbound`, async () => {
    const result = await tsray(['link', formatVmessLink(LINK, { form })])
    assert.equal(result.code, 0, result.stderr)
    const outbound = JSON.parse(result.stdout) as {
      settings: { vnext: { address: string; port: number; users: { id: string; security: string }[] }[] }
      streamSettings: { network: string; security: string; wsSettings: { path: string } }
    }
    assert.equal(outbound.settings.vnext[0]?.address, 'vpn.example.com')
    assert.equal(outbound.settings.vnext[0]?.users[0]?.id, LINK.id)
    assert.equal(outbound.settings.vnext[0]?.users[0]?.security, 'aes-128-gcm')
    assert.deepEqual(
      [
        outbound.streamSettings.network,
        outbound.streamSettings.security,
        outbound.streamSettings.wsSettings.path,
      ],
      ['ws', 'tls', '/ray'],
    )
    assert.equal(result.stderr, '')
  })
}

test('tsray link --qr prints a QR code and --png writes one', async () => {
  const png = join(dir, 'link.png')
  const result = await tsray(['link', formatVmessLink(LINK), '--qr', '--png', png])
  assert.equal(result.code, 0, result.stderr)
  // Half-block characters, one text line per two module rows: a link this long needs 30+ lines.
  const rows = result.stdout.split('\n').filter((line) => /[▀▄█]/.test(line))
  assert.ok(rows.length >= 30, result.stdout)
  const image = readFileSync(png)
  assert.deepEqual([...image.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  // IHDR: a square image of a reasonable size.
  const [width, height] = [image.readUInt32BE(16), image.readUInt32BE(20)]
  assert.equal(width, height)
  assert.ok(width >= 200, `the PNG is ${width} px wide`)
})

test('tsray link refuses with exit 1 a link whose transport tsray cannot run, and a cut UUID', async () => {
  const kcp = await tsray(['link', formatVmessLink({ ...LINK, network: 'kcp', tls: false, path: '' })])
  assert.equal(kcp.code, 1)
  assert.match(kcp.stderr, /Cannot use this link with tsray: .*"kcp"/)
  assert.equal(kcp.stdout, '')
  const cut = await tsray(['link', `vmess://${LINK.id.slice(0, 13)}@127.0.0.1:443?type=tcp`])
  assert.equal(cut.code, 1)
  assert.match(cut.stderr, /looks like a cut UUID \(12 hex digits, a UUID has 32\)/)
})

test('tsray link -c prints the links of inbound users (at --address) and outbounds, which read back', async () => {
  const users = [randomUUID(), randomUUID()]
  const outboundId = randomUUID()
  const config = join(dir, 'config.json')
  writeFileSync(
    config,
    JSON.stringify({
      inbounds: [
        {
          port: 10086,
          protocol: 'vmess',
          settings: { clients: users.map((id, index) => ({ id, email: `user${index}@example` })) },
          streamSettings: { network: 'ws', wsSettings: { path: '/v' } },
        },
        { port: 1080, protocol: 'socks', settings: {} },
      ],
      outbounds: [
        {
          protocol: 'vmess',
          settings: { vnext: [{ address: 'upstream.example', port: 8443, users: [{ id: outboundId }] }] },
          streamSettings: { network: 'tcp', security: 'tls', tlsSettings: { serverName: 'up.example' } },
        },
      ],
    }),
  )
  for (const form of ['v2rayn', 'uri'] as const) {
    const result = await tsray(
      ['link', '-c', config, '--address', 'vpn.example.com', ...(form === 'uri' ? ['--uri'] : [])],
      {},
    )
    assert.equal(result.code, 0, result.stderr)
    const links = result.stdout.trim().split('\n')
    assert.equal(links.length, 3, result.stdout)
    if (form === 'uri')
      assert.ok(
        links.every((link) => link.includes('@')),
        result.stdout,
      )
    const parsed = links.map((link) => parseVmessLink(link))
    assert.deepEqual(
      parsed.map((link) => [
        link.remark,
        link.address,
        link.port,
        link.id,
        link.network,
        link.path,
        link.tls,
      ]),
      [
        ['user0@example', 'vpn.example.com', 10086, users[0], 'ws', '/v', false],
        ['user1@example', 'vpn.example.com', 10086, users[1], 'ws', '/v', false],
        ['outbound-0', 'upstream.example', 8443, outboundId, 'tcp', '', true],
      ],
    )
    assert.equal(parsed[2]?.sni, 'up.example')
  }
})

test('ids: "env:NAME" takes the variable, an unset one and a cut UUID are refused by tsray test', async () => {
  const id = randomUUID()
  const write = (name: string, value: string): string => {
    const path = join(dir, name)
    writeFileSync(
      path,
      JSON.stringify({
        inbounds: [{ port: 10086, protocol: 'vmess', settings: { clients: [{ id: value }] } }],
        outbounds: [{ protocol: 'freedom' }],
      }),
    )
    return path
  }
  const fromEnv = write('env.json', 'env:TSRAY_TEST_USER_ID')
  const set = await tsray(['link', '-c', fromEnv, '--address', '127.0.0.1'], { TSRAY_TEST_USER_ID: id })
  assert.equal(set.code, 0, set.stderr)
  assert.equal(parseVmessLink(set.stdout.trim()).id, id)
  assert.doesNotMatch(set.stderr, /UUIDv5/)

  const unset = await tsray(['test', '-c', fromEnv])
  assert.equal(unset.code, 1)
  assert.match(unset.stderr, /"env:TSRAY_TEST_USER_ID" names an environment variable that is not set/)

  const cut = await tsray(['test', '-c', write('cut.json', id.slice(0, 13))])
  assert.equal(cut.code, 1)
  assert.match(cut.stderr, /clients\[0\]\.id: .* looks like a cut UUID/)

  // A short string that is no UUID keeps Xray's UUIDv5 mapping, with a warning.
  const word = await tsray(['test', '-c', write('word.json', 'my secret word')])
  assert.equal(word.code, 0, word.stderr)
  assert.match(word.stderr, /UUIDv5/)
})

test('the default server refuses a cut UUID given with --id, naming it', async () => {
  const result = await tsray(['--port', '1', '--id', randomUUID().slice(0, 23)])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /clients\[0\]\.id: .* looks like a cut UUID \(20 hex digits, a UUID has 32\)/)
})
