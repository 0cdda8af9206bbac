// `tsray link -c config.json`: share links for the users of a config's VMess inbounds (what to hand to
// the people who connect) and for its VMess outbounds (what the config itself connects to).
import type { StreamConfig, TsrayConfig } from './schema.js'
import type { VmessLink, VmessNetwork } from './share-link.js'

/** One share link and what it is for. */
export interface ConfigLink {
  /** `inbounds[0].settings.clients[1]` or `outbounds[2].settings.vnext[0].users[0]`. */
  readonly path: string
  readonly link: VmessLink
}

/** The link fields of a stream; undefined for a transport a link cannot describe. */
function streamFields(
  stream: StreamConfig,
): Pick<VmessLink, 'network' | 'headerType' | 'host' | 'path' | 'tls' | 'sni' | 'alpn'> | undefined {
  const tls = stream.security === 'tls'
  const sni = stream.tls?.serverName
  const alpn = stream.tls?.alpn
  const security = {
    tls,
    ...(sni === undefined ? {} : { sni }),
    ...(alpn === undefined || alpn.length === 0 ? {} : { alpn: alpn.join(',') }),
  }
  // A transport without a branch here has no link form tsray writes: no link.
  let fields: { network: VmessNetwork; headerType: string; host: string; path: string } | undefined
  if (stream.network === 'tcp') {
    const header = stream.httpHeader
    fields =
      header === undefined
        ? { network: 'tcp', headerType: 'none', host: '', path: '' }
        : {
            network: 'tcp',
            headerType: 'http',
            host:
              header.request.headers.find((field) => field.name.toLowerCase() === 'host')?.values.join(',') ??
              '',
            path: header.request.paths.join(','),
          }
  } else if (stream.network === 'ws') {
    fields = { network: 'ws', headerType: 'none', host: stream.ws.host ?? '', path: stream.ws.path }
  } else if (stream.network === 'httpupgrade') {
    fields = {
      network: 'httpupgrade',
      headerType: 'none',
      host: stream.httpUpgrade.host ?? '',
      path: stream.httpUpgrade.path,
    }
  }
  return fields === undefined ? undefined : { ...fields, ...security }
}

/**
 * The share links of every VMess inbound user (dialled at `address`, or the inbound's listen address
 * when it is a specific one) and of every VMess outbound server and user.
 * @example
 * for (const { link } of configLinks(config, { address: 'vpn.example.com' })) console.log(formatVmessLink(link))
 */
export function configLinks(
  config: TsrayConfig,
  options: { readonly address: (listen: string) => string },
): ConfigLink[] {
  const links: ConfigLink[] = []
  config.inbounds.forEach((inbound, index) => {
    if (inbound.protocol !== 'vmess') return
    const fields = streamFields(inbound.stream)
    if (fields === undefined) return
    inbound.settings.clients.forEach((client, clientIndex) => {
      links.push({
        path: `inbounds[${index}].settings.clients[${clientIndex}]`,
        link: {
          remark: client.email ?? inbound.tag ?? `inbound-${index}`,
          address: options.address(inbound.listen),
          port: inbound.port,
          id: client.id,
          alterId: client.alterId,
          security: 'auto',
          ...fields,
        },
      })
    })
  })
  config.outbounds.forEach((outbound, index) => {
    if (outbound.protocol !== 'vmess') return
    const fields = streamFields(outbound.stream)
    if (fields === undefined) return
    outbound.settings.vnext.forEach((server, serverIndex) => {
      server.users.forEach((user, userIndex) => {
        links.push({
          path: `outbounds[${index}].settings.vnext[${serverIndex}].users[${userIndex}]`,
          link: {
            remark: user.email ?? outbound.tag ?? `outbound-${index}`,
            address: server.address,
            port: server.port,
            id: user.id,
            alterId: user.alterId,
            security: user.security,
            ...fields,
          },
        })
      })
    })
  })
  return links
}
