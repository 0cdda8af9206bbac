import { randomUUID } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { homedir, networkInterfaces } from 'node:os'
import { dirname, join } from 'node:path'
import { formatVmessLink, vmessLinkToOutbound, type VmessLink } from '../config/share-link.js'
import { parseUuid } from '../protocol/user.js'

/** Port of the default server, as in V2Ray's sample config. */
export const DEFAULT_SERVER_PORT = 10086

/** Where the default server keeps its generated user, so a restart keeps it. */
export function defaultStatePath(): string {
  const base = process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state')
  return join(base, 'tsray', 'default-server.json')
}

/** Reads the generated user from `path`, or creates it there. */
export async function loadOrCreateUser(path: string): Promise<{ id: string; created: boolean }> {
  try {
    const state = JSON.parse(await readFile(path, 'utf8')) as { id?: unknown }
    if (typeof state.id === 'string' && parseUuid(state.id) !== undefined)
      return { id: state.id, created: false }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`Cannot read the state file ${path}: ${(error as Error).message}`, { cause: error })
    }
  }
  const id = randomUUID()
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, `${JSON.stringify({ id }, null, 2)}\n`, { mode: 0o600 })
  return { id, created: true }
}

/** The V2Ray v4 JSON of the default server: one VMess inbound (AEAD, any security), freedom (to public addresses only unless it listens on loopback). */
export function defaultServerConfig(options: {
  id: string
  listen: string
  port: number
  /** Serve VMess over WebSocket on this path (what a TLS-terminating platform forwards). */
  wsPath?: string | undefined
}): object {
  return {
    log: { loglevel: 'warning', access: '' },
    inbounds: [
      {
        tag: 'vmess-in',
        listen: options.listen,
        port: options.port,
        protocol: 'vmess',
        settings: { clients: [{ id: options.id, alterId: 0, email: 'default@tsray' }] },
        ...(options.wsPath === undefined
          ? {}
          : { streamSettings: { network: 'ws', wsSettings: { path: options.wsPath } } }),
      },
    ],
    outbounds: [
      { tag: 'direct', protocol: 'freedom' },
      { tag: 'block', protocol: 'blackhole' },
    ],
    // A server started without a config on a public address is for the internet: tunnels do not reach
    // this machine's loopback, private or link-local networks. On loopback it serves this machine only.
    ...(/^(?:127\.|::1$|localhost$)/i.test(options.listen)
      ? {}
      : {
          routing: {
            // IPOnDemand: names ("localhost", a name pointing at 10.0.0.1) are resolved for the rule too.
            domainStrategy: 'IPOnDemand',
            rules: [{ type: 'field', ip: ['geoip:private'], outboundTag: 'block' }],
          },
        }),
  }
}

/** The address clients should dial: the listen address, or this machine's first external IPv4. */
export function advertisedAddress(listen: string): string {
  if (listen !== '0.0.0.0' && listen !== '::') return listen
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address
    }
  }
  return '127.0.0.1'
}

/** The share link of the default server. */
export function defaultServerLink(options: {
  id: string
  address: string
  port: number
  wsPath?: string | undefined
}): VmessLink {
  return {
    remark: 'tsray',
    address: options.address,
    port: options.port,
    id: options.id,
    alterId: 0,
    security: 'auto',
    network: options.wsPath === undefined ? 'tcp' : 'ws',
    headerType: 'none',
    host: '',
    path: options.wsPath ?? '',
    tls: false,
  }
}

/** How to connect: the vmess:// link (v2rayN form), its QR code and the matching client outbound JSON. */
export function connectionInstructions(link: VmessLink, qr: string): string {
  const outbound = vmessLinkToOutbound(link)
  const transport = link.network === 'ws' ? `, WebSocket on ${link.path}` : ''
  return [
    `tsray VMess server on port ${link.port} (AEAD header, security auto${transport})`,
    `user id: ${link.id}`,
    '',
    'Share link (v2rayN, V2RayNG, Shadowrocket, …), also as a QR code below:',
    `  ${formatVmessLink(link)}`,
    '',
    qr,
    'Client outbound for a V2Ray / Xray / tsray config:',
    JSON.stringify({ ...outbound, tag: 'proxy' }, null, 2)
      .split('\n')
      .map((line) => `  ${line}`)
      .join('\n'),
    '',
  ].join('\n')
}
