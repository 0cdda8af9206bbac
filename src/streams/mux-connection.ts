import { Duplex } from 'node:stream'
import { ProtocolError } from '../errors.js'
import { encodeKeepFrames, MUX_STREAM_FRAME_DATA } from '../protocol/mux-data-frames.js'
import { encodeMuxFrame, type MuxFrame, MuxFrameParser, MuxOption, MuxStatus } from '../protocol/mux-frame.js'

/** Bytes a TCP sub-stream holds from the peer before the whole connection stops reading (back-pressure). */
export const MUX_SESSION_READ_BUFFER_BYTES = 64 * 1024
/** Datagram frames are dropped, never queued, while more than this waits to go out on the connection. */
export const MUX_DATAGRAM_BACKLOG_BYTES = 256 * 1024
/** A connection we stopped writing to is destroyed after this long if the peer does not close it. */
export const MUX_CLOSE_LINGER_MS = 2_000

/** One sub-session as the connection sees it: where the peer's frames for its ID go. */
export interface MuxSession {
  /** The data of a New or Keep frame for this session. */
  receive(data: Buffer, frame: MuxFrame): void
  /** The peer sent End; `aborted` when it carried the Error option. */
  peerEnded(aborted: boolean): void
  /** The peer finished sending on the whole connection: nothing more comes for this session either. */
  connectionInputEnded(): void
  /** The connection is gone: drop everything without sending. */
  connectionClosed(): void
}

/** What the owner of a connection (the mux server or client) is told. */
export interface MuxConnectionEvents {
  /** A New frame; the owner creates and `add`s a session, whose `receive` then gets the frame's data. */
  readonly onNew?: (frame: MuxFrame) => void
  /** The number of sessions changed. */
  readonly onSessionCount?: (count: number) => void
  /** The peer finished sending (end of the VMess body). */
  readonly onInputEnd?: () => void
  /** A session's handler threw; the connection is closing. */
  readonly onFault?: (error: unknown) => void
  /** The peer's bytes are not Mux.Cool; the connection is closing. */
  readonly onProtocolError?: (error: ProtocolError) => void
  /** The transport has closed; every session has been told. */
  readonly onClose?: () => void
}

interface PendingWrite {
  readonly owner: object
  readonly bytes: Buffer
  readonly done: () => void
}

/**
 * One Mux.Cool connection over a plaintext byte stream (a VMess Cmd 3 body, docs/protocol.md §8), shared by the
 * server and the client: frame parsing, the session table, answers to unknown sessions, and
 * back-pressure both ways — a sub-stream that cannot keep up pauses the whole connection's input (as
 * V2Ray's pipes do), and sub-stream writes wait, in turn, while the transport needs a drain.
 */
export class MuxConnection {
  readonly #transport: Duplex
  readonly #events: MuxConnectionEvents
  readonly #parser = new MuxFrameParser()
  readonly #sessions = new Map<number, MuxSession>()
  // At most one write per sub-stream waits here (a Writable never has two in flight).
  readonly #pending: PendingWrite[] = []
  #holds = 0
  #holdingForAnswers = false
  #inputEnded = false
  #ending = false
  #closed = false
  #lingerTimer: NodeJS.Timeout | undefined

  constructor(transport: Duplex, events: MuxConnectionEvents) {
    this.#transport = transport
    this.#events = events
    transport.on('data', this.#onData)
    transport.on('end', () => {
      this.#inputEnded = true
      this.#events.onInputEnd?.()
    })
    transport.on('drain', () => this.#onDrain())
    // A transport error is followed by 'close', which tears everything down.
    transport.on('error', () => undefined)
    transport.on('close', () => this.#onClose())
    transport.resume()
  }

  get sessionCount(): number {
    return this.#sessions.size
  }

  /** The peer has finished sending. */
  get inputEnded(): boolean {
    return this.#inputEnded
  }

  /** No more frames go out: the transport is closed or closing. */
  get closed(): boolean {
    return this.#closed || this.#ending
  }

  has(sessionId: number): boolean {
    return this.#sessions.has(sessionId)
  }

  /** Calls `visit` for every session (on a copy: sessions may leave meanwhile). */
  forEachSession(visit: (session: MuxSession) => void): void {
    for (const session of [...this.#sessions.values()]) visit(session)
  }

  /** Registers `session` under `sessionId`; a session already there is dropped without a frame. */
  add(sessionId: number, session: MuxSession): void {
    const previous = this.#sessions.get(sessionId)
    this.#sessions.set(sessionId, session)
    // V2Ray and Xray overwrite a reused ID; the peer has forgotten the old session, so tell it nothing.
    previous?.connectionClosed()
    if (previous === undefined) this.#events.onSessionCount?.(this.#sessions.size)
  }

  /** Forgets `session` (only if it is still the one registered under `sessionId`). */
  remove(sessionId: number, session: MuxSession): void {
    if (this.#sessions.get(sessionId) !== session) return
    this.#sessions.delete(sessionId)
    this.#events.onSessionCount?.(this.#sessions.size)
  }

  /**
   * Sends a sub-stream's data frames once the transport has room, then calls `done` (which is what
   * lets the sub-stream accept its next write). Writes go out in arrival order.
   */
  sendData(owner: object, bytes: Buffer, done: () => void): void {
    if (!this.#writable()) {
      done()
      return
    }
    if (this.#pending.length > 0 || this.#transport.writableNeedDrain) {
      this.#pending.push({ owner, bytes, done })
      return
    }
    this.#transport.write(bytes)
    done()
  }

  /** Drops the writes `owner` still has waiting (it is being destroyed). */
  cancel(owner: object): void {
    for (let index = this.#pending.length - 1; index >= 0; index--) {
      if (this.#pending[index]!.owner === owner) this.#pending.splice(index, 1)
    }
  }

  /** Sends a small control frame (New without data, End) at once. */
  sendControl(bytes: Buffer): void {
    if (this.#writable()) this.#transport.write(bytes)
  }

  /** Sends one datagram frame, or drops it (UDP is lossy) while the transport is backed up. */
  sendDatagram(bytes: Buffer): boolean {
    if (!this.#writable() || this.#transport.writableLength > MUX_DATAGRAM_BACKLOG_BYTES) return false
    this.#transport.write(bytes)
    return true
  }

  /** Stops reading frames until every hold is released (a sub-stream's buffer is full). */
  hold(): void {
    this.#holds++
    if (this.#holds === 1) this.#transport.pause()
  }

  release(): void {
    if (this.#holds === 0) return
    this.#holds--
    if (this.#holds === 0 && !this.#closed) this.#transport.resume()
  }

  /**
   * Closes for writing (the VMess end chunk and a FIN), keeps reading and discarding so the close is
   * clean, and destroys the transport if the peer has not closed it within `MUX_CLOSE_LINGER_MS`.
   */
  end(): void {
    if (this.#ending || this.#closed) return
    this.#ending = true
    this.#pending.length = 0
    this.#transport.off('data', this.#onData)
    this.#transport.on('data', () => undefined)
    this.#transport.end()
    this.#transport.resume()
    this.#lingerTimer = setTimeout(() => this.#transport.destroy(), MUX_CLOSE_LINGER_MS)
  }

  /** Closes at once; every session is dropped. */
  destroy(): void {
    this.#transport.destroy()
  }

  #writable(): boolean {
    return !this.#closed && !this.#ending && !this.#transport.writableEnded && !this.#transport.destroyed
  }

  readonly #onData = (bytes: Buffer): void => {
    let frames: MuxFrame[]
    try {
      frames = this.#parser.push(bytes)
    } catch (error) {
      this.#fail(error)
      return
    }
    try {
      for (const frame of frames) {
        if (this.#closed || this.#ending) return
        this.#dispatch(frame)
      }
    } catch (error) {
      // A sub-session's handler threw: this connection fails, never the process.
      this.#events.onFault?.(error)
      this.#transport.destroy()
    }
  }

  #dispatch(frame: MuxFrame): void {
    switch (frame.status) {
      case MuxStatus.New: {
        this.#events.onNew?.(frame)
        if (frame.data !== undefined) this.#sessions.get(frame.sessionId)?.receive(frame.data, frame)
        return
      }
      case MuxStatus.Keep: {
        // A Keep without data says nothing (V2Ray skips it before looking the session up).
        if (frame.data === undefined) return
        const session = this.#sessions.get(frame.sessionId)
        if (session === undefined) this.#answerUnknown(frame.sessionId)
        else session.receive(frame.data, frame)
        return
      }
      case MuxStatus.End:
        this.#sessions.get(frame.sessionId)?.peerEnded((frame.option & MuxOption.Error) !== 0)
        return
      case MuxStatus.KeepAlive:
        // Its data, if any, is discarded (docs/protocol.md §8).
        return
    }
  }

  /** Frames for an unknown session are answered with End (docs/protocol.md §8); a peer that does not read stops us reading. */
  #answerUnknown(sessionId: number): void {
    this.sendControl(encodeMuxFrame({ sessionId, status: MuxStatus.End, option: 0 }))
    if (!this.#holdingForAnswers && this.#transport.writableNeedDrain) {
      this.#holdingForAnswers = true
      this.hold()
    }
  }

  #onDrain(): void {
    while (this.#pending.length > 0 && !this.#transport.writableNeedDrain) {
      const next = this.#pending.shift()!
      this.#transport.write(next.bytes)
      next.done()
    }
    if (this.#holdingForAnswers && !this.#transport.writableNeedDrain) {
      this.#holdingForAnswers = false
      this.release()
    }
  }

  #fail(error: unknown): void {
    const protocolError =
      error instanceof ProtocolError
        ? error
        : new ProtocolError('MUX_INVALID', `Cannot read mux frame: ${String(error)}`)
    this.#dropSessions()
    this.#events.onProtocolError?.(protocolError)
    this.end()
  }

  #dropSessions(): void {
    const sessions = [...this.#sessions.values()]
    this.#sessions.clear()
    for (const session of sessions) session.connectionClosed()
  }

  #onClose(): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#lingerTimer)
    this.#pending.length = 0
    const hadSessions = this.#sessions.size > 0
    this.#dropSessions()
    if (hadSessions) this.#events.onSessionCount?.(0)
    this.#events.onClose?.()
  }
}

/** Options of a TCP sub-stream. */
export interface MuxStreamOptions {
  /** Client side: the target the New frame names; it goes out with the first data. */
  readonly open?: { readonly host: string; readonly port: number }
  /** Client side: how long the New frame waits for first data before it goes alone (V2Ray: 100 ms). */
  readonly firstDataWaitMs?: number
}

/**
 * One TCP sub-session as a Duplex of plaintext, so `relay` moves it like a socket: writes become Keep
 * frames of ≤ 8 KiB (the client's first one a New frame naming the target), `end()` sends End, the
 * peer's End ends the readable side, and destroying it early sends End with the Error option.
 */
export class MuxStream extends Duplex implements MuxSession {
  readonly sessionId: number
  readonly #connection: MuxConnection
  #open: { readonly host: string; readonly port: number } | undefined
  #openAlone: Buffer | undefined
  #openTimer: NodeJS.Timeout | undefined
  #holding = false
  #inputDone = false
  #endSent = false
  #peerGone = false

  constructor(connection: MuxConnection, sessionId: number, options: MuxStreamOptions = {}) {
    super({ allowHalfOpen: true, readableHighWaterMark: MUX_SESSION_READ_BUFFER_BYTES })
    this.sessionId = sessionId
    this.#connection = connection
    if (options.open !== undefined) {
      // Encoded now so that a target the frame cannot name (a domain over 255 bytes) fails here.
      this.#openAlone = encodeMuxFrame({
        sessionId,
        status: MuxStatus.New,
        option: 0,
        network: 'tcp',
        host: options.open.host,
        port: options.open.port,
      })
      this.#open = options.open
      this.#openTimer = setTimeout(() => this.#sendOpenAlone(), options.firstDataWaitMs ?? 0)
    }
  }

  receive(data: Buffer): void {
    if (this.destroyed || this.#inputDone || data.length === 0) return
    if (!this.push(data) && !this.#holding) {
      this.#holding = true
      this.#connection.hold()
    }
  }

  peerEnded(aborted: boolean): void {
    if (aborted || this.#inputDone) {
      // Aborted, or a second End: the peer has forgotten this session (V2Ray answers our frames so).
      this.#peerGone = true
      this.destroy()
      return
    }
    this.#inputDone = true
    this.push(null)
  }

  connectionInputEnded(): void {
    if (this.destroyed || this.#inputDone) return
    this.#inputDone = true
    this.push(null)
  }

  connectionClosed(): void {
    this.#peerGone = true
    this.destroy()
  }

  override _read(): void {
    if (!this.#holding) return
    this.#holding = false
    this.#connection.release()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // An empty write has nothing to frame (and an empty VMess chunk would mean end of stream).
    if (chunk.length === 0) {
      callback()
      return
    }
    let frames: Buffer
    try {
      frames = this.#frame(chunk)
    } catch (error) {
      callback(error as Error)
      return
    }
    this.#connection.sendData(this, frames, () => callback())
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#sendOpenAlone()
    this.#endSent = true
    this.#connection.sendControl(
      encodeMuxFrame({ sessionId: this.sessionId, status: MuxStatus.End, option: 0 }),
    )
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#openTimer)
    this.#connection.cancel(this)
    if (this.#holding) {
      this.#holding = false
      this.#connection.release()
    }
    // The peer knows this session only once its New frame went out.
    if (!this.#endSent && !this.#peerGone && this.#open === undefined) {
      this.#connection.sendControl(
        encodeMuxFrame({ sessionId: this.sessionId, status: MuxStatus.End, option: MuxOption.Error }),
      )
    }
    this.#open = undefined
    this.#connection.remove(this.sessionId, this)
    callback(error)
  }

  /** The frames for one write: a New frame with the first ≤ 8 KiB if the target is not named yet. */
  #frame(chunk: Buffer): Buffer {
    const open = this.#open
    if (open === undefined) return encodeKeepFrames(this.sessionId, chunk)
    this.#open = undefined
    clearTimeout(this.#openTimer)
    const first = chunk.subarray(0, MUX_STREAM_FRAME_DATA)
    const opening = encodeMuxFrame({
      sessionId: this.sessionId,
      status: MuxStatus.New,
      option: 0,
      network: 'tcp',
      host: open.host,
      port: open.port,
      data: first,
    })
    if (first.length === chunk.length) return opening
    return Buffer.concat([opening, encodeKeepFrames(this.sessionId, chunk.subarray(first.length))])
  }

  #sendOpenAlone(): void {
    const openAlone = this.#openAlone
    if (this.#open === undefined || openAlone === undefined || this.destroyed) return
    this.#open = undefined
    clearTimeout(this.#openTimer)
    this.#connection.sendControl(openAlone)
  }
}
