import { createCipheriv } from 'node:crypto'
import { parseConfigText, validateConfig } from '../../src/config/load.js'
import {
  formatVmessLink,
  parseVmessLink,
  vmessLinkToOutbound,
  type VmessLink,
} from '../../src/config/share-link.js'
import { md5 } from '../../src/crypto/hash.js'
import { ByteQueue } from '../../src/protocol/byte-queue.js'
import { ChunkOpener } from '../../src/protocol/chunk-opener.js'
import { ChunkSealer } from '../../src/protocol/chunk-sealer.js'
import { createClientRequest } from '../../src/protocol/client-request.js'
import { Command, type CommandValue, Option, Security } from '../../src/protocol/constants.js'
import {
  encodeForwardedRequestHead,
  parseHttpProxyRequest,
  parseProxyAuthorization,
} from '../../src/protocol/http-proxy.js'
import { legacyAuth, LegacyAuthTable } from '../../src/protocol/legacy-auth.js'
import { encodeMuxFrame, MuxFrameParser, MuxStatus } from '../../src/protocol/mux-frame.js'
import { AuthIdReplayFilter, SessionHistory } from '../../src/protocol/replay-filter.js'
import {
  encodeRequestHeader,
  legacyHeaderIv,
  sealAeadRequestHeader,
} from '../../src/protocol/request-header.js'
import {
  encodeAeadResponseHeader,
  encodeLegacyResponseHeader,
  encodeSwitchAccountCommand,
  parseSwitchAccountCommand,
  ResponseHeaderParser,
} from '../../src/protocol/response-header.js'
import { ServerHandshake } from '../../src/protocol/server-handshake.js'
import { requestBodyParams } from '../../src/protocol/session-keys.js'
import {
  encodeSocksUdpDatagram,
  parseSocksGreeting,
  parseSocksPasswordAuth,
  parseSocksRequest,
  parseSocksUdpDatagram,
} from '../../src/protocol/socks5.js'
import { encodePacketAddrDatagram, parsePacketAddrDatagram } from '../../src/protocol/udp-packet.js'
import { UserDirectory } from '../../src/protocol/user-directory.js'
import { createUser } from '../../src/protocol/user.js'
import { randomSplits } from './mutator.js'
import type { Rng } from './rng.js'

/**
 * One parser under fuzz. `seeds` are valid inputs made from `rng` (so a run replays from its seed);
 * `prepare` does the unmeasured set-up for one input (fresh state, re-sealing) and returns the
 * measured parse. The parse may throw only TsrayError subclasses.
 */
export interface FuzzTarget {
  readonly name: string
  seeds(rng: Rng): Buffer[]
  prepare(input: Buffer, rng: Rng): () => void
}

/** The fake server clock of the header targets: every seed is signed for it, so regressions replay. */
const T0 = 1_700_000_000
const USERS = [
  createUser({ id: 'b831381d-6324-4d53-ad4f-8cda48b30811', email: 'a@fuzz' }),
  createUser({ id: '7a3e6f2c-1d4b-4c8e-9f0a-5b6c7d8e9f01', alterId: 2, email: 'b@fuzz' }),
]
const DIRECTORY = new UserDirectory(USERS)
const HOSTS = ['127.0.0.1', 'example.com', '::1', 'a-b_c.d', '10.0.0.1', 'x'.repeat(255)]
const COMMANDS: CommandValue[] = [Command.Tcp, Command.Udp, Command.Mux]
const SECURITIES = [Security.Aes128Cfb, Security.Aes128Gcm, Security.Chacha20Poly1305, Security.None]

/** Pushes `input` in random pieces into a queue and calls `parse` after each, until it stops asking. */
function feedQueue<T>(input: Buffer, rng: Rng, parse: (queue: ByteQueue) => T | undefined): T | undefined {
  return feedPieces(randomSplits(input, rng), parse)
}

function feedPieces<T>(pieces: readonly Buffer[], parse: (queue: ByteQueue) => T | undefined): T | undefined {
  const queue = new ByteQueue()
  for (const piece of pieces) {
    queue.push(piece)
    const result = parse(queue)
    if (result !== undefined) return result
  }
  return undefined
}

function requestPlain(rng: Rng): { plain: Buffer; command: CommandValue; security: number } {
  const command = rng.pick(COMMANDS)
  const security = rng.pick(SECURITIES)
  const options = rng.pick([0x00, 0x01, 0x05, 0x0d, 0x15, 0x1d])
  const plain = encodeRequestHeader({
    version: 1,
    bodyIv: rng.bytes(16),
    bodyKey: rng.bytes(16),
    responseV: rng.below(256),
    options,
    security,
    command,
    host: command === Command.Mux ? '' : rng.pick(HOSTS),
    port: command === Command.Mux ? 0 : rng.below(65_536),
    padding: rng.bytes(rng.below(16)),
  })
  return { plain, command, security }
}

function freshHandshake(legacy: LegacyAuthTable | undefined): ServerHandshake {
  return new ServerHandshake({
    users: DIRECTORY,
    legacy,
    authIds: new AuthIdReplayFilter(),
    sessions: new SessionHistory(),
    now: () => T0,
  })
}

/** Feeds the input to a fresh server handshake in pieces, as a socket would. */
function runHandshake(handshake: ServerHandshake, input: Buffer, rng: Rng): void {
  const queue = new ByteQueue()
  for (const piece of randomSplits(input, rng)) {
    queue.push(piece)
    const step = handshake.advance(queue)
    if (step.status !== 'need-more') {
      handshake.onEndOfInput()
      return
    }
  }
  handshake.onEndOfInput()
}

/** AEAD request headers on the wire (AuthID ‖ sealed length ‖ nonce ‖ sealed header ‖ body). */
const aeadHeader: FuzzTarget = {
  name: 'aead-header',
  seeds(rng) {
    return Array.from({ length: 64 }, () => {
      const user = rng.pick(USERS)
      const command = rng.pick(COMMANDS)
      const request = createClientRequest(user, {
        legacy: false,
        security: rng.pick([
          Security.Aes128Gcm,
          Security.Chacha20Poly1305,
          Security.None,
          Security.Aes128Cfb,
        ]),
        options: Option.ChunkStream | Option.ChunkMasking,
        command,
        host: rng.pick(HOSTS),
        port: rng.below(65_536),
        now: T0 + rng.between(-120, 120),
        random: (n) => rng.bytes(n),
      })
      const body = rng.chance(0.5)
        ? new ChunkSealer(requestBodyParams(request.header), { random: (n) => rng.bytes(n) }).seal(
            rng.bytes(rng.below(300)),
          )
        : Buffer.alloc(0)
      return Buffer.concat([request.wire, body])
    })
  },
  prepare(input, rng) {
    const handshake = freshHandshake(undefined)
    return () => runHandshake(handshake, input, rng)
  },
}

/** AEAD headers whose plaintext was mutated and then sealed with the user's key: the parser behind the seal. */
const aeadSealed: FuzzTarget = {
  name: 'aead-header-sealed',
  seeds(rng) {
    return Array.from({ length: 64 }, () => requestPlain(rng).plain)
  },
  prepare(input, rng) {
    const user = USERS[0]!
    let wire: Buffer
    if (input.length > 0xffff) wire = input
    else {
      wire = sealAeadRequestHeader(input, {
        cmdKey: user.cmdKey,
        authIdKey: user.authIdKey,
        time: T0,
        random: (n) => rng.bytes(n),
      })
    }
    const handshake = freshHandshake(undefined)
    return () => runHandshake(handshake, wire, rng)
  },
}

// A fresh legacy table now and then: taints accumulate, and a tainted auth stops the parse early.
let legacyTable = new LegacyAuthTable(USERS)
let legacyUses = 0
function currentLegacyTable(): LegacyAuthTable {
  if (++legacyUses % 512 === 0) legacyTable = new LegacyAuthTable(USERS)
  return legacyTable
}

/** Legacy request headers on the wire (auth ‖ CFB(header) ‖ body). */
const legacyHeader: FuzzTarget = {
  name: 'legacy-header',
  seeds(rng) {
    return Array.from({ length: 64 }, () => {
      const request = createClientRequest(rng.pick(USERS), {
        legacy: true,
        security: rng.pick(SECURITIES),
        options: rng.pick([0, Option.ChunkStream, Option.ChunkStream | Option.ChunkMasking]),
        command: rng.pick(COMMANDS),
        host: rng.pick(HOSTS),
        port: rng.below(65_536),
        now: T0,
        random: (n) => rng.bytes(n),
      })
      return Buffer.concat([request.wire, rng.bytes(rng.below(64))])
    })
  },
  prepare(input, rng) {
    const handshake = freshHandshake(currentLegacyTable())
    return () => runHandshake(handshake, input, rng)
  },
}

/** Legacy headers whose plaintext was mutated, then encrypted under a valid auth (what CFB malleability allows). */
const legacyPlain: FuzzTarget = {
  name: 'legacy-header-plain',
  seeds(rng) {
    return Array.from({ length: 64 }, () => requestPlain(rng).plain)
  },
  prepare(input, rng) {
    const user = USERS[1]!
    const time = T0 + rng.between(-120, 120)
    const signing = rng.pick([user.id, ...user.alterIds])
    const cipher = createCipheriv('aes-128-cfb', user.cmdKey, legacyHeaderIv(time))
    const wire = Buffer.concat([legacyAuth(signing, time), cipher.update(input)])
    const handshake = freshHandshake(currentLegacyTable())
    return () => runHandshake(handshake, wire, rng)
  },
}

/** Every security × option bits × transfer; the first input byte picks one. */
const CHUNK_PARAMS = SECURITIES.flatMap((security) =>
  Array.from({ length: 32 }, (_, options) =>
    (['stream', 'packet'] as const).map((transfer) => ({ security, options, transfer })),
  ).flat(),
)
const BODY_KEY = md5(Buffer.from('fuzz key'))
const BODY_IV = md5(Buffer.from('fuzz iv'))

function chunkParams(index: number) {
  const p = CHUNK_PARAMS[index % CHUNK_PARAMS.length]!
  return { ...p, key: BODY_KEY, iv: BODY_IV, requestKey: BODY_KEY, requestIv: BODY_IV }
}

/** Body chunk streams of every security and option (docs/protocol.md §7), opened by ChunkOpener. */
const chunkOpener: FuzzTarget = {
  name: 'chunk-opener',
  seeds(rng) {
    const seeds: Buffer[] = []
    for (let index = 0; index < CHUNK_PARAMS.length; index++) {
      let sealer: ChunkSealer
      try {
        sealer = new ChunkSealer(chunkParams(index), { random: (n) => rng.bytes(n) })
      } catch {
        continue // a combination no sender may use (P without M …): still fuzzed through mutations
      }
      const packet = CHUNK_PARAMS[index]!.transfer === 'packet'
      const pieces: Buffer[] = [Buffer.of(index)]
      for (let i = 0, count = 1 + rng.below(3); i < count; i++) {
        const size = packet
          ? 1 + rng.below(Math.min(sealer.maxPayload, 1500))
          : rng.chance(0.1)
            ? 20_000
            : 1 + rng.below(3000)
        pieces.push(sealer.seal(rng.bytes(size)))
      }
      if (rng.chance(0.7)) pieces.push(sealer.end())
      seeds.push(Buffer.concat(pieces))
    }
    return seeds
  },
  prepare(input, rng) {
    const params = chunkParams(input.length === 0 ? 0 : input.readUInt8(0))
    const pieces = randomSplits(input.subarray(1), rng)
    return () => {
      const opener = new ChunkOpener(params)
      for (const piece of pieces) opener.push(piece)
    }
  },
}

const RESPONSE_KEYS = { key: md5(Buffer.from('response key')), iv: md5(Buffer.from('response iv')) }

/** Response headers (AEAD and legacy, with and without a switch-account command), read by a client. */
const responseHeader: FuzzTarget = {
  name: 'response-header',
  seeds(rng) {
    return Array.from({ length: 32 }, () => {
      const withCommand = rng.chance(0.5)
      const commandBytes = withCommand
        ? encodeSwitchAccountCommand(
            {
              host: rng.pick(['', 'example.com', '10.0.0.1']),
              port: rng.below(65_536),
              id: USERS[0]!.uuid,
              alterId: rng.below(100),
              level: rng.below(4),
              validMinutes: rng.below(256),
            },
            USERS[0]!.id,
          )
        : Buffer.alloc(0)
      const header = { responseV: rng.below(256), options: 0, command: withCommand ? 1 : 0, commandBytes }
      const legacy = rng.chance(0.5)
      const wire = legacy
        ? encodeLegacyResponseHeader(header, RESPONSE_KEYS).wire
        : encodeAeadResponseHeader(header, RESPONSE_KEYS)
      return Buffer.concat([Buffer.of(legacy ? 1 : 0), wire, rng.bytes(rng.below(32))])
    })
  },
  prepare(input, rng) {
    const kind = input.length > 0 && (input.readUInt8(0) & 1) === 1 ? 'legacy' : 'aead'
    const body = input.subarray(1)
    return () => {
      const parser = new ResponseHeaderParser(kind, RESPONSE_KEYS)
      const header = feedQueue(body, rng, (queue) => parser.parse(queue))
      if (header !== undefined && header.command === 1) parseSwitchAccountCommand(header.commandBytes)
    }
  },
}

/** Mux.Cool frame streams (docs/protocol.md §8), XUDP included. */
const muxFrames: FuzzTarget = {
  name: 'mux-frame',
  seeds(rng) {
    return Array.from({ length: 48 }, () => {
      const frames: Buffer[] = []
      for (let i = 0, count = 1 + rng.below(5); i < count; i++) {
        const sessionId = rng.below(4)
        const data = rng.chance(0.6) ? rng.bytes(rng.below(rng.chance(0.1) ? 20_000 : 600)) : undefined
        const kind = rng.below(6)
        const withData = data === undefined ? {} : { data }
        if (kind === 0)
          frames.push(
            encodeMuxFrame({
              sessionId,
              status: MuxStatus.New,
              option: 0,
              network: 'tcp',
              host: rng.pick(HOSTS.slice(0, 5)),
              port: rng.below(65_536),
              ...withData,
            }),
          )
        else if (kind === 1)
          frames.push(
            encodeMuxFrame({
              sessionId: 0,
              status: MuxStatus.New,
              option: 0,
              network: 'udp',
              host: '10.0.0.1',
              port: 53,
              globalId: rng.bytes(8),
              ...withData,
            }),
          )
        else if (kind === 2)
          frames.push(encodeMuxFrame({ sessionId, status: MuxStatus.Keep, option: 0, ...withData }))
        else if (kind === 3)
          frames.push(
            encodeMuxFrame({
              sessionId: 0,
              status: MuxStatus.Keep,
              option: 0,
              host: '::1',
              port: 443,
              ...withData,
            }),
          )
        else if (kind === 4)
          frames.push(encodeMuxFrame({ sessionId, status: MuxStatus.End, option: rng.pick([0, 2]) }))
        else frames.push(encodeMuxFrame({ sessionId, status: MuxStatus.KeepAlive, option: 0, ...withData }))
      }
      return Buffer.concat(frames)
    })
  },
  prepare(input, rng) {
    const pieces = randomSplits(input, rng)
    return () => {
      const parser = new MuxFrameParser()
      for (const piece of pieces) parser.push(piece)
    }
  },
}

/** SOCKS5 greeting, password auth, request and UDP datagram parsers, each given the whole input. */
const socks5: FuzzTarget = {
  name: 'socks5',
  seeds(rng) {
    const host = () =>
      rng.pick([
        Buffer.of(1, 127, 0, 0, 1),
        Buffer.concat([Buffer.of(3, 11), Buffer.from('example.com')]),
        Buffer.concat([Buffer.of(4), rng.bytes(16)]),
      ])
    const port = () => Buffer.of(rng.below(256), rng.below(256))
    return [
      Buffer.of(5, 1, 0),
      Buffer.of(5, 3, 0, 1, 2),
      Buffer.concat([Buffer.of(1, 5), Buffer.from('alice'), Buffer.of(6), Buffer.from('secret')]),
      ...Array.from({ length: 12 }, () =>
        Buffer.concat([Buffer.of(5, rng.pick([1, 2, 3]), 0), host(), port()]),
      ),
      ...Array.from({ length: 8 }, () =>
        encodeSocksUdpDatagram(
          { host: rng.pick(HOSTS.slice(0, 5)), port: rng.below(65_536) },
          rng.bytes(rng.below(100)),
        ),
      ),
    ]
  },
  prepare(input, rng) {
    return () => {
      feedQueue(input, rng, parseSocksGreeting)
      feedQueue(input, rng, parseSocksPasswordAuth)
      feedQueue(input, rng, parseSocksRequest)
      parseSocksUdpDatagram(input)
    }
  },
}

/** HTTP proxy request heads: CONNECT and absolute-URI requests, then the forwarded head. */
const httpProxy: FuzzTarget = {
  name: 'http-proxy',
  seeds(rng) {
    const heads = [
      'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n',
      'CONNECT [::1]:8443 HTTP/1.1\r\n\r\n',
      'GET http://example.com/path?q=1#frag HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nProxy-Connection: keep-alive\r\n\r\nbody',
      'POST http://user:pw@10.0.0.1:8080/upload HTTP/1.0\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\ndata',
      'OPTIONS http://[::1]/ HTTP/1.1\r\nProxy-Authorization: basic Ym9iOg==\r\n\r\n',
    ]
    return heads.map((head) => Buffer.concat([Buffer.from(head, 'latin1'), rng.bytes(rng.below(8))]))
  },
  prepare(input, rng) {
    // The parser is stateless: it scans what is buffered on every call, so a head sent in n tiny
    // pieces costs n scans of up to 16 KiB. That is per call bounded; here a head comes in ≤ 4 reads.
    const pieces = randomSplits(input, rng)
    const reads =
      pieces.length <= 4
        ? pieces
        : [input.subarray(0, 1), input.subarray(1, input.length >> 1), input.subarray(input.length >> 1)]
    return () => {
      const request = feedPieces(reads, parseHttpProxyRequest)
      if (request === undefined) return
      parseProxyAuthorization(request.headers)
      if (!request.isConnect) encodeForwardedRequestHead(request)
    }
  },
}

const LINKS: VmessLink[] = [
  {
    remark: 'demo',
    address: 'example.com',
    port: 443,
    id: USERS[0]!.uuid,
    alterId: 0,
    security: 'auto',
    network: 'ws',
    headerType: 'none',
    host: 'cdn.example.com',
    path: '/ws?ed=2048',
    tls: true,
    sni: 'example.com',
    alpn: 'h2,http/1.1',
    fingerprint: 'chrome',
    allowInsecure: false,
  },
  {
    remark: 'plain tcp ✓',
    address: '10.0.0.1',
    port: 10_086,
    id: USERS[1]!.uuid,
    alterId: 2,
    security: 'aes-128-gcm',
    network: 'tcp',
    headerType: 'http',
    host: 'a.example,b.example',
    path: '/',
    tls: false,
  },
  {
    remark: '',
    address: '::1',
    port: 1,
    id: 'short-id',
    alterId: 0,
    security: 'none',
    network: 'grpc',
    headerType: 'none',
    host: '',
    path: 'svc',
    tls: true,
  },
]

/** vmess:// share links in every form the parser reads (v2rayN base64 JSON, URI, Shadowrocket, Quantumult). */
const shareLink: FuzzTarget = {
  name: 'share-link',
  seeds() {
    const seeds: Buffer[] = []
    for (const link of LINKS) {
      for (const form of ['v2rayn', 'uri'] as const) {
        try {
          seeds.push(Buffer.from(formatVmessLink(link, { form })))
        } catch {
          // the URI form refuses legacy users
        }
      }
    }
    seeds.push(
      Buffer.from(
        `vmess://${Buffer.from(`auto:${USERS[0]!.uuid}@example.com:443`).toString('base64')}?remarks=sr&obfs=websocket&path=/p&obfsParam={"Host":"h.example"}&tls=1`,
      ),
      Buffer.from(
        `vmess://${Buffer.from(`name = vmess, example.com, 443, chacha20-ietf-poly1305, "${USERS[0]!.uuid}", over-tls=true, obfs=ws, obfs-path="/w", obfs-header="Host: h.example"`).toString('base64')}`,
      ),
    )
    return seeds
  },
  prepare(input) {
    const text = input.toString('utf8')
    return () => {
      const link = parseVmessLink(text)
      vmessLinkToOutbound(link)
      formatVmessLink(link)
    }
  },
}

/** The JSON inside v2rayN links, mutated and then base64-encoded: the parser behind the encoding. */
const shareLinkJson: FuzzTarget = {
  name: 'share-link-json',
  seeds() {
    return LINKS.map((link) => Buffer.from(formatVmessLink(link).slice('vmess://'.length), 'base64'))
  },
  prepare(input) {
    const text = `vmess://${input.toString('base64')}`
    return () => {
      const link = parseVmessLink(text)
      vmessLinkToOutbound(link)
    }
  },
}

const CONFIGS = [
  {
    log: { loglevel: 'warning', access: '' },
    inbounds: [
      {
        port: 10_086,
        protocol: 'vmess',
        settings: {
          clients: [
            { id: USERS[0]!.uuid, email: 'a@example.com' },
            { id: USERS[1]!.uuid, alterId: 4 },
          ],
          legacyHeader: 'accept',
        },
      },
    ],
    outbounds: [{ protocol: 'freedom' }],
    policy: { levels: { '0': { handshake: 4, connIdle: 300, uplinkOnly: 2, downlinkOnly: 5 } } },
  },
  {
    inbounds: [
      {
        listen: '127.0.0.1',
        port: 1080,
        protocol: 'socks',
        settings: { udp: true, auth: 'password', accounts: [{ user: 'u', pass: 'p' }] },
      },
      { listen: '127.0.0.1', port: 8080, protocol: 'http', settings: { timeout: 30 } },
      {
        listen: '127.0.0.1',
        port: 5353,
        protocol: 'dokodemo-door',
        settings: { address: '1.1.1.1', port: 53, network: 'tcp,udp' },
      },
    ],
    outbounds: [
      {
        tag: 'proxy',
        protocol: 'vmess',
        settings: {
          vnext: [
            { address: 'example.com', port: 10_086, users: [{ id: USERS[0]!.uuid, security: 'auto' }] },
          ],
        },
      },
      { tag: 'direct', protocol: 'freedom', settings: { domainStrategy: 'UseIP' } },
      { tag: 'block', protocol: 'blackhole', settings: { response: { type: 'http' } } },
    ],
    routing: {
      domainStrategy: 'IPIfNonMatch',
      rules: [
        { type: 'field', ip: ['geoip:private', '10.0.0.0/8'], outboundTag: 'direct' },
        {
          type: 'field',
          domain: ['domain:example.org', 'regexp:^ads\\.', 'keyword:track', 'full:a.b'],
          port: '80,443,1000-2000',
          outboundTag: 'block',
        },
      ],
    },
  },
]

/** V2Ray v4 JSON configs (with comments allowed) through the loader and validator. */
const configLoader: FuzzTarget = {
  name: 'config',
  seeds() {
    return CONFIGS.flatMap((config) => [
      Buffer.from(JSON.stringify(config, null, 2)),
      Buffer.from(`// comment\n${JSON.stringify(config)}\n/* block */`),
    ])
  },
  prepare(input) {
    const text = input.toString('utf8')
    return () => {
      validateConfig(parseConfigText(text, { source: 'fuzz.json' }), { env: {} })
    }
  },
}

/** packetaddr datagrams (docs/protocol.md §8). */
const packetAddr: FuzzTarget = {
  name: 'packet-addr',
  seeds(rng) {
    return Array.from({ length: 8 }, () =>
      encodePacketAddrDatagram(
        { host: rng.pick(['10.0.0.1', '::1', '2001:db8::5']), port: rng.below(65_536) },
        rng.bytes(rng.below(64)),
      ),
    )
  },
  prepare(input) {
    return () => {
      parsePacketAddrDatagram(input)
    }
  },
}

/** Every target, by name. */
export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  aeadHeader,
  aeadSealed,
  legacyHeader,
  legacyPlain,
  chunkOpener,
  responseHeader,
  muxFrames,
  socks5,
  httpProxy,
  shareLink,
  shareLinkJson,
  configLoader,
  packetAddr,
]
