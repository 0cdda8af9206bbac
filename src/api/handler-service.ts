// HandlerService: users added to and removed from VMess inbounds at runtime (AlterInbound with
// AddUserOperation / RemoveUserOperation) and Xray's user listing. Other methods are not served, so
// gRPC answers them UNIMPLEMENTED.
import { ApiCallError, apiErrors, GrpcCode } from './errors.js'
import {
  API_DIALECTS,
  type ApiDialect,
  type ApiUser,
  decodeAddUserOperation,
  decodeAlterInboundRequest,
  decodeInboundUserRequest,
  decodeRemoveUserOperation,
  decodeVmessAccount,
  encodeCountResponse,
  encodeInboundUsersResponse,
  encodeVmessAccount,
} from './messages.js'
import type { ApiMethod } from './stats-service.js'

/** A VMess user as the API sees it. */
export interface ApiVmessUser {
  readonly email: string
  readonly level: number
  readonly id: string
  readonly alterId: number
}

/** The users of one inbound, as the runtime lets the API change them. */
export interface InboundUserControl {
  /** Adds a user; 'exists' when the email is taken, or a reason the account is not usable. */
  add(user: ApiVmessUser): 'exists' | { invalid: string } | undefined
  /** Removes by email (any case). */
  remove(email: string): 'not-found' | 'no-email' | undefined
  /** Every user, or the one with `email`. */
  list(email?: string): ApiVmessUser[]
}

/** Finds an inbound by tag: its user control, 'not-vmess' for an inbound without users, or undefined. */
export type InboundUsersLookup = (tag: string) => InboundUserControl | 'not-vmess' | undefined

const OPERATIONS = ['AddUserOperation', 'RemoveUserOperation'] as const

/** Xray's other HandlerService methods: answered UNIMPLEMENTED in the words of Go's generated stubs. */
const UNSERVED_METHODS = [
  'AddInbound',
  'RemoveInbound',
  'ListInbounds',
  'AddOutbound',
  'RemoveOutbound',
  'AlterOutbound',
  'ListOutbounds',
] as const

function operationOf(type: string): (typeof OPERATIONS)[number] | undefined {
  for (const dialect of Object.values(API_DIALECTS))
    for (const name of OPERATIONS) if (type === `${dialect.app}.proxyman.command.${name}`) return name
  return undefined
}

function isVmessAccount(type: string): boolean {
  return Object.values(API_DIALECTS).some((dialect) => type === `${dialect.proxy}.vmess.Account`)
}

function toApiUser(user: ApiVmessUser, dialect: ApiDialect): ApiUser {
  return {
    level: user.level,
    email: user.email,
    account: {
      type: `${API_DIALECTS[dialect].proxy}.vmess.Account`,
      value: encodeVmessAccount({ id: user.id, alterId: dialect === 'v2ray' ? user.alterId : 0 }),
    },
  }
}

/** The HandlerService methods over the runtime's inbounds. */
export function createHandlerService(lookup: InboundUsersLookup): Record<string, ApiMethod> {
  const control = (tag: string, dialect: ApiDialect): InboundUserControl => {
    const found = lookup(tag)
    if (found === undefined) throw apiErrors.handlerNotFound(dialect, tag)
    if (found === 'not-vmess') throw apiErrors.notUserManager(dialect)
    return found
  }
  const unimplemented = Object.fromEntries(
    UNSERVED_METHODS.map((name): [string, ApiMethod] => [
      name,
      () => {
        throw new ApiCallError(GrpcCode.Unimplemented, `method ${name} not implemented`)
      },
    ]),
  )
  return {
    ...unimplemented,
    AlterInbound(bytes, dialect) {
      const request = decodeAlterInboundRequest(bytes)
      const operation = operationOf(request.operation.type)
      if (operation === undefined) throw apiErrors.unknownOperation(dialect, request.operation.type)
      const inbound = control(request.tag, dialect)
      if (operation === 'RemoveUserOperation') {
        const email = decodeRemoveUserOperation(request.operation.value)
        const refused = inbound.remove(email)
        if (refused === 'no-email') throw apiErrors.emailEmpty(dialect)
        if (refused === 'not-found') throw apiErrors.userNotFound(dialect, email)
        return Buffer.alloc(0)
      }
      const user = decodeAddUserOperation(request.operation.value)
      if (user?.account === undefined || !isVmessAccount(user.account.type))
        throw apiErrors.badUser(
          dialect,
          `the account is ${user?.account?.type ?? 'missing'}, not a VMess account`,
        )
      const account = decodeVmessAccount(user.account.value)
      // V2Ray 4.34 takes UUIDs only; Xray also maps a 1–30-byte string to a UUIDv5, as createUser does.
      if (dialect === 'v2ray' && !/^[0-9a-f]{32}$/i.test(account.id.replaceAll('-', '')))
        throw apiErrors.badUser(dialect, `failed to parse ID > invalid UUID: ${account.id}`)
      const refused = inbound.add({
        email: user.email,
        level: user.level,
        id: account.id,
        alterId: account.alterId,
      })
      if (refused === 'exists') throw apiErrors.userExists(dialect, user.email)
      if (refused !== undefined) throw apiErrors.badUser(dialect, `failed to parse ID > ${refused.invalid}`)
      return Buffer.alloc(0)
    },
    GetInboundUsers(bytes, dialect) {
      const request = decodeInboundUserRequest(bytes)
      const users = control(request.tag, dialect).list(request.email === '' ? undefined : request.email)
      return encodeInboundUsersResponse(users.map((user) => toApiUser(user, dialect)))
    },
    GetInboundUsersCount(bytes, dialect) {
      const request = decodeInboundUserRequest(bytes)
      return encodeCountResponse(control(request.tag, dialect).list().length)
    },
  }
}
