// `httpSettings` (the h2 transport, V2Ray 4.34 infra/conf HTTPConfig with Xray's `method`) and `grpcSettings`
// (Xray's GRPCConfig; v2fly's gun reads `serviceName` only). The zod schemas are made from the loader's own
// leaf readers and key rules, handed in by schema.ts, so that the two files do not import each other.
import { z } from 'zod'

/** `httpSettings`, normalised: hosts (empty: V2Ray's "www.example.com"), a path starting with "/", the method. */
export interface H2Config {
  readonly hosts: readonly string[]
  readonly path: string
  readonly method: string
}

/** `grpcSettings`, normalised (transport/grpc.ts derives the request paths from `serviceName`). */
export interface GrpcConfig {
  readonly serviceName: string
  readonly multiMode: boolean
  readonly authority: string | undefined
  readonly userAgent: string | undefined
}

/** The loader's building blocks these schemas use; `F` is its failure type. */
export interface SchemaTools<F> {
  readonly leaf: <T>(read: (value: unknown) => T | F) => z.ZodType<T>
  readonly ignored: (reason: string) => z.ZodType<unknown>
  readonly fail: (message: string) => F
  readonly isFailure: (value: unknown) => value is F
  readonly describeValue: (value: unknown) => string
  readonly readStringList: (value: unknown) => string[] | F
}

/** V2Ray's GetNormalizedPath: "" is "/", and a path gets a leading "/". */
export function normaliseH2Path(path: string): string {
  if (path === '') return '/'
  return path.startsWith('/') ? path : `/${path}`
}

/** The request method Xray's h2 client sends when `method` is empty. */
export const DEFAULT_H2_METHOD = 'PUT'

const TOKEN_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const PATH_PATTERN = /^[\x21-\x7e]*$/
const HOST_PATTERN = /^[\x21-\x7e]+$/

/** The `httpSettings` and `grpcSettings` schemas, built with the loader's tools. */
export function h2GrpcSettingsSchemas<F>(tools: SchemaTools<F>): {
  httpSettings: z.ZodType<H2Config>
  grpcSettings: z.ZodType<GrpcConfig>
} {
  const { leaf, fail, isFailure, describeValue } = tools
  const text =
    (what: string, pattern: RegExp) =>
    (value: unknown): string | F => {
      if (value === undefined) return ''
      if (typeof value !== 'string') return fail(`${describeValue(value)} is not a string`)
      return value === '' || pattern.test(value) ? value : fail(`${describeValue(value)} is not ${what}`)
    }
  const flag = (value: unknown): boolean | F =>
    value === undefined || typeof value === 'boolean'
      ? value === true
      : fail(`${describeValue(value)} is not true or false`)
  const hosts = (value: unknown): string[] | F => {
    if (value === undefined) return []
    const list = tools.readStringList(value)
    if (isFailure(list)) return list
    const bad = list.find((host) => !HOST_PATTERN.test(host))
    return bad === undefined ? list : fail(`${describeValue(bad)} is not a host name`)
  }
  const notPinged = 'tsray does not ping idle HTTP/2 connections'

  const httpSettings = z
    .object({
      host: leaf(hosts),
      path: leaf(text('a request path (no spaces or control characters)', PATH_PATTERN)),
      method: leaf(text('an HTTP method', TOKEN_PATTERN)),
      headers: tools.ignored('tsray sends no extra h2 request headers'),
      read_idle_timeout: tools.ignored(notPinged),
      health_check_timeout: tools.ignored(notPinged),
    })
    .transform((settings): H2Config => ({
      hosts: settings.host,
      path: normaliseH2Path(settings.path),
      method: settings.method === '' ? DEFAULT_H2_METHOD : settings.method,
    }))

  const grpcSettings = z
    .object({
      serviceName: leaf(text('a service name (no spaces or control characters)', PATH_PATTERN)),
      multiMode: leaf(flag),
      authority: leaf(text('a host name', HOST_PATTERN)),
      user_agent: leaf(text('a user agent (no control characters)', /^[\x20-\x7e]*$/)),
      idle_timeout: tools.ignored(notPinged),
      health_check_timeout: tools.ignored(notPinged),
      permit_without_stream: tools.ignored(notPinged),
      initial_windows_size: tools.ignored('tsray sets its own HTTP/2 windows'),
    })
    .transform((settings): GrpcConfig => ({
      serviceName: settings.serviceName,
      multiMode: settings.multiMode,
      authority: settings.authority === '' ? undefined : settings.authority,
      userAgent: settings.user_agent === '' ? undefined : settings.user_agent,
    }))

  return { httpSettings, grpcSettings }
}
