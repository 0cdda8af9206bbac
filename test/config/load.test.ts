import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import fc from 'fast-check'
import { PRIVATE_IP_RANGES } from '../../src/config/defaults.js'
import { loadConfigFiles, mergeConfigs, parseConfigText, validateConfig } from '../../src/config/load.js'
import { levelPolicy } from '../../src/config/schema.js'
import { ConfigError } from '../../src/errors.js'

const UUID = 'b831381d-6324-4d53-ad4f-8cda48b30811'
const UUID2 = '27848739-7e62-4138-9fd3-098a63964b6b'

/** A V2Ray 4.34 VMess server as its users write it, comments included. */
const SERVER_CONFIG = `{
  // V2Ray 4.34 server: VMess over TCP, direct out, private ranges blocked
  "log": {
    "access": "/var/log/v2ray/access.log",
    "error": "/var/log/v2ray/error.log",
    "loglevel": "warning"
  },
  "inbounds": [
    {
      "port": 10086,
      "listen": "0.0.0.0",
      "protocol": "vmess",
      "settings": {
        "clients": [
          { "id": "${UUID}", "alterId": 0, "email": "love@v2fly.org", "level": 0 },
          { "id": "${UUID2.toUpperCase()}", "alterId": 64, "email": "old-client@v2fly.org" }
        ],
        "disableInsecureEncryption": true
      },
      "streamSettings": { "network": "tcp", "security": "none", "tcpSettings": { "header": { "type": "none" } } },
      "sniffing": { "enabled": true, "destOverride": ["http", "tls"] }
    }
  ],
  "outbounds": [
    { "protocol": "freedom", "settings": {}, "tag": "direct" },
    { "protocol": "blackhole", "settings": {}, "tag": "blocked" }
  ],
  "routing": {
    "domainStrategy": "AsIs",
    "rules": [
      /* keep clients away from the LAN */
      { "type": "field", "ip": ["geoip:private"], "outboundTag": "blocked" }
    ]
  },
  "policy": {
    "levels": { "0": { "handshake": 4, "connIdle": 300, "uplinkOnly": 2, "downlinkOnly": 5, "statsUserUplink": false } },
    "system": { "statsInboundUplink": false, "statsInboundDownlink": false }
  },
  "dns": { "servers": ["1.1.1.1", "localhost"] }
}`

/** A V2Ray 4.34 client: SOCKS and HTTP in, VMess out, split routing. */
const CLIENT_CONFIG = `{
  "log": { "loglevel": "info" },
  "inbounds": [
    {
      "tag": "socks-in", "port": 1080, "listen": "127.0.0.1", "protocol": "socks",
      "settings": { "auth": "noauth", "udp": true, "ip": "127.0.0.1" },
      "sniffing": { "enabled": false }
    },
    {
      "tag": "http-in", "port": "8118", "listen": "127.0.0.1", "protocol": "http",
      "settings": { "accounts": [{ "user": "me", "pass": "secret" }], "timeout": 300, "allowTransparent": false }
    }
  ],
  "outbounds": [
    {
      "tag": "proxy", "protocol": "vmess",
      "settings": {
        "vnext": [{
          "address": "v2.example.com", "port": 443,
          "users": [{ "id": "${UUID}", "alterId": 0, "security": "aes-128-gcm", "level": 0 }]
        }]
      },
      "streamSettings": { "network": "tcp" },
      "mux": { "enabled": false, "concurrency": 8 }
    },
    { "tag": "direct", "protocol": "freedom", "settings": { "domainStrategy": "UseIPv4" } },
    { "tag": "block", "protocol": "blackhole", "settings": { "response": { "type": "http" } } }
  ],
  "routing": {
    "domainStrategy": "IPIfNonMatch",
    "rules": [
      { "type": "field", "domain": ["domain:ads.example", "regexp:^track\\\\."], "outboundTag": "block" },
      { "type": "field", "ip": ["geoip:private", "8.8.8.8"], "outboundTag": "direct" },
      { "type": "field", "port": "53", "network": "udp", "outboundTag": "direct" },
      { "type": "field", "inboundTag": ["http-in"], "user": ["me"], "outboundTag": "proxy" }
    ]
  }
}`

/** The ConfigError `run` throws; fails the test when it throws anything else or nothing. */
function configErrorOf(run: () => unknown): ConfigError {
  try {
    run()
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  assert.fail('expected a ConfigError')
}

/** A minimal valid config with `patch` merged over its top level. */
function minimal(patch: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    inbounds: [{ port: 1080, listen: '127.0.0.1', protocol: 'socks' }],
    outbounds: [{ protocol: 'freedom', tag: 'direct' }],
    ...patch,
  }
}

function messageOf(config: unknown): string {
  return configErrorOf(() => validateConfig(config, { env: {} })).message
}

test('validateConfig reads a V2Ray 4.34 server config with the expected typed values', () => {
  const { config, warnings } = validateConfig(parseConfigText(SERVER_CONFIG, { source: 'server.json' }))
  assert.deepEqual(config.log, {
    level: 'warning',
    access: { to: 'file', path: '/var/log/v2ray/access.log' },
    error: { to: 'file', path: '/var/log/v2ray/error.log' },
  })
  assert.deepEqual(config.inbounds, [
    {
      tag: undefined,
      listen: '0.0.0.0',
      port: 10086,
      protocol: 'vmess',
      stream: { network: 'tcp', security: 'none' },
      settings: {
        clients: [
          { id: UUID, alterId: 0, email: 'love@v2fly.org', level: 0 },
          { id: UUID2, alterId: 64, email: 'old-client@v2fly.org', level: 0 },
        ],
        disableInsecureEncryption: true,
        legacyHeader: 'accept',
      },
    },
  ])
  assert.deepEqual(config.outbounds, [
    {
      tag: 'direct',
      protocol: 'freedom',
      stream: { network: 'tcp', security: 'none' },
      sendThrough: undefined,
      settings: { domainStrategy: 'AsIs', redirect: undefined, timeoutMs: undefined, userLevel: 0 },
    },
    {
      tag: 'blocked',
      protocol: 'blackhole',
      stream: { network: 'tcp', security: 'none' },
      sendThrough: undefined,
      settings: { response: 'none' },
    },
  ])
  assert.equal(config.routing.domainStrategy, 'AsIs')
  assert.equal(config.routing.rules.length, 1)
  assert.equal(config.routing.rules[0]?.outboundTag, 'blocked')
  assert.deepEqual(config.routing.rules[0]?.ip, PRIVATE_IP_RANGES)
  assert.deepEqual(levelPolicy(config, 0), {
    handshakeMs: 4_000,
    connIdleMs: 300_000,
    uplinkOnlyMs: 2_000,
    downlinkOnlyMs: 5_000,
    bufferBytes: 512 * 1024,
  })
  assert.equal(levelPolicy(config, 1).handshakeMs, 60_000)
  assert.deepEqual(config.dns?.servers, [
    { address: '1.1.1.1', port: 53, domains: [], expectIps: [], skipFallback: false },
    { address: 'localhost', port: 53, domains: [], expectIps: [], skipFallback: false },
  ])
  assert.deepEqual(warnings, ['inbounds[0].sniffing: ignored: tsray does not sniff traffic'])
})

test('validateConfig reads a V2Ray 4.34 client config: socks + http in, vmess out, routing', () => {
  const { config, warnings } = validateConfig(parseConfigText(CLIENT_CONFIG))
  assert.deepEqual(warnings, [])
  assert.deepEqual(config.log, { level: 'info', access: { to: 'console' }, error: { to: 'console' } })
  const [socks, http] = config.inbounds
  assert.deepEqual(socks, {
    tag: 'socks-in',
    listen: '127.0.0.1',
    port: 1080,
    protocol: 'socks',
    stream: { network: 'tcp', security: 'none' },
    settings: {
      auth: 'noauth',
      accounts: [],
      udp: true,
      ip: '127.0.0.1',
      timeoutMs: undefined,
      userLevel: 0,
    },
  })
  assert.deepEqual(http, {
    tag: 'http-in',
    listen: '127.0.0.1',
    port: 8118,
    protocol: 'http',
    stream: { network: 'tcp', security: 'none' },
    settings: { accounts: [{ user: 'me', pass: 'secret' }], timeoutMs: 300_000, userLevel: 0 },
  })
  const [proxy, direct, block] = config.outbounds
  assert.deepEqual(proxy, {
    tag: 'proxy',
    protocol: 'vmess',
    stream: { network: 'tcp', security: 'none' },
    sendThrough: undefined,
    settings: {
      vnext: [
        {
          address: 'v2.example.com',
          port: 443,
          users: [
            {
              id: UUID,
              alterId: 0,
              security: 'aes-128-gcm',
              level: 0,
              email: undefined,
              authenticatedLength: false,
              noTerminationSignal: false,
            },
          ],
        },
      ],
    },
  })
  assert.equal(direct?.protocol === 'freedom' && direct.settings.domainStrategy, 'UseIPv4')
  assert.equal(block?.protocol === 'blackhole' && block.settings.response, 'http')
  assert.equal(config.routing.domainStrategy, 'IPIfNonMatch')
  assert.deepEqual(
    config.routing.rules.map((rule) => [
      rule.outboundTag,
      rule.domain,
      rule.port,
      rule.network,
      rule.inboundTag,
    ]),
    [
      ['block', ['domain:ads.example', 'regexp:^track\\.'], undefined, undefined, undefined],
      ['direct', undefined, undefined, undefined, undefined],
      ['direct', undefined, [{ from: 53, to: 53 }], ['udp'], undefined],
      ['proxy', undefined, undefined, undefined, ['http-in']],
    ],
  )
  assert.deepEqual(config.routing.rules[1]?.ip, [...PRIVATE_IP_RANGES, '8.8.8.8/32'])
  assert.equal(config.policy.levels.size, 0)
})

test('validateConfig without log, routing or policy applies V2Ray defaults', () => {
  const { config, warnings } = validateConfig(minimal())
  assert.deepEqual(config.log, { level: 'warning', access: { to: 'none' }, error: { to: 'console' } })
  assert.deepEqual(config.routing, { domainStrategy: 'AsIs', rules: [] })
  assert.deepEqual(levelPolicy(config, 0), {
    handshakeMs: 60_000,
    connIdleMs: 300_000,
    uplinkOnlyMs: 1_000,
    downlinkOnlyMs: 1_000,
    bufferBytes: 512 * 1024,
  })
  assert.deepEqual(warnings, [])
})

test('parseConfigText accepts //, /* */ and # comments without touching strings that contain them', () => {
  const text = `{
    // line comment
    "a": "http://example.com//path", /* block
    comment */ "b": "/* not a comment */",
    # hash comment
    "c": "# not a comment", "d": [1, -2.5e3, true, false, null, {}, []]
  }`
  assert.deepEqual(parseConfigText(text), {
    a: 'http://example.com//path',
    b: '/* not a comment */',
    c: '# not a comment',
    d: [1, -2500, true, false, null, {}, []],
  })
  assert.deepEqual(parseConfigText('\uFEFF{"escaped": "quote \\" and \\u00e9"}'), {
    escaped: 'quote " and é',
  })
  const withProto = parseConfigText('{"__proto__": {"x": 1}}') as Record<string, unknown>
  assert.deepEqual(Object.keys(withProto), ['__proto__'])
  assert.equal(Object.getPrototypeOf(withProto), Object.prototype)
})

test('parseConfigText reports bad JSON with the file name, line and column', () => {
  const cases: [string, string][] = [
    [
      '{\n  "a": 1,\n  "b": tru\n}',
      'Cannot parse server.json: "tru" is not a JSON value at line 3, column 8',
    ],
    [
      '{\n  "a": 1,\n}',
      "Cannot parse server.json: a comma before '}' (JSON allows no trailing comma) at line 3, column 1",
    ],
    ['{ "a": 1 "b": 2 }', "Cannot parse server.json: ',' or '}' is expected at line 1, column 10"],
    ['{ a: 1 }', 'Cannot parse server.json: a key in double quotes is expected at line 1, column 3'],
    ['{ "a" 1 }', `Cannot parse server.json: ':' is expected after the key "a" at line 1, column 7`],
    ['{ "a": [1, 2 }', "Cannot parse server.json: ',' or ']' is expected at line 1, column 14"],
    ['{ "a": "x', 'Cannot parse server.json: a string is never closed at line 1, column 8'],
    ['{ /* open', 'Cannot parse server.json: a /* comment is never closed at line 1, column 3'],
    ['{ "a": 1 } x', 'Cannot parse server.json: more text after the JSON value at line 1, column 12'],
    ['{ "a":', 'Cannot parse server.json: the text ends where a value is expected at line 1, column 7'],
    ['// only a comment\n', 'Cannot parse server.json: it holds no JSON value'],
    ['{ "a": "\\x" }', 'Cannot parse server.json: a bad escape sequence in a string at line 1, column 9'],
  ]
  for (const [text, message] of cases) {
    const error = configErrorOf(() => parseConfigText(text, { source: 'server.json' }))
    assert.equal(error.message, message, text)
    assert.equal(error.path, '')
  }
})

test('parseConfigText agrees with JSON.parse on any JSON text', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const text = JSON.stringify(value, null, 1)
      assert.deepEqual(parseConfigText(text), JSON.parse(text))
    }),
    { numRuns: 300 },
  )
})

test('parseConfigText throws only ConfigError on any text', () => {
  fc.assert(
    fc.property(
      fc.string({
        unit: fc.constantFrom(
          '{',
          '}',
          '[',
          ']',
          '"',
          ':',
          ',',
          '/',
          '*',
          '#',
          '\\',
          '\n',
          ' ',
          '1',
          'a',
          'tr',
          'ue',
        ),
      }),
      (text) => {
        try {
          parseConfigText(text)
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error
        }
      },
    ),
    { numRuns: 500 },
  )
})

test('mergeConfigs merges objects, concatenates rules and replaces inbounds and outbounds by tag', () => {
  const base = parseConfigText(CLIENT_CONFIG)
  const override = {
    log: { loglevel: 'debug' },
    inbounds: [
      {
        tag: 'dns-in',
        port: 5353,
        listen: '127.0.0.1',
        protocol: 'dokodemo-door',
        settings: { address: '1.1.1.1', port: 53, network: 'udp' },
      },
    ],
    outbounds: [
      {
        tag: 'proxy',
        protocol: 'vmess',
        settings: { vnext: [{ address: '198.51.100.7', port: 8443, users: [{ id: UUID2 }] }] },
      },
    ],
    routing: { rules: [{ type: 'field', inboundTag: ['dns-in'], outboundTag: 'direct' }] },
  }
  const merged = mergeConfigs([base, override])
  const { config } = validateConfig(merged)
  assert.equal(config.log.level, 'debug')
  assert.deepEqual(config.log.access, { to: 'console' })
  assert.deepEqual(
    config.inbounds.map((inbound) => inbound.tag),
    ['socks-in', 'http-in', 'dns-in'],
  )
  assert.deepEqual(
    config.outbounds.map((outbound) => outbound.tag),
    ['proxy', 'direct', 'block'],
  )
  const proxy = config.outbounds[0]
  assert.equal(proxy?.protocol === 'vmess' && proxy.settings.vnext[0]?.address, '198.51.100.7')
  assert.equal(config.routing.domainStrategy, 'IPIfNonMatch')
  assert.equal(config.routing.rules.length, 5)
  assert.deepEqual(config.routing.rules[4]?.inboundTag, ['dns-in'])
  // The inputs are left as they were.
  assert.equal(
    (base as { outbounds: { settings: { vnext: { port: number }[] } }[] }).outbounds[0]?.settings.vnext[0]
      ?.port,
    443,
  )
})

test('mergeConfigs appends untagged entries, keeps earlier values under null, and refuses non-objects', () => {
  const merged = mergeConfigs([
    { outbounds: [{ protocol: 'freedom' }], log: { loglevel: 'info' } },
    { outbounds: [{ protocol: 'blackhole' }], log: null },
  ])
  assert.deepEqual(merged, {
    outbounds: [{ protocol: 'freedom' }, { protocol: 'blackhole' }],
    log: { loglevel: 'info' },
  })
  assert.deepEqual(mergeConfigs([]), {})
  const error = configErrorOf(() => mergeConfigs([{}, [1]], { sources: ['a.json', 'b.json'] }))
  assert.equal(error.message, 'Cannot merge b.json: it holds a list, not a JSON object')
})

test('loadConfigFiles reads, merges and validates files in order, "-" being standard input', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tsray-config-'))
  after(() => rm(directory, { recursive: true, force: true }))
  const first = join(directory, 'client.json')
  const bad = join(directory, 'bad.json')
  await writeFile(first, CLIENT_CONFIG)
  await writeFile(bad, '{\n  "log": {\n    "loglevel": "info",\n  }\n}')
  const loaded = await loadConfigFiles([first, '-'], {
    readStdin: () => Promise.resolve('{ "log": { "loglevel": "error" } // from a pipe\n}'),
  })
  assert.equal(loaded.config.log.level, 'error')
  assert.equal(loaded.config.outbounds.length, 3)

  await t.test('a syntax error names the file, line and column', async () => {
    await assert.rejects(loadConfigFiles([first, bad]), {
      name: 'ConfigError',
      message: `Cannot parse ${bad}: a comma before '}' (JSON allows no trailing comma) at line 4, column 3`,
    })
  })
  await t.test('a missing file is a ConfigError naming it', async () => {
    const missing = join(directory, 'missing.json')
    await assert.rejects(loadConfigFiles([missing]), (error: unknown) => {
      assert.ok(error instanceof ConfigError)
      assert.match(error.message, /^Cannot read .*missing\.json: ENOENT/)
      return true
    })
  })
  await t.test('no file at all is refused', async () => {
    await assert.rejects(loadConfigFiles([]), { message: 'Cannot load the config: no file given' })
  })
})

test('validateConfig refuses unsupported features with their JSON path', () => {
  const cases: [Record<string, unknown>, string][] = [
    [
      minimal({ inbounds: [{ port: 1080, protocol: 'socks', streamSettings: { network: 'ws' } }] }),
      'inbounds[0].streamSettings.network: "ws" is not supported yet (supported: "tcp")',
    ],
    [
      minimal({
        outbounds: [{ protocol: 'freedom' }, { protocol: 'shadowsocks', settings: { servers: [] } }],
      }),
      'outbounds[1].protocol: "shadowsocks" is not supported (supported: vmess, freedom, blackhole)',
    ],
    [
      minimal({ outbounds: [{ protocol: 'freedom', mux: { enabled: true } }] }),
      'outbounds[0].mux.enabled: Mux.Cool (mux.enabled) is not supported yet',
    ],
    [
      minimal({ outbounds: [{ protocol: 'freedom', proxySettings: { tag: 'x' } }] }),
      'outbounds[0].proxySettings: not supported yet: tsray does not chain outbounds',
    ],
    [
      minimal({ outbounds: [{ protocol: 'freedom', streamSettings: { security: 'tls' } }] }),
      'outbounds[0].streamSettings.security: "tls" is not supported yet (supported: "none")',
    ],
    [
      minimal({ reverse: { bridges: [] } }),
      'reverse: not supported yet: tsray has no reverse proxy (bridge/portal)',
    ],
    [
      minimal({ dns: { servers: ['https+local://1.1.1.1/dns-query'] } }),
      'dns.servers[0]: "https+local://1.1.1.1/dns-query": DNS over HTTPS is not supported yet (supported: plain DNS to an IP, "localhost")',
    ],
    [
      minimal({ routing: { rules: [{ type: 'field', domain: ['geosite:cn'], outboundTag: 'direct' }] } }),
      'routing.rules[0].domain[0]: "geosite:cn" needs geosite.dat, which tsray does not read; list the domains instead',
    ],
    [
      minimal({ routing: { rules: [{ type: 'field', ip: ['geoip:cn'], outboundTag: 'direct' }] } }),
      'routing.rules[0].ip[0]: "geoip:cn" needs geoip.dat, which tsray does not read (only "geoip:private" is built in)',
    ],
    [
      minimal({
        routing: { rules: [{ type: 'field', port: 6881, protocol: ['bittorrent'], outboundTag: 'direct' }] },
      }),
      'routing.rules[0].protocol: not supported: matching sniffed protocols needs sniffing, which tsray does not do',
    ],
    [
      minimal({ routing: { rules: [{ type: 'field', domain: ['a.com'], balancerTag: 'b' }] } }),
      'routing.rules[0].balancerTag: not supported yet: tsray has no balancers\nrouting.rules[0].outboundTag: is required',
    ],
    [
      minimal({
        inbounds: [
          {
            port: 53,
            protocol: 'dokodemo-door',
            settings: { address: '1.1.1.1', port: 53, followRedirect: true },
          },
        ],
      }),
      'inbounds[0].settings.followRedirect: followRedirect (transparent proxying) is not supported yet',
    ],
    [
      minimal({
        inbounds: [{ port: 10086, protocol: 'vmess', settings: { clients: [], detour: { to: 'd' } } }],
      }),
      'inbounds[0].settings.detour: not supported: tsray has no dynamic ports',
    ],
    [
      minimal({ inbounds: [{ port: '10000-10010', protocol: 'socks' }] }),
      `inbounds[0].port: "10000-10010" is a port range; tsray listens on one port per inbound (V2Ray's allocate is not supported)`,
    ],
  ]
  for (const [config, message] of cases) {
    assert.equal(messageOf(config), message)
  }
})

test('validateConfig reports malformed values with their JSON path and plain words', () => {
  const vmessInbound = (clients: unknown[]) =>
    minimal({ inbounds: [{ port: 10086, protocol: 'vmess', settings: { clients } }] })
  const cases: [unknown, string, string][] = [
    [
      vmessInbound([{ id: UUID }, { id: 'abc-this-is-definitely-not-a-uuid-at-all' }]),
      'inbounds[0].settings.clients[1].id',
      'inbounds[0].settings.clients[1].id: "abc-this-is-definitely-not-a-uuid-at-all" is not a UUID',
    ],
    [
      vmessInbound([
        { id: UUID, email: 'A@x' },
        { id: UUID2, email: 'a@X' },
      ]),
      'inbounds[0].settings.clients[1].email',
      'inbounds[0].settings.clients[1].email: "a@X" is already the email of clients[0]',
    ],
    [
      minimal({ inbounds: [{ port: 99999, protocol: 'socks' }] }),
      'inbounds[0].port',
      'inbounds[0].port: 99999 is not a port number (1–65535)',
    ],
    [
      minimal({ inbounds: [{ port: 1080, protocol: 'socks', settings: { auth: 'password' } }] }),
      'inbounds[0].settings.accounts',
      'inbounds[0].settings.accounts: is required when auth is "password"',
    ],
    [
      minimal({
        inbounds: [
          { port: 1080, protocol: 'socks' },
          { port: 1081, protocol: 'http', tag: 'x' },
          { port: 1082, protocol: 'http', tag: 'x' },
        ],
      }),
      'inbounds[2].tag',
      'inbounds[2].tag: "x" is already the tag of inbounds[1]',
    ],
    [
      minimal({
        outbounds: [
          { protocol: 'freedom', tag: 'a' },
          { protocol: 'blackhole', tag: 'a' },
        ],
      }),
      'outbounds[1].tag',
      'outbounds[1].tag: "a" is already the tag of outbounds[0]',
    ],
    [
      minimal({
        outbounds: [{ protocol: 'vmess', settings: { vnext: [{ address: 'a.example', port: 443 }] } }],
      }),
      'outbounds[0].settings.vnext[0].users',
      'outbounds[0].settings.vnext[0].users: is required',
    ],
    [
      minimal({
        outbounds: [
          {
            protocol: 'vmess',
            settings: {
              vnext: [{ address: 'a.example', port: 443, users: [{ id: UUID }] }],
              maxChunkLength: 100_000,
            },
          },
        ],
      }),
      'outbounds[0].settings.maxChunkLength',
      'outbounds[0].settings.maxChunkLength: 100000 is not an integer from 1024 to 65535',
    ],
    [
      minimal({ routing: { rules: [{ type: 'field', domain: ['a.com'], outboundTag: 'proxy' }] } }),
      'routing.rules[0].outboundTag',
      'routing.rules[0].outboundTag: no outbound has the tag "proxy"',
    ],
    [
      minimal({ routing: { rules: [{ type: 'field', outboundTag: 'direct' }] } }),
      'routing.rules[0]',
      'routing.rules[0]: has no conditions (V2Ray refuses a rule without any)',
    ],
    [minimal({ inbounds: {} }), 'inbounds', 'inbounds: an object is not a list'],
    [minimal({ inbounds: ['socks'] }), 'inbounds[0]', 'inbounds[0]: "socks" is not an object'],
    [
      minimal({ inbounds: [{ port: 1080, protocol: 'socks', settings: 'none' }] }),
      'inbounds[0].settings',
      'inbounds[0].settings: "none" is not an object',
    ],
    [minimal({ log: { error: false } }), 'log.error', 'log.error: false is not a string'],
    [
      minimal({ policy: { levels: { '0': { connIdle: '300' } } } }),
      'policy.levels["0"].connIdle',
      'policy.levels["0"].connIdle: "300" is not an integer from 0 to 4294967295',
    ],
    [
      { inbounds: [] },
      'outbounds',
      'outbounds: is empty or absent; at least one outbound is needed (the first one is the default route)',
    ],
    [[], '', 'Cannot use the config: it is a list, not a JSON object'],
  ]
  for (const [config, path, message] of cases) {
    const error = configErrorOf(() => validateConfig(config, { env: {} }))
    assert.equal(error.message, message)
    assert.equal(error.path, path)
    assert.equal(error.code, 'CONFIG_INVALID')
  }
})

test("validateConfig reads metrics.listen (Xray's key) and names metrics.listen when it is no address", () => {
  const listenOf = (listen: unknown) =>
    validateConfig(minimal({ metrics: { listen } })).config.metrics?.listen
  assert.deepEqual(listenOf('127.0.0.1:9100'), { address: '127.0.0.1', port: 9100 })
  assert.deepEqual(listenOf('[::1]:9100'), { address: '::1', port: 9100 })
  assert.deepEqual(listenOf(':9100'), { address: '0.0.0.0', port: 9100 })
  assert.equal(validateConfig(minimal({})).config.metrics, undefined)
  const tagOnly = validateConfig(minimal({ metrics: { tag: 'metrics_out' } }))
  assert.equal(tagOnly.config.metrics, undefined)
  assert.ok(tagOnly.warnings.includes('metrics: ignored: without "listen" tsray serves no metrics'))
  for (const [listen, message] of [
    ['9100', '"9100" is not an address and port such as "127.0.0.1:9100"'],
    ['127.0.0.1', '"127.0.0.1" is not an address and port such as "127.0.0.1:9100"'],
    ['127.0.0.1:0', '"127.0.0.1:0" does not end in a port number (1–65535)'],
    ['127.0.0.1:http', '"127.0.0.1:http" does not end in a port number (1–65535)'],
    ['example.com:9100', '"example.com:9100" has no IP address before the port'],
    ['300.1.1.1:9100', '"300.1.1.1:9100" has no IP address before the port'],
    [9100, '9100 is not a string'],
  ] as const) {
    assert.throws(
      () => validateConfig(minimal({ metrics: { listen } })),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.path === 'metrics.listen' &&
        error.message.startsWith(`metrics.listen: ${message}`),
      String(listen),
    )
  }
})

test('validateConfig lists every problem at once, one "path: message" per line', () => {
  const config = {
    inbounds: [
      { port: 70000, protocol: 'vmess', settings: { clients: [{ id: 'x'.repeat(31), alterId: -1 }] } },
      { port: 1080, protocol: 'trojan' },
    ],
    outbounds: [{ protocol: 'freedom', settings: { redirect: 'nowhere' } }],
    routing: { rules: [{ type: 'field', ip: ['300.1.1.1'], outboundTag: 'direct' }] },
  }
  const error = configErrorOf(() => validateConfig(config))
  assert.equal(error.path, 'inbounds[0].port')
  assert.equal(
    error.message,
    [
      'inbounds[0].port: 70000 is not a port number (1–65535)',
      `inbounds[0].settings.clients[0].id: "${'x'.repeat(31)}" is not a UUID`,
      'inbounds[0].settings.clients[0].alterId: -1 is not an integer from 0 to 65535',
      'inbounds[1].protocol: "trojan" is not supported (supported: vmess, socks, http, dokodemo-door)',
      'outbounds[0].settings.redirect: "nowhere" is not "host:port"',
      'routing.rules[0].ip[0]: "300.1.1.1" is not an IP address or a CIDR like "10.0.0.0/8"',
    ].join('\n'),
  )
})

test('validateConfig warns about unknown keys and ignored V2Ray features with their path', () => {
  const { config, warnings } = validateConfig(
    minimal({
      inbounds: [
        {
          port: 1080,
          protocol: 'socks',
          settings: { auth: 'noauth', accounts: [{ user: 'u', pass: 'p' }], udpp: true },
          sniffing: { enabled: true },
          Tag: 'socks-in',
        },
        { port: 8080, protocol: 'http', settings: { allowTransparent: true } },
        { port: 10086, protocol: 'vmess', settings: { clients: [] } },
      ],
      outbounds: [
        {
          tag: 'proxy',
          protocol: 'vmess',
          settings: {
            vnext: [{ address: '203.0.113.1', port: 443, users: [{ id: UUID, security: 'aes-256-gcm' }] }],
          },
          mux: { enabled: false },
        },
      ],
      routing: { rules: [{ type: 'field', inboundTag: ['socks-in', 'nope'], outboundTag: 'proxy' }] },
      stats: {},
      fakedns: [],
      observatory: {},
      myComment: 'hello',
    }),
  )
  assert.equal(config.inbounds[0]?.tag, 'socks-in')
  assert.deepEqual(warnings, [
    'fakedns: ignored: fake DNS needs sniffing, which tsray does not do',
    'observatory: ignored: used only by balancers, which are not supported yet',
    'myComment: unknown key, ignored',
    'inbounds[0].sniffing: ignored: tsray does not sniff traffic',
    'inbounds[0].Tag: read as "tag" (V2Ray matches keys ignoring case; write "tag")',
    'inbounds[0].settings.udpp: unknown key, ignored',
    'inbounds[0].settings.accounts: ignored: auth is "noauth"',
    'inbounds[1].settings.allowTransparent: ignored: tsray answers only proxy requests',
    'inbounds[2].settings.clients: no clients: every VMess connection will be refused',
    'outbounds[0].settings.vnext[0].users[0].security: "aes-256-gcm" is not a VMess security; V2Ray reads it as "auto", and so does tsray',
    'routing.rules[0].inboundTag[1]: no inbound has the tag "nope"',
  ])
})

test('validateConfig reads the API: its dokodemo-door inbound and routing rule say where it listens', () => {
  const { config, warnings } = validateConfig({
    api: { tag: 'api', services: ['HandlerService', 'StatsService'] },
    stats: {},
    inbounds: [
      {
        tag: 'api',
        listen: '127.0.0.1',
        port: 10085,
        protocol: 'dokodemo-door',
        settings: { address: '127.0.0.1' },
      },
      {
        tag: 'vmess-in',
        port: 10086,
        protocol: 'vmess',
        settings: { clients: [{ id: UUID }, { id: UUID }] },
      },
    ],
    outbounds: [{ protocol: 'freedom' }],
    routing: { rules: [{ type: 'field', inboundTag: ['api'], outboundTag: 'api' }] },
  })
  assert.deepEqual(
    config.inbounds.map((inbound) => inbound.tag),
    ['vmess-in'],
  )
  assert.deepEqual(config.routing.rules, [])
  assert.deepEqual(config.operate?.api, {
    tag: 'api',
    services: ['HandlerService', 'StatsService'],
    listen: { address: '127.0.0.1', port: 10085 },
    inboundTags: ['api'],
  })
  assert.deepEqual(warnings, [
    'inbounds[1].settings.clients[1].id: is also the id of clients[0]; connections will be credited to one of them',
  ])
})

test('validateConfig reads "env:NAME" ports from the environment, as V2Ray does', () => {
  const config = minimal({ inbounds: [{ port: 'env:SOCKS_PORT', protocol: 'socks' }] })
  assert.equal(validateConfig(config, { env: { SOCKS_PORT: '2080' } }).config.inbounds[0]?.port, 2080)
  const error = configErrorOf(() => validateConfig(config, { env: {} }))
  assert.equal(
    error.message,
    'inbounds[0].port: "env:SOCKS_PORT" names an environment variable that is not set',
  )
  const bad = configErrorOf(() => validateConfig(config, { env: { SOCKS_PORT: 'http' } }))
  assert.equal(bad.message, 'inbounds[0].port: "http" is not a port number (1–65535)')
})

/** Configs built from the keys the loader knows, holding random values, to reach deep into it. */
const configLike = (() => {
  const anything = fc.jsonValue({ maxDepth: 2 })
  const pick = <T>(values: readonly T[]) => fc.constantFrom(...values)
  const word = pick([
    'tcp',
    'udp',
    'tcp,udp',
    'ws',
    'none',
    'http',
    'password',
    'AsIs',
    'geoip:private',
    'env:X',
    UUID,
    '1-2',
    '',
  ])
  const leafValue = fc.oneof(anything, word, fc.integer({ min: -2, max: 70000 }))
  const record = (keys: readonly string[], value: fc.Arbitrary<unknown>) =>
    fc.dictionary(pick(keys), value, { maxKeys: 6 })
  const users = fc.array(record(['id', 'alterId', 'security', 'level', 'email', 'experiments'], leafValue), {
    maxLength: 2,
  })
  const settings = fc.oneof(
    record(
      ['clients', 'vnext'],
      fc.array(record(['id', 'address', 'port', 'users', 'alterId'], fc.oneof(leafValue, users)), {
        maxLength: 2,
      }),
    ),
    record(
      [
        'auth',
        'accounts',
        'udp',
        'ip',
        'address',
        'port',
        'network',
        'redirect',
        'domainStrategy',
        'response',
        'timeout',
      ],
      leafValue,
    ),
    anything,
  )
  const stream = record(
    ['network', 'security', 'tcpSettings', 'sockopt', 'wsSettings'],
    fc.oneof(leafValue, record(['header', 'type', 'tproxy'], leafValue)),
  )
  const bound = record(
    ['tag', 'port', 'listen', 'protocol', 'settings', 'streamSettings', 'sniffing', 'mux', 'sendThrough'],
    fc.oneof(
      leafValue,
      pick(['vmess', 'socks', 'http', 'dokodemo-door', 'freedom', 'blackhole']),
      settings,
      stream,
    ),
  )
  const rule = record(
    ['type', 'domain', 'ip', 'port', 'network', 'source', 'user', 'inboundTag', 'outboundTag', 'protocol'],
    fc.oneof(leafValue, fc.array(word, { maxLength: 3 })),
  )
  return record(
    [
      'log',
      'inbounds',
      'outbounds',
      'routing',
      'policy',
      'api',
      'transport',
      'dns',
      'reverse',
      '__proto__',
      'Inbounds',
    ],
    fc.oneof(
      anything,
      fc.array(bound, { maxLength: 3 }),
      record(
        ['rules', 'domainStrategy', 'loglevel', 'access', 'levels', 'tag'],
        fc.oneof(
          leafValue,
          fc.array(rule, { maxLength: 3 }),
          fc.dictionary(fc.string(), record(['handshake', 'bufferSize'], leafValue)),
        ),
      ),
    ),
  )
})()

test('validateConfig throws only ConfigError, whatever JSON it is given', () => {
  const onlyConfigErrors = (value: unknown): void => {
    try {
      validateConfig(value, { env: { X: '80' } })
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
    }
  }
  fc.assert(fc.property(fc.jsonValue(), onlyConfigErrors), { numRuns: 500 })
  fc.assert(fc.property(configLike, onlyConfigErrors), { numRuns: 2000 })
})

test("validateConfig reads Xray's short VMess outbound as one server with one user; without address, vnext is required", () => {
  const id = 'b831381d-6324-4d53-ad4f-8cda48b30811'
  const { config, warnings } = validateConfig(
    minimal({
      outbounds: [
        {
          protocol: 'vmess',
          settings: { address: 'example.com', port: 443, id, security: 'none', email: 'a@b' },
        },
      ],
    }),
  )
  assert.deepEqual(warnings, [])
  const outbound = config.outbounds[0]
  assert.equal(outbound?.protocol, 'vmess')
  if (outbound?.protocol !== 'vmess') return
  assert.deepEqual(outbound.settings.vnext, [
    {
      address: 'example.com',
      port: 443,
      users: [
        {
          id,
          alterId: 0,
          security: 'none',
          level: 0,
          email: 'a@b',
          authenticatedLength: false,
          noTerminationSignal: false,
        },
      ],
    },
  ])
  assert.equal(
    messageOf(minimal({ outbounds: [{ protocol: 'vmess', settings: { address: 'example.com', id } }] })),
    'outbounds[0].settings.port: is required',
  )
  assert.equal(
    messageOf(minimal({ outbounds: [{ protocol: 'vmess', settings: {} }] })),
    'outbounds[0].settings.vnext: is required',
  )
})

test('validateConfig reads the V2Ray v3 layout as V2Ray 4.34 joins it, with a warning', () => {
  const { config, warnings } = validateConfig({
    port: 1080,
    inbound: { listen: '127.0.0.1', protocol: 'socks', tag: 'first' },
    inboundDetour: [{ listen: '127.0.0.1', port: 1081, protocol: 'http', tag: 'second' }],
    inbounds: [{ listen: '127.0.0.1', port: 1082, protocol: 'http', tag: 'third' }],
    outbound: { protocol: 'freedom', tag: 'direct' },
    outboundDetour: [{ protocol: 'blackhole', tag: 'block' }],
    routing: {
      settings: {
        domainStrategy: 'IPOnDemand',
        rules: [{ type: 'field', domain: ['ads'], outboundTag: 'block' }],
      },
    },
  })
  assert.deepEqual(
    config.inbounds.map((inbound) => [inbound.tag, inbound.port]),
    [
      ['first', 1080],
      ['second', 1081],
      ['third', 1082],
    ],
  )
  assert.deepEqual(
    config.outbounds.map((outbound) => outbound.tag),
    ['direct', 'block'],
  )
  assert.equal(config.routing.domainStrategy, 'IPOnDemand')
  assert.deepEqual(config.routing.rules[0]?.domain, ['ads'])
  assert.equal(warnings.length, 2)
  assert.match(warnings[0] ?? '', /^routing\.settings: read as V2Ray reads the v3 layout/)
  assert.match(
    warnings[1] ?? '',
    /^inbound, inboundDetour, outbound, outboundDetour, port: read as V2Ray reads the v3 layout/,
  )
})

test('validateConfig reads dns hosts and servers, and names what it refuses', () => {
  const { config, warnings } = validateConfig(
    minimal({
      dns: {
        hosts: {
          'example.com': '127.0.0.2',
          'domain:test': ['10.0.0.1', '::1'],
          'keyword:cdn': 'alias.example',
        },
        servers: [
          '8.8.8.8',
          {
            address: '1.1.1.1',
            port: 5353,
            domains: ['domain:example.org'],
            expectIPs: ['geoip:cn', '1.0.0.0/8'],
          },
          'localhost',
        ],
        queryStrategy: 'UseIPv4',
      },
    }),
  )
  assert.deepEqual(config.dns, {
    hosts: [
      { matcher: 'full:example.com', addresses: ['127.0.0.2'] },
      { matcher: 'domain:test', addresses: ['10.0.0.1', '::1'] },
      { matcher: 'keyword:cdn', addresses: ['alias.example'] },
    ],
    servers: [
      { address: '8.8.8.8', port: 53, domains: [], expectIps: [], skipFallback: false },
      {
        address: '1.1.1.1',
        port: 5353,
        domains: ['domain:example.org'],
        expectIps: ['1.0.0.0/8'],
        skipFallback: false,
      },
      { address: 'localhost', port: 53, domains: [], expectIps: [], skipFallback: false },
    ],
    disableFallback: false,
    queryStrategy: 'UseIPv4',
  })
  assert.deepEqual(warnings, ['dns.servers: ignored: [1].expectIPs "geoip:cn" (needs geoip.dat)'])
  for (const [dns, message] of [
    [
      { servers: ['tcp://8.8.8.8'] },
      'dns.servers[0]: "tcp://8.8.8.8": DNS over TCP is not supported yet (supported: plain DNS to an IP, "localhost")',
    ],
    [
      { servers: ['dns.google'] },
      'dns.servers[0]: "dns.google" is not an IP address (a DNS server is an IP address or "localhost")',
    ],
    [
      { hosts: { 'geosite:cn': '127.0.0.1' } },
      'dns.hosts["geosite:cn"]: "geosite:cn" needs geosite.dat, which tsray does not read; list the domains instead',
    ],
    [
      { hosts: { 'a.example': ['127.0.0.1', 'b.example'] } },
      'dns.hosts["a.example"][1]: "b.example": a list of addresses holds IP addresses only',
    ],
  ] as const) {
    assert.equal(messageOf(minimal({ dns })), message)
  }
})
