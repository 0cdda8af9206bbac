import { createDecipheriv, type Decipher } from 'node:crypto'
import { ProtocolError } from '../errors.js'
import { aeadOpen } from '../crypto/aead.js'
import type { ByteQueue } from './byte-queue.js'
import type { LegacyAuthEntry, LegacyAuthTable } from './legacy-auth.js'
import type { AuthIdReplayFilter, SessionHistory } from './replay-filter.js'
import {
  AEAD_HEADER_PREFIX_LENGTH,
  deriveAeadLengthKeys,
  deriveAeadPayloadKeys,
  legacyHeaderIv,
  MAX_REQUEST_HEADER_LENGTH,
  parseRequestHeader,
  type RequestHeader,
  requestHeaderLength,
  verifyRequestHeaderChecksum,
} from './request-header.js'
import type { HeaderKind } from './response-header.js'
import type { AuthIdMatch, UserDirectory } from './user-directory.js'
import type { VmessUser } from './user.js'

/** Why a handshake was refused; stable, for logs and metrics. */
export type RefusalReason =
  | 'AUTH_UNKNOWN'
  | 'AUTH_CLOCK_SKEW'
  | 'AUTH_REPLAY'
  | 'AUTH_TAINTED'
  | 'LEGACY_REFUSED'
  | 'HEADER_OPEN_FAILED'
  | 'HEADER_TOO_LONG'
  | 'HEADER_CHECKSUM'
  | 'SESSION_REPLAY'
  | 'HEADER_INVALID'
  | 'SECURITY_UNSUPPORTED'
  | 'PADDING_WITHOUT_MASK'
  | 'COMMAND_UNKNOWN'
  | 'ADDRESS_INVALID'

/** Where a handshake stands after the bytes it has seen. */
export type HandshakeStep =
  | { readonly status: 'need-more' }
  | {
      readonly status: 'accepted'
      readonly kind: HeaderKind
      readonly user: VmessUser
      readonly header: RequestHeader
    }
  /** drain: read and discard, send nothing (anti-probing, docs/protocol.md §9); close: close at once. */
  | {
      readonly status: 'refused'
      readonly reason: RefusalReason
      readonly action: 'drain' | 'close'
      /** AUTH_CLOCK_SKEW: how far the client's clock is off, in seconds. */
      readonly skewSeconds?: number
    }

/** What a server handshake consults. Time is in Unix seconds. */
export interface ServerHandshakeContext {
  readonly users: UserDirectory
  /** Undefined when the legacy header is refused. */
  readonly legacy: LegacyAuthTable | undefined
  readonly authIds: AuthIdReplayFilter
  readonly sessions: SessionHistory
  readonly now: () => number
}

const AUTH_LENGTH = 16
const TAG_LENGTH = 16

/**
 * The server side of the VMess handshake as a push parser: call `advance` whenever bytes were
 * pushed into the queue. It consumes exactly the header, so what remains in the queue is body.
 * Decisions follow docs/protocol.md §4.3, §3.2 and the table of §9.
 */
export class ServerHandshake {
  #clockSkew: { readonly user: VmessUser; readonly seconds: number } | undefined
  readonly #context: ServerHandshakeContext
  #state:
    | { phase: 'auth' }
    | { phase: 'aead'; user: VmessUser; authId: Buffer; headerLength: number | undefined }
    | { phase: 'legacy'; entry: LegacyAuthEntry; decipher: Decipher; plain: Buffer }
    | { phase: 'done' } = { phase: 'auth' }

  constructor(context: ServerHandshakeContext) {
    this.#context = context
  }

  /** The client ended its input: a legacy header cut short in its padding or checksum taints its auth (docs/protocol.md §9). */
  onEndOfInput(): void {
    if (this.#state.phase !== 'legacy') return
    const plain = this.#state.plain
    let length: number | undefined
    try {
      length = requestHeaderLength(plain)
    } catch {
      return
    }
    const padding = plain.length >= 36 ? plain.readUInt8(35) >> 4 : 0
    if (length !== undefined && plain.length >= length - 4 - padding) this.#state.entry.tainted = true
  }

  /**
   * Consumes what it can of the header from `queue`. `match` is the result of matching the first 16
   * bytes against the users, for a caller that ran that scan itself (in slices, to keep its event
   * loop free with many users); without it the handshake scans every user at once.
   */
  advance(queue: ByteQueue, options?: { readonly match?: AuthIdMatch }): HandshakeStep {
    switch (this.#state.phase) {
      case 'auth':
        return this.#readAuth(queue, options?.match)
      case 'aead':
        return this.#readAead(queue, this.#state)
      case 'legacy':
        return this.#readLegacy(queue, this.#state)
      case 'done':
        throw new ProtocolError('HANDSHAKE_DONE', 'Cannot advance handshake: it has already ended')
    }
  }

  /** After an AUTH_CLOCK_SKEW refusal: whose clock is off, and by how many seconds (client − server). */
  get clockSkew(): { readonly user: VmessUser; readonly seconds: number } | undefined {
    return this.#clockSkew
  }

  #refuse(reason: RefusalReason, action: 'drain' | 'close', skewSeconds?: number): HandshakeStep {
    this.#state = { phase: 'done' }
    return skewSeconds === undefined
      ? { status: 'refused', reason, action }
      : { status: 'refused', reason, action, skewSeconds }
  }

  #refuseUnmatched(match: AuthIdMatch, now: number): HandshakeStep {
    if (match.status !== 'clock-skew') return this.#refuse('AUTH_UNKNOWN', 'drain')
    return this.#refuse('AUTH_CLOCK_SKEW', 'drain', Math.abs(match.time - now))
  }

  #readAuth(queue: ByteQueue, scanned: AuthIdMatch | undefined): HandshakeStep {
    if (queue.length < AUTH_LENGTH) return { status: 'need-more' }
    const now = this.#context.now()
    const auth = queue.peek(AUTH_LENGTH)
    const match = scanned ?? this.#context.users.matchAuthId(auth, now)
    if (match.status === 'clock-skew') this.#clockSkew = { user: match.user, seconds: match.time - now }
    if (match.status === 'found') {
      const authId = Buffer.from(auth)
      if (!this.#context.authIds.accept(authId, match.time, now)) return this.#refuse('AUTH_REPLAY', 'drain')
      queue.skip(AUTH_LENGTH)
      this.#state = { phase: 'aead', user: match.user, authId, headerLength: undefined }
      return this.#readAead(queue, this.#state)
    }
    const legacy = this.#context.legacy
    if (legacy === undefined) return this.#refuseUnmatched(match, now)
    const entry = legacy.lookup(Buffer.from(auth), now)
    if (entry === undefined) return this.#refuseUnmatched(match, now)
    if (entry.tainted) return this.#refuse('AUTH_TAINTED', 'drain')
    queue.skip(AUTH_LENGTH)
    const decipher = createDecipheriv('aes-128-cfb', entry.user.cmdKey, legacyHeaderIv(entry.time))
    this.#state = { phase: 'legacy', entry, decipher, plain: Buffer.alloc(0) }
    return this.#readLegacy(queue, this.#state)
  }

  #readAead(
    queue: ByteQueue,
    state: { user: VmessUser; authId: Buffer; headerLength: number | undefined },
  ): HandshakeStep {
    const prefix = AEAD_HEADER_PREFIX_LENGTH - AUTH_LENGTH
    if (state.headerLength === undefined) {
      if (queue.length < prefix) return { status: 'need-more' }
      const sealedLength = queue.peek(18)
      const nonce = queue.peek(prefix).subarray(18)
      // Each phase derives only its own two keys: four KDFs per header, the bulk of a handshake's cost.
      const keys = deriveAeadLengthKeys(state.user.cmdKey, state.authId, nonce)
      const length = aeadOpen('aes-128-gcm', keys.lengthKey, keys.lengthNonce, sealedLength, state.authId)
      if (length === undefined) return this.#refuse('HEADER_OPEN_FAILED', 'drain')
      state.headerLength = length.readUInt16BE(0)
      if (state.headerLength > MAX_REQUEST_HEADER_LENGTH) return this.#refuse('HEADER_TOO_LONG', 'drain')
    }
    if (queue.length < prefix + state.headerLength + TAG_LENGTH) return { status: 'need-more' }
    const nonce = Buffer.from(queue.peek(prefix).subarray(18))
    queue.skip(prefix)
    const keys = deriveAeadPayloadKeys(state.user.cmdKey, state.authId, nonce)
    const plain = aeadOpen(
      'aes-128-gcm',
      keys.headerKey,
      keys.headerNonce,
      queue.consume(state.headerLength + TAG_LENGTH),
      state.authId,
    )
    if (plain === undefined) return this.#refuse('HEADER_OPEN_FAILED', 'drain')
    if (!verifyRequestHeaderChecksum(plain)) return this.#refuse('HEADER_CHECKSUM', 'close')
    return this.#finish('aead', state.user, plain, () => undefined)
  }

  #readLegacy(
    queue: ByteQueue,
    state: { entry: LegacyAuthEntry; decipher: Decipher; plain: Buffer },
  ): HandshakeStep {
    // Decrypt exactly the header's bytes: the body does not continue this CFB stream (docs/protocol.md §3.1).
    while (true) {
      let need: number | undefined
      try {
        need = requestHeaderLength(state.plain)
      } catch {
        // An unknown command or address type leaves no way to find the checksum: V2Ray fails it.
        state.entry.tainted = true
        return this.#refuse('HEADER_CHECKSUM', 'drain')
      }
      if (need !== undefined && state.plain.length >= need) break
      const target = need ?? (state.plain.length < 38 ? 38 : state.plain.length + 1)
      if (queue.length === 0) return { status: 'need-more' }
      const take = Math.min(target - state.plain.length, queue.length)
      state.plain = Buffer.concat([state.plain, state.decipher.update(queue.consume(take))])
    }
    if (!verifyRequestHeaderChecksum(state.plain)) {
      state.entry.tainted = true
      return this.#refuse('HEADER_CHECKSUM', 'drain')
    }
    return this.#finish('legacy', state.entry.user, state.plain, () => {
      state.entry.tainted = true
    })
  }

  #finish(kind: HeaderKind, user: VmessUser, plain: Buffer, taint: () => void): HandshakeStep {
    const bodyIv = plain.subarray(1, 17)
    const bodyKey = plain.subarray(17, 33)
    if (!this.#context.sessions.accept(user.id, bodyKey, bodyIv, this.#context.now())) {
      taint()
      return this.#refuse('SESSION_REPLAY', kind === 'legacy' ? 'drain' : 'close')
    }
    let header: RequestHeader
    try {
      header = parseRequestHeader(plain)
    } catch (error) {
      if (error instanceof ProtocolError) return this.#refuse(refusalFromCode(error.code), 'close')
      throw error
    }
    this.#state = { phase: 'done' }
    return { status: 'accepted', kind, user, header }
  }
}

function refusalFromCode(code: string): RefusalReason {
  switch (code) {
    case 'SECURITY_UNSUPPORTED':
    case 'PADDING_WITHOUT_MASK':
    case 'COMMAND_UNKNOWN':
    case 'ADDRESS_INVALID':
      return code
    default:
      return 'HEADER_INVALID'
  }
}
