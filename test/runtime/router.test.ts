import assert from 'node:assert/strict'
import { PassThrough, type Duplex } from 'node:stream'
import { test } from 'node:test'
import type { ConnectionContext, Outbound, PacketChannel } from '../../src/outbound/outbound.js'
import { Router, type DomainStrategy, type RouteRule } from '../../src/runtime/router.js'
import type { Destination } from '../../src/types.js'

/** An outbound that records where it was asked to connect. */
class RecordingOutbound implements Outbound {
  readonly tag: string
  readonly dialled: string[] = []

  constructor(tag: string) {
    this.tag = tag
  }

  dialTcp(destination: Destination): Promise<Duplex> {
    this.dialled.push(`${destination.host}:${destination.port}`)
    return Promise.resolve(new PassThrough())
  }

  openUdp(): PacketChannel {
    throw new Error('not used')
  }
}

const context: ConnectionContext = { inboundTag: 'in', source: '127.0.0.1:50000', user: '' }

function routerWith(
  rules: RouteRule[],
  options: { domainStrategy?: DomainStrategy; resolve?: (host: string) => Promise<readonly string[]> } = {},
) {
  const outbounds = new Map(['default', 'matched'].map((tag) => [tag, new RecordingOutbound(tag)]))
  const router = new Router({
    rules,
    outbounds,
    defaultOutbound: outbounds.get('default')!,
    ...options,
  })
  const pick = (host: string, port = 80): string => router.pick({ network: 'tcp', host, port }, context).tag
  return { router, outbounds, pick }
}

test('Router: dotless: matches names without a dot that contain the rest, as V2Ray turns it into ^[^.]*X[^.]*$', () => {
  const any = routerWith([{ outboundTag: 'matched', domains: ['dotless:'] }])
  assert.equal(any.pick('localhost'), 'matched')
  assert.equal(any.pick('intranet'), 'matched')
  assert.equal(any.pick('example.com'), 'default')
  assert.equal(any.pick('localhost.'), 'default')
  assert.equal(any.pick('127.0.0.1'), 'default', 'an IP is never a domain')
  const part = routerWith([{ outboundTag: 'matched', domains: ['dotless:host'] }])
  assert.equal(part.pick('localhost'), 'matched')
  assert.equal(part.pick('hostname'), 'matched')
  assert.equal(part.pick('intranet'), 'default')
  assert.equal(part.pick('host.example'), 'default')
})

test('Router: full:, domain:, keyword:, a bare word and regexp: match as in V2Ray', () => {
  const cases: [string, string, boolean][] = [
    ['full:example.com', 'example.com', true],
    ['full:example.com', 'www.example.com', false],
    ['domain:example.com', 'example.com', true],
    ['domain:example.com', 'a.b.example.com', true],
    ['domain:example.com', 'badexample.com', false],
    ['keyword:ample', 'www.example.com', true],
    ['ample', 'www.example.com', true],
    ['keyword:ample', 'www.test.org', false],
    ['regexp:^w+\\.example\\.com$', 'www.example.com', true],
    ['regexp:^w+\\.example\\.com$', 'web.example.com', false],
  ]
  for (const [pattern, host, expected] of cases) {
    const { pick } = routerWith([{ outboundTag: 'matched', domains: [pattern] }])
    assert.equal(pick(host), expected ? 'matched' : 'default', `${pattern} on ${host}`)
  }
})

test('Router: the first matching rule wins; ports, networks and inbound tags combine', () => {
  const { pick } = routerWith([
    { outboundTag: 'matched', domains: ['domain:example.com'], ports: [[443, 443]], inboundTags: ['in'] },
    { outboundTag: 'default', domains: ['domain:example.com'] },
  ])
  assert.equal(pick('example.com', 443), 'matched')
  assert.equal(pick('example.com', 80), 'default')
})

test('Router: IPIfNonMatch resolves an unmatched domain with the given DNS and tries every address on the IP rules', async () => {
  const asked: string[] = []
  const resolve = (host: string): Promise<readonly string[]> => {
    asked.push(host)
    return Promise.resolve(host === 'intra.example' ? ['203.0.113.7', '10.1.2.3'] : [])
  }
  const { router, outbounds } = routerWith([{ outboundTag: 'matched', ips: ['10.0.0.0/8'] }], {
    domainStrategy: 'IPIfNonMatch',
    resolve,
  })
  await router.dialTcp({ network: 'tcp', host: 'intra.example', port: 80 }, context)
  await router.dialTcp({ network: 'tcp', host: 'public.example', port: 80 }, context)
  assert.deepEqual(outbounds.get('matched')!.dialled, ['intra.example:80'], 'the connection keeps the domain')
  assert.deepEqual(outbounds.get('default')!.dialled, ['public.example:80'])
  assert.deepEqual(asked, ['intra.example', 'public.example'])
})

test('Router: AsIs never resolves', async () => {
  const { router, outbounds } = routerWith([{ outboundTag: 'matched', ips: ['10.0.0.0/8'] }], {
    resolve: () => Promise.reject(new Error('must not be asked')),
  })
  await router.dialTcp({ network: 'tcp', host: 'intra.example', port: 80 }, context)
  assert.deepEqual(outbounds.get('default')!.dialled, ['intra.example:80'])
})
