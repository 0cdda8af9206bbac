import { randomUUID } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { homedir, networkInterfaces } from 'node:os'
import { dirname, join } from 'node:path'
import { formatVmessLink, vmessLinkToOutbound } from '../config/share-link.js'
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

/** The V2Ray v4 JSON of the default server: one VMess inbound (AEAD, any security), freedom to public addresses only. */
export function defaultServerConfig(options: { id: string; listen: string; port: number }): object {
  return {
    log: { loglevel: 'warning', access: '' },
    inbounds: [
      {
        tag: 'vmess-in',
        listen: options.listen,
        port: options.port,
        protocol: 'vmess',
        settings: { clients: [{ id: options.id, alterId: 0, email: 'default@tsray' }] },
      },
    ],
    outbounds: [
      { tag: 'direct', protocol: 'freedom' },
      { tag: 'block', protocol: 'blackhole' },
    ],
    // A server started without a config is for the internet: tunnels do not reach this machine's
    // loopback, its private networks or link-local addresses.
    routing: { rules: [{ type: 'field', ip: ['geoip:private'], outboundTag: 'block' }] },
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

/** How to connect: the vmess:// link (v2rayN form) and the matching client outbound JSON. */
export function connectionInstructions(options: { id: string; address: string; port: number }): string {
  const link = {
    remark: 'tsray',
    address: options.address,
    port: options.port,
    id: options.id,
    alterId: 0,
    security: 'auto' as const,
    network: 'tcp' as const,
    headerType: 'none',
    host: '',
    path: '',
    tls: false,
  }
  const outbound = vmessLinkToOutbound(link)
  return [
    `tsray VMess server on port ${options.port} (AEAD header, security auto)`,
    `user id: ${options.id}`,
    '',
    'Share link (v2rayN, V2RayNG, Shadowrocket, …):',
    `  ${formatVmessLink(link)}`,
    '',
    'Client outbound for a V2Ray / Xray / tsray config:',
    JSON.stringify({ ...outbound, tag: 'proxy' }, null, 2)
      .split('\n')
      .map((line) => `  ${line}`)
      .join('\n'),
    '',
  ].join('\n')
}
