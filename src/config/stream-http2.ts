// The settings of the transports that run over HTTP/2: `httpSettings` (h2: V2Ray 4.34's HTTPConfig, with
// Xray's `method`) and `grpcSettings` / v2fly's `gunSettings` (Xray's GRPCConfig; v2fly's gun reads
// `serviceName` only). transport/h2.ts and transport/grpc.ts take the results as they are.
import { z } from 'zod'
import { ignored } from './keys.js'
import { describeValue } from './paths.js'
import { fail, Failure, leaf, readStringList } from './readers.js'
import type { GrpcConfig, H2Config } from './types.js'

/** V2Ray's GetNormalizedPath: "" is "/", and a path gets a leading "/". */
export function normaliseH2Path(path: string): string {
  if (path === '') return '/'
  return path.startsWith('/') ? path : `/${path}`
}

/** The request method Xray's h2 client sends when `method` is empty (V2Ray always sends it). */
export const DEFAULT_H2_METHOD = 'PUT'

const TOKEN_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const VISIBLE_PATTERN = /^[\x21-\x7e]+$/
const NOT_PINGED = 'tsray does not ping idle HTTP/2 connections'

/** An optional string matching `pattern` ("" when absent or empty). */
function textReader(what: string, pattern: RegExp) {
  return (value: unknown): string | Failure => {
    if (value === undefined) return ''
    if (typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
    return value === '' || pattern.test(value) ? value : fail(`${describeValue(value)} is not ${what}`)
  }
}

function readFlag(value: unknown): boolean | Failure {
  return value === undefined || typeof value === 'boolean'
    ? value === true
    : fail(`${describeValue(value)} is not true or false`)
}

/** `host`: a list or one comma-separated string (V2Ray's StringList) of names sent as `:authority`. */
function readH2Hosts(value: unknown): string[] | Failure {
  if (value === undefined) return []
  const list = readStringList(value)
  if (list instanceof Failure) return list
  const bad = list.find((host) => !VISIBLE_PATTERN.test(host))
  return bad === undefined ? list : fail(`${describeValue(bad)} is not a host name`)
}

/** `httpSettings`. */
export const httpSettingsSchema = z
  .object({
    host: leaf(readH2Hosts),
    path: leaf(textReader('a request path (no spaces or control characters)', VISIBLE_PATTERN)),
    method: leaf(textReader('an HTTP method', TOKEN_PATTERN)),
    headers: ignored('tsray sends no extra h2 request headers'),
    read_idle_timeout: ignored(NOT_PINGED),
    health_check_timeout: ignored(NOT_PINGED),
  })
  .transform((settings): H2Config => ({
    hosts: settings.host,
    path: normaliseH2Path(settings.path),
    method: settings.method === '' ? DEFAULT_H2_METHOD : settings.method,
  }))

/** `grpcSettings` (and v2fly's `gunSettings`). */
export const grpcSettingsSchema = z
  .object({
    serviceName: leaf(textReader('a service name (no spaces or control characters)', VISIBLE_PATTERN)),
    multiMode: leaf(readFlag),
    authority: leaf(textReader('a host name', VISIBLE_PATTERN)),
    user_agent: leaf(textReader('a user agent (no control characters)', /^[\x20-\x7e]+$/)),
    idle_timeout: ignored(NOT_PINGED),
    health_check_timeout: ignored(NOT_PINGED),
    permit_without_stream: ignored(NOT_PINGED),
    initial_windows_size: ignored('tsray sets its own HTTP/2 windows'),
  })
  .transform((settings): GrpcConfig => ({
    serviceName: settings.serviceName,
    multiMode: settings.multiMode,
    authority: settings.authority === '' ? undefined : settings.authority,
    userAgent: settings.user_agent === '' ? undefined : settings.user_agent,
  }))
