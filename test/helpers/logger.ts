import type { Logger } from '../../src/types.js'

/** A logger that keeps the lines for assertions. */
export function memoryLogger(
  lines: { level: string; obj: object; msg?: string | undefined }[] = [],
): Logger & {
  lines: typeof lines
} {
  const make = (bindings: object): Logger & { lines: typeof lines } => ({
    lines,
    debug: (obj, msg) => void lines.push({ level: 'debug', obj: { ...bindings, ...obj }, msg }),
    info: (obj, msg) => void lines.push({ level: 'info', obj: { ...bindings, ...obj }, msg }),
    warn: (obj, msg) => void lines.push({ level: 'warn', obj: { ...bindings, ...obj }, msg }),
    error: (obj, msg) => void lines.push({ level: 'error', obj: { ...bindings, ...obj }, msg }),
    child: (more) => make({ ...bindings, ...more }),
  })
  return make({})
}
