// V2Ray 4.34's HTTP header obfuscation (transport/internet/headers/http): the exact heads, and a tsray server
// and client against byte sequences written the way V2Ray's Go code writes and reads them.
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { Duplex, PassThrough } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import {
  BAD_REQUEST_RESPONSE,
  encodeRequestHead,
  encodeResponseHead,
  forwardedPeer,
  type HttpHeaderSettings,
  HttpHeadStream,
  MAX_HTTP_HEAD_BYTES,
  NOT_FOUND_RESPONSE,
  parseRequestHead,
  parseResponseHead,
  readHttpHead,
  wrapHttpHeaderClient,
} from '../../src/transport/http-header.js'
import { createStreamServer } from '../../src/transport/stream-settings.js'
import type { StreamServer } from '../../src/transport/transport.js'
import { failOnLeakedHandles } from '../helpers/leaks.js'
import { connectTcp, listen, randomData, readExactly, sha256Hex } from '../helpers/net.js'

/** V2Ray's defaults (infra/conf/transport_authenticators.go), as the config loader fills them in. */
const V2RAY_DEFAULTS: HttpHeaderSettings = {
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
}
const first = (values: readonly string[]): string => values[0] ?? ''
const DATE = new Date(Date.UTC(2021, 0, 2, 3, 4, 5))

/** The request a V2Ray 4.34 client sends with the defaults, its random picks being the first values. */
const V2RAY_REQUEST =
  'GET / HTTP/1.1\r\n' +
  'Host: www.baidu.com\r\n' +
  'User-Agent: Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/53.0.2785.143 Safari/537.36\r\n' +
  'Accept-Encoding: gzip, deflate\r\n' +
  'Connection: keep-alive\r\n' +
  'Pragma: no-cache\r\n' +
  '\r\n'

test('encodeRequestHead writes the request V2Ray 4.34 sends with its defaults', () => {
  assert.equal(encodeRequestHead(V2RAY_DEFAULTS.request, { pick: first }).toString('latin1'), V2RAY_REQUEST)
  const picks = new Set(
    Array.from({ length: 64 }, () => encodeRequestHead(V2RAY_DEFAULTS.request).toString()),
  )
  assert.ok(picks.size > 1, 'host and user agent are picked at random per connection')
})

test('encodeResponseHead writes V2Ray 4.34 responses: the default, 404 and 400, each with a Date', () => {
  assert.equal(
    encodeResponseHead(V2RAY_DEFAULTS.response, { pick: first, now: DATE }).toString('latin1'),
    'HTTP/1.1 200 OK\r\n' +
      'Content-Type: application/octet-stream\r\n' +
      'Transfer-Encoding: chunked\r\n' +
      'Connection: keep-alive\r\n' +
      'Pragma: no-cache\r\n' +
      'Cache-Control: private\r\n' +
      'Date: Sat, 02 Jan 2021 03:04:05 GMT\r\n' +
      '\r\n',
  )
  assert.equal(
    encodeResponseHead(NOT_FOUND_RESPONSE, { now: DATE }).toString('latin1'),
    'HTTP/1.1 404 Not Found\r\nConnection: close\r\nCache-Control: private\r\nContent-Length: 0\r\nDate: Sat, 02 Jan 2021 03:04:05 GMT\r\n\r\n',
  )
  assert.equal(
    encodeResponseHead(BAD_REQUEST_RESPONSE, { now: DATE }).toString('latin1'),
    'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nCache-Control: private\r\nContent-Length: 0\r\nDate: Sat, 02 Jan 2021 03:04:05 GMT\r\n\r\n',
  )
  const dated = { ...V2RAY_DEFAULTS.response, headers: [{ name: 'date', values: ['yesterday'] }] }
  assert.equal(encodeResponseHead(dated).toString('latin1'), 'HTTP/1.1 200 OK\r\ndate: yesterday\r\n\r\n')
})

test('parseRequestHead and parseResponseHead read heads and refuse malformed ones', () => {
  const request = parseRequestHead(Buffer.from(V2RAY_REQUEST))
  assert.deepEqual(request?.startLine, ['GET', '/', 'HTTP/1.1'])
  assert.deepEqual(request?.fields.get('accept-encoding'), ['gzip, deflate'])
  const response = parseResponseHead(
    Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n'),
  )
  assert.deepEqual(response?.startLine, ['HTTP/1.1', '101', 'Switching Protocols'])
  for (const bad of [
    'GET /\r\n\r\n',
    'GET / HTTP/1.1\r\nno colon\r\n\r\n',
    'G T / HTTP/1.1\r\n\r\n',
    '\x16\x03\x01\r\n\r\n',
  ]) {
    assert.equal(parseRequestHead(Buffer.from(bad, 'latin1')), undefined, JSON.stringify(bad))
  }
  assert.equal(parseResponseHead(Buffer.from('HTTP/1.1 OK\r\n\r\n')), undefined)
})

test('readHttpHead finds the head split at every byte boundary and keeps what follows', async () => {
  const wire = Buffer.concat([Buffer.from(V2RAY_REQUEST), Buffer.from('vmess bytes')])
  for (let cut = 1; cut < wire.length; cut++) {
    const stream = new PassThrough()
    const reading = readHttpHead(stream, { maxBytes: MAX_HTTP_HEAD_BYTES, timeoutMs: 1_000 })
    stream.write(wire.subarray(0, cut))
    stream.write(wire.subarray(cut))
    const { head, rest } = await reading
    assert.equal(head.toString(), V2RAY_REQUEST, `cut at ${cut}`)
    const more = stream.read() as Buffer | null
    assert.equal(Buffer.concat([rest, more ?? Buffer.alloc(0)]).toString(), 'vmess bytes', `cut at ${cut}`)
  }
})

test('readHttpHead refuses a head over the limit, a closed peer and a silent one', async () => {
  const long = new PassThrough()
  const tooLong = readHttpHead(long, { maxBytes: 64, timeoutMs: 1_000 })
  long.write(Buffer.alloc(65, 0x41))
  await assert.rejects(tooLong, { code: 'HTTP_HEAD_TOO_LONG' })
  const ended = new PassThrough()
  const truncated = readHttpHead(ended, { maxBytes: 64, timeoutMs: 1_000 })
  ended.end('GET / HTTP/1.1\r\n')
  await assert.rejects(truncated, { code: 'HTTP_HEAD_TRUNCATED' })
  await assert.rejects(readHttpHead(new PassThrough(), { maxBytes: 64, timeoutMs: 20 }), {
    code: 'HTTP_HEAD_TIMEOUT',
  })
})

test('HttpHeadStream drops the peer head split at every boundary and sends its own head with the first bytes', async () => {
  const response = encodeResponseHead(V2RAY_DEFAULTS.response)
  const wire = Buffer.concat([response, Buffer.from('downlink')])
  for (let cut = 0; cut <= wire.length; cut++) {
    const sent: Buffer[] = []
    const socket = new Duplex({
      read: () => undefined,
      write: (chunk: Buffer, _encoding, callback) => {
        sent.push(chunk)
        callback()
      },
    })
    const request = Buffer.from(V2RAY_REQUEST)
    const stream = new HttpHeadStream(socket, { outgoingHead: request, checkIncomingHead: () => undefined })
    const received: Buffer[] = []
    stream.on('data', (bytes: Buffer) => received.push(bytes))
    stream.write('uplink')
    stream.write('more')
    assert.deepEqual(sent.map(String), [`${V2RAY_REQUEST}uplink`, 'more'])
    socket.emit('data', wire.subarray(0, cut))
    socket.emit('data', wire.subarray(cut))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(Buffer.concat(received).toString(), 'downlink', `cut at ${cut}`)
    stream.destroy()
  }
})

test('forwardedPeer trusts X-Forwarded-For only from a loopback peer, and then its last entry', () => {
  const local = { remoteAddress: '127.0.0.1', remotePort: 40000 }
  assert.deepEqual(forwardedPeer(local, '198.51.100.7, 203.0.113.9'), {
    remoteAddress: '203.0.113.9',
    remotePort: 0,
  })
  assert.deepEqual(forwardedPeer({ remoteAddress: '::ffff:127.0.0.1', remotePort: 1 }, '2001:db8::1'), {
    remoteAddress: '2001:db8::1',
    remotePort: 0,
  })
  assert.deepEqual(forwardedPeer({ remoteAddress: '::1', remotePort: 1 }, '[2001:db8::2]'), {
    remoteAddress: '2001:db8::2',
    remotePort: 0,
  })
  const remote = { remoteAddress: '192.0.2.1', remotePort: 5000 }
  assert.deepEqual(forwardedPeer(remote, '203.0.113.9'), remote)
  assert.deepEqual(forwardedPeer(local, 'not an address'), local)
  assert.deepEqual(forwardedPeer(local, undefined), local)
})

describe('HTTP header obfuscation server (createStreamServer)', () => {
  let server: StreamServer
  let port = 0
  const settings: HttpHeaderSettings = {
    ...V2RAY_DEFAULTS,
    request: { ...V2RAY_DEFAULTS.request, paths: ['/', '/video.mp4'] },
  }
  before(async () => {
    server = createStreamServer(
      { network: 'tcp', security: 'none', httpHeader: settings },
      {
        listen: '127.0.0.1',
        port: 0,
        onStream: (stream) => {
          // Echo, but a stream that says "quiet" ends without writing (V2Ray then answers 400).
          stream.once('data', (first: Buffer) => {
            if (first.toString() === 'quiet') {
              stream.end()
              return
            }
            stream.write(first)
            stream.pipe(stream)
          })
        },
      },
    )
    port = await server.listen()
  })
  after(() => server.close(100))

  /** Everything the server sends until it closes (at most `timeoutMs`). */
  async function answerTo(bytes: Buffer | string, timeoutMs = 2_000): Promise<string> {
    const socket = await connectTcp(port)
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.write(bytes)
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        socket.destroy()
        resolve()
      }, timeoutMs)
      socket.on('close', () => {
        clearTimeout(timer)
        resolve()
      })
      socket.on('end', () => socket.end())
    })
    return Buffer.concat(chunks).toString('latin1')
  }

  test('a V2Ray client request gets the response head with the first bytes, then the stream', async () => {
    const socket = await connectTcp(port)
    const data = randomData(200_000)
    socket.write(Buffer.concat([Buffer.from(V2RAY_REQUEST.replace('GET / ', 'GET /video.mp4 ')), data]))
    const head = await readExactly(socket, 4)
    assert.equal(head.toString(), 'HTTP')
    // Read up to the end of the head, then exactly the echoed data.
    let text = head.toString('latin1')
    while (!text.endsWith('\r\n\r\n')) text += (await readExactly(socket, 1)).toString('latin1')
    assert.match(text, /^HTTP\/1\.1 200 OK\r\nContent-Type: (application\/octet-stream|video\/mpeg)\r\n/)
    assert.match(text, /\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n\r\n$/)
    assert.equal(sha256Hex(await readExactly(socket, data.length)), sha256Hex(data))
    socket.destroy()
  })

  test('an unknown path gets V2Ray 404 and a FIN, no stream', async () => {
    const answer = await answerTo(V2RAY_REQUEST.replace('GET / ', 'GET /admin '))
    assert.match(
      answer,
      /^HTTP\/1\.1 404 Not Found\r\nConnection: close\r\nCache-Control: private\r\nContent-Length: 0\r\nDate: .+\r\n\r\n$/,
    )
  })

  test('a head that is not HTTP gets 400, and so does one longer than the limit', async () => {
    assert.match(await answerTo('\x16\x03\x01\x02\x00 hello\r\n\r\n'), /^HTTP\/1\.1 400 Bad Request\r\n/)
    assert.match(
      await answerTo(Buffer.alloc(MAX_HTTP_HEAD_BYTES + 100, 0x41)),
      /^HTTP\/1\.1 400 Bad Request\r\n/,
    )
  })

  test('a stream that ends before writing sends 400 on close, as V2Ray does', async () => {
    const answer = await answerTo(`${V2RAY_REQUEST}quiet`)
    assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/)
  })
})

describe('HTTP header obfuscation client (wrapHttpHeaderClient) against a V2Ray-shaped server', () => {
  let server: Server
  let port = 0
  const heads: string[] = []
  before(async () => {
    server = createServer((socket: Socket) => {
      socket.on('error', () => socket.destroy())
      readHttpHead(socket, { maxBytes: MAX_HTTP_HEAD_BYTES, timeoutMs: 2_000 }).then(
        ({ head, rest }) => {
          heads.push(head.toString('latin1'))
          // A response head and the first bytes in one write, as V2Ray's server does.
          socket.write(Buffer.concat([encodeResponseHead(V2RAY_DEFAULTS.response), rest]))
          socket.on('data', (bytes: Buffer) => socket.write(bytes))
          socket.resume()
        },
        () => socket.destroy(),
      )
    })
    port = await listen(server)
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  test('sends the fake request with its first bytes and reads past the fake response', async () => {
    const client = wrapHttpHeaderClient(await connectTcp(port), V2RAY_DEFAULTS)
    const data = randomData(300_000)
    const received: Buffer[] = []
    let total = 0
    await new Promise<void>((resolve, reject) => {
      client.on('data', (bytes: Buffer) => {
        received.push(bytes)
        total += bytes.length
        if (total >= data.length) resolve()
      })
      client.on('error', reject)
      client.write(data)
    })
    client.destroy()
    assert.equal(sha256Hex(Buffer.concat(received)), sha256Hex(data))
    assert.match(
      heads.at(-1) ?? '',
      /^GET \/ HTTP\/1\.1\r\nHost: www\.(baidu|bing)\.com\r\nUser-Agent: Mozilla\/5\.0 /,
    )
  })
})

failOnLeakedHandles()
