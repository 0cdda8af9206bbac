import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  BUFFER_SIZE_BYTES,
  CONN_IDLE_MS,
  DOWNLINK_ONLY_MS,
  HANDSHAKE_TIMEOUT_MS,
  PRIVATE_IP_RANGES,
  UPLINK_ONLY_MS,
} from '../../src/config/defaults.js'
import {
  CANONICAL_UUID_PATTERN,
  blackholeOutboundSettingsSchema,
  dokodemoInboundSettingsSchema,
  formatJsonPath,
  freedomOutboundSettingsSchema,
  inboundSchema,
  levelPolicy,
  logSchema,
  lookupKey,
  normaliseKeys,
  policySchema,
  readSection,
  routingRuleSchema,
  routingSchema,
  socksInboundSettingsSchema,
  streamSettingsSchema,
  vmessInboundSettingsSchema,
  vmessOutboundSettingsSchema,
  type ConfigReport,
  type JsonPath,
  type LevelPolicy,
} from '../../src/config/schema.js'

const UUID = 'b831381d-6324-4d53-ad4f-8cda48b30811'

/** Reads `value` with `schema` at `path` and gives the result with the problems as `path: message` lines. */
function read<T>(
  schema: Parameters<typeof readSection<T>>[0],
  value: unknown,
  path: JsonPath = ['x'],
): { data: T | undefined; errors: string[]; warnings: string[] } {
  const report: ConfigReport = { errors: [], warnings: [] }
  const data = readSection(schema, value, { path, report })
  const lines = (problems: ConfigReport['errors']) => problems.map((p) => `${p.path}: ${p.message}`)
  return { data, errors: lines(report.errors), warnings: lines(report.warnings) }
}

test('formatJsonPath writes keys with dots, indexes in brackets and odd keys quoted', () => {
  assert.equal(
    formatJsonPath(['inbounds', 0, 'settings', 'clients', 1, 'id']),
    'inbounds[0].settings.clients[1].id',
  )
  assert.equal(formatJsonPath(['policy', 'levels', '0', 'handshake']), 'policy.levels["0"].handshake')
  assert.equal(formatJsonPath(['a b']), '["a b"]')
  assert.equal(formatJsonPath([]), '')
})

test('lookupKey matches exactly first, then ignoring case', () => {
  assert.equal(lookupKey({ Port: 1, port: 2 }, 'port'), 2)
  assert.equal(lookupKey({ PORT: 1 }, 'port'), 1)
  assert.equal(lookupKey('x', 'port'), undefined)
})

test('levelPolicy gives V2Ray code defaults (60/300/1/1 s, 512 KiB) when no policy is set', () => {
  const policy = levelPolicy({ policy: { levels: new Map() } }, 0)
  assert.deepEqual(policy, {
    handshakeMs: 60_000,
    connIdleMs: 300_000,
    uplinkOnlyMs: 1_000,
    downlinkOnlyMs: 1_000,
    bufferBytes: 512 * 1024,
  })
  assert.equal(HANDSHAKE_TIMEOUT_MS, 60_000)
  assert.equal(CONN_IDLE_MS, 300_000)
  assert.equal(UPLINK_ONLY_MS, 1_000)
  assert.equal(DOWNLINK_ONLY_MS, 1_000)
  assert.equal(BUFFER_SIZE_BYTES, 524_288)
})

test('levelPolicy converts configured seconds to ms and fills unset fields with defaults', () => {
  const level: LevelPolicy = {
    handshake: 4,
    connIdle: undefined,
    uplinkOnly: 2,
    downlinkOnly: 0,
    bufferSize: 4,
  }
  const config = { policy: { levels: new Map([[1, level]]) } }
  assert.deepEqual(levelPolicy(config, 1), {
    handshakeMs: 4_000,
    connIdleMs: 300_000,
    uplinkOnlyMs: 2_000,
    downlinkOnlyMs: 0,
    bufferBytes: 4096,
  })
  assert.equal(levelPolicy(config, 0).handshakeMs, 60_000)
  const unlimited = { policy: { levels: new Map([[0, { ...level, bufferSize: -1 }]]) } }
  assert.equal(levelPolicy(unlimited, 0).bufferBytes, Infinity)
})

test('normaliseKeys renames keys written in another case, drops nulls and unknown keys, with paths', () => {
  const report: ConfigReport = { errors: [], warnings: [] }
  const value = normaliseKeys(
    vmessInboundSettingsSchema,
    { Clients: [{ ID: UUID, alterid: 1, extra: true }], detour: null, foo: 1 },
    ['inbounds', 0, 'settings'],
    report,
  )
  assert.deepEqual(value, { clients: [{ id: UUID, alterId: 1 }] })
  assert.deepEqual(report.errors, [])
  assert.deepEqual(
    report.warnings.map((w) => `${w.path}: ${w.message}`),
    [
      'inbounds[0].settings.Clients: read as "clients" (V2Ray matches keys ignoring case; write "clients")',
      'inbounds[0].settings.clients[0].ID: read as "id" (V2Ray matches keys ignoring case; write "id")',
      'inbounds[0].settings.clients[0].alterid: read as "alterId" (V2Ray matches keys ignoring case; write "alterId")',
      'inbounds[0].settings.clients[0].extra: unknown key, ignored',
      'inbounds[0].settings.foo: unknown key, ignored',
    ],
  )
})

test('normaliseKeys keeps the exact key when both spellings are present', () => {
  const report: ConfigReport = { errors: [], warnings: [] }
  const value = normaliseKeys(vmessOutboundSettingsSchema, { vnext: [], VNext: [1] }, ['s'], report)
  assert.deepEqual(value, { vnext: [] })
  assert.deepEqual(report.warnings, [{ path: 's.VNext', message: 'ignored: "vnext" is also set' }])
})

test('log section: levels, console default inside a log section, "none", files', () => {
  assert.deepEqual(read(logSchema, {}).data, {
    level: 'warning',
    access: { to: 'console' },
    error: { to: 'console' },
  })
  assert.deepEqual(read(logSchema, { loglevel: 'Debug', access: '/var/log/a.log', error: 'none' }).data, {
    level: 'debug',
    access: { to: 'file', path: '/var/log/a.log' },
    error: { to: 'none' },
  })
  assert.deepEqual(read(logSchema, { loglevel: 'none', access: '/a' }).data, {
    level: 'none',
    access: { to: 'none' },
    error: { to: 'none' },
  })
  const verbose = read(logSchema, { loglevel: 'verbose' }, ['log'])
  assert.equal(verbose.data?.level, 'warning')
  assert.deepEqual(verbose.warnings, [
    'log.loglevel: "verbose" is not a log level; V2Ray reads it as "warning", and so does tsray',
  ])
  assert.deepEqual(read(logSchema, { access: 3 }, ['log']).errors, ['log.access: 3 is not a string'])
})

test('streamSettings reads raw TCP as plain TCP; other transports are in stream-settings.test.ts', () => {
  const ok = read(streamSettingsSchema, {
    network: 'TCP',
    security: 'none',
    tcpSettings: { header: { type: 'none' } },
    sockopt: { tproxy: 'off' },
  })
  assert.deepEqual(ok.data, { network: 'tcp', security: 'none' })
  assert.deepEqual(ok.errors, [])
  const path = ['inbounds', 0, 'streamSettings']
  assert.deepEqual(read(streamSettingsSchema, { tcpSettings: { acceptProxyProtocol: true } }, path).errors, [
    'inbounds[0].streamSettings.tcpSettings.acceptProxyProtocol: the PROXY protocol is not supported yet',
  ])
})

test('inbound fields: listen default, port forms, tag, and refused port ranges and Unix sockets', () => {
  const base = { protocol: 'vmess', port: '10086' }
  assert.deepEqual(read(inboundSchema, base, ['inbounds', 0]).data, {
    tag: undefined,
    listen: '0.0.0.0',
    port: 10086,
    protocol: 'vmess',
    stream: { network: 'tcp', security: 'none' },
  })
  assert.equal(read(inboundSchema, { ...base, port: '443-443' }).data?.port, 443)
  assert.equal(read(inboundSchema, { ...base, listen: '::1' }).data?.listen, '::1')
  const errorsOf = (patch: object) => read(inboundSchema, { ...base, ...patch }, ['inbounds', 0]).errors
  assert.deepEqual(errorsOf({ port: '1000-2000' }), [
    `inbounds[0].port: "1000-2000" is a port range; tsray listens on one port per inbound (V2Ray's allocate is not supported)`,
  ])
  assert.deepEqual(errorsOf({ port: 70000 }), ['inbounds[0].port: 70000 is not a port number (1–65535)'])
  // Port 0: the OS picks one, as for an in-process server in tests.
  assert.equal(read(inboundSchema, { ...base, port: 0 }).data?.port, 0)
  assert.equal(read(inboundSchema, { ...base, port: '0' }).data?.port, 0)
  assert.deepEqual(errorsOf({ port: -1 }), ['inbounds[0].port: -1 is not a port number (1–65535)'])
  assert.deepEqual(errorsOf({ port: 'env:TSRAY_UNSET_PORT' }), [
    'inbounds[0].port: "env:TSRAY_UNSET_PORT" names an environment variable that is not set',
  ])
  assert.deepEqual(errorsOf({ port: undefined }), ['inbounds[0].port: is required'])
  assert.deepEqual(errorsOf({ listen: 'example.com' }), [
    'inbounds[0].listen: "example.com" is not an IP address',
  ])
  assert.deepEqual(errorsOf({ listen: '/run/v2ray.sock' }), [
    'inbounds[0].listen: "/run/v2ray.sock" is a Unix socket; not supported yet (supported: IP addresses)',
  ])
  assert.deepEqual(errorsOf({ tag: 7 }), ['inbounds[0].tag: 7 is not a string'])
  assert.deepEqual(errorsOf({ protocol: 'shadowsocks' }), [
    'inbounds[0].protocol: "shadowsocks" is not supported (supported: vmess, socks, http, dokodemo-door)',
  ])
  assert.deepEqual(errorsOf({ protocol: 'foo' }), [
    'inbounds[0].protocol: "foo" is not a V2Ray inbound protocol (supported: vmess, socks, http, dokodemo-door)',
  ])
  assert.deepEqual(errorsOf({ protocol: undefined }), [
    'inbounds[0].protocol: is required (supported: vmess, socks, http, dokodemo-door)',
  ])
  assert.deepEqual(
    read(inboundSchema, { ...base, allocate: { strategy: 'always' } }, ['inbounds', 0]).warnings,
    ['inbounds[0].allocate: ignored: tsray listens on one port per inbound'],
  )
  assert.deepEqual(read(inboundSchema, { ...base, sniffing: { enabled: false } }).warnings, [])
})

test('VMess inbound settings: ids, alterId, defaults, legacyHeader, refused detour', () => {
  const path = ['inbounds', 0, 'settings']
  const result = read(
    vmessInboundSettingsSchema,
    {
      clients: [
        { id: UUID.toUpperCase(), alterId: 64, email: 'a@example.com', level: 1, security: 'auto' },
        { id: 'b831381d63244d53ad4f8cda48b30811' },
        { id: 'my-short-id' },
      ],
      legacyHeader: 'warn',
    },
    path,
  )
  assert.deepEqual(result.data, {
    clients: [
      { id: UUID, alterId: 64, email: 'a@example.com', level: 1 },
      { id: UUID, alterId: 0, email: undefined, level: 0 },
      { id: 'my-short-id', alterId: 0, email: undefined, level: 0 },
    ],
    disableInsecureEncryption: false,
    legacyHeader: 'warn',
  })
  assert.match(result.data?.clients[0]?.id ?? '', CANONICAL_UUID_PATTERN)
  assert.deepEqual(result.warnings, [
    'inbounds[0].settings.clients[2].id: "my-short-id" is not a UUID; tsray maps it to a UUIDv5 as Xray does (V2Ray refuses such ids)',
  ])
  const errorsOf = (settings: object) => read(vmessInboundSettingsSchema, settings, path).errors
  assert.deepEqual(
    errorsOf({ clients: [{ id: UUID }, { id: 'this-id-is-far-too-long-to-be-a-short-id' }] }),
    ['inbounds[0].settings.clients[1].id: "this-id-is-far-too-long-to-be-a-short-id" is not a UUID'],
  )
  assert.deepEqual(errorsOf({ clients: [{ id: '' }] }), [
    'inbounds[0].settings.clients[0].id: "" is not a UUID',
  ])
  assert.deepEqual(errorsOf({ clients: [{}] }), ['inbounds[0].settings.clients[0].id: is required'])
  assert.deepEqual(errorsOf({ clients: [{ id: UUID, alterId: 65536 }] }), [
    'inbounds[0].settings.clients[0].alterId: 65536 is not an integer from 0 to 65535',
  ])
  assert.deepEqual(errorsOf({ clients: [{ id: UUID, level: -1 }] }), [
    'inbounds[0].settings.clients[0].level: -1 is not an integer from 0 to 255',
  ])
  assert.deepEqual(errorsOf({ clients: {} }), ['inbounds[0].settings.clients: an object is not a list'])
  assert.deepEqual(errorsOf({ disableInsecureEncryption: 'yes' }), [
    'inbounds[0].settings.disableInsecureEncryption: "yes" is not true or false',
  ])
  assert.deepEqual(errorsOf({ legacyHeader: 'deny' }), [
    'inbounds[0].settings.legacyHeader: "deny" is not one of "accept", "warn", "refuse"',
  ])
  assert.deepEqual(errorsOf({ detour: { to: 'dynamic' } }), [
    'inbounds[0].settings.detour: not supported: tsray has no dynamic ports',
  ])
})

test('SOCKS inbound settings: auth, accounts, udp, ip, timeout', () => {
  const path = ['inbounds', 0, 'settings']
  assert.deepEqual(read(socksInboundSettingsSchema, {}).data, {
    auth: 'noauth',
    accounts: [],
    udp: false,
    ip: undefined,
    timeoutMs: undefined,
    userLevel: 0,
  })
  assert.deepEqual(
    read(socksInboundSettingsSchema, {
      auth: 'password',
      accounts: [{ user: 'u', pass: 'p' }],
      udp: true,
      ip: '203.0.113.7',
      timeout: 30,
      userLevel: 2,
    }).data,
    {
      auth: 'password',
      accounts: [{ user: 'u', pass: 'p' }],
      udp: true,
      ip: '203.0.113.7',
      timeoutMs: 30_000,
      userLevel: 2,
    },
  )
  assert.deepEqual(read(socksInboundSettingsSchema, { auth: 'passwd' }, path).errors, [
    'inbounds[0].settings.auth: "passwd" is not a SOCKS auth method (supported: "noauth", "password")',
  ])
  assert.deepEqual(read(socksInboundSettingsSchema, { accounts: [{ user: 'u' }] }, path).errors, [
    'inbounds[0].settings.accounts[0].pass: is required',
  ])
})

test('dokodemo-door settings: required address and port, networks, refused followRedirect', () => {
  const path = ['inbounds', 0, 'settings']
  assert.deepEqual(
    read(dokodemoInboundSettingsSchema, { address: '8.8.8.8', port: 53, network: 'tcp,udp' }).data,
    {
      address: '8.8.8.8',
      port: 53,
      networks: ['tcp', 'udp'],
      timeoutMs: undefined,
      userLevel: 0,
    },
  )
  assert.deepEqual(read(dokodemoInboundSettingsSchema, { address: 'example.com', port: 80 }).data?.networks, [
    'tcp',
  ])
  assert.deepEqual(read(dokodemoInboundSettingsSchema, {}, path).errors, [
    'inbounds[0].settings.address: is required',
    'inbounds[0].settings.port: is required',
  ])
  assert.deepEqual(
    read(dokodemoInboundSettingsSchema, { address: '1.1.1.1', port: 53, network: 'sctp' }, path).errors,
    ['inbounds[0].settings.network[0]: "sctp" is not a network (supported: "tcp", "udp")'],
  )
  assert.deepEqual(
    read(dokodemoInboundSettingsSchema, { address: '1.1.1.1', port: 53, followRedirect: true }, path).errors,
    ['inbounds[0].settings.followRedirect: followRedirect (transparent proxying) is not supported yet'],
  )
})

test('freedom settings: V2Ray spellings of domainStrategy, redirect parts', () => {
  assert.deepEqual(read(freedomOutboundSettingsSchema, {}).data, {
    domainStrategy: 'AsIs',
    redirect: undefined,
    timeoutMs: undefined,
    userLevel: 0,
  })
  assert.equal(
    read(freedomOutboundSettingsSchema, { domainStrategy: 'use_ip_v4' }).data?.domainStrategy,
    'UseIPv4',
  )
  assert.equal(
    read(freedomOutboundSettingsSchema, { domainStrategy: 'UseIPv6' }).data?.domainStrategy,
    'UseIPv6',
  )
  assert.deepEqual(read(freedomOutboundSettingsSchema, { redirect: '127.0.0.1:3366' }).data?.redirect, {
    host: '127.0.0.1',
    port: 3366,
  })
  assert.deepEqual(read(freedomOutboundSettingsSchema, { redirect: ':53' }).data?.redirect, {
    host: undefined,
    port: 53,
  })
  assert.deepEqual(read(freedomOutboundSettingsSchema, { redirect: '[::1]:0' }).data?.redirect, {
    host: '::1',
    port: undefined,
  })
  assert.deepEqual(read(freedomOutboundSettingsSchema, { redirect: 'example.com' }, ['o']).errors, [
    'o.redirect: "example.com" is not "host:port"',
  ])
  assert.deepEqual(read(freedomOutboundSettingsSchema, { domainStrategy: 'Fastest' }, ['o']).warnings, [
    'o.domainStrategy: "Fastest" is not a freedom domain strategy; V2Ray reads it as "AsIs", and so does tsray',
  ])
})

test('blackhole settings: response type none or http', () => {
  assert.deepEqual(read(blackholeOutboundSettingsSchema, {}).data, { response: 'none' })
  assert.deepEqual(read(blackholeOutboundSettingsSchema, { response: { type: 'http' } }).data, {
    response: 'http',
  })
  assert.deepEqual(read(blackholeOutboundSettingsSchema, { response: { type: 'teapot' } }, ['o']).errors, [
    'o.response.type: "teapot" is not a blackhole response type (supported: "none", "http")',
  ])
})

test('VMess outbound settings: security words normalised, unknown ones warned as auto, experiments', () => {
  const path = ['outbounds', 0, 'settings']
  const result = read(
    vmessOutboundSettingsSchema,
    {
      vnext: [
        {
          address: 'v2.example.com',
          port: 443,
          users: [
            { id: UUID, security: 'AES-128-GCM', experiments: 'AuthenticatedLength|NoTerminationSignal' },
            { id: UUID, security: 'aes-256-cfb', alterId: 4, level: 1, email: 'x@y' },
            { id: UUID, security: 'zero' },
            { id: UUID },
          ],
        },
      ],
    },
    path,
  )
  const users = result.data?.vnext[0]?.users ?? []
  assert.deepEqual(
    users.map((user) => user.security),
    ['aes-128-gcm', 'auto', 'zero', 'auto'],
  )
  assert.deepEqual(users[0], {
    id: UUID,
    alterId: 0,
    security: 'aes-128-gcm',
    level: 0,
    email: undefined,
    authenticatedLength: true,
    noTerminationSignal: true,
  })
  assert.equal(users[1]?.alterId, 4)
  assert.deepEqual(result.warnings, [
    'outbounds[0].settings.vnext[0].users[1].security: "aes-256-cfb" is not a VMess security; V2Ray reads it as "auto", and so does tsray',
  ])
  const errorsOf = (settings: object) => read(vmessOutboundSettingsSchema, settings, path).errors
  assert.deepEqual(errorsOf({}), ['outbounds[0].settings.vnext: is required'])
  assert.deepEqual(errorsOf({ vnext: [] }), [
    'outbounds[0].settings.vnext: is empty; at least one entry is needed',
  ])
  assert.deepEqual(errorsOf({ vnext: [{ address: 'a.example', port: 443, users: [] }] }), [
    'outbounds[0].settings.vnext[0].users: is empty; at least one entry is needed',
  ])
  assert.deepEqual(errorsOf({ vnext: [{ address: 'not a host!', port: '443', users: [{ id: UUID }] }] }), [
    'outbounds[0].settings.vnext[0].address: "not a host!" is not an IP address or a domain name',
  ])
})

test('routing rules: matchers kept as strings, CIDRs normalised, geoip:private expanded, ports as ranges', () => {
  const result = read(routingRuleSchema, {
    type: 'field',
    domain: 'domain:example.org,full:www.example.com',
    domains: ['regexp:^ads\\.', 'keyword:tracker', 'baidu.com', 'dotless:'],
    ip: ['geoip:private', '8.8.8.8', '2001:db8::/32'],
    port: '53,443,1000-2000',
    sourcePort: 1080,
    network: ['tcp', 'UDP'],
    source: ['192.168.1.0/24'],
    user: ['a@example.com'],
    inboundTag: ['socks-in'],
    outboundTag: 'proxy',
  })
  assert.deepEqual(result.errors, [])
  assert.deepEqual(result.data, {
    outboundTag: 'proxy',
    inboundTag: ['socks-in'],
    domain: [
      'domain:example.org',
      'full:www.example.com',
      'regexp:^ads\\.',
      'keyword:tracker',
      'baidu.com',
      'dotless:',
    ],
    ip: [...PRIVATE_IP_RANGES, '8.8.8.8/32', '2001:db8::/32'],
    port: [
      { from: 53, to: 53 },
      { from: 443, to: 443 },
      { from: 1000, to: 2000 },
    ],
    sourcePort: [{ from: 1080, to: 1080 }],
    network: ['tcp', 'udp'],
    source: ['192.168.1.0/24'],
    user: ['a@example.com'],
  })
})

test('routing rules: geo files, sniffed protocols and balancers are refused at their path', () => {
  const path = ['routing', 'rules', 0]
  const errorsOf = (rule: object) => read(routingRuleSchema, { outboundTag: 'direct', ...rule }, path).errors
  assert.deepEqual(errorsOf({ domain: ['example.com', 'geosite:cn'] }), [
    'routing.rules[0].domain[1]: "geosite:cn" needs geosite.dat, which tsray does not read; list the domains instead',
  ])
  assert.deepEqual(errorsOf({ domains: ['ext:h2y.dat:gfw'] }), [
    'routing.rules[0].domains[0]: "ext:h2y.dat:gfw" needs an external geo file, which tsray does not read',
  ])
  assert.deepEqual(errorsOf({ ip: ['geoip:cn'] }), [
    'routing.rules[0].ip[0]: "geoip:cn" needs geoip.dat, which tsray does not read (only "geoip:private" is built in)',
  ])
  assert.deepEqual(errorsOf({ domain: ['regexp:(unclosed'] }), [
    'routing.rules[0].domain[0]: "regexp:(unclosed" is not a valid regular expression: Invalid regular expression: /(unclosed/: Unterminated group',
  ])
  assert.deepEqual(errorsOf({ domain: ['full:'] }), [
    'routing.rules[0].domain[0]: "full:" has nothing to match',
  ])
  assert.deepEqual(errorsOf({ ip: ['10.0.0.0/33', 'ten'] }), [
    'routing.rules[0].ip[0]: "10.0.0.0/33" is not an IP address or a CIDR like "10.0.0.0/8"',
    'routing.rules[0].ip[1]: "ten" is not an IP address or a CIDR like "10.0.0.0/8"',
  ])
  assert.deepEqual(errorsOf({ port: '2000-1000' }), [
    'routing.rules[0].port: "2000-1000" is not a port or a port range like "1000-2000"',
  ])
  assert.deepEqual(errorsOf({ protocol: ['bittorrent'] }), [
    'routing.rules[0].protocol: not supported: matching sniffed protocols needs sniffing, which tsray does not do',
  ])
  assert.deepEqual(errorsOf({ balancerTag: 'b', domain: ['a.com'] }), [
    'routing.rules[0].balancerTag: not supported yet: tsray has no balancers',
  ])
  assert.deepEqual(errorsOf({ type: 'chinasites' }), [
    'routing.rules[0].type: "chinasites" is not a rule type (supported: "field")',
  ])
  assert.deepEqual(read(routingRuleSchema, { domain: ['a.com'] }, path).errors, [
    'routing.rules[0].outboundTag: is required',
  ])
})

test('routing domainStrategy: V2Ray spellings, AlwaysIP refused, unknown words warned', () => {
  assert.equal(
    read(routingSchema, { domainStrategy: 'ip_if_non_match' }).data?.domainStrategy,
    'IPIfNonMatch',
  )
  assert.equal(read(routingSchema, { domainStrategy: 'IPOnDemand' }).data?.domainStrategy, 'IPOnDemand')
  assert.deepEqual(read(routingSchema, {}).data, { domainStrategy: 'AsIs', rules: [] })
  assert.deepEqual(read(routingSchema, { domainStrategy: 'AlwaysIP' }, ['routing']).errors, [
    'routing.domainStrategy: "AlwaysIP" is not supported yet (supported: "AsIs", "IPIfNonMatch", "IPOnDemand")',
  ])
  assert.deepEqual(read(routingSchema, { domainStrategy: 'Smart' }, ['routing']).warnings, [
    'routing.domainStrategy: "Smart" is not a routing domain strategy; V2Ray reads it as "AsIs", and so does tsray',
  ])
})

test('policy levels: keyed by level number, seconds kept, bad keys and values reported', () => {
  const result = read(policySchema, {
    levels: {
      '0': { handshake: 4, connIdle: 300, uplinkOnly: 2, downlinkOnly: 5, bufferSize: 512 },
      '1': {},
    },
    system: { statsInboundUplink: false },
  })
  assert.deepEqual(result.errors, [])
  assert.deepEqual(result.data?.levels.get(0), {
    handshake: 4,
    connIdle: 300,
    uplinkOnly: 2,
    downlinkOnly: 5,
    bufferSize: 512,
  })
  assert.equal(result.data?.levels.get(1)?.handshake, undefined)
  assert.deepEqual(read(policySchema, { levels: { zero: {} } }, ['policy']).errors, [
    'policy.levels.zero: "zero" is not a level number',
  ])
  assert.deepEqual(read(policySchema, { levels: { '0': { handshake: -4 } } }, ['policy']).errors, [
    'policy.levels["0"].handshake: -4 is not an integer from 0 to 4294967295',
  ])
  // The stats switches are read beside the schema (src/config/operate.ts): no warning here.
  assert.deepEqual(
    read(policySchema, { levels: { '0': { statsUserUplink: true } } }, ['policy']).warnings,
    [],
  )
})
