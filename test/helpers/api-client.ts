import * as grpc from '@grpc/grpc-js'
import { apiServiceName } from '../../src/api/api-server.js'
import {
  API_DIALECTS,
  type ApiDialect,
  decodeCountResponse,
  decodeGetStatsResponse,
  decodeInboundUsersResponse,
  decodeOnlineIpListResponse,
  decodeQueryStatsResponse,
  decodeStringList,
  decodeSysStatsResponse,
  decodeUsersStatsResponse,
  decodeVmessAccount,
  encodeAddUserOperation,
  encodeAlterInboundRequest,
  encodeGetStatsRequest,
  encodeInboundUserRequest,
  encodeQueryStatsRequest,
  encodeRemoveUserOperation,
  encodeUsersStatsRequest,
  encodeVmessAccount,
} from '../../src/api/messages.js'

/** A failed call: its gRPC status code and text. */
export class ApiFailure extends Error {
  readonly code: number
  readonly details: string

  constructor(code: number, details: string) {
    super(`${code}: ${details}`)
    this.code = code
    this.details = details
  }
}

type Call = (request: Buffer) => Promise<Buffer>

/**
 * A client of the V2Ray/Xray API built from tsray's own message definitions, making the calls the
 * panels make (3x-ui, Marzban, PasarGuard: AlterInbound with Add/RemoveUserOperation, QueryStats,
 * GetStats, the online-user calls), under either core's package names.
 */
export function apiClient(port: number, dialect: ApiDialect) {
  const address = `127.0.0.1:${port}`
  const clients: grpc.Client[] = []
  const service = (name: 'StatsService' | 'HandlerService', methods: string[]): Record<string, Call> => {
    const client = new grpc.Client(address, grpc.credentials.createInsecure())
    clients.push(client)
    const serviceName = apiServiceName(dialect, name)
    return Object.fromEntries(
      methods.map((method) => [
        method,
        (request: Buffer) =>
          new Promise<Buffer>((resolve, reject) => {
            client.makeUnaryRequest(
              `/${serviceName}/${method}`,
              (bytes: Buffer) => bytes,
              (bytes: Buffer) => bytes,
              request,
              new grpc.Metadata(),
              { deadline: new Date(Date.now() + 5_000) },
              (error, response) =>
                error === null
                  ? resolve(response ?? Buffer.alloc(0))
                  : reject(new ApiFailure(error.code, error.details)),
            )
          }),
      ]),
    )
  }
  const stats = service('StatsService', [
    'GetStats',
    'QueryStats',
    'GetSysStats',
    'GetStatsOnline',
    'GetStatsOnlineIpList',
    'GetAllOnlineUsers',
    'GetUsersStats',
  ])
  const handler = service('HandlerService', [
    'AlterInbound',
    'GetInboundUsers',
    'GetInboundUsersCount',
    'AddInbound',
  ])
  const names = API_DIALECTS[dialect]
  const operation = (name: string, value: Buffer) => ({
    type: `${names.app}.proxyman.command.${name}`,
    value,
  })
  return {
    addUser: (tag: string, user: { email: string; id: string; level?: number; alterId?: number }) =>
      handler.AlterInbound!(
        encodeAlterInboundRequest({
          tag,
          operation: operation(
            'AddUserOperation',
            encodeAddUserOperation({
              level: user.level ?? 0,
              email: user.email,
              account: {
                type: `${names.proxy}.vmess.Account`,
                value: encodeVmessAccount({ id: user.id, alterId: user.alterId ?? 0 }),
              },
            }),
          ),
        }),
      ),
    removeUser: (tag: string, email: string) =>
      handler.AlterInbound!(
        encodeAlterInboundRequest({
          tag,
          operation: operation('RemoveUserOperation', encodeRemoveUserOperation(email)),
        }),
      ),
    inboundUsers: async (tag: string, email?: string) =>
      decodeInboundUsersResponse(
        await handler.GetInboundUsers!(
          encodeInboundUserRequest({ tag, ...(email !== undefined ? { email } : {}) }),
        ),
      ).map((user) => ({
        email: user.email,
        level: user.level,
        id: decodeVmessAccount(user.account!.value).id,
        type: user.account!.type,
      })),
    inboundUsersCount: async (tag: string) =>
      decodeCountResponse(await handler.GetInboundUsersCount!(encodeInboundUserRequest({ tag }))),
    addInbound: () => handler.AddInbound!(Buffer.alloc(0)),
    getStats: async (name: string, reset = false) =>
      decodeGetStatsResponse(await stats.GetStats!(encodeGetStatsRequest({ name, reset }))),
    queryStats: async (pattern: string, reset = false) =>
      decodeQueryStatsResponse(await stats.QueryStats!(encodeQueryStatsRequest({ pattern, reset }))),
    sysStats: async () => decodeSysStatsResponse(await stats.GetSysStats!(Buffer.alloc(0))),
    statsOnline: async (name: string) =>
      decodeGetStatsResponse(await stats.GetStatsOnline!(encodeGetStatsRequest({ name }))),
    onlineIpList: async (name: string) =>
      decodeOnlineIpListResponse(await stats.GetStatsOnlineIpList!(encodeGetStatsRequest({ name }))),
    allOnlineUsers: async () => decodeStringList(await stats.GetAllOnlineUsers!(Buffer.alloc(0))),
    usersStats: async (includeTraffic: boolean, reset = false) =>
      decodeUsersStatsResponse(
        await stats.GetUsersStats!(encodeUsersStatsRequest({ includeTraffic, reset })),
      ),
    close: () => clients.forEach((client) => client.close()),
  }
}

/** The failure of `call`, or an assertion error when it succeeded. */
export async function failureOf(call: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await call
  } catch (error) {
    if (!(error instanceof ApiFailure)) throw error
    return { code: error.code, details: error.details }
  }
  throw new Error('the call succeeded but a failure was expected')
}
