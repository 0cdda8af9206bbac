/**
 * tsray as a library: the pure VMess codec (headers, body chunks, Mux.Cool, SOCKS5 and HTTP proxy
 * parsers, share links), the stream adapters, and the runtime that runs a V2Ray v4 JSON config.
 * @example
 * import { validateConfig, buildInstance } from 'tsray'
 * const instance = buildInstance(validateConfig(json).config)
 * await instance.start()
 */

// Errors and shared types
/** Errors with stable codes: ProtocolError, ConfigError, TransportError. */
export { ConfigError, ProtocolError, TransportError, TsrayError } from './errors.js'
/** A proxied destination and the logger shape tsray uses. */
export type { Destination, Logger } from './types.js'

// Crypto helpers (node:crypto only)
/** AEAD seal/open, ChaCha key expansion, hashes, the VMess KDF, SHAKE128 stream, secure randomness. */
export {
  aeadOpen,
  aeadSeal,
  crc32,
  expandChachaKey,
  fnv1a32,
  kdf,
  kdf12,
  kdf16,
  md5,
  secureRandom,
  sha256,
  ShakeStream,
  type AeadAlgorithm,
  type RandomSource,
} from './crypto/index.js'

// The VMess codec
/** Wire constants: Security, Option, Command, AddressType and the protocol limits. */
export {
  AddressType,
  Command,
  MAX_CHUNK_LENGTH,
  MAX_UDP_CHUNK_LENGTH,
  Option,
  Security,
  SECURITY_NAMES,
  type SecurityName,
} from './protocol/constants.js'
/** Users: UUID parsing, cmdKey, alter IDs, UUIDv5 ids. */
export {
  createUser,
  deriveAlterIds,
  deriveCmdKey,
  formatUuid,
  parseUuid,
  type VmessUser,
} from './protocol/user.js'
/** The AEAD AuthID (PROTOCOL §4.2). */
export { createAuthId, openAuthId } from './protocol/auth-id.js'
/** Legacy (alterId) authentication and the server's time-window table (PROTOCOL §3). */
export { legacyAuth, LegacyAuthTable } from './protocol/legacy-auth.js'
/** Request header encode/parse and both wire forms (PROTOCOL §4, §5). */
export {
  encodeLegacyRequestHeader,
  encodeRequestHeader,
  parseRequestHeader,
  sealAeadRequestHeader,
  type RequestHeader,
} from './protocol/request-header.js'
/** Response header encode/parse for both header kinds, and the switch-account command (PROTOCOL §6). */
export {
  deriveResponseKeys,
  encodeAeadResponseHeader,
  encodeLegacyResponseHeader,
  parseSwitchAccountCommand,
  ResponseHeaderParser,
  type HeaderKind,
  type ResponseHeader,
} from './protocol/response-header.js'
/** A client request: header plus wire bytes, and the security words resolved as V2Ray sends them. */
export { createClientRequest, resolveSecurity, type ClientRequest } from './protocol/client-request.js'
/** The server handshake push parser with its replay defences (PROTOCOL §4.3, §9). */
export { ServerHandshake, type HandshakeStep, type RefusalReason } from './protocol/server-handshake.js'
/** Finds the user of an AuthID among many. */
export { UserDirectory } from './protocol/user-directory.js'
/** Exact AuthID replay filter and (user, key, IV) session history. */
export { AuthIdReplayFilter, SessionHistory } from './protocol/replay-filter.js'
/** Body framing for every security and option (PROTOCOL §7). */
export { type BodyParams, type Transfer } from './protocol/body-framing.js'
/** Turns plaintext into body chunks. */
export { ChunkSealer } from './protocol/chunk-sealer.js'
/** Turns body chunks back into plaintext. */
export { ChunkOpener } from './protocol/chunk-opener.js'
/** Body parameters of each direction of a session. */
export { requestBodyParams, responseBodyParams } from './protocol/session-keys.js'
/** Mux.Cool frames, XUDP included (PROTOCOL §8). */
export { encodeMuxFrame, MuxFrameParser, parseMuxFrame, type MuxFrame } from './protocol/mux-frame.js'
/** packetaddr datagrams (PROTOCOL §8). */
export { encodePacketAddrDatagram, parsePacketAddrDatagram } from './protocol/udp-packet.js'
/** A byte queue for push parsers. */
export { ByteQueue } from './protocol/byte-queue.js'

// Streams and runtime
/** VMess connections as Duplex streams of plaintext. */
export { VmessClientStream } from './streams/vmess-client-stream.js'
/** The server side of an accepted VMess connection as a Duplex. */
export { VmessServerStream } from './streams/vmess-server-stream.js'
/** Config loading (V2Ray v4 JSON) and share links. */
export { loadConfigFiles, mergeConfigs, parseConfigText, validateConfig } from './config/load.js'
/** The validated config types. */
export type { TsrayConfig } from './config/schema.js'
/** vmess:// links: v2rayN base64 JSON and the URI form. */
export { formatVmessLink, parseVmessLink, vmessLinkToOutbound, type VmessLink } from './config/share-link.js'
/** Builds a runnable instance from a validated config. */
export { buildInstance } from './runtime/build.js'
/** A built instance: start() binds its inbounds, stop() closes them. */
export { Instance } from './runtime/instance.js'
/** Transports from `streamSettings`: TCP (with HTTP header obfuscation), TLS, WebSocket, HTTPUpgrade. */
export { createStreamDialer, createStreamServer } from './transport/stream-settings.js'
/** Mux.Cool: the server for command 3 (XUDP included) and the client that multiplexes an outbound. */
export { serveMux } from './inbound/mux-server.js'
/** The Mux.Cool client used by a VMess outbound with `mux.enabled`. */
export { MuxClient } from './outbound/mux-client.js'

// The client library and the in-process server
/** A VMess server as a `vmess://` link or options, and the options the client library shares. */
export type { VmessClientOptions, VmessServer, VmessServerOptions } from './client/server-options.js'
/** One TCP stream through a VMess server, as net.connect. */
export { connect, ConnectAbortedError, type ConnectOptions } from './client/connect.js'
/** An http.Agent for http and https requests through a VMess server. */
export { VmessAgent, type VmessAgentOptions } from './client/agent.js'
/** An undici dispatcher for fetch through a VMess server. */
export { VmessDispatcher, type VmessDispatcherOptions } from './client/dispatcher.js'
/** Runs a V2Ray v4 JSON config in this process; port 0 binds a free port. */
export { start, type RunningInstance, type StartOptions } from './runtime/start.js'
/** A bound listener of a running instance. */
export type { BoundListener } from './runtime/instance.js'
/** The VMess outbound (V2Ray's `vmess` outbound) that the client library is built on. */
export { VmessOutbound, type VmessServerSettings } from './outbound/vmess.js'
