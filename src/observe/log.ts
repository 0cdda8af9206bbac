import { pino, type Level } from 'pino'
import sonicBoomExport, { type SonicBoom } from 'sonic-boom'
import { DEFAULT_LOG_FORMAT, type LogFormat } from '../config/log-format.js'
import type { LogConfig, LogLevel, LogOutput } from '../config/schema.js'
import type { Logger } from '../types.js'

// sonic-boom is CommonJS exporting the class itself; its types describe an ES default export.
const SonicBoomClass = sonicBoomExport as unknown as typeof SonicBoom

/**
 * Bytes of log lines one destination holds while it cannot take them (a stdout pipe nobody reads, a
 * slow disk). Past it new lines are dropped and counted: a log must never stop the proxy.
 */
export const LOG_BUFFER_BYTES = 128 * 1024
/** How long stopping waits for buffered lines to be written before it gives up on them. */
export const LOG_FLUSH_TIMEOUT_MS = 2_000

const PINO_LEVELS: Record<LogLevel, Level | 'silent'> = {
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  error: 'error',
  none: 'silent',
}

type TextLevel = 'debug' | 'info' | 'warn' | 'error'
const LEVEL_RANK: Record<TextLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 }
const THRESHOLD: Record<LogLevel, number> = { debug: 0, info: 1, warning: 2, error: 3, none: 4 }
/** V2Ray's level words. */
const LEVEL_WORD: Record<TextLevel, string> = {
  debug: 'Debug',
  info: 'Info',
  warn: 'Warning',
  error: 'Error',
}

/** The error log and the access log (V2Ray's text format) of a running instance. */
export interface Logs {
  readonly logger: Logger
  readonly access: ((record: AccessLine) => void) | undefined
  /** Lines dropped because a destination's buffer was full or its writes failed. */
  readonly droppedLines: number
  /** Writes what is buffered (waiting at most LOG_FLUSH_TIMEOUT_MS) and closes the files. */
  close(): Promise<void>
}

/** One access-log line's fields. */
export interface AccessLine {
  readonly source: string
  readonly destination: string
  readonly status: 'accepted' | 'rejected'
  readonly user: string
  readonly reason?: string
  readonly inboundTag?: string
}

/** V2Ray's timestamp: local time, `2026/12/06 02:41:31`. */
export function timestamp(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0')
  return `${date.getFullYear()}/${pad(date.getMonth() + 1)}/${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
}

/** A destination that writes asynchronously from a bounded buffer and counts what it had to drop. */
class Sink {
  readonly #stream: SonicBoom & { readonly destroyed?: boolean }
  readonly #counter: { dropped: number }

  constructor(output: { fd: number } | { path: string }, counter: { dropped: number }) {
    this.#counter = counter
    // Constructed directly, not through pino.destination(), which would flush synchronously at exit and
    // so hang the exit on a stalled pipe. One write is in flight at a time, on libuv's thread pool: a
    // blocking pipe that nobody reads holds one pool thread, never the event loop.
    this.#stream = new SonicBoomClass({
      ...('fd' in output ? { fd: output.fd } : { dest: output.path, mkdir: true }),
      sync: false,
      maxLength: LOG_BUFFER_BYTES,
    })
    this.#stream.on('drop', () => (this.#counter.dropped += 1))
    // A closed pipe (EPIPE) or a full disk loses lines; it must not take the process down.
    this.#stream.on('error', () => (this.#counter.dropped += 1))
  }

  write(line: string): void {
    if (this.#stream.destroyed === true) this.#counter.dropped += 1
    else this.#stream.write(line)
  }

  /** Ends the stream once what is buffered is written, waiting at most LOG_FLUSH_TIMEOUT_MS. */
  close(): Promise<void> {
    const stream = this.#stream
    if (stream.destroyed === true) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, LOG_FLUSH_TIMEOUT_MS)
      timer.unref()
      stream.once('close', () => {
        clearTimeout(timer)
        resolve()
      })
      try {
        stream.end()
      } catch {
        clearTimeout(timer)
        resolve()
      }
    })
  }
}

/** `key=value` pairs; values with spaces or quotes are JSON-quoted, errors show their message. */
function formatFields(fields: Record<string, unknown>): string {
  let text = ''
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue
    let shown: string
    if (value instanceof Error) shown = JSON.stringify(value.message)
    else if (typeof value === 'string') shown = /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)
    else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
      shown = String(value)
    // JSON.stringify gives undefined for a function or symbol: name its type instead.
    else shown = JSON.stringify(value) ?? typeof value
    text += ` ${key}=${shown}`
  }
  return text
}

/** V2Ray's console shape: `2026/12/06 02:41:31 [Warning] message key=value …`. */
function textLogger(sink: Sink | undefined, level: LogLevel, bindings: Record<string, unknown>): Logger {
  const threshold = THRESHOLD[level]
  const line =
    (textLevel: TextLevel) =>
    (obj: object, msg?: string): void => {
      if (sink === undefined || LEVEL_RANK[textLevel] < threshold) return
      const fields = formatFields({ ...bindings, ...(obj as Record<string, unknown>) })
      sink.write(`${timestamp(new Date())} [${LEVEL_WORD[textLevel]}] ${msg ?? ''}${fields}\n`)
    }
  return {
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
    child: (more) => textLogger(sink, level, { ...bindings, ...more }),
  }
}

/** Opens the logs a `log` section asks for; both logs on the console share one stdout buffer. */
export function createLogs(config: LogConfig): Logs {
  const counter = { dropped: 0 }
  const sinks = new Map<string, Sink>()
  const open = (output: LogOutput): Sink | undefined => {
    if (output.to === 'none') return undefined
    const key = output.to === 'console' ? 'console' : `file:${output.path}`
    let sink = sinks.get(key)
    if (sink === undefined) {
      sink = new Sink(output.to === 'console' ? { fd: 1 } : { path: output.path }, counter)
      sinks.set(key, sink)
    }
    return sink
  }
  const errorSink = config.level === 'none' ? undefined : open(config.error)
  const format: LogFormat = config.format ?? DEFAULT_LOG_FORMAT
  const logger =
    format === 'json' && errorSink !== undefined
      ? pino({ level: PINO_LEVELS[config.level], base: { name: 'tsray' } }, errorSink)
      : textLogger(errorSink, config.level, {})
  const accessSink = config.level === 'none' ? undefined : open(config.access)
  const access =
    accessSink === undefined
      ? undefined
      : (record: AccessLine): void => {
          if (format === 'json') {
            const { source, status, destination, reason, user, inboundTag } = record
            accessSink.write(
              `${JSON.stringify({ time: Date.now(), source, status, destination, reason, email: user || undefined, inbound: inboundTag })}\n`,
            )
            return
          }
          const reason = record.reason === undefined ? '' : ` ${record.reason}`
          const user = record.user === '' ? '' : ` email: ${record.user}`
          accessSink.write(
            `${timestamp(new Date())} ${record.source} ${record.status} ${record.destination}${reason}${user}\n`,
          )
        }
  return {
    logger,
    access,
    get droppedLines() {
      return counter.dropped
    },
    close: async () => {
      await Promise.all([...sinks.values()].map((sink) => sink.close()))
    },
  }
}
