// Errors as V2Ray 4.34 and Xray word them: panels match on these texts. V2Ray answers every error
// with status UNKNOWN and its package path in front; Xray does the same with shorter paths, except
// the stats lookups, which it answers NOT_FOUND with the bare text.
import type { ApiDialect } from './messages.js'

/** gRPC status codes the API sends (google.golang.org/grpc/codes). */
export const GrpcCode = { Unknown: 2, InvalidArgument: 3, NotFound: 5, Unimplemented: 12 } as const

/** An API call that fails with `code` and the core's text in `details`. */
export class ApiCallError extends Error {
  override readonly name = 'ApiCallError'
  readonly code: number

  constructor(code: number, details: string) {
    super(details)
    this.code = code
  }
}

const PATHS = {
  v2ray: {
    command: 'v2ray.com/core/app/proxyman/command',
    inboundManager: 'v2ray.com/core/app/proxyman/inbound',
    vmess: 'v2ray.com/core/proxy/vmess/inbound',
    vmessAccount: 'v2ray.com/core/proxy/vmess',
    stats: 'v2ray.com/core/app/stats/command',
  },
  xray: {
    command: 'app/proxyman/command',
    inboundManager: 'app/proxyman/inbound',
    vmess: 'proxy/vmess/inbound',
    vmessAccount: 'proxy/vmess',
    stats: 'app/stats/command',
  },
} as const

const unknown = (text: string): ApiCallError => new ApiCallError(GrpcCode.Unknown, text)

/** The errors of each dialect. */
export const apiErrors = {
  handlerNotFound: (dialect: ApiDialect, tag: string) =>
    unknown(
      `${PATHS[dialect].command}: failed to get handler: ${tag} > ${PATHS[dialect].inboundManager}: handler not found: ${tag}`,
    ),
  notUserManager: (dialect: ApiDialect) => unknown(`${PATHS[dialect].command}: proxy is not a UserManager`),
  userExists: (dialect: ApiDialect, email: string) =>
    unknown(`${PATHS[dialect].vmess}: User ${email} already exists.`),
  userNotFound: (dialect: ApiDialect, email: string) =>
    unknown(`${PATHS[dialect].vmess}: User ${email} not found.`),
  emailEmpty: (dialect: ApiDialect) => unknown(`${PATHS[dialect].vmess}: Email must not be empty.`),
  /** `reason` as V2Ray words it after the account's package path, e.g. "failed to parse ID > invalid UUID: x". */
  badUser: (dialect: ApiDialect, reason: string) =>
    unknown(`${PATHS[dialect].command}: failed to parse user > ${PATHS[dialect].vmessAccount}: ${reason}`),
  unknownOperation: (dialect: ApiDialect, type: string) =>
    unknown(`${PATHS[dialect].command}: unknown operation > ${type} is not an operation tsray knows`),
  statNotFound: (dialect: ApiDialect, name: string) =>
    dialect === 'xray'
      ? new ApiCallError(GrpcCode.NotFound, `${name} not found.`)
      : unknown(`${PATHS.v2ray.stats}: ${name} not found.`),
  malformed: (reason: string) =>
    new ApiCallError(GrpcCode.InvalidArgument, `Cannot read the request: ${reason}`),
} as const
