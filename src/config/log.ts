// `log`.
import { z } from 'zod'
import { DEFAULT_LOG_LEVEL } from './defaults.js'
import { ignored, withRule } from './keys.js'
import { readLogFormat } from './log-format.js'
import { adviseUnknownWord, fail, Failure, leaf, readString, spellingReader } from './readers.js'
import { type LogConfig, type LogLevel, type LogOutput } from './types.js'

/** The log settings V2Ray uses when the config has no `log` section. */
export const DEFAULT_LOG_CONFIG: LogConfig = {
  level: DEFAULT_LOG_LEVEL,
  access: { to: 'none' },
  error: { to: 'console' },
}

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warning', 'error', 'none']

function readLogOutput(value: unknown): LogOutput | Failure {
  if (value === undefined || value === '') return { to: 'console' }
  const path = readString(value)
  if (path instanceof Failure) return path
  return path === 'none' ? { to: 'none' } : { to: 'file', path }
}

/** `log`; an absent section is DEFAULT_LOG_CONFIG. */
export const logSchema = z
  .object({
    loglevel: withRule(
      leaf(spellingReader(Object.fromEntries(LOG_LEVELS.map((level) => [level, level])), DEFAULT_LOG_LEVEL)),
      { advise: adviseUnknownWord(LOG_LEVELS, 'a log level', DEFAULT_LOG_LEVEL) },
    ),
    access: leaf(readLogOutput),
    error: leaf(readLogOutput),
    dnsLog: ignored('tsray does not log DNS queries'),
    format: leaf((value) => {
      const format = readLogFormat(value)
      return typeof format === 'string' ? format : fail(format.problem)
    }),
  })
  .transform((log): LogConfig =>
    log.loglevel === 'none'
      ? { level: 'none', access: { to: 'none' }, error: { to: 'none' } }
      : {
          level: log.loglevel,
          access: log.access,
          error: log.error,
          ...(log.format === 'text' ? {} : { format: log.format }),
        },
  )
