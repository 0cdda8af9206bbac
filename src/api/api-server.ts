// The gRPC API server: every service under V2Ray's and Xray's package names, on the address the
// config gives (the inbound routed to the API tag, or Xray's api.listen).
import * as grpc from '@grpc/grpc-js'
import type { StatsManager } from '../stats/stats-manager.js'
import type { Logger } from '../types.js'
import { ApiCallError, apiErrors, GrpcCode } from './errors.js'
import { createHandlerService, type InboundUsersLookup } from './handler-service.js'
import { API_DIALECTS, type ApiDialect } from './messages.js'
import { ProtoWireError } from './proto-wire.js'
import { createStatsService, type ApiMethod } from './stats-service.js'

/** Requests above this size are refused by gRPC itself: the API's requests are small. */
export const MAX_API_REQUEST_BYTES = 1024 * 1024

/** The service names of one dialect, e.g. `xray.app.stats.command.StatsService`. */
export function apiServiceName(dialect: ApiDialect, service: 'StatsService' | 'HandlerService'): string {
  const group = service === 'StatsService' ? 'stats' : 'proxyman'
  return `${API_DIALECTS[dialect].app}.${group}.command.${service}`
}

const identity = (bytes: Buffer): Buffer => bytes

/** A service definition whose messages stay bytes: the methods decode and encode them (src/api/messages.ts). */
export function rawServiceDefinition(
  serviceName: string,
  methods: readonly string[],
): grpc.ServiceDefinition {
  return Object.fromEntries(
    methods.map((method) => [
      method,
      {
        path: `/${serviceName}/${method}`,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
        originalName: method,
      },
    ]),
  )
}

/** What the API serves. */
export interface ApiServerOptions {
  readonly listen: { readonly address: string; readonly port: number }
  readonly services: readonly string[]
  readonly stats: StatsManager | undefined
  readonly inbounds: InboundUsersLookup
  readonly logger: Logger
}

/** The API as a listener: `listen` binds and returns the port, `close` shuts it down. */
export function createApiServer(options: ApiServerOptions): {
  listen(): Promise<number>
  close(graceMs: number): Promise<void>
} {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_API_REQUEST_BYTES,
    'grpc.max_concurrent_streams': 64,
  })
  const stopStats: (() => void)[] = []
  const register = (service: 'StatsService' | 'HandlerService', methods: Record<string, ApiMethod>): void => {
    for (const dialect of Object.keys(API_DIALECTS) as ApiDialect[]) {
      const implementation: grpc.UntypedServiceImplementation = {}
      for (const [name, method] of Object.entries(methods)) {
        implementation[name] = (
          call: grpc.ServerUnaryCall<Buffer, Buffer>,
          callback: grpc.sendUnaryData<Buffer>,
        ) => {
          try {
            callback(null, method(call.request, dialect))
          } catch (error) {
            const failure =
              error instanceof ApiCallError
                ? error
                : error instanceof ProtoWireError
                  ? apiErrors.malformed(error.message)
                  : new ApiCallError(GrpcCode.Unknown, error instanceof Error ? error.message : String(error))
            if (!(error instanceof ApiCallError))
              options.logger.warn({ err: failure.message, method: name }, 'API call failed')
            callback({ code: failure.code, details: failure.message })
          }
        }
      }
      server.addService(
        rawServiceDefinition(apiServiceName(dialect, service), Object.keys(methods)),
        implementation,
      )
    }
  }
  if (options.services.includes('StatsService') && options.stats !== undefined) {
    const stats = createStatsService(options.stats)
    stopStats.push(stats.stop)
    register('StatsService', stats.methods)
  }
  if (options.services.includes('HandlerService'))
    register('HandlerService', createHandlerService(options.inbounds))
  const host = options.listen.address.includes(':') ? `[${options.listen.address}]` : options.listen.address
  return {
    listen: () =>
      new Promise((resolve, reject) => {
        server.bindAsync(
          `${host}:${options.listen.port}`,
          grpc.ServerCredentials.createInsecure(),
          (error, port) => (error === null ? resolve(port) : reject(error)),
        )
      }),
    close: (graceMs) =>
      new Promise((resolve) => {
        for (const stop of stopStats) stop()
        const force = setTimeout(() => {
          server.forceShutdown()
          resolve()
        }, graceMs)
        server.tryShutdown(() => {
          clearTimeout(force)
          resolve()
        })
      }),
  }
}
