import { pino, destination, type DestinationStream, type Level } from 'pino'
import type { LogConfig, LogLevel, LogOutput } from '../config/schema.js'
import type { Logger } from '../types.js'

const PINO_LEVELS: Record<LogLevel, Level | 'silent'> = {
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  error: 'error',
  none: 'silent',
}

function open(output: LogOutput): DestinationStream | undefined {
  switch (output.to) {
    case 'none':
      return undefined
    case 'console':
      return destination({ dest: 1, sync: true })
    case 'file':
      return destination({ dest: output.path, mkdir: true, sync: false })
  }
}

/** The error log (pino, JSON lines) and the access log (V2Ray's text format) of a running instance. */
export interface Logs {
  readonly logger: Logger
  readonly access: ((record: AccessLine) => void) | undefined
  flush(): void
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

function timestamp(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0')
  return `${date.getFullYear()}/${pad(date.getMonth() + 1)}/${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
}

/** Opens the logs a `log` section asks for. */
export function createLogs(config: LogConfig): Logs {
  const errorStream = open(config.error)
  const logger = pino(
    { level: errorStream === undefined ? 'silent' : PINO_LEVELS[config.level], base: { name: 'tsray' } },
    errorStream ?? destination({ dest: 1, sync: true }),
  )
  const accessStream = config.level === 'none' ? undefined : open(config.access)
  const access =
    accessStream === undefined
      ? undefined
      : (record: AccessLine): void => {
          const reason = record.reason === undefined ? '' : ` ${record.reason}`
          const user = record.user === '' ? '' : ` email: ${record.user}`
          accessStream.write(
            `${timestamp(new Date())} ${record.source} ${record.status} ${record.destination}${reason}${user}\n`,
          )
        }
  return {
    logger: logger,
    access,
    flush: () => {
      logger.flush()
    },
  }
}
