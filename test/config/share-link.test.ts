import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import {
  MAX_VMESS_LINK_LENGTH,
  VMESS_NETWORKS,
  formatVmessLink,
  parseVmessLink,
  vmessLinkToOutbound,
  type VmessLink,
} from '../../src/config/share-link.js'
import { ProtocolError } from '../../src/errors.js'
import { SECURITY_NAMES } from '../../src/protocol/constants.js'

// docs/compatibility.md §3.1 and §3.2: the same node as v2rayN JSON and as the standard URI.
const EXAMPLE_JSON =
  '{"v":"2","ps":"tsray-demo","add":"example.com","port":"443","id":"b831381d-6324-4d53-ad4f-8cda48b30811","aid":"0","scy":"auto","net":"ws","type":"none","host":"cdn.example.com","path":"/ray?ed=2048","tls":"tls","sni":"cdn.example.com","alpn":"http/1.1","fp":"chrome"}'
const EXAMPLE_LINK =
  'vmess://eyJ2IjoiMiIsInBzIjoidHNyYXktZGVtbyIsImFkZCI6ImV4YW1wbGUuY29tIiwicG9ydCI6IjQ0MyIsImlkIjoiYjgzMTM4MWQtNjMyNC00ZDUzLWFkNGYtOGNkYTQ4YjMwODExIiwiYWlkIjoiMCIsInNjeSI6ImF1dG8iLCJuZXQiOiJ3cyIsInR5cGUiOiJub25lIiwiaG9zdCI6ImNkbi5leGFtcGxlLmNvbSIsInBhdGgiOiIvcmF5P2VkPTIwNDgiLCJ0bHMiOiJ0bHMiLCJzbmkiOiJjZG4uZXhhbXBsZS5jb20iLCJhbHBuIjoiaHR0cC8xLjEiLCJmcCI6ImNocm9tZSJ9'
const EXAMPLE_URI =
  'vmess://b831381d-6324-4d53-ad4f-8cda48b30811@example.com:443?type=ws&host=cdn.example.com&path=%2Fray%3Fed%3D2048&security=tls&sni=cdn.example.com&alpn=http%2F1.1&fp=chrome#tsray%20demo'
const ID = 'b831381d-6324-4d53-ad4f-8cda48b30811'

const EXAMPLE_BARE: VmessLink = {
  remark: 'tsray-demo',
  address: 'example.com',
  port: 443,
  id: ID,
  alterId: 0,
  security: 'auto',
  network: 'ws',
  headerType: 'none',
  host: 'cdn.example.com',
  path: '/ray?ed=2048',
  tls: true,
}
const EXAMPLE: VmessLink = {
  ...EXAMPLE_BARE,
  sni: 'cdn.example.com',
  alpn: 'http/1.1',
  fingerprint: 'chrome',
}

const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64')
const v2rayn = (json: object): string => `vmess://${base64(JSON.stringify(json))}`

function throwsLinkInvalid(text: string, label = text): void {
  assert.throws(
    () => parseVmessLink(text),
    (error: unknown) =>
      error instanceof ProtocolError &&
      error.code === 'LINK_INVALID' &&
      error.message.startsWith('Cannot read vmess link: '),
    label,
  )
}

void test('the docs/compatibility.md example link is base64 of the example JSON', () => {
  assert.equal(EXAMPLE_LINK, `vmess://${base64(EXAMPLE_JSON)}`)
})

void test('parseVmessLink reads the docs/compatibility.md §3.1 example', () => {
  assert.deepEqual(parseVmessLink(EXAMPLE_LINK), EXAMPLE)
})

void test('formatVmessLink writes the docs/compatibility.md §3.1 example back byte for byte', () => {
  assert.equal(formatVmessLink(parseVmessLink(EXAMPLE_LINK)), EXAMPLE_LINK)
  assert.equal(formatVmessLink(EXAMPLE, { form: 'v2rayn' }), EXAMPLE_LINK)
})

void test('parseVmessLink reads the docs/compatibility.md §3.2 URI and formatVmessLink writes it back', () => {
  const link = parseVmessLink(EXAMPLE_URI)
  assert.deepEqual(link, { ...EXAMPLE, remark: 'tsray demo' })
  assert.equal(formatVmessLink(link, { form: 'uri' }), EXAMPLE_URI)
})

void test('parseVmessLink decodes URL-safe base64 without padding and with trailing whitespace', () => {
  const json = JSON.stringify({ v: '2', ps: '??>>', add: '1.2.3.4', port: '1', id: ID, aid: '0' })
  const urlSafe = Buffer.from(json).toString('base64url')
  assert.ok(/[-_]/.test(urlSafe), 'the sample must exercise the URL-safe alphabet')
  assert.equal(parseVmessLink(`vmess://${urlSafe}\n`).remark, '??>>')
  const padded = Buffer.from(json).toString('base64')
  assert.equal(parseVmessLink(`  VMESS://${padded}  \r\n`).address, '1.2.3.4')
})

void test('parseVmessLink accepts numbers as numbers and fills the defaults', () => {
  assert.deepEqual(
    parseVmessLink(v2rayn({ v: 2, ps: 'n', add: 'example.com', port: 8080, id: ID, aid: 4 })),
    {
      remark: 'n',
      address: 'example.com',
      port: 8080,
      id: ID,
      alterId: 4,
      security: 'auto',
      network: 'tcp',
      headerType: 'none',
      host: '',
      path: '',
      tls: false,
    },
  )
})

void test('parseVmessLink reads net "http" as h2 unless type is http', () => {
  const common = { add: 'a.example', port: '443', id: ID }
  assert.equal(parseVmessLink(v2rayn({ ...common, net: 'http' })).network, 'h2')
  const tcpHttp = parseVmessLink(v2rayn({ ...common, net: 'http', type: 'http' }))
  assert.deepEqual([tcpHttp.network, tcpHttp.headerType], ['tcp', 'http'])
  assert.equal(parseVmessLink(v2rayn({ ...common, net: 'h2' })).network, 'h2')
  assert.equal(parseVmessLink(v2rayn({ ...common, net: 'raw' })).network, 'tcp')
})

void test('parseVmessLink reads tls, insecure and the IETF chacha spelling', () => {
  const common = { add: 'a.example', port: '443', id: ID }
  assert.equal(parseVmessLink(v2rayn({ ...common, tls: 'none' })).tls, false)
  assert.equal(parseVmessLink(v2rayn({ ...common, tls: 'xtls' })).tls, true)
  assert.equal(parseVmessLink(v2rayn({ ...common, tls: 'tls', insecure: '1' })).allowInsecure, true)
  assert.equal(
    parseVmessLink(v2rayn({ ...common, scy: 'chacha20-ietf-poly1305' })).security,
    'chacha20-poly1305',
  )
  assert.equal(parseVmessLink(v2rayn({ ...common, add: '[2001:db8::1]' })).address, '2001:db8::1')
  assert.equal(parseVmessLink(v2rayn({ ...common, id: 'my-custom-id' })).id, 'my-custom-id')
})

void test('parseVmessLink reads URI forms with other transports and IPv6', () => {
  const grpc = parseVmessLink(
    `vmess://${ID}@[2001:db8::1]:443?type=grpc&serviceName=svc&mode=multi&security=tls`,
  )
  assert.deepEqual(
    [grpc.address, grpc.network, grpc.path, grpc.headerType, grpc.tls, grpc.remark],
    ['2001:db8::1', 'grpc', 'svc', 'multi', true, ''],
  )
  const h2 = parseVmessLink(`vmess://${ID}@h.example:443/?type=http&path=%2Fp&encryption=aes-128-gcm#x`)
  assert.deepEqual([h2.network, h2.path, h2.security, h2.remark], ['h2', '/p', 'aes-128-gcm', 'x'])
  const tcp = parseVmessLink(`vmess://${ID}@t.example:80?type=tcp&headerType=http&host=a.example%2Cb.example`)
  assert.deepEqual(
    [tcp.network, tcp.headerType, tcp.host, tcp.tls],
    ['tcp', 'http', 'a.example,b.example', false],
  )
  assert.equal(parseVmessLink(`vmess://${ID}@t.example:80`).network, 'tcp')
  assert.equal(parseVmessLink(`vmess://${ID}@t.example:80?path=a+b`).path, 'a+b')
})

void test('parseVmessLink reads the Shadowrocket shape', () => {
  const text = `vmess://${base64(`auto:${ID}@example.com:443`)}?remarks=sr%20node&obfs=websocket&obfsParam=cdn.example.com&path=/ray&tls=1&peer=cdn.example.com&allowInsecure=1`
  assert.deepEqual(parseVmessLink(text), {
    remark: 'sr node',
    address: 'example.com',
    port: 443,
    id: ID,
    alterId: 0,
    security: 'auto',
    network: 'ws',
    headerType: 'none',
    host: 'cdn.example.com',
    path: '/ray',
    tls: true,
    sni: 'cdn.example.com',
    allowInsecure: true,
  })
  const json = `vmess://${base64(`none:${ID}@1.2.3.4:80`)}?obfs=websocket&obfsParam=%7B%22Host%22%3A%22h.example%22%7D`
  assert.equal(parseVmessLink(json).host, 'h.example')
  assert.equal(parseVmessLink(json).security, 'none')
})

void test('parseVmessLink reads the Quantumult shape', () => {
  const line = `qx node = vmess, example.com, 443, chacha20-ietf-poly1305, "${ID}", group=g, over-tls=true, tls-host=cdn.example.com, certificate=1, obfs=ws, obfs-path="/ray", obfs-header="Host: cdn.example.com[Rr][Nn]User-Agent: x"`
  assert.deepEqual(parseVmessLink(`vmess://${base64(line)}`), {
    remark: 'qx node',
    address: 'example.com',
    port: 443,
    id: ID,
    alterId: 0,
    security: 'chacha20-poly1305',
    network: 'ws',
    headerType: 'none',
    host: 'cdn.example.com',
    path: '/ray',
    tls: true,
    sni: 'cdn.example.com',
    allowInsecure: false,
  })
})

void test('parseVmessLink refuses bad links with LINK_INVALID', () => {
  const common = { add: 'a.example', port: '443', id: ID }
  const cases: [string, string][] = [
    ['', 'empty'],
    [`vless://${ID}@a.example:443`, 'another scheme'],
    ['vmess://', 'nothing after the scheme'],
    ['vmess://!!!!', 'not base64'],
    ['vmess://a', 'one base64 character'],
    [`vmess://${base64('not json')}`, 'base64 of neither JSON nor a known shape'],
    [`vmess://${base64('{"add":')}`, 'broken JSON'],
    [`vmess://${base64('[1,2]')}`, 'a JSON array'],
    [`vmess://${Buffer.from([0x7b, 0xff, 0xfe]).toString('base64')}`, 'not UTF-8'],
    [v2rayn({ ...common, port: '0' }), 'port 0'],
    [v2rayn({ ...common, port: '65536' }), 'port too big'],
    [v2rayn({ ...common, port: 'x' }), 'port not a number'],
    [v2rayn({ ...common, port: 44.5 }), 'port not an integer'],
    [v2rayn({ ...common, id: '' }), 'no id'],
    [v2rayn({ ...common, id: 'x'.repeat(31) }), 'an id that is neither UUID nor short'],
    [v2rayn({ ...common, add: '' }), 'no address'],
    [v2rayn({ ...common, add: 'a b' }), 'a space in the address'],
    [v2rayn({ ...common, aid: '-1' }), 'negative alterId'],
    [v2rayn({ ...common, scy: 'aes-256-gcm' }), 'unknown security'],
    [v2rayn({ ...common, net: 'carrier-pigeon' }), 'unknown network'],
    [v2rayn({ ...common, tls: 'reality' }), 'REALITY'],
    [v2rayn({ ...common, tls: 'maybe' }), 'unknown tls'],
    [v2rayn({ ...common, host: { a: 1 } }), 'an object field'],
    [`vmess://${ID}@a.example`, 'URI without port'],
    [`vmess://${ID}@a.example:443?type=ws&type=tcp`, 'repeated field'],
    [`vmess://${ID}@a.example:443?path=%E0%A4%A`, 'broken %-escape'],
    [`vmess://${ID}@a.example:443?security=reality`, 'URI with REALITY'],
    [`vmess://${ID}@2001:db8::1:443`, 'URI with unbracketed IPv6'],
    [`vmess://${'A'.repeat(MAX_VMESS_LINK_LENGTH)}`, 'too long'],
  ]
  for (const [text, label] of cases) throwsLinkInvalid(text, label)
})

void test('formatVmessLink writes every v2rayN key as a string, in the usual order', () => {
  const text = formatVmessLink({ ...EXAMPLE, alterId: 2, tls: false, allowInsecure: false })
  const json = JSON.parse(Buffer.from(text.slice('vmess://'.length), 'base64').toString('utf8')) as Record<
    string,
    unknown
  >
  assert.deepEqual(Object.keys(json), [
    'v',
    'ps',
    'add',
    'port',
    'id',
    'aid',
    'scy',
    'net',
    'type',
    'host',
    'path',
    'tls',
    'sni',
    'alpn',
    'fp',
    'insecure',
  ])
  assert.ok(Object.values(json).every((value) => typeof value === 'string'))
  assert.deepEqual([json.port, json.aid, json.tls, json.insecure], ['443', '2', '', '0'])
})

void test('formatVmessLink refuses the URI form for alterId other than 0', () => {
  assert.throws(
    () => formatVmessLink({ ...EXAMPLE, alterId: 1 }, { form: 'uri' }),
    (error: unknown) => error instanceof ProtocolError && error.code === 'LINK_INVALID',
  )
})

void test('vmessLinkToOutbound turns the example into a V2Ray v4 outbound', () => {
  assert.deepEqual(vmessLinkToOutbound(EXAMPLE), {
    protocol: 'vmess',
    settings: {
      vnext: [{ address: 'example.com', port: 443, users: [{ id: ID, alterId: 0, security: 'auto' }] }],
    },
    streamSettings: {
      network: 'ws',
      security: 'tls',
      wsSettings: {
        path: '/ray',
        headers: { Host: 'cdn.example.com' },
        maxEarlyData: 2048,
        earlyDataHeaderName: 'Sec-WebSocket-Protocol',
      },
      tlsSettings: { serverName: 'cdn.example.com', alpn: ['http/1.1'], fingerprint: 'chrome' },
    },
  })
})

void test('vmessLinkToOutbound writes the settings of each transport', () => {
  const plain: VmessLink = { ...EXAMPLE, tls: false, network: 'tcp', host: '', path: '' }
  assert.deepEqual(vmessLinkToOutbound(plain).streamSettings, { network: 'tcp', security: 'none' })
  assert.deepEqual(
    vmessLinkToOutbound({ ...plain, headerType: 'http', host: 'a.example, b.example', path: '/x' })
      .streamSettings,
    {
      network: 'tcp',
      security: 'none',
      tcpSettings: {
        header: { type: 'http', request: { path: ['/x'], headers: { Host: ['a.example', 'b.example'] } } },
      },
    },
  )
  assert.deepEqual(vmessLinkToOutbound({ ...plain, network: 'h2', host: 'h.example' }).streamSettings, {
    network: 'http',
    security: 'none',
    httpSettings: { path: '/', host: ['h.example'] },
  })
  assert.deepEqual(vmessLinkToOutbound({ ...plain, network: 'ws', path: '/w?ed=1&x=2' }).streamSettings, {
    network: 'ws',
    security: 'none',
    wsSettings: { path: '/w?x=2', maxEarlyData: 1, earlyDataHeaderName: 'Sec-WebSocket-Protocol' },
  })
  assert.deepEqual(
    vmessLinkToOutbound({ ...plain, network: 'grpc', path: 'svc', headerType: 'multi', tls: true })
      .streamSettings,
    {
      network: 'grpc',
      security: 'tls',
      grpcSettings: { serviceName: 'svc', multiMode: true },
      tlsSettings: { serverName: 'cdn.example.com', alpn: ['http/1.1'], fingerprint: 'chrome' },
    },
  )
  const bare = EXAMPLE_BARE
  assert.deepEqual(vmessLinkToOutbound({ ...bare, allowInsecure: true }).streamSettings.tlsSettings, {
    serverName: 'cdn.example.com',
    allowInsecure: true,
  })
  assert.deepEqual(
    vmessLinkToOutbound({ ...bare, network: 'kcp', path: 'seed', headerType: 'srtp' }).streamSettings,
    {
      network: 'kcp',
      security: 'tls',
      kcpSettings: { header: { type: 'srtp' }, seed: 'seed' },
      tlsSettings: {},
    },
  )
})

const text = fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => s.trim())
const optionalText = fc.option(
  text.filter((s) => s !== ''),
  { nil: undefined },
)
const linkArbitrary = (alterId: fc.Arbitrary<number>): fc.Arbitrary<VmessLink> =>
  fc
    .record({
      remark: fc.string({ unit: 'grapheme', maxLength: 20 }),
      address: fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6()),
      port: fc.integer({ min: 1, max: 0xffff }),
      id: fc.uuid(),
      alterId,
      security: fc.constantFrom(...SECURITY_NAMES),
      network: fc.constantFrom(...VMESS_NETWORKS),
      headerType: fc.constantFrom('none', 'http', 'srtp', 'gun', 'multi'),
      host: text,
      path: text,
      tls: fc.boolean(),
      sni: optionalText,
      alpn: optionalText,
      fingerprint: optionalText,
      allowInsecure: fc.option(fc.boolean(), { nil: undefined }),
    })
    .map((link) => {
      const out: Record<string, unknown> = {}
      for (const [key, value] of Object.entries(link)) if (value !== undefined) out[key] = value
      return out as unknown as VmessLink
    })

void test('formatVmessLink → parseVmessLink round-trips random links in the v2rayN form', () => {
  fc.assert(
    fc.property(linkArbitrary(fc.integer({ min: 0, max: 0xffff })), (link) => {
      assert.deepEqual(parseVmessLink(formatVmessLink(link)), link)
    }),
  )
})

void test('formatVmessLink → parseVmessLink round-trips random links in the URI form', () => {
  fc.assert(
    fc.property(linkArbitrary(fc.constant(0)), (link) => {
      assert.deepEqual(parseVmessLink(formatVmessLink(link, { form: 'uri' })), link)
    }),
  )
})

void test('parseVmessLink given random text throws only ProtocolError', () => {
  const prefixes = ['vmess://', `vmess://${ID}@`, 'vmess://eyJ']
  fc.assert(
    fc.property(fc.constantFrom(...prefixes), fc.string({ maxLength: 80 }), (prefix, rest) => {
      try {
        parseVmessLink(prefix + rest)
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error
      }
    }),
  )
  fc.assert(
    fc.property(fc.json(), (json) => {
      try {
        parseVmessLink(`vmess://${base64(json)}`)
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error
      }
    }),
  )
})
