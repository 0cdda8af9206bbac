// `tsray link` and the config of `tsray client`: share links in and out, checked by the config loader.
import {
  clientConfigFromLink,
  DEFAULT_HTTP_PORT,
  DEFAULT_SOCKS_PORT,
  parseListenAddress,
} from '../config/client-config.js'
import { configLinks } from '../config/config-links.js'
import { validateConfig, type LoadedConfig } from '../config/load.js'
import type { TsrayConfig } from '../config/schema.js'
import { formatVmessLink, parseVmessLink, vmessLinkToOutbound, type VmessLink } from '../config/share-link.js'
import { ConfigError } from '../errors.js'
import { advertisedAddress } from './default-server.js'
import { terminalQr, writeQrPng } from './qr.js'

/** What `tsray link` prints a link as. */
export interface LinkOutput {
  /** A QR code in the terminal after each link. */
  readonly qr: boolean
  /** A PNG of the QR code (one link only). */
  readonly png: string | undefined
}

/**
 * Checks that tsray can run `link`: its outbound goes through the config loader, which refuses a
 * transport tsray does not have, so a link that cannot work fails here and not at the first connection.
 */
export function checkLinkRuns(link: VmessLink): LoadedConfig {
  try {
    const loaded = validateConfig({ outbounds: [vmessLinkToOutbound(link)] })
    // The check has no inbounds on purpose; the loader's warning about that is not the link's.
    return { ...loaded, warnings: loaded.warnings.filter((warning) => !warning.startsWith('inbounds')) }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new ConfigError('', `Cannot use this link with tsray: ${reason.replace(/^outbounds\[0\]\./, '')}`, {
      cause: error,
    })
  }
}

async function printQr(text: string, output: LinkOutput, write: (text: string) => void): Promise<void> {
  if (output.qr) write(await terminalQr(text))
  if (output.png !== undefined) await writeQrPng(output.png, text)
}

/** `tsray link LINK`: the outbound JSON, or with `qr`/`png` the link's QR code. */
export async function printLink(
  text: string,
  output: LinkOutput,
  write: (text: string) => void,
): Promise<string[]> {
  const link = parseVmessLink(text)
  const { warnings } = checkLinkRuns(link)
  if (output.qr || output.png !== undefined) await printQr(text.trim(), output, write)
  else write(`${JSON.stringify(vmessLinkToOutbound(link), null, 2)}\n`)
  return warnings
}

/** `tsray link -c FILE`: one share link a line (with its QR code when asked) for each VMess user of `config`. */
export async function printConfigLinks(
  config: TsrayConfig,
  options: LinkOutput & { readonly address: string | undefined; readonly form: 'v2rayn' | 'uri' },
  write: (text: string) => void,
): Promise<void> {
  const links = configLinks(config, { address: (listen) => options.address ?? advertisedAddress(listen) })
  if (links.length === 0)
    throw new ConfigError('', 'Cannot print links: the config has no VMess inbound or outbound')
  if (options.png !== undefined && links.length > 1) {
    throw new ConfigError(
      '',
      `Cannot write one PNG for ${links.length} links: --png needs a config with one VMess user`,
    )
  }
  for (const { path, link } of links) {
    const text = formatVmessLink(link, { form: link.alterId === 0 ? options.form : 'v2rayn' })
    write(options.qr ? `${path}\n${text}\n` : `${text}\n`)
    await printQr(text, options, write)
  }
}

/** The checked config of `tsray client LINK`, listening where `--socks` and `--http` say (v2rayN's ports by default). */
export function clientConfig(
  text: string,
  options: { socks?: string | undefined; http?: string | undefined },
): LoadedConfig {
  const link = parseVmessLink(text)
  checkLinkRuns(link)
  const socks = parseListenAddress(options.socks ?? String(DEFAULT_SOCKS_PORT), '--socks')
  const http = parseListenAddress(options.http ?? String(DEFAULT_HTTP_PORT), '--http')
  return validateConfig(clientConfigFromLink(link, { socks, http }))
}
