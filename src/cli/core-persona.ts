// How tsray answers panels that start it as their core binary (3x-ui, Marzban, PasarGuard). They
// read the core's version from the first line of `xray -version` / `xray version` and wait for
// Xray's "started" log line; installed under the name `xray` (a symlink), tsray answers in that form,
// naming itself in the same line.
import { basename } from 'node:path'

/** The Xray version tsray claims under the name `xray`: its API (StatsService.GetUsersStats, HandlerService.GetInboundUsers) is that release's. */
export const XRAY_COMPATIBLE_VERSION = '26.4.13'
/** The V2Ray version tsray claims under the name `v2ray`: its config and API are V2Ray 4.34's. */
export const V2RAY_COMPATIBLE_VERSION = '4.34.0'

/** Which core's form the output takes: tsray's own, or the core whose name the binary was started by. */
export type CorePersona = 'tsray' | 'xray' | 'v2ray'

/** The persona of a binary path: `xray` and `v2ray` (any case, any extension) take those cores' forms. */
export function personaOf(binaryPath: string | undefined): CorePersona {
  const name = basename(binaryPath ?? '').toLowerCase()
  if (name.startsWith('xray')) return 'xray'
  if (name.startsWith('v2ray')) return 'v2ray'
  return 'tsray'
}

/** The claimed core version: TSRAY_CORE_VERSION overrides it (a panel that gates features on it). */
function claimedVersion(persona: 'xray' | 'v2ray', env: NodeJS.ProcessEnv): string {
  const override = env.TSRAY_CORE_VERSION
  if (override !== undefined && /^\d+\.\d+\.\d+$/.test(override)) return override
  return persona === 'xray' ? XRAY_COMPATIBLE_VERSION : V2RAY_COMPATIBLE_VERSION
}

/** The output of `version`, `detail` on its second line; panels parse the first line. */
export function versionText(
  persona: CorePersona,
  tsrayVersion: string,
  env: NodeJS.ProcessEnv,
  detail: string,
): string {
  const self = `tsray ${tsrayVersion}`
  if (persona === 'tsray') return `${self}\n${detail}\n`
  const core = persona === 'xray' ? 'Xray' : 'V2Ray'
  return `${core} ${claimedVersion(persona, env)} (${self}, VMess only) Node ${process.versions.node}\n${detail}\n`
}

/** The line a panel waits for once the core runs (Marzban and PasarGuard match Xray's), or undefined. */
export function startedLine(
  persona: CorePersona,
  tsrayVersion: string,
  env: NodeJS.ProcessEnv,
): string | undefined {
  if (persona === 'tsray') return undefined
  const core = persona === 'xray' ? 'Xray' : 'V2Ray'
  return `[Warning] core: ${core} ${claimedVersion(persona, env)} started (tsray ${tsrayVersion})\n`
}

/**
 * Xray's and V2Ray's spellings of tsray's options: `-config FILE`, `-config=FILE`, `-c=FILE`,
 * `-test`, `-version`, and the file `stdin:` (standard input).
 */
export function normaliseCoreArgs(argv: readonly string[]): string[] {
  return argv.map((arg) => {
    if (arg === '-config') return '--config'
    if (arg.startsWith('-config=')) return `--config=${stdinPath(arg.slice(8))}`
    if (arg.startsWith('-c=')) return `--config=${stdinPath(arg.slice(3))}`
    if (arg === '-test') return '--test'
    if (arg === '-version' || arg === '--version') return 'version'
    return stdinPath(arg)
  })
}

function stdinPath(path: string): string {
  return path === 'stdin:' ? '-' : path
}
