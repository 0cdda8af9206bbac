import type { Duplex } from 'node:stream'
import { TsrayError } from '../errors.js'
import type { VmessOutbound } from '../outbound/vmess.js'
import { createVmessClient, type VmessClientOptions, type VmessServer } from './server-options.js'

/** Where connect() goes through the VMess server, and how. */
export interface ConnectOptions extends VmessClientOptions {
  /** The target's host name or IP address, as the VMess server resolves and dials it. */
  readonly host: string
  readonly port: number
  /** Aborts the connection attempt; after connect() resolved, destroy the stream instead. */
  readonly signal?: AbortSignal
}

/** An Error that says a connect() was aborted through its signal, as Node's own AbortError reads. */
export class ConnectAbortedError extends TsrayError {
  constructor(cause: unknown) {
    super('ABORT_ERR', 'Cannot connect: the operation was aborted', { cause })
    this.name = 'AbortError'
  }
}

/** The TCP context a library connection is logged and routed with (there is no inbound). */
const LIBRARY_CONTEXT = { inboundTag: 'library', source: '', user: '' }

/** Opens a TCP stream to host:port through an already resolved VMess client (the agent and dispatcher). */
export async function openTunnel(
  client: VmessOutbound,
  target: { readonly host: string; readonly port: number; readonly signal?: AbortSignal | undefined },
): Promise<Duplex> {
  const signal = target.signal
  signal?.throwIfAborted()
  const opening = client.dialTcp({ network: 'tcp', host: target.host, port: target.port }, LIBRARY_CONTEXT)
  if (signal === undefined) return opening
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(new ConnectAbortedError(signal.reason))
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([opening, aborted])
  } catch (error) {
    // A stream that opens after the abort has nobody to read it.
    opening.then((stream) => stream.destroy()).catch(() => undefined)
    throw error
  } finally {
    signal.removeEventListener('abort', onAbort!)
  }
}

/**
 * Opens one TCP stream to `host:port` through a VMess server, as `net.connect` would open it directly. It
 * resolves once the transport to the server is up (a server that cannot be reached rejects with a
 * TransportError); the VMess header leaves with the first write. A transfer cut by the server or the
 * network ends in an 'error' (or a 'close' without 'end'), never in a clean 'end'.
 * @example
 * ```ts
 * import { connect } from 'tsray'
 *
 * const socket = await connect('vmess://…', { host: 'example.com', port: 80 })
 * socket.end('GET / HTTP/1.0\r\nHost: example.com\r\n\r\n')
 * for await (const chunk of socket) process.stdout.write(chunk)
 * ```
 */
export async function connect(server: VmessServer, options: ConnectOptions): Promise<Duplex> {
  return openTunnel(createVmessClient(server, options), options)
}
