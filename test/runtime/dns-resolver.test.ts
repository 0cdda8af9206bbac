import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { after, before, test } from 'node:test'
import type { DnsConfig, DnsServerConfig } from '../../src/config/types.js'
import { DnsResolver } from '../../src/runtime/dns-resolver.js'
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js'

let first: TestDnsServer
let second: TestDnsServer
let deadPort = 0

before(async () => {
  first = await startDnsServer({
    'shared.test': ['192.0.2.1'],
    'only-first.test': ['192.0.2.11', '2001:db8::11'],
  })
  second = await startDnsServer({ 'shared.test': ['198.51.100.2'], 'only-second.test': ['198.51.100.22'] })
  // A port nobody listens on: its queries are refused at once (ICMP port unreachable).
  const probe = createSocket('udp4')
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve))
  deadPort = probe.address().port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
})

after(async () => {
  await first.close()
  await second.close()
})

function server(port: number, extra: Partial<DnsServerConfig> = {}): DnsServerConfig {
  return { address: '127.0.0.1', port, domains: [], expectIps: [], skipFallback: false, ...extra }
}

function resolver(config: Partial<DnsConfig>): DnsResolver {
  return new DnsResolver({
    hosts: [],
    servers: [],
    disableFallback: false,
    queryStrategy: 'UseIP',
    ...config,
  })
}

test('DnsResolver: hosts answer first, by full name, domain: and an alias resolved in its place', async () => {
  const dns = resolver({
    hosts: [
      { matcher: 'full:exact.test', addresses: ['127.0.0.2'] },
      { matcher: 'domain:zone.test', addresses: ['10.0.0.1', '::1'] },
      { matcher: 'full:alias.test', addresses: ['only-second.test'] },
    ],
    servers: [server(second.port)],
  })
  assert.deepEqual(await dns.resolve('exact.test'), ['127.0.0.2'])
  assert.deepEqual(await dns.resolve('EXACT.test.'), ['127.0.0.2'], 'case and a final dot do not matter')
  assert.deepEqual(await dns.resolve('a.zone.test'), ['10.0.0.1', '::1'])
  assert.deepEqual(await dns.resolve('a.zone.test', 6), ['::1'])
  assert.deepEqual(await dns.resolve('alias.test', 4), ['198.51.100.22'])
  assert.deepEqual(await dns.resolve('127.0.0.9'), ['127.0.0.9'], 'an IP is its own answer')
  assert.ok(!second.questions.some((question) => question.startsWith('exact.test')), 'hosts are not asked')
})

test('DnsResolver: servers are asked in order, the next when one fails or does not know the name', async () => {
  const dns = resolver({ servers: [server(deadPort), server(first.port), server(second.port)] })
  assert.deepEqual(await dns.resolve('shared.test', 4), ['192.0.2.1'])
  assert.deepEqual(await dns.resolve('only-second.test', 4), ['198.51.100.22'])
  assert.deepEqual(await dns.resolve('only-first.test'), ['192.0.2.11', '2001:db8::11'])
  await assert.rejects(dns.resolve('nowhere.test', 4))
})

test('DnsResolver: a server whose domains match is asked first; expectIPs sends unexpected answers on', async () => {
  const byDomain = resolver({
    servers: [server(first.port), server(second.port, { domains: ['domain:shared.test'] })],
  })
  assert.deepEqual(await byDomain.resolve('shared.test', 4), ['198.51.100.2'])
  const expecting = resolver({
    servers: [server(first.port, { expectIps: ['198.51.100.0/24'] }), server(second.port)],
  })
  assert.deepEqual(await expecting.resolve('shared.test', 4), ['198.51.100.2'])
  const noFallback = resolver({
    servers: [server(second.port, { domains: ['domain:other.test'] })],
    disableFallback: true,
  })
  await assert.rejects(noFallback.resolve('shared.test', 4))
})

test('DnsResolver: queryStrategy UseIPv4 asks for IPv4 only', async () => {
  const dns = resolver({ servers: [server(first.port)], queryStrategy: 'UseIPv4' })
  const before = first.questions.length
  assert.deepEqual(await dns.resolve('only-first.test'), ['192.0.2.11'])
  assert.deepEqual(first.questions.slice(before), ['only-first.test A'])
})

test('DnsResolver: without servers the system resolver answers', async () => {
  const addresses = await resolver({}).resolve('localhost')
  assert.ok(
    addresses.length > 0 && addresses.every((address) => address === '127.0.0.1' || address === '::1'),
  )
})
