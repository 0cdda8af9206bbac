// `tsray client LINK`: the V2Ray v4 JSON of a local client (SOCKS5 and HTTP inbounds in front of the
// link's VMess outbound), so the link runs through the same loader and builder as any config.
import { ConfigError } from '../errors.js'
import { vmessLinkToOutbound, type VmessLink } from './share-link.js'

/** v2rayN's local ports, which apps and browser extensions are already set up for. */
export const DEFAULT_SOCKS_PORT = 10808
export const DEFAULT_HTTP_PORT = 10809
/** Local inbounds listen on loopback unless told otherwise: an open proxy on a LAN is a gift to anyone there. */
export const DEFAULT_CLIENT_LISTEN = '127.0.0.1'

/** Where a local inbound listens. */
export interface ListenAddress {
  readonly address: string
  readonly port: number
}

/** Reads `[ADDR:]PORT` (an IPv6 address in brackets); `option` names the flag in the error. */
export function parseListenAddress(text: string, option: string): ListenAddress {
  const match = /^(?:(\[[0-9A-Fa-f:.]+\]|[^:[\]]+):)?(\d{1,5})$/.exec(text.trim())
  const port = Number(match?.[2])
  if (match === null || port < 1 || port > 65535) {
    throw new ConfigError(option, `Cannot listen: "${text}" is not [ADDRESS:]PORT with a port 1 to 65535`)
  }
  const address = match[1]?.replace(/^\[|\]$/g, '') ?? DEFAULT_CLIENT_LISTEN
  return { address, port }
}

/**
 * The config of a local client for `link`: a SOCKS5 inbound (with UDP) and an HTTP inbound, each left
 * out when its address is `undefined`, routed to the link's server.
 * @example
 * validateConfig(clientConfigFromLink(parseVmessLink(text), { socks: { address: '127.0.0.1', port: 10808 } }))
 */
export function clientConfigFromLink(
  link: VmessLink,
  listeners: { readonly socks?: ListenAddress | undefined; readonly http?: ListenAddress | undefined },
): Record<string, unknown> {
  const inbounds: Record<string, unknown>[] = []
  if (listeners.socks !== undefined) {
    inbounds.push({
      tag: 'socks-in',
      listen: listeners.socks.address,
      port: listeners.socks.port,
      protocol: 'socks',
      // UDP replies are announced at the address the app reached the inbound on.
      settings: { auth: 'noauth', udp: true },
    })
  }
  if (listeners.http !== undefined) {
    inbounds.push({
      tag: 'http-in',
      listen: listeners.http.address,
      port: listeners.http.port,
      protocol: 'http',
      settings: {},
    })
  }
  return {
    log: { loglevel: 'warning', access: '' },
    inbounds,
    outbounds: [{ ...vmessLinkToOutbound(link), tag: 'proxy' }],
  }
}
