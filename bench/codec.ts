/**
 * Seal and open throughput of the VMess body codecs (no sockets), beside node:crypto doing the same
 * cipher work at the same chunk size: the ratio is the framing overhead (docs/architecture.md §7).
 * Run: npm run bench:codec
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { createAeadCipher, createAeadDecipher, expandChachaKey, fnv1a32 } from '../src/crypto/index.js'
import { chunkOverhead, resolveBodyFraming, type BodyParams } from '../src/protocol/body-framing.js'
import { ChunkOpener } from '../src/protocol/chunk-opener.js'
import { ChunkSealer } from '../src/protocol/chunk-sealer.js'

const BYTES_PER_SAMPLE = 4 * 1024 * 1024
const WARMUP_SAMPLES = 3
// Many short samples, interleaved: the median then shrugs off bursts from other processes.
const SAMPLES = 31
/** The opener is fed socket-sized reads, so chunks straddle reads as they do on a socket. */
const READ_SIZE = 64 * 1024

interface Case {
  name: string
  security: number
  options: number
  label: string
}

// Options as V2Ray sends them (docs/protocol.md §10).
const CASES: Case[] = [
  { name: 'aes-128-gcm', security: 3, options: 0x0d, label: 'SMP' },
  { name: 'chacha20-poly1305', security: 4, options: 0x0d, label: 'SMP' },
  { name: 'none', security: 5, options: 0x05, label: 'SM' },
  { name: 'aes-128-cfb', security: 1, options: 0x01, label: 'S' },
]
const SIZES = [2 * 1024, 16 * 1024]

const key = randomBytes(16)
const iv = randomBytes(16)

function paramsOf(c: Case): BodyParams {
  return {
    security: c.security,
    options: c.options,
    transfer: 'stream',
    key,
    iv,
    requestKey: key,
    requestIv: iv,
  }
}

/**
 * Runs `work` (which processes `bytes` payload bytes) and returns MB per CPU second: this process's
 * CPU time, so other processes on a shared box skew it less than wall time (as docs/protocol.md §7.3 measures).
 */
function time(work: () => void, bytes: number): number {
  const start = process.cpuUsage()
  work()
  const used = process.cpuUsage(start)
  return bytes / ((used.user + used.system) / 1e6) / 1e6
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

interface Rates {
  framed: number
  raw: number
  floor: number
  /** The best sample of each: the one least disturbed by other processes. */
  framedBest: number
  rawBest: number
  floorBest: number
}

/**
 * Interleaves the contenders and rotates their order per sample, so drift on a shared machine and
 * the garbage one leaves for the next hit them alike. `floor` may be undefined when it equals `raw`.
 */
function compare(framed: () => void, raw: () => void, floor: (() => void) | undefined, bytes: number): Rates {
  const contenders = floor === undefined ? [framed, raw] : [framed, raw, floor]
  const rates = contenders.map((): number[] => [])
  for (let i = 0; i < WARMUP_SAMPLES + SAMPLES; i++) {
    for (let k = 0; k < contenders.length; k++) {
      const which = (i + k) % contenders.length
      const rate = time(contenders[which] ?? framed, bytes)
      if (i >= WARMUP_SAMPLES) rates[which]?.push(rate)
    }
  }
  const [framedRate = 0, rawRate = 0, floorRate = rawRate] = rates.map(median)
  const [framedBest = 0, rawBest = 0, floorBest = rawBest] = rates.map((r) => Math.max(...r))
  return { framed: framedRate, raw: rawRate, floor: floorRate, framedBest, rawBest, floorBest }
}

function aeadAlgorithm(c: Case): 'aes-128-gcm' | 'chacha20-poly1305' {
  return c.security === 3 ? 'aes-128-gcm' : 'chacha20-poly1305'
}

function isAead(c: Case): boolean {
  return c.security === 3 || c.security === 4
}

/**
 * node:crypto alone: one cipher per chunk for AEAD, one long-lived cipher for cfb, a copy for none.
 * With `floor`, plus the work any framing must do: copy ciphertext and tag into one wire buffer
 * (AEAD), FNV-1a over the payload (cfb).
 */
function rawSeal(c: Case, payload: Buffer, count: number, floor: boolean): () => void {
  const nonce = Buffer.from(iv.subarray(0, 12))
  const n = payload.length
  return () => {
    if (isAead(c)) {
      const aeadKey = c.security === 4 ? expandChachaKey(key) : key
      const algorithm = aeadAlgorithm(c)
      for (let i = 0; i < count; i++) {
        nonce.writeUInt16BE(i & 0xffff, 0)
        const cipher = createAeadCipher(algorithm, aeadKey, nonce)
        const sealed = cipher.update(payload)
        cipher.final()
        const tag = cipher.getAuthTag()
        if (floor) {
          const wire = Buffer.allocUnsafe(n + 18)
          wire.set(sealed, 2)
          wire.set(tag, n + 2)
        }
      }
    } else if (c.security === 1) {
      const cipher = createCipheriv('aes-128-cfb', key, iv)
      for (let i = 0; i < count; i++) {
        if (floor) fnv1a32(payload)
        cipher.update(payload)
      }
    } else {
      for (let i = 0; i < count; i++) Buffer.from(payload)
    }
  }
}

/** The same cipher work in reverse, over the payloads and tags of pre-sealed chunks. */
function rawOpen(c: Case, payload: Buffer, count: number, floor: boolean): () => void {
  const nonce = Buffer.from(iv.subarray(0, 12))
  const algorithm = aeadAlgorithm(c)
  const aeadKey = c.security === 4 ? expandChachaKey(key) : key
  const sealed: Buffer[] = []
  const tags: Buffer[] = []
  if (isAead(c)) {
    for (let i = 0; i < count; i++) {
      nonce.writeUInt16BE(i & 0xffff, 0)
      const cipher = createAeadCipher(algorithm, aeadKey, nonce)
      sealed.push(cipher.update(payload))
      cipher.final()
      tags.push(cipher.getAuthTag())
    }
  }
  return () => {
    if (isAead(c)) {
      for (let i = 0; i < count; i++) {
        nonce.writeUInt16BE(i & 0xffff, 0)
        const decipher = createAeadDecipher(algorithm, aeadKey, nonce)
        decipher.setAuthTag(tags[i] ?? Buffer.alloc(0))
        decipher.update(sealed[i] ?? Buffer.alloc(0))
        decipher.final()
      }
    } else if (c.security === 1) {
      const decipher = createDecipheriv('aes-128-cfb', key, iv)
      for (let i = 0; i < count; i++) {
        const plaintext = decipher.update(payload)
        if (floor) fnv1a32(plaintext)
      }
    } else {
      for (let i = 0; i < count; i++) Buffer.from(payload)
    }
  }
}

function framedSeal(c: Case, payload: Buffer, count: number, maxChunkLength: number): () => void {
  return () => {
    const sealer = new ChunkSealer(paramsOf(c), { maxChunkLength })
    for (let i = 0; i < count; i++) sealer.seal(payload)
  }
}

function framedOpen(c: Case, payload: Buffer, count: number, maxChunkLength: number): () => void {
  const sealer = new ChunkSealer(paramsOf(c), { maxChunkLength })
  const wire = Buffer.concat(Array.from({ length: count }, () => sealer.seal(payload)))
  const reads: Buffer[] = []
  for (let at = 0; at < wire.length; at += READ_SIZE) reads.push(wire.subarray(at, at + READ_SIZE))
  return () => {
    const opener = new ChunkOpener(paramsOf(c))
    let opened = 0
    for (const read of reads) for (const p of opener.push(read)) opened += p.length
    if (opened !== payload.length * count) throw new Error(`opened ${opened} bytes`)
  }
}

interface Row extends Rates {
  security: string
  options: string
  payload: string
  op: string
}

const rows: Row[] = []
for (const c of CASES) {
  for (const size of SIZES) {
    // One chunk per seal call: the whole chunk is the payload plus the framing's overhead.
    const maxChunkLength = size + chunkOverhead(resolveBodyFraming(paramsOf(c)))
    const payload = randomBytes(size)
    const count = Math.floor(BYTES_PER_SAMPLE / size)
    const bytes = count * size
    const base = { security: c.name, options: c.label, payload: `${size / 1024} KiB` }
    const seal = compare(
      framedSeal(c, payload, count, maxChunkLength),
      rawSeal(c, payload, count, false),
      c.security === 5 ? undefined : rawSeal(c, payload, count, true),
      bytes,
    )
    rows.push({ ...base, op: 'seal', ...seal })
    const open = compare(
      framedOpen(c, payload, count, maxChunkLength),
      rawOpen(c, payload, count, false),
      c.security === 1 ? rawOpen(c, payload, count, true) : undefined,
      bytes,
    )
    rows.push({ ...base, op: 'open', ...open })
  }
}

// Time overhead: how much longer the framed path takes than the reference.
const overhead = (reference: number, framed: number): string =>
  `${((reference / framed - 1) * 100).toFixed(1)} %`
const header = [
  'security',
  'opt',
  'payload',
  'op',
  'tsray MB/s',
  'node:crypto MB/s',
  'overhead',
  '(best)',
  'floor MB/s',
  'vs floor',
  '(best)',
]
const table = rows.map((r) => [
  r.security,
  r.options,
  r.payload,
  r.op,
  r.framed.toFixed(0),
  r.raw.toFixed(0),
  overhead(r.raw, r.framed),
  overhead(r.rawBest, r.framedBest),
  r.floor.toFixed(0),
  overhead(r.floor, r.framed),
  overhead(r.floorBest, r.framedBest),
])
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] ?? '').length)))
const line = (cells: string[]): string => cells.map((cell, i) => cell.padStart(widths[i] ?? 0)).join('  ')
console.log(
  `node ${process.version}; ${SAMPLES} samples of ${BYTES_PER_SAMPLE / 1024 / 1024} MiB after ${WARMUP_SAMPLES} warm-ups, median MB per CPU second (best sample in parentheses); one chunk per seal, ${READ_SIZE / 1024} KiB reads per open`,
)
console.log('node:crypto: one cipher per chunk (gcm, chacha), one long-lived cipher (cfb), a copy (none)')
console.log(
  'floor: node:crypto plus the work any framing must do: ciphertext copied into one wire buffer (gcm and chacha seal), FNV-1a (cfb)',
)
console.log(line(header))
for (const row of table) console.log(line(row))
