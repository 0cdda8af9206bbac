// The files a config names, opened as `tsray test` checks them: V2Ray's `-test` fails on a certificate or
// key that cannot be read, and on a log file whose folder does not exist.
import { open, stat } from 'node:fs/promises'
import { ConfigError } from '../errors.js'
import { formatJsonPath, type JsonPath } from './paths.js'
import type { PemSource, StreamConfig, TsrayConfig } from './types.js'

interface NamedFile {
  readonly path: JsonPath
  readonly file: string
  /** A log file need not exist yet; its folder must. */
  readonly kind: 'read' | 'folder'
}

function streamFiles(stream: StreamConfig, path: JsonPath): NamedFile[] {
  const certificates = stream.tls?.certificates ?? []
  return certificates.flatMap((entry, index) => {
    const at = [...path, 'streamSettings', 'tlsSettings', 'certificates', index]
    const named = (source: PemSource | undefined, key: string): NamedFile[] =>
      source !== undefined && 'file' in source
        ? [{ path: [...at, key], file: source.file, kind: 'read' }]
        : []
    return [...named(entry.certificate, 'certificateFile'), ...named(entry.key, 'keyFile')]
  })
}

/** Every file the config names, with its JSON path. */
export function namedFiles(config: TsrayConfig): NamedFile[] {
  const logs = (['access', 'error'] as const).flatMap((key): NamedFile[] => {
    const output = config.log[key]
    return output.to === 'file' ? [{ path: ['log', key], file: output.path, kind: 'folder' }] : []
  })
  return [
    ...logs,
    ...config.inbounds.flatMap((inbound, index) => streamFiles(inbound.stream, ['inbounds', index])),
    ...config.outbounds.flatMap((outbound, index) => streamFiles(outbound.stream, ['outbounds', index])),
  ]
}

function folderOf(file: string): string {
  const slash = file.lastIndexOf('/')
  return slash < 0 ? '.' : slash === 0 ? '/' : file.slice(0, slash)
}

async function problemOf(named: NamedFile): Promise<string | undefined> {
  try {
    if (named.kind === 'read') {
      const handle = await open(named.file, 'r')
      await handle.close()
      return undefined
    }
    const folder = folderOf(named.file)
    if (!(await stat(folder)).isDirectory())
      return `Cannot write "${named.file}": "${folder}" is not a folder`
    return undefined
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    return named.kind === 'read'
      ? `Cannot open "${named.file}": ${code}`
      : `Cannot write "${named.file}": its folder "${folderOf(named.file)}" cannot be used (${code})`
  }
}

/**
 * Opens every certificate and key file the config names and checks the folder of each log file; throws one
 * ConfigError listing every one that fails, each at its JSON path.
 */
export async function checkConfigFiles(config: TsrayConfig): Promise<void> {
  const named = namedFiles(config)
  const problems = await Promise.all(named.map(problemOf))
  const failed = named.flatMap((entry, index) => {
    const problem = problems[index]
    return problem === undefined ? [] : [{ path: formatJsonPath(entry.path), problem }]
  })
  const [first, ...rest] = failed
  if (first === undefined) return
  const lines = [first.problem, ...rest.map((entry) => `${entry.path}: ${entry.problem}`)]
  throw new ConfigError(first.path, lines.join('\n'))
}
