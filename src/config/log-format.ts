/** `log.format` (a tsray key): how log lines are written. */
export const LOG_FORMATS = ['text', 'json'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]

/** V2Ray's own shape (`2026/12/06 02:41:31 [Warning] …`), so logs read like a V2Ray server's. */
export const DEFAULT_LOG_FORMAT: LogFormat = 'text'

/** Reads `log.format`: the format, or why the value is refused. Absent or empty is the default. */
export function readLogFormat(value: unknown): LogFormat | { readonly problem: string } {
  if (value === undefined || value === '') return DEFAULT_LOG_FORMAT
  const found = LOG_FORMATS.find((format) => typeof value === 'string' && format === value.toLowerCase())
  return (
    found ?? {
      problem: `${JSON.stringify(value)} is not a log format; expected "text" (V2Ray's lines) or "json" (one JSON object a line)`,
    }
  )
}
