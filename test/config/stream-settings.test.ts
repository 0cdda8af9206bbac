import assert from 'node:assert/strict'
import { test } from 'node:test'
import { validateConfig } from '../../src/config/load.js'
import {
  readSection,
  streamSettingsSchema,
  type ConfigReport,
  type JsonPath,
  type StreamConfig,
} from '../../src/config/schema.js'
import { ConfigError } from '../../src/errors.js'

const UUID = 'b831381d-6324-4d53-ad4f-8cda48b30811'
const PATH = ['inbounds', 0, 'streamSettings']

/** Reads streamSettings at inbounds[0].streamSettings and gives the result with `path: message` lines. */
function read(
  value: unknown,
  path: JsonPath = PATH,
): { data: StreamConfig | undefined; errors: string[]; warnings: string[] } {
  const report: ConfigReport = { errors: [], warnings: [] }
  const data = readSection(streamSettingsSchema, value, { path, report })
  const lines = (problems: ConfigReport['errors']) => problems.map((p) => `${p.path}: ${p.message}`)
  return { data, errors: lines(report.errors), warnings: lines(report.warnings) }
}

/** The message of the ConfigError validateConfig throws. */
function refusal(config: object): string {
  try {
    validateConfig(config)
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error))
    return error.message
  }
  assert.fail('the config was accepted')
}

const vmessInbound = (streamSettings: object): object => ({
  inbounds: [{ port: 10086, protocol: 'vmess', settings: { clients: [{ id: UUID }] }, streamSettings }],
  outbounds: [{ protocol: 'freedom' }],
})
const vmessOutbound = (streamSettings: object, protocol = 'vmess'): object => ({
  outbounds: [
    {
      protocol,
      settings:
        protocol === 'vmess' ? { vnext: [{ address: 'example.com', port: 443, users: [{ id: UUID }] }] } : {},
      streamSettings,
    },
  ],
})

test('streamSettings network: tcp, ws, websocket, httpupgrade, http/h2 and grpc/gun are read; others refused by name', () => {
  assert.equal(read({ network: 'WebSocket' }).data?.network, 'ws')
  assert.equal(read({ network: 'httpupgrade' }).data?.network, 'httpupgrade')
  assert.equal(read({ network: 'http' }).data?.network, 'h2')
  assert.equal(read({ network: 'H2' }).data?.network, 'h2')
  assert.equal(read({ network: 'grpc' }).data?.network, 'grpc')
  assert.equal(read({ network: 'gun' }).data?.network, 'grpc')
  const supported = '"tcp", "ws", "httpupgrade", "http", "grpc"'
  assert.deepEqual(read({ network: 'kcp' }).errors, [
    `inbounds[0].streamSettings.network: "kcp" is not supported yet (supported: ${supported})`,
  ])
  assert.deepEqual(read({ network: 'carrier-pigeon' }).errors, [
    `inbounds[0].streamSettings.network: "carrier-pigeon" is not a V2Ray transport (supported: ${supported})`,
  ])
  assert.deepEqual(read({ security: 'reality' }).errors, [
    'inbounds[0].streamSettings.security: "reality" is not supported yet (supported: "none", "tls")',
  ])
  // V2Ray 4.34 reads any other security word as none.
  assert.deepEqual(read({ security: 'TLS1.3' }).data, { network: 'tcp', security: 'none' })
})

test('streamSettings warns about settings its network or security does not use', () => {
  const warnings = (streamSettings: object): string[] =>
    validateConfig(vmessOutbound(streamSettings)).warnings.filter((line) => line.includes('streamSettings'))
  assert.deepEqual(warnings({ wsSettings: { path: '/' }, tlsSettings: {} }), [
    'outbounds[0].streamSettings: ignored: wsSettings (used only when network is "ws"), tlsSettings (used only when security is "tls")',
  ])
  assert.deepEqual(warnings({ network: 'ws', tcpSettings: {} }), [
    'outbounds[0].streamSettings: ignored: tcpSettings (used only when network is "tcp")',
  ])
})

test('tcpSettings.header "http" gets V2Ray 4.34 defaults for everything left out', () => {
  const { data, errors } = read({ tcpSettings: { header: { type: 'http' } } })
  assert.deepEqual(errors, [])
  assert.deepEqual(data, {
    network: 'tcp',
    security: 'none',
    httpHeader: {
      request: {
        version: '1.1',
        method: 'GET',
        paths: ['/'],
        headers: [
          { name: 'Host', values: ['www.baidu.com', 'www.bing.com'] },
          {
            name: 'User-Agent',
            values: [
              'Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/53.0.2785.143 Safari/537.36',
              'Mozilla/5.0 (iPhone; CPU iPhone OS 10_0_2 like Mac OS X) AppleWebKit/601.1 (KHTML, like Gecko) CriOS/53.0.2785.109 Mobile/14A456 Safari/601.1.46',
            ],
          },
          { name: 'Accept-Encoding', values: ['gzip, deflate'] },
          { name: 'Connection', values: ['keep-alive'] },
          { name: 'Pragma', values: ['no-cache'] },
        ],
      },
      response: {
        version: '1.1',
        status: '200',
        reason: 'OK',
        headers: [
          { name: 'Content-Type', values: ['application/octet-stream', 'video/mpeg'] },
          { name: 'Transfer-Encoding', values: ['chunked'] },
          { name: 'Connection', values: ['keep-alive'] },
          { name: 'Pragma', values: ['no-cache'] },
          { name: 'Cache-Control', values: ['private', 'no-cache'] },
        ],
      },
    },
  })
})

test('tcpSettings.header "http": configured request and response replace the defaults, headers in Go map order', () => {
  const { data, errors } = read({
    tcpSettings: {
      header: {
        type: 'HTTP',
        request: {
          version: '1.0',
          method: 'POST',
          path: '/a,/b',
          headers: { b: 'x', Host: ['h.example'], a: 'y,z' },
        },
        response: { status: '403', headers: { Server: ['nginx'] } },
      },
    },
  })
  assert.deepEqual(errors, [])
  assert.ok(data?.network === 'tcp')
  assert.deepEqual(data.httpHeader?.request, {
    version: '1.0',
    method: 'POST',
    paths: ['/a', '/b'],
    // sort.Strings: upper case before lower case; a string is split at commas like V2Ray's StringList.
    headers: [
      { name: 'Host', values: ['h.example'] },
      { name: 'a', values: ['y', 'z'] },
      { name: 'b', values: ['x'] },
    ],
  })
  assert.deepEqual(data.httpHeader?.response, {
    version: '1.1',
    status: '403',
    reason: 'OK',
    headers: [{ name: 'Server', values: ['nginx'] }],
  })
})

test('tcpSettings.header refuses what would break or inject HTTP lines', () => {
  assert.deepEqual(
    read({ tcpSettings: { header: { type: 'http', request: { headers: { Host: ['a\r\nX-Evil: 1'] } } } } })
      .errors,
    [
      'inbounds[0].streamSettings.tcpSettings.header.request.headers.Host[0]: "a\\r\\nX-Evil: 1" cannot be an HTTP header value (line break or control character)',
    ],
  )
  assert.deepEqual(read({ tcpSettings: { header: { type: 'http', request: { path: ['/a b'] } } } }).errors, [
    'inbounds[0].streamSettings.tcpSettings.header.request.path[0]: "/a b" cannot appear in an HTTP start line',
  ])
  assert.deepEqual(read({ tcpSettings: { header: { type: 'srtp' } } }).errors, [
    'inbounds[0].streamSettings.tcpSettings.header.type: "srtp" is not a TCP header type (supported: "none", "http")',
  ])
})

test('wsSettings: path normalised, headers.Host sent but not required, Xray host required', () => {
  const plain = read({
    network: 'ws',
    wsSettings: { path: 'ray', headers: { Host: 'cdn.example', 'X-A': 'b' } },
  })
  assert.deepEqual(plain.data, {
    network: 'ws',
    security: 'none',
    ws: {
      path: '/ray',
      host: 'cdn.example',
      requireHost: false,
      headers: [['X-A', 'b']],
      earlyData: undefined,
    },
  })
  const xray = read({ network: 'ws', wsSettings: { host: 'cdn.example' } })
  assert.deepEqual(xray.data, {
    network: 'ws',
    security: 'none',
    ws: { path: '/', host: 'cdn.example', requireHost: true, headers: [], earlyData: undefined },
  })
  // V2Ray 4.34 still reads the misspelt "Path" key; tsray reads it too and says so.
  const legacy = read({ network: 'ws', wsSettings: { Path: '/old' } })
  assert.equal(legacy.data?.network === 'ws' ? legacy.data.ws.path : '', '/old')
  assert.deepEqual(legacy.warnings, [
    'inbounds[0].streamSettings.wsSettings.Path: read as "path" (V2Ray matches keys ignoring case; write "path")',
  ])
})

test('wsSettings early data: Xray ?ed=N and v2fly maxEarlyData with or without a header name', () => {
  const ws = (settings: object) => {
    const data = read({ network: 'ws', wsSettings: settings }).data
    return data?.network === 'ws' ? data.ws : undefined
  }
  assert.deepEqual(ws({ path: '/ray?ed=2048' }), {
    path: '/ray',
    host: undefined,
    requireHost: false,
    headers: [],
    earlyData: { maxBytes: 2048, headerName: 'Sec-WebSocket-Protocol' },
  })
  assert.equal(ws({ path: '/ray?ed=2048&x=1' })?.path, '/ray?x=1')
  assert.equal(ws({ path: '/ray?ed=abc' })?.earlyData, undefined)
  assert.deepEqual(
    ws({ path: '/ray', maxEarlyData: 1024, earlyDataHeaderName: 'Sec-WebSocket-Protocol' })?.earlyData,
    {
      maxBytes: 1024,
      headerName: 'Sec-WebSocket-Protocol',
    },
  )
  assert.deepEqual(ws({ path: '/ray', maxEarlyData: 512 })?.earlyData, {
    maxBytes: 512,
    headerName: undefined,
  })
  assert.deepEqual(read({ network: 'ws', wsSettings: { useBrowserForwarding: true } }).errors, [
    'inbounds[0].streamSettings.wsSettings.useBrowserForwarding: browser forwarding (useBrowserForwarding) is not supported yet',
  ])
})

test('httpupgradeSettings: path, host (from host or headers.Host) and ?ed', () => {
  assert.deepEqual(
    read({
      network: 'httpupgrade',
      httpupgradeSettings: { path: '/up?ed=2560', headers: { host: 'h.example' } },
    }).data,
    {
      network: 'httpupgrade',
      security: 'none',
      httpUpgrade: { path: '/up', host: 'h.example', headers: [], earlyData: true },
    },
  )
  assert.deepEqual(read({ network: 'httpupgrade' }).data, {
    network: 'httpupgrade',
    security: 'none',
    httpUpgrade: { path: '/', host: undefined, headers: [], earlyData: false },
  })
})

test('tlsSettings: certificates from files or lines, trust-only entries, SNI and ALPN', () => {
  const { data, errors, warnings } = read({
    security: 'tls',
    tlsSettings: {
      serverName: 'example.com',
      alpn: ['h2', 'http/1.1'],
      certificates: [
        { certificateFile: '/etc/ssl/a.pem', keyFile: '/etc/ssl/a.key' },
        {
          certificate: ['-----BEGIN CERTIFICATE-----', 'MIIB', '-----END CERTIFICATE-----'],
          key: ['k1', 'k2'],
        },
        { certificateFile: '/etc/ssl/ca.pem', usage: 'verify' },
      ],
    },
  })
  assert.deepEqual(errors, [])
  assert.deepEqual(warnings, [])
  assert.deepEqual(data, {
    network: 'tcp',
    security: 'tls',
    tls: {
      serverName: 'example.com',
      alpn: ['h2', 'http/1.1'],
      allowInsecure: false,
      disableSystemRoot: false,
      certificates: [
        { certificate: { file: '/etc/ssl/a.pem' }, key: { file: '/etc/ssl/a.key' }, usage: 'encipherment' },
        {
          certificate: { inline: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' },
          key: { inline: 'k1\nk2' },
          usage: 'encipherment',
        },
        { certificate: { file: '/etc/ssl/ca.pem' }, key: undefined, usage: 'verify' },
      ],
    },
  })
  assert.deepEqual(read({ security: 'tls' }).data, {
    network: 'tcp',
    security: 'tls',
    tls: {
      serverName: undefined,
      alpn: undefined,
      allowInsecure: false,
      certificates: [],
      disableSystemRoot: false,
    },
  })
})

test('tlsSettings: fingerprint and allowInsecure warn, pinning and issuing CAs are refused', () => {
  const fingerprint = read({ security: 'tls', tlsSettings: { fingerprint: 'chrome', allowInsecure: true } })
  assert.deepEqual(fingerprint.errors, [])
  assert.deepEqual(fingerprint.warnings, [
    'inbounds[0].streamSettings.tlsSettings.fingerprint: "chrome" ignored: Node cannot imitate a browser\'s TLS handshake (uTLS), so tsray sends Node\'s own',
    'inbounds[0].streamSettings.tlsSettings.allowInsecure: the server certificate is not checked: anyone on the path can read and change the traffic',
  ])
  assert.deepEqual(
    read({ security: 'tls', tlsSettings: { pinnedPeerCertificateChainSha256: ['x'] } }).errors,
    [
      'inbounds[0].streamSettings.tlsSettings.pinnedPeerCertificateChainSha256: not supported yet: tsray does not pin certificates',
    ],
  )
  assert.deepEqual(
    read({ security: 'tls', tlsSettings: { certificates: [{ certificateFile: '/a', usage: 'issue' }] } })
      .errors,
    [
      'inbounds[0].streamSettings.tlsSettings.certificates[0].usage: "issue" is not supported: tsray does not issue certificates on the fly (use "encipherment")',
    ],
  )
  assert.deepEqual(read({ security: 'tls', tlsSettings: { certificates: [{ keyFile: '/a.key' }] } }).errors, [
    'inbounds[0].streamSettings.tlsSettings.certificates[0].certificateFile: is required (or the certificate lines)',
  ])
})

test('validateConfig: a VMess inbound and outbound take every transport; a TLS inbound needs a key', () => {
  const ws = {
    network: 'ws',
    security: 'tls',
    wsSettings: { path: '/ray?ed=2048' },
    tlsSettings: { serverName: 'a.example' },
  }
  assert.equal(validateConfig(vmessOutbound(ws)).config.outbounds[0]?.stream.network, 'ws')
  const certificate = { certificateFile: '/etc/ssl/a.pem', keyFile: '/etc/ssl/a.key' }
  const served = validateConfig(vmessInbound({ ...ws, tlsSettings: { certificates: [certificate] } }))
  assert.equal(served.config.inbounds[0]?.stream.security, 'tls')
  assert.equal(
    refusal(
      vmessInbound({
        security: 'tls',
        tlsSettings: { certificates: [{ certificateFile: '/etc/ssl/ca.pem' }] },
      }),
    ),
    'inbounds[0].streamSettings.tlsSettings.certificates: has no certificate with a key; a TLS server needs one (certificateFile and keyFile, or certificate and key)',
  )
})

test('validateConfig: other protocols keep plain TCP; top-level transport settings must move to streamSettings', () => {
  assert.equal(
    refusal(vmessOutbound({ network: 'httpupgrade' }, 'freedom')),
    'outbounds[0].streamSettings.network: "httpupgrade" is not supported yet (supported: "tcp")',
  )
  assert.equal(
    refusal(vmessOutbound({ tcpSettings: { header: { type: 'http' } } }, 'blackhole')),
    'outbounds[0].streamSettings.tcpSettings.header.type: "http" is not supported yet (supported: "none")',
  )
  assert.equal(
    refusal({ ...vmessOutbound({}), transport: { wsSettings: { path: '/ray' } } }),
    'transport.wsSettings: not supported: tsray reads transport settings only from each streamSettings; move them there',
  )
  assert.equal(
    refusal({ ...vmessOutbound({}), transport: { tcpSettings: { header: { type: 'http' } } } }),
    'transport.tcpSettings.header.type: "http" is not supported: tsray reads transport settings only from each streamSettings; move them there',
  )
  assert.doesNotThrow(() =>
    validateConfig({ ...vmessOutbound({}), transport: { tcpSettings: { header: { type: 'none' } } } }),
  )
})
