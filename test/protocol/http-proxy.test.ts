import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { ProtocolError } from '../../src/errors.js'
import { ByteQueue } from '../../src/protocol/byte-queue.js'
import {
  MAX_HTTP_HEAD_BYTES,
  encodeForwardedRequestHead,
  encodeHttpResponse,
  findHttpHeader,
  parseHttpProxyRequest,
  parseProxyAuthorization,
  type HttpProxyRequest,
} from '../../src/protocol/http-proxy.js'
import { splits } from '../helpers/feed.js'

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (error: unknown) => error instanceof ProtocolError && error.code === code)
}

function parseText(text: string): HttpProxyRequest | undefined {
  const queue = new ByteQueue()
  queue.push(Buffer.from(text, 'latin1'))
  return parseHttpProxyRequest(queue)
}

function parseOk(text: string): HttpProxyRequest {
  const request = parseText(text)
  assert.ok(request !== undefined, 'head incomplete')
  return request
}

const CONNECT = 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: curl/8\r\n\r\n'

void test('parseHttpProxyRequest reads CONNECT, split at every byte boundary, leaving the tunnel bytes', () => {
  const tunnel = Buffer.from([0x16, 0x03, 0x01])
  const wire = Buffer.concat([Buffer.from(CONNECT, 'latin1'), tunnel])
  for (const pieces of splits(wire)) {
    const queue = new ByteQueue()
    let pushed = 0
    let request: HttpProxyRequest | undefined
    for (const piece of pieces) {
      queue.push(piece)
      pushed += piece.length
      request ??= parseHttpProxyRequest(queue)
      if (pushed < CONNECT.length) assert.equal(request, undefined)
    }
    assert.deepEqual(request, {
      method: 'CONNECT',
      target: 'example.com:443',
      version: 'HTTP/1.1',
      headers: [
        ['Host', 'example.com:443'],
        ['User-Agent', 'curl/8'],
      ],
      host: 'example.com',
      port: 443,
      isConnect: true,
      path: '',
    })
    assert.deepEqual(queue.consume(queue.length), tunnel)
  }
})

void test('parseHttpProxyRequest reads CONNECT to bracketed IPv6 and IPv4', () => {
  const v6 = parseOk('CONNECT [2001:DB8::1]:8443 HTTP/1.1\r\n\r\n')
  assert.equal(v6.host, '2001:db8::1')
  assert.equal(v6.port, 8443)
  const v4 = parseOk('CONNECT 10.1.2.3:22 HTTP/1.0\r\n\r\n')
  assert.equal(v4.host, '10.1.2.3')
  assert.equal(v4.version, 'HTTP/1.0')
})

void test('parseHttpProxyRequest reads absolute-URI requests', () => {
  const request = parseOk(
    'GET http://example.com/a/b?q=1#frag HTTP/1.1\r\nHost: example.com\r\nProxy-Connection: keep-alive\r\n\r\n',
  )
  assert.equal(request.isConnect, false)
  assert.equal(request.host, 'example.com')
  assert.equal(request.port, 80)
  assert.equal(request.path, '/a/b?q=1')
  assert.equal(parseOk('GET HTTP://Example.com:8080 HTTP/1.1\r\n\r\n').path, '/')
  assert.equal(parseOk('GET HTTP://Example.com:8080 HTTP/1.1\r\n\r\n').port, 8080)
  assert.equal(parseOk('GET http://example.com?x=1 HTTP/1.1\r\n\r\n').path, '/?x=1')
  assert.equal(parseOk('GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n').host, 'example.com')
  const v6 = parseOk('POST http://[::1]:81/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n')
  assert.deepEqual([v6.host, v6.port, v6.path], ['::1', 81, '/x'])
})

void test('parseHttpProxyRequest trims header values and keeps name case', () => {
  const request = parseOk('GET http://a/ HTTP/1.1\r\nX-Thing:   spaced \t\r\nEmpty:\r\n\r\n')
  assert.deepEqual(request.headers, [
    ['X-Thing', 'spaced'],
    ['Empty', ''],
  ])
  assert.equal(findHttpHeader(request.headers, 'x-thing'), 'spaced')
  assert.equal(findHttpHeader(request.headers, 'missing'), undefined)
})

void test('parseHttpProxyRequest refuses origin-form requests as not proxy requests', () => {
  throwsCode(() => parseText('GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n'), 'HTTP_NOT_PROXY_REQUEST')
  throwsCode(() => parseText('OPTIONS * HTTP/1.1\r\n\r\n'), 'HTTP_NOT_PROXY_REQUEST')
})

void test('parseHttpProxyRequest refuses malformed heads', () => {
  const cases = [
    'GET http://a/ HTTP/2.0\r\n\r\n',
    'GET http://a/  HTTP/1.1\r\n\r\n',
    'GET http://a/\r\n\r\n',
    'G(T http://a/ HTTP/1.1\r\n\r\n',
    'GET ftp://a/ HTTP/1.1\r\n\r\n',
    'GET http://a b/ HTTP/1.1\r\n\r\n',
    'GET http:/// HTTP/1.1\r\n\r\n',
    'GET http://a:0/ HTTP/1.1\r\n\r\n',
    'GET http://a:99999/ HTTP/1.1\r\n\r\n',
    'GET http://a:8x/ HTTP/1.1\r\n\r\n',
    'GET http://a%20b/ HTTP/1.1\r\n\r\n',
    'GET http://::1/ HTTP/1.1\r\n\r\n',
    'GET http://[::1/ HTTP/1.1\r\n\r\n',
    'GET http://[zz]/ HTTP/1.1\r\n\r\n',
    'GET http://[::1]x/ HTTP/1.1\r\n\r\n',
    'CONNECT example.com HTTP/1.1\r\n\r\n',
    'CONNECT example.com: HTTP/1.1\r\n\r\n',
    'GET http://a/ HTTP/1.1\r\nNo colon\r\n\r\n',
    'GET http://a/ HTTP/1.1\r\n folded: x\r\n\r\n',
    'GET http://a/ HTTP/1.1\r\nBad Name: x\r\n\r\n',
    'GET http://a/ HTTP/1.1\r\nX: a\nb\r\n\r\n',
    'GET http://a/ HTTP/1.1\r\nX: a\0b\r\n\r\n',
    '\x16\x03\x01',
    '\r\n',
  ]
  for (const text of cases) {
    assert.throws(
      () => parseText(text),
      (error: unknown) => error instanceof ProtocolError && error.code === 'HTTP_INVALID',
      JSON.stringify(text),
    )
  }
})

void test('parseHttpProxyRequest refuses a head longer than MAX_HTTP_HEAD_BYTES', () => {
  const queue = new ByteQueue()
  queue.push(Buffer.from('GET http://a/ HTTP/1.1\r\n'))
  const filler = Buffer.from(`X-Filler: ${'x'.repeat(1000)}\r\n`)
  let thrown: unknown
  for (let i = 0; i < 20 && thrown === undefined; i++) {
    queue.push(filler)
    try {
      assert.equal(parseHttpProxyRequest(queue), undefined)
    } catch (error) {
      thrown = error
    }
  }
  assert.ok(thrown instanceof ProtocolError && thrown.code === 'HTTP_HEAD_TOO_LARGE')
  // A head that ends exactly at the limit is read.
  const head = 'GET http://a/ HTTP/1.1\r\nX: '
  const exact = `${head}${'y'.repeat(MAX_HTTP_HEAD_BYTES - head.length - 4)}\r\n\r\n`
  assert.equal(exact.length, MAX_HTTP_HEAD_BYTES)
  assert.equal(parseOk(exact).headers.length, 1)
  throwsCode(
    () => parseText(`${head}${'y'.repeat(MAX_HTTP_HEAD_BYTES - head.length - 3)}\r\n\r\n`),
    'HTTP_HEAD_TOO_LARGE',
  )
})

void test('encodeForwardedRequestHead writes origin-form, Host from the URI, no hop-by-hop fields', () => {
  const request = parseOk(
    [
      'POST http://example.com:8080/submit?x=1 HTTP/1.1',
      'Host: wrong.example',
      'Proxy-Connection: keep-alive',
      'Proxy-Authorization: Basic dTpw',
      'Connection: keep-alive, X-Secret',
      'Keep-Alive: timeout=5',
      'TE: trailers',
      'Upgrade: h2c',
      'X-Secret: 1',
      'Transfer-Encoding: chunked',
      'Trailer: X-Checksum',
      'Accept: */*',
      '',
      '',
    ].join('\r\n'),
  )
  assert.equal(
    encodeForwardedRequestHead(request).toString('latin1'),
    [
      'POST /submit?x=1 HTTP/1.1',
      'Host: example.com:8080',
      'Transfer-Encoding: chunked',
      'Trailer: X-Checksum',
      'Accept: */*',
      'Connection: close',
      '',
      '',
    ].join('\r\n'),
  )
})

void test('encodeForwardedRequestHead adds Host when absent and keeps framing fields Connection lists', () => {
  const request = parseOk(
    'GET http://[::1]/ HTTP/1.0\r\nConnection: Content-Length, Transfer-Encoding\r\nContent-Length: 0\r\n\r\n',
  )
  assert.equal(
    encodeForwardedRequestHead(request).toString('latin1'),
    'GET / HTTP/1.0\r\nHost: [::1]\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
  )
})

void test('encodeForwardedRequestHead keeps an upgrade the client asked for', () => {
  const request = parseOk(
    'GET http://ws.example/chat HTTP/1.1\r\nHost: ws.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: abc\r\n\r\n',
  )
  assert.equal(
    encodeForwardedRequestHead(request).toString('latin1'),
    'GET /chat HTTP/1.1\r\nHost: ws.example\r\nSec-WebSocket-Key: abc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  )
})

void test('encodeForwardedRequestHead refuses CONNECT', () => {
  throwsCode(() => encodeForwardedRequestHead(parseOk(CONNECT)), 'HTTP_INVALID')
})

void test('parseProxyAuthorization reads Basic credentials', () => {
  const header = (value: string) => [['Proxy-Authorization', value] as const]
  const encoded = Buffer.from('alice:pa:ss').toString('base64')
  assert.deepEqual(parseProxyAuthorization(header(`Basic ${encoded}`)), { user: 'alice', pass: 'pa:ss' })
  assert.deepEqual(parseProxyAuthorization([['proxy-authorization', `basic  ${encoded}`]]), {
    user: 'alice',
    pass: 'pa:ss',
  })
  assert.deepEqual(parseProxyAuthorization(header(`Basic ${Buffer.from('ü:é').toString('base64')}`)), {
    user: 'ü',
    pass: 'é',
  })
  assert.equal(parseProxyAuthorization([]), undefined)
  assert.equal(parseProxyAuthorization(header(`Bearer ${encoded}`)), undefined)
  assert.equal(parseProxyAuthorization(header('Basic !!!')), undefined)
  assert.equal(
    parseProxyAuthorization(header(`Basic ${Buffer.from('nocolon').toString('base64')}`)),
    undefined,
  )
})

void test('encodeHttpResponse writes the status responses a proxy sends', () => {
  const text = (status: number, options?: Parameters<typeof encodeHttpResponse>[1]) =>
    encodeHttpResponse(status, options).toString('latin1')
  assert.equal(text(200), 'HTTP/1.1 200 Connection established\r\n\r\n')
  assert.equal(text(400), 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  assert.equal(text(403), 'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  assert.equal(
    text(407),
    'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="tsray"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
  )
  assert.equal(text(502), 'HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  assert.equal(text(504), 'HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  assert.equal(
    text(502, {
      reason: 'Upstream Failed',
      headers: [
        ['Connection', 'keep-alive'],
        ['X-Reason', 'dial'],
      ],
    }),
    'HTTP/1.1 502 Upstream Failed\r\nContent-Length: 0\r\nConnection: keep-alive\r\nX-Reason: dial\r\n\r\n',
  )
  throwsCode(() => encodeHttpResponse(200, { headers: [['X', 'a\r\nInjected: 1']] }), 'HTTP_INVALID')
  throwsCode(() => encodeHttpResponse(200, { reason: 'OK\r\n' }), 'HTTP_INVALID')
  throwsCode(() => encodeHttpResponse(99), 'HTTP_INVALID')
})

void test('parseHttpProxyRequest → encodeForwardedRequestHead round-trips random absolute-URI requests', () => {
  const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/)
  fc.assert(
    fc.property(
      fc.domain(),
      fc.integer({ min: 1, max: 0xffff }),
      fc.stringMatching(/^(\/[A-Za-z0-9._~%-]{0,10}){0,4}(\?[A-Za-z0-9=&]{0,20})?$/),
      fc.array(fc.tuple(token, fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,30}[\x21-\x7e])?$/)), {
        maxLength: 6,
      }),
      (host, port, path, headers) => {
        const fields = headers.filter(
          ([name]) => !/^(host|connection|proxy-connection|keep-alive|te|upgrade|proxy-auth.*)$/i.test(name),
        )
        const head = [
          `GET http://${host}:${port}${path} HTTP/1.1`,
          ...fields.map(([n, v]) => `${n}: ${v}`),
          '',
          '',
        ].join('\r\n')
        const request = parseOk(head)
        assert.equal(request.host, host)
        assert.equal(request.port, port)
        const forwarded = encodeForwardedRequestHead(request).toString('latin1')
        const authority = port === 80 ? host : `${host}:${port}`
        const expected = [
          `GET ${path.startsWith('/') ? path : `/${path}`} HTTP/1.1`,
          `Host: ${authority}`,
          ...fields.map(([n, v]) => `${n}: ${v}`),
          'Connection: close',
          '',
          '',
        ].join('\r\n')
        assert.equal(forwarded, expected)
      },
    ),
  )
})

void test('parseHttpProxyRequest given random bytes returns undefined or throws only ProtocolError', () => {
  const prefixes = ['', 'GET ', 'CONNECT ', 'GET http://', 'GET http://a/ HTTP/1.1\r\n']
  fc.assert(
    fc.property(
      fc.constantFrom(...prefixes),
      fc.uint8Array({ maxLength: 200 }),
      fc.boolean(),
      (prefix, bytes, end) => {
        const queue = new ByteQueue()
        queue.push(
          Buffer.concat([Buffer.from(prefix), Buffer.from(bytes), Buffer.from(end ? '\r\n\r\n' : '')]),
        )
        try {
          parseHttpProxyRequest(queue)
        } catch (error) {
          if (!(error instanceof ProtocolError)) throw error
        }
      },
    ),
    { numRuns: 2000 },
  )
})

/** A queue that counts the bytes its searches start before the end of (what a search may read). */
class CountingQueue extends ByteQueue {
  searched = 0

  override indexOf(pattern: Uint8Array, from = 0): number {
    this.searched += Math.max(0, this.length - from)
    return super.indexOf(pattern, from)
  }
}

void test('parseHttpProxyRequest searches a head that arrives a byte at a time once, not once per read', () => {
  const filler = `X-Filler: ${'a'.repeat(90)}\r\n`
  const head = `CONNECT example.com:443 HTTP/1.1\r\n${filler.repeat(150)}\r\n`
  const wire = Buffer.from(`${head}tunnel`, 'latin1')
  assert.ok(head.length > 15_000 && head.length < MAX_HTTP_HEAD_BYTES)
  const queue = new CountingQueue()
  let request: HttpProxyRequest | undefined
  for (let at = 0; at < head.length; at++) {
    queue.push(wire.subarray(at, at + 1))
    request = parseHttpProxyRequest(queue)
    assert.equal(request === undefined, at < head.length - 1)
  }
  assert.equal(request?.headers.length, 150)
  queue.push(wire.subarray(head.length))
  assert.equal(queue.consume(queue.length).toString(), 'tunnel')
  // Each read is searched from 3 bytes before its own start: about 4 bytes per byte of head.
  assert.ok(
    queue.searched <= 4 * head.length,
    `${queue.searched} bytes searched for a ${head.length}-byte head`,
  )
})
