// The API's messages, written from V2Ray's and Xray's published definitions: package names, field
// numbers and types are the wire contract; both cores use the same numbers under their two packages.
import { bytesField, numberField, ProtoWriter, readFields, repeatedBytes, stringField } from './proto-wire.js'

/** The two package prefixes every service and message is known by. */
export const API_DIALECTS = {
  v2ray: { app: 'v2ray.core.app', common: 'v2ray.core.common', proxy: 'v2ray.core.proxy' },
  xray: { app: 'xray.app', common: 'xray.common', proxy: 'xray.proxy' },
} as const

/** Which core's names a call came in under: errors are worded as that core words them. */
export type ApiDialect = keyof typeof API_DIALECTS

/** `common.serial.TypedMessage`: type = 1 (full message name), value = 2 (its bytes). */
export interface TypedMessage {
  readonly type: string
  readonly value: Buffer
}

export function decodeTypedMessage(bytes: Buffer): TypedMessage {
  const fields = readFields(bytes)
  return { type: stringField(fields, 1), value: bytesField(fields, 2) }
}

export function encodeTypedMessage(message: TypedMessage): Buffer {
  return new ProtoWriter().string(1, message.type).bytes(2, message.value).finish()
}

/** `common.protocol.User`: level = 1, email = 2, account = 3 (TypedMessage). */
export interface ApiUser {
  readonly level: number
  readonly email: string
  readonly account: TypedMessage | undefined
}

export function decodeUser(bytes: Buffer): ApiUser {
  const fields = readFields(bytes)
  const account = fields.has(3) ? decodeTypedMessage(bytesField(fields, 3)) : undefined
  return { level: numberField(fields, 1), email: stringField(fields, 2), account }
}

export function encodeUser(user: ApiUser): Buffer {
  const writer = new ProtoWriter().number(1, user.level).string(2, user.email)
  if (user.account !== undefined) writer.message(3, encodeTypedMessage(user.account))
  return writer.finish()
}

/** `proxy.vmess.Account`: id = 1, alter_id = 2 (V2Ray only), security_settings = 3, tests_enabled = 4. */
export interface VmessAccount {
  readonly id: string
  readonly alterId: number
}

export function decodeVmessAccount(bytes: Buffer): VmessAccount {
  const fields = readFields(bytes)
  return { id: stringField(fields, 1), alterId: numberField(fields, 2) }
}

export function encodeVmessAccount(account: VmessAccount): Buffer {
  return new ProtoWriter().string(1, account.id).number(2, account.alterId).finish()
}

/** `app.proxyman.command.AlterInboundRequest`: tag = 1, operation = 2 (TypedMessage). */
export function decodeAlterInboundRequest(bytes: Buffer): { tag: string; operation: TypedMessage } {
  const fields = readFields(bytes)
  return { tag: stringField(fields, 1), operation: decodeTypedMessage(bytesField(fields, 2)) }
}

export function encodeAlterInboundRequest(request: { tag: string; operation: TypedMessage }): Buffer {
  return new ProtoWriter().string(1, request.tag).message(2, encodeTypedMessage(request.operation)).finish()
}

/** `AddUserOperation`: user = 1. */
export function decodeAddUserOperation(bytes: Buffer): ApiUser | undefined {
  const fields = readFields(bytes)
  return fields.has(1) ? decodeUser(bytesField(fields, 1)) : undefined
}

export function encodeAddUserOperation(user: ApiUser): Buffer {
  return new ProtoWriter().message(1, encodeUser(user)).finish()
}

/** `RemoveUserOperation`: email = 1. */
export function decodeRemoveUserOperation(bytes: Buffer): string {
  return stringField(readFields(bytes), 1)
}

export function encodeRemoveUserOperation(email: string): Buffer {
  return new ProtoWriter().string(1, email).finish()
}

/** `GetInboundUserRequest` (Xray): tag = 1, email = 2. */
export function decodeInboundUserRequest(bytes: Buffer): { tag: string; email: string } {
  const fields = readFields(bytes)
  return { tag: stringField(fields, 1), email: stringField(fields, 2) }
}

export function encodeInboundUserRequest(request: { tag: string; email?: string }): Buffer {
  return new ProtoWriter()
    .string(1, request.tag)
    .string(2, request.email ?? '')
    .finish()
}

/** `GetInboundUserResponse` (Xray): users = 1 (repeated User). */
export function encodeInboundUsersResponse(users: readonly ApiUser[]): Buffer {
  const writer = new ProtoWriter()
  for (const user of users) writer.message(1, encodeUser(user))
  return writer.finish()
}

export function decodeInboundUsersResponse(bytes: Buffer): ApiUser[] {
  return repeatedBytes(readFields(bytes), 1).map(decodeUser)
}

/** `GetInboundUsersCountResponse` (Xray): count = 1 (int64). */
export function encodeCountResponse(count: number): Buffer {
  return new ProtoWriter().number(1, count).finish()
}

export function decodeCountResponse(bytes: Buffer): number {
  return numberField(readFields(bytes), 1)
}

/** `app.stats.command.GetStatsRequest`: name = 1, reset = 2. */
export function decodeGetStatsRequest(bytes: Buffer): { name: string; reset: boolean } {
  const fields = readFields(bytes)
  return { name: stringField(fields, 1), reset: numberField(fields, 2) !== 0 }
}

export function encodeGetStatsRequest(request: { name: string; reset?: boolean }): Buffer {
  return new ProtoWriter()
    .string(1, request.name)
    .number(2, request.reset ?? false)
    .finish()
}

/** `QueryStatsRequest`: pattern = 1, reset = 2 (V2Ray 5's patterns = 3 and regexp = 4 are not read). */
export function decodeQueryStatsRequest(bytes: Buffer): { pattern: string; reset: boolean } {
  const fields = readFields(bytes)
  return { pattern: stringField(fields, 1), reset: numberField(fields, 2) !== 0 }
}

export function encodeQueryStatsRequest(request: { pattern: string; reset?: boolean }): Buffer {
  return new ProtoWriter()
    .string(1, request.pattern)
    .number(2, request.reset ?? false)
    .finish()
}

/** `Stat`: name = 1, value = 2 (int64). */
export interface Stat {
  readonly name: string
  readonly value: number
}

function encodeStat(stat: Stat): Buffer {
  return new ProtoWriter().string(1, stat.name).number(2, stat.value).finish()
}

function decodeStat(bytes: Buffer): Stat {
  const fields = readFields(bytes)
  return { name: stringField(fields, 1), value: numberField(fields, 2) }
}

/** `GetStatsResponse`: stat = 1. */
export function encodeGetStatsResponse(stat: Stat): Buffer {
  return new ProtoWriter().message(1, encodeStat(stat)).finish()
}

export function decodeGetStatsResponse(bytes: Buffer): Stat {
  return decodeStat(bytesField(readFields(bytes), 1))
}

/** `QueryStatsResponse`: stat = 1 (repeated). */
export function encodeQueryStatsResponse(stats: readonly Stat[]): Buffer {
  const writer = new ProtoWriter()
  for (const stat of stats) writer.message(1, encodeStat(stat))
  return writer.finish()
}

export function decodeQueryStatsResponse(bytes: Buffer): Stat[] {
  return repeatedBytes(readFields(bytes), 1).map(decodeStat)
}

/** `SysStatsResponse`, fields 1–10 in this order (Go runtime names; src/api/stats-service.ts maps Node's figures). */
export interface SysStats {
  readonly numGoroutine: number
  readonly numGC: number
  readonly alloc: number
  readonly totalAlloc: number
  readonly sys: number
  readonly mallocs: number
  readonly frees: number
  readonly liveObjects: number
  readonly pauseTotalNs: number
  readonly uptime: number
}

const SYS_STATS_FIELDS = [
  'numGoroutine',
  'numGC',
  'alloc',
  'totalAlloc',
  'sys',
  'mallocs',
  'frees',
  'liveObjects',
  'pauseTotalNs',
  'uptime',
] as const satisfies readonly (keyof SysStats)[]

export function encodeSysStatsResponse(stats: SysStats): Buffer {
  const writer = new ProtoWriter()
  SYS_STATS_FIELDS.forEach((key, index) => writer.number(index + 1, stats[key]))
  return writer.finish()
}

export function decodeSysStatsResponse(bytes: Buffer): SysStats {
  const fields = readFields(bytes)
  const entries = SYS_STATS_FIELDS.map((key, index) => [key, numberField(fields, index + 1)] as const)
  return Object.fromEntries(entries) as unknown as SysStats
}

/** `GetStatsOnlineIpListResponse` (Xray): name = 1, ips = 2 (map<string, int64>: entries key = 1, value = 2). */
export function encodeOnlineIpListResponse(name: string, ips: ReadonlyMap<string, number>): Buffer {
  const writer = new ProtoWriter().string(1, name)
  for (const [ip, lastSeen] of ips)
    writer.message(2, new ProtoWriter().string(1, ip).number(2, lastSeen).finish())
  return writer.finish()
}

export function decodeOnlineIpListResponse(bytes: Buffer): { name: string; ips: Map<string, number> } {
  const fields = readFields(bytes)
  const ips = new Map<string, number>()
  for (const entry of repeatedBytes(fields, 2)) {
    const pair = readFields(entry)
    ips.set(stringField(pair, 1), numberField(pair, 2))
  }
  return { name: stringField(fields, 1), ips }
}

/** `GetAllOnlineUsersResponse` (Xray): users = 1 (repeated string). */
export function encodeStringList(values: readonly string[]): Buffer {
  const writer = new ProtoWriter()
  for (const value of values) writer.bytes(1, Buffer.from(value, 'utf8'), { keepEmpty: true })
  return writer.finish()
}

export function decodeStringList(bytes: Buffer): string[] {
  return repeatedBytes(readFields(bytes), 1).map((value) => value.toString('utf8'))
}

/** `GetUsersStatsRequest` (Xray): include_traffic = 1, reset = 2. */
export function decodeUsersStatsRequest(bytes: Buffer): { includeTraffic: boolean; reset: boolean } {
  const fields = readFields(bytes)
  return { includeTraffic: numberField(fields, 1) !== 0, reset: numberField(fields, 2) !== 0 }
}

export function encodeUsersStatsRequest(request: { includeTraffic?: boolean; reset?: boolean }): Buffer {
  return new ProtoWriter()
    .number(1, request.includeTraffic ?? false)
    .number(2, request.reset ?? false)
    .finish()
}

/** `UserStat`: email = 1, ips = 2 (OnlineIPEntry: ip = 1, last_seen = 2), traffic = 3 (uplink = 1, downlink = 2). */
export interface UserStat {
  readonly email: string
  readonly ips: readonly { ip: string; lastSeen: number }[]
  readonly traffic?: { uplink: number; downlink: number }
}

/** `GetUsersStatsResponse`: users = 1 (repeated UserStat). */
export function encodeUsersStatsResponse(users: readonly UserStat[]): Buffer {
  const writer = new ProtoWriter()
  for (const user of users) {
    const entry = new ProtoWriter().string(1, user.email)
    for (const ip of user.ips)
      entry.message(2, new ProtoWriter().string(1, ip.ip).number(2, ip.lastSeen).finish())
    if (user.traffic !== undefined)
      entry.message(
        3,
        new ProtoWriter().number(1, user.traffic.uplink).number(2, user.traffic.downlink).finish(),
      )
    writer.message(1, entry.finish())
  }
  return writer.finish()
}

export function decodeUsersStatsResponse(bytes: Buffer): UserStat[] {
  return repeatedBytes(readFields(bytes), 1).map((entry) => {
    const fields = readFields(entry)
    const ips = repeatedBytes(fields, 2).map((ip) => {
      const pair = readFields(ip)
      return { ip: stringField(pair, 1), lastSeen: numberField(pair, 2) }
    })
    const traffic = fields.has(3) ? readFields(bytesField(fields, 3)) : undefined
    return {
      email: stringField(fields, 1),
      ips,
      ...(traffic !== undefined
        ? { traffic: { uplink: numberField(traffic, 1), downlink: numberField(traffic, 2) } }
        : {}),
    }
  })
}
