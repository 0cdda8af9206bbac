// `tcpSettings`: the HTTP header obfuscation, and the HTTP head words and headers other transports reuse.
import { z } from 'zod'
import { describeValue } from './paths.js'
import { fail, Failure, leaf, type LeafProblem, optional, readString, readStringList } from './readers.js'
import { type HttpHeaderConfig, type HttpHeaderField } from './types.js'

export function readTcpHeaderType(value: unknown): 'none' | 'http' | Failure {
  const type = typeof value === 'string' ? value.toLowerCase() : value
  if (type === undefined || type === 'none') return 'none'
  if (type === 'http') return 'http'
  return fail(`${describeValue(value)} is not a TCP header type (supported: "none", "http")`)
}

export function readOffOnly(feature: string) {
  return (value: unknown): false | Failure => {
    if (value === undefined || value === false) return false
    return value === true
      ? fail(`${feature} is not supported yet`)
      : fail(`${describeValue(value)} is not true or false`)
  }
}

// Header names and values are written into HTTP heads as they are: a line break would let a config inject lines.
const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const HEADER_VALUE_PATTERN = /^[\t\x20-\x7e\x80-\xff]*$/

export function readHeaderName(value: unknown): string | Failure {
  const name = readString(value)
  if (name instanceof Failure) return name
  return HEADER_NAME_PATTERN.test(name) ? name : fail(`${describeValue(value)} is not an HTTP header name`)
}

export function readHeaderValue(value: unknown): string | Failure {
  const text = readString(value)
  if (text instanceof Failure) return text
  return HEADER_VALUE_PATTERN.test(text)
    ? text
    : fail(`${describeValue(value)} cannot be an HTTP header value (line break or control character)`)
}

/** A word of a request or status line (method, version, path, status): no spaces or control characters. */
function readHeadWord(value: unknown): string | Failure {
  const text = readString(value)
  if (text instanceof Failure) return text
  return /^[\x21-\x7e]*$/.test(text)
    ? text
    : fail(`${describeValue(value)} cannot appear in an HTTP start line`)
}

/** `headers` of the HTTP header obfuscation: name → a value or a list, written in name order as Go sorts map keys. */
function readObfuscationHeaders(value: unknown): HttpHeaderField[] | Failure {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(`${describeValue(value)} is not an object of header names`)
  }
  const problems: LeafProblem[] = []
  const fields: HttpHeaderField[] = []
  for (const name of Object.keys(value).sort()) {
    const item = (value as Record<string, unknown>)[name]
    const nameProblem = readHeaderName(name)
    const values = item === undefined || item === null ? fail('is empty') : readStringList(item)
    if (nameProblem instanceof Failure)
      problems.push({ message: `${describeValue(name)} is not an HTTP header name`, path: [name] })
    if (values instanceof Failure) {
      problems.push(...values.problems.map((problem) => ({ ...problem, path: [name, ...problem.path] })))
      continue
    }
    values.forEach((text, index) => {
      const checked = readHeaderValue(text)
      if (checked instanceof Failure)
        problems.push({ message: checked.problems[0]?.message ?? '', path: [name, index] })
    })
    fields.push({ name, values })
  }
  return problems.length === 0 ? fields : new Failure(problems)
}

/** `wsSettings.headers` / `httpupgradeSettings.headers`: name → one value. */
export function readRequestHeaders(value: unknown): [string, string][] | Failure {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(`${describeValue(value)} is not an object of header names`)
  }
  const problems: LeafProblem[] = []
  const headers: [string, string][] = []
  for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
    const checked = readHeaderValue(item)
    if (!HEADER_NAME_PATTERN.test(name)) {
      problems.push({ message: `${describeValue(name)} is not an HTTP header name`, path: [name] })
    } else if (checked instanceof Failure) {
      problems.push({ message: checked.problems[0]?.message ?? '', path: [name] })
    } else headers.push([name, checked])
  }
  return problems.length === 0 ? headers : new Failure(problems)
}

/** A list of start-line words (paths); a plain string is split at commas, as V2Ray's StringList does. */
function readHeadWords(value: unknown): string[] | Failure {
  const list = readStringList(value)
  if (list instanceof Failure) return list
  const problems = list.flatMap((entry, index) => {
    const checked = readHeadWord(entry)
    return checked instanceof Failure
      ? checked.problems.map((problem) => ({ ...problem, path: [index] }))
      : []
  })
  return problems.length === 0 ? list : new Failure(problems)
}

/** V2Ray's default fake request headers (AuthenticatorRequest.Build). */
const DEFAULT_OBFUSCATION_REQUEST_HEADERS: readonly HttpHeaderField[] = [
  { name: 'Host', values: ['www.baidu.com', 'www.bing.com'] },
  {
    name: 'User-Agent',
    values: [
      'Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/53.0.2785.143 Safari/537.36',
      'Mozilla/5.0 (iPhone; CPU iPhone OS 10_0_2 like Mac OS X) AppleWebKit/601.1 (KHTML, like Gecko) CriOS/53.0.2785.109 Mobile/14A456 Safari/601.1.46',
    ],
  },
  { name: 'Accept-Encoding', values: ['gzip, deflate'] },
  { name: 'Connection', values: ['keep-alive'] },
  { name: 'Pragma', values: ['no-cache'] },
]

/** V2Ray's default fake response headers (AuthenticatorResponse.Build). */
const DEFAULT_OBFUSCATION_RESPONSE_HEADERS: readonly HttpHeaderField[] = [
  { name: 'Content-Type', values: ['application/octet-stream', 'video/mpeg'] },
  { name: 'Transfer-Encoding', values: ['chunked'] },
  { name: 'Connection', values: ['keep-alive'] },
  { name: 'Pragma', values: ['no-cache'] },
  { name: 'Cache-Control', values: ['private', 'no-cache'] },
]

const optionalHeadWord = leaf(optional(readHeadWord, ''))

const obfuscationRequestSchema = z
  .object({
    version: optionalHeadWord,
    method: optionalHeadWord,
    path: leaf(optional(readHeadWords, [])),
    headers: leaf(optional(readObfuscationHeaders, [])),
  })
  .transform((request): HttpHeaderConfig['request'] => ({
    version: request.version === '' ? '1.1' : request.version,
    method: request.method === '' ? 'GET' : request.method,
    paths: request.path.length === 0 ? ['/'] : request.path,
    headers: request.headers.length === 0 ? DEFAULT_OBFUSCATION_REQUEST_HEADERS : request.headers,
  }))

const obfuscationResponseSchema = z
  .object({
    version: optionalHeadWord,
    status: optionalHeadWord,
    reason: leaf(optional(readHeaderValue, '')),
    headers: leaf(optional(readObfuscationHeaders, [])),
  })
  .transform((response): HttpHeaderConfig['response'] => ({
    version: response.version === '' ? '1.1' : response.version,
    status: response.status === '' ? '200' : response.status,
    reason: response.reason === '' ? 'OK' : response.reason,
    headers: response.headers.length === 0 ? DEFAULT_OBFUSCATION_RESPONSE_HEADERS : response.headers,
  }))

/** `tcpSettings`: the header obfuscation, undefined for type "none". */
export const tcpSettingsSchema = z
  .object({
    header: z
      .object({
        type: leaf(readTcpHeaderType),
        request: obfuscationRequestSchema.optional(),
        response: obfuscationResponseSchema.optional(),
      })
      .optional(),
    acceptProxyProtocol: leaf(readOffOnly('the PROXY protocol')),
  })
  .transform((tcp): HttpHeaderConfig | undefined =>
    tcp.header?.type !== 'http'
      ? undefined
      : {
          request: tcp.header.request ?? obfuscationRequestSchema.parse({}),
          response: tcp.header.response ?? obfuscationResponseSchema.parse({}),
        },
  )
