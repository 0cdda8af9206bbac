import type { Cipher, Decipher } from 'node:crypto'
import type { BodyParams, Transfer } from './body-framing.js'
import { Command } from './constants.js'
import type { RequestHeader } from './request-header.js'
import { deriveResponseKeys, type HeaderKind } from './response-header.js'

/** UDP bodies are packets, one chunk each; TCP and Mux.Cool bodies are streams (docs/protocol.md §8). */
export function transferOf(header: RequestHeader): Transfer {
  return header.command === Command.Udp ? 'packet' : 'stream'
}

/** Body parameters of the request direction (client → server) (docs/protocol.md §7.1). */
export function requestBodyParams(header: RequestHeader): BodyParams {
  return {
    security: header.security,
    options: header.options,
    transfer: transferOf(header),
    key: header.bodyKey,
    iv: header.bodyIv,
    requestKey: header.bodyKey,
    requestIv: header.bodyIv,
  }
}

/** Body parameters of the response direction; `cfb` continues a legacy response header's stream. */
export function responseBodyParams(
  header: RequestHeader,
  kind: HeaderKind,
  cfb?: Cipher | Decipher,
): BodyParams {
  const keys = deriveResponseKeys(kind, header.bodyKey, header.bodyIv)
  return {
    security: header.security,
    options: header.options,
    transfer: transferOf(header),
    key: keys.key,
    iv: keys.iv,
    requestKey: header.bodyKey,
    requestIv: header.bodyIv,
    ...(cfb !== undefined && kind === 'legacy' ? { cfb } : {}),
  }
}
