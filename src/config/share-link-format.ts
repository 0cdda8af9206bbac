// Share links out: a VmessLink as v2rayN base64 JSON or the standard URI, and as a V2Ray v4 JSON outbound.
import { ProtocolError } from '../errors.js'
import { NETWORKS, uriFieldNames } from './networks.js'
import type { FormatVmessLinkOptions, VmessLink, VmessNetwork, VmessOutboundJson } from './share-link.js'

/** The standard URI's names for host, path and header type on `network`. */
function uriTransportFields(link: VmessLink): [string, string][] {
  const fields: [string, string][] = []
  const add = (name: string, value: string): void => {
    if (value !== '') fields.push([name, value])
  }
  const headerType = link.headerType === 'none' ? '' : link.headerType
  const names = uriFieldNames(link.network)
  add(names.headerType[0], headerType)
  add(names.host[0], link.host)
  add(names.path[0], link.path)
  return fields
}

function formatUri(link: VmessLink): string {
  if (link.alterId !== 0) {
    throw new ProtocolError(
      'LINK_INVALID',
      `Cannot format vmess link: the URI form is for AEAD (alterId 0), alterId is ${link.alterId}`,
    )
  }
  const fields: [string, string][] = [['type', link.network === 'h2' ? 'http' : link.network]]
  // "Omit unless none" says the standard; any non-auto value is written so it round-trips.
  if (link.security !== 'auto') fields.push(['encryption', link.security])
  fields.push(...uriTransportFields(link))
  if (link.tls) fields.push(['security', 'tls'])
  if (link.sni !== undefined) fields.push(['sni', link.sni])
  if (link.alpn !== undefined) fields.push(['alpn', link.alpn])
  if (link.fingerprint !== undefined) fields.push(['fp', link.fingerprint])
  if (link.allowInsecure !== undefined) fields.push(['allowInsecure', link.allowInsecure ? '1' : '0'])
  const host = link.address.includes(':') ? `[${link.address}]` : link.address
  const query = fields.map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join('&')
  const remark = link.remark === '' ? '' : `#${encodeURIComponent(link.remark)}`
  return `vmess://${encodeURIComponent(link.id)}@${host}:${link.port}?${query}${remark}`
}

function formatV2rayn(link: VmessLink): string {
  const json: Record<string, string> = {
    v: '2',
    ps: link.remark,
    add: link.address,
    port: String(link.port),
    id: link.id,
    aid: String(link.alterId),
    scy: link.security,
    net: link.network,
    type: link.headerType,
    host: link.host,
    path: link.path,
    tls: link.tls ? 'tls' : '',
    sni: link.sni ?? '',
    alpn: link.alpn ?? '',
    fp: link.fingerprint ?? '',
  }
  if (link.allowInsecure !== undefined) json.insecure = link.allowInsecure ? '1' : '0'
  return `vmess://${Buffer.from(JSON.stringify(json), 'utf8').toString('base64')}`
}

/**
 * Writes a share link: v2rayN base64 JSON by default, or the standard URI with `{ form: 'uri' }`.
 * @example
 * formatVmessLink(parseVmessLink(text), { form: 'uri' })
 */
export function formatVmessLink(link: VmessLink, options?: FormatVmessLinkOptions): string {
  return options?.form === 'uri' ? formatUri(link) : formatV2rayn(link)
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
}

/** A ws path without its `ed=N` query, and N: early data in Sec-WebSocket-Protocol (mihomo's reading). */
function splitEarlyData(path: string): { path: string; earlyData: number | undefined } {
  const question = path.indexOf('?')
  if (question < 0) return { path, earlyData: undefined }
  let earlyData: number | undefined
  const kept = path
    .slice(question + 1)
    .split('&')
    .filter((pair) => {
      const match = /^ed=(\d{1,6})$/.exec(pair)
      if (match === null) return true
      earlyData = Number(match[1])
      return false
    })
  const base = path.slice(0, question)
  return { path: kept.length === 0 ? base : `${base}?${kept.join('&')}`, earlyData }
}

/** Each network's settings object for a link (undefined: none needed), in V2Ray v4 names (Xray's for httpupgrade and xhttp). */
const LINK_SETTINGS: Readonly<
  Record<VmessNetwork, (link: VmessLink) => Record<string, unknown> | undefined>
> = {
  tcp: (link) =>
    link.headerType !== 'http'
      ? undefined
      : {
          header: {
            type: 'http',
            request: {
              path: splitList(pathOf(link)),
              ...(splitList(link.host).length > 0 ? { headers: { Host: splitList(link.host) } } : {}),
            },
          },
        },
  ws: (link) => {
    const { path, earlyData } = splitEarlyData(pathOf(link))
    return {
      path,
      ...(link.host === '' ? {} : { headers: { Host: link.host } }),
      ...(earlyData === undefined
        ? {}
        : { maxEarlyData: earlyData, earlyDataHeaderName: 'Sec-WebSocket-Protocol' }),
    }
  },
  h2: (link) => ({
    path: pathOf(link),
    ...(splitList(link.host).length > 0 ? { host: splitList(link.host) } : {}),
  }),
  kcp: (link) => ({ header: { type: link.headerType }, ...(link.path === '' ? {} : { seed: link.path }) }),
  quic: (link) => ({
    security: link.host === '' ? 'none' : link.host,
    key: link.path,
    header: { type: link.headerType },
  }),
  grpc: (link) => ({ serviceName: link.path, multiMode: link.headerType === 'multi' }),
  httpupgrade: (link) => ({ path: pathOf(link), ...(link.host === '' ? {} : { host: link.host }) }),
  xhttp: (link) => ({
    path: pathOf(link),
    ...(link.host === '' ? {} : { host: link.host }),
    ...(link.headerType === 'none' ? {} : { mode: link.headerType }),
  }),
}

function pathOf(link: VmessLink): string {
  return link.path === '' ? '/' : link.path
}

/** The transport part of streamSettings: the network word and its settings object, both named by the table. */
function transportSettings(link: VmessLink): Record<string, unknown> {
  const { configNames, settingsKeys } = NETWORKS[link.network]
  const settings = LINK_SETTINGS[link.network](link)
  const key = settingsKeys[0]
  return settings === undefined || key === undefined
    ? { network: configNames[0] }
    : { network: configNames[0], [key]: settings }
}

/**
 * A V2Ray v4 JSON outbound for the link's server. Without `sni`, TLS uses the first HTTP host of the
 * transport (as v2rayN does), else the address.
 */
export function vmessLinkToOutbound(link: VmessLink): VmessOutboundJson {
  const streamSettings: Record<string, unknown> = {
    ...transportSettings(link),
    security: link.tls ? 'tls' : 'none',
  }
  if (link.tls) {
    const httpHost = NETWORKS[link.network].httpHost || link.headerType === 'http'
    const serverName = link.sni ?? (httpHost ? splitList(link.host)[0] : undefined)
    const alpn = splitList(link.alpn ?? '')
    streamSettings.tlsSettings = {
      ...(serverName === undefined ? {} : { serverName }),
      ...(alpn.length > 0 ? { alpn } : {}),
      ...(link.allowInsecure === undefined ? {} : { allowInsecure: link.allowInsecure }),
      ...(link.fingerprint === undefined ? {} : { fingerprint: link.fingerprint }),
    }
  }
  return {
    protocol: 'vmess',
    settings: {
      vnext: [
        {
          address: link.address,
          port: link.port,
          users: [{ id: link.id, alterId: link.alterId, security: link.security }],
        },
      ],
    },
    streamSettings: streamSettings as VmessOutboundJson['streamSettings'],
  }
}
