import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/vectors/', import.meta.url))

/** Hex to bytes. */
export const hex = (text: string): Buffer => Buffer.from(text, 'hex')

/** The parsed `vmess-primitives.json` tables. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function loadPrimitives(): Record<string, any[]> {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return
  return JSON.parse(readFileSync(FIXTURES + 'vmess-primitives.json', 'utf8')).primitives
}

/** One whole session of `vmess-sessions.json`; field meanings in test/fixtures/vectors/README.md. */
export interface SessionCase {
  name: string
  inputs: {
    uuid: string
    server_alter_id_count: number
    header: 'aead' | 'legacy'
    alter_index?: number | null
    signing_id?: string
    timestamp: number
    auth_id_random?: string
    connection_nonce?: string
    body_key: string
    body_iv: string
    response_v: number
    security: number
    options: number
    command: number
    address: string
    port: number
    header_padding: string
    request_payloads: string[]
    request_padding: string[]
    response_option: number
    response_payloads: string[]
    response_padding: string[]
  }
  expected: {
    cmd_key: string
    auth_id?: string
    legacy_auth?: string
    legacy_header_iv?: string
    request_header_plain: string
    request_header_wire: string
    request_chunks: string[]
    request_end_chunk: string | null
    response_key: string
    response_iv: string
    response_header_wire: string
    response_chunks: string[]
    response_end_chunk: string | null
  }
}

/** The 39 session cases. */
export function loadSessions(): SessionCase[] {
  const parsed = JSON.parse(readFileSync(FIXTURES + 'vmess-sessions.json', 'utf8')) as {
    cases: SessionCase[]
  }
  return parsed.cases
}

/** A RandomSource that hands out the given byte strings in order, then fails loudly. */
export function scriptedRandom(...pieces: Buffer[]): (length: number) => Buffer {
  const queue = [...pieces]
  return (length) => {
    const next = queue.shift()
    if (next === undefined || next.length !== length) {
      throw new Error(
        `scripted random: asked for ${length} bytes, next piece is ${next?.length ?? 'missing'}`,
      )
    }
    return next
  }
}
