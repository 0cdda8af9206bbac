import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import { TransportError } from '../errors.js'
import type { Logger } from '../types.js'

/** The path that serves the metrics; every other path is a 404. */
export const METRICS_PATH = '/metrics'

/** An HTTP endpoint for Prometheus: `listen` binds it (resolving with the port), `close` stops it. */
export interface MetricsServer {
  listen(): Promise<number>
  close(): Promise<void>
}

/**
 * Serves `registry` in Prometheus text format at `GET /metrics` (HEAD too) on `address:port`.
 * @example
 * const server = createMetricsServer(metrics.registry, { address: '127.0.0.1', port: 9100, logger })
 * await server.listen()
 */
export function createMetricsServer(
  registry: Registry,
  options: { address: string; port: number; logger: Logger },
): MetricsServer {
  const { address, port, logger } = options
  const where = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
  const server = createServer({ requestTimeout: 10_000 }, (request, response) => {
    respond(registry, request, response).catch((error: unknown) => {
      logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'cannot collect metrics')
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' })
      response.end()
    })
  })
  server.on('error', (error: NodeJS.ErrnoException) => {
    logger.error({ err: error.code ?? error.message, listen: where }, 'metrics endpoint failed')
  })
  server.on('clientError', (_error, socket) => socket.destroy())
  return {
    listen: () =>
      new Promise((resolve, reject) => {
        const onError = (error: NodeJS.ErrnoException): void => {
          const reason = error.code === 'EADDRINUSE' ? 'the port is in use' : error.message
          reject(
            new TransportError(error.code ?? 'ELISTEN', `Cannot serve metrics on ${where}: ${reason}`, {
              cause: error,
            }),
          )
        }
        server.once('error', onError)
        server.listen(port, address, () => {
          server.off('error', onError)
          const bound = server.address()
          resolve(typeof bound === 'object' && bound !== null ? bound.port : port)
        })
      }),
    close: () =>
      new Promise((resolve) => {
        if (!server.listening) {
          resolve()
          return
        }
        server.close(() => resolve())
        // A scraper's keep-alive connection would hold close() open.
        server.closeAllConnections()
      }),
  }
}

async function respond(
  registry: Registry,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const path = (request.url ?? '').split('?')[0]
  if (path !== METRICS_PATH) {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    return
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end()
    return
  }
  const body = await registry.metrics()
  response.writeHead(200, { 'content-type': registry.contentType })
  response.end(request.method === 'HEAD' ? undefined : body)
}
