import { formatNumber, formatSummary, type Implementation, markdownTable, summarize } from './lib.js'

// The chains, the figures they are measured on, and the report of bench/e2e.ts.

export interface Chain {
  readonly key: string
  readonly label: string
  readonly client: Implementation
  readonly server: Implementation
  /** Environment of the tsray processes. */
  readonly env?: Readonly<Record<string, string>>
}

export const TSRAY: Chain = { key: 'tsray', label: 'tsray', client: 'tsray', server: 'tsray' }
export const V2RAY: Chain = { key: 'v2ray', label: 'V2Ray', client: 'v2ray', server: 'v2ray' }
export const V2RAY_AA: Chain = { key: 'v2ray-aa', label: 'V2Ray (A/A)', client: 'v2ray', server: 'v2ray' }
export const TSRAY_TO_V2RAY: Chain = { key: 't-v', label: 'tsray→V2Ray', client: 'tsray', server: 'v2ray' }
export const V2RAY_TO_TSRAY: Chain = { key: 'v-t', label: 'V2Ray→tsray', client: 'v2ray', server: 'tsray' }
/** tsray at both ends with the native addon off: the node:crypto fallback. */
export const TSRAY_JS: Chain = {
  key: 'tsray-js',
  label: 'tsray (node:crypto)',
  client: 'tsray',
  server: 'tsray',
  env: { TSRAY_NATIVE: '0' },
}
export const CHAINS = [TSRAY, V2RAY, V2RAY_AA, TSRAY_TO_V2RAY, V2RAY_TO_TSRAY, TSRAY_JS]
/** The load tool straight to the target: what it can do without a proxy. */
export const DIRECT_KEY = 'direct'

/** One row of the table: samples per chain key, and the ratio tsray/V2Ray it aims at. */
export interface Figure {
  readonly name: string
  readonly unit: string
  readonly better: 'higher' | 'lower'
  /** The tsray/V2Ray ratio to meet (≥ for higher-is-better, ≤ otherwise). */
  readonly target?: number
  /** An absolute bound on tsray's median, in the row's unit (the genuine handshake p99 under junk). */
  readonly limit?: number
  readonly samples: Map<string, number[]>
}

export const figures: Figure[] = []

export function figure(
  name: string,
  unit: string,
  better: 'higher' | 'lower',
  target?: number,
  limit?: number,
): Figure {
  const row: Figure = {
    name,
    unit,
    better,
    samples: new Map(),
    ...(target !== undefined ? { target } : {}),
    ...(limit !== undefined ? { limit } : {}),
  }
  figures.push(row)
  return row
}

export function record(row: Figure, key: string, value: number): void {
  if (!Number.isFinite(value)) return
  const list = row.samples.get(key) ?? []
  list.push(value)
  row.samples.set(key, list)
}

/** Per-process CPU of the throughput runs, for the mixed-chain table: chain → figure → [client, server] s/GiB. */
export const perProcess = new Map<string, Map<string, { client: number[]; server: number[] }>>()

function ratioOf(row: Figure, a: string, b: string): number {
  const x = summarize(row.samples.get(a) ?? [])
  const y = summarize(row.samples.get(b) ?? [])
  return x === undefined || y === undefined ? Number.NaN : x.median / y.median
}

/** Prints the tables: every figure, the chains against the V2Ray pair, and CPU per process. */
export function report(heading: readonly string[]): void {
  const header = [
    'figure',
    'tsray',
    'V2Ray',
    'tsray/V2Ray',
    'target',
    'A/A',
    'tsray→V2Ray',
    'V2Ray→tsray',
    'tsray (node:crypto)',
    'load tool alone',
  ]
  const rows = figures
    .filter((row) => row.samples.size > 0)
    .map((row) => {
      const ratio = ratioOf(row, TSRAY.key, V2RAY.key)
      const met =
        row.target === undefined || !Number.isFinite(ratio)
          ? ''
          : (row.better === 'higher' ? ratio >= row.target : ratio <= row.target)
            ? ' ✓'
            : ' ✗'
      const tsray = summarize(row.samples.get(TSRAY.key) ?? [])
      const withinLimit =
        row.limit === undefined || tsray === undefined ? '' : tsray.median <= row.limit ? ' ✓' : ' ✗'
      const cell = (key: string): string => formatSummary(summarize(row.samples.get(key) ?? []))
      const target =
        row.target !== undefined
          ? `${row.better === 'higher' ? '≥' : '≤'} ${row.target.toFixed(2)}×`
          : row.limit !== undefined
            ? `tsray ≤ ${row.limit} ${row.unit}${withinLimit}`
            : ''
      return [
        `${row.name} (${row.unit})`,
        cell(TSRAY.key),
        cell(V2RAY.key),
        Number.isFinite(ratio) ? `${ratio.toFixed(2)}×${met}` : '–',
        target,
        Number.isFinite(ratioOf(row, V2RAY_AA.key, V2RAY.key))
          ? `${ratioOf(row, V2RAY_AA.key, V2RAY.key).toFixed(2)}×`
          : '–',
        cell(TSRAY_TO_V2RAY.key),
        cell(V2RAY_TO_TSRAY.key),
        cell(TSRAY_JS.key),
        cell(DIRECT_KEY),
      ]
    })
  console.log()
  for (const line of heading) console.log(line)
  console.log(markdownTable(header, rows))
  // The headline for a server facing clients it did not write (and a client facing any server):
  // each chain's CPU against the V2Ray pair, with the peer's own chunk sizes.
  const mixedRows = figures
    .filter((row) => row.unit === 's/GiB' && row.samples.has(V2RAY.key))
    .map((row) => {
      const ratio = (key: string, target: number): string => {
        const value = ratioOf(row, key, V2RAY.key)
        if (!Number.isFinite(value)) return '–'
        return `${value.toFixed(2)}×${value <= target ? ' ✓' : ' ✗'}`
      }
      return [
        row.name,
        ratio(V2RAY_TO_TSRAY.key, 1.1),
        ratio(TSRAY_TO_V2RAY.key, 1.1),
        ratio(TSRAY.key, row.target ?? 0.9),
        ratio(TSRAY_JS.key, row.target ?? 0.9),
      ]
    })
  if (mixedRows.length > 0) {
    console.log()
    console.log('CPU client+server against the V2Ray pair (ratio of medians; mixed chains target ≤ 1.10×):')
    console.log(
      markdownTable(
        ['figure', 'V2Ray→tsray', 'tsray→V2Ray', 'tsray pair', 'tsray pair, node:crypto'],
        mixedRows,
      ),
    )
  }
  // What each process spends: shows what V2Ray's 2 KiB chunks cost a tsray peer in the mixed chains.
  const processRows: string[][] = []
  for (const name of new Set([...perProcess.values()].flatMap((byFigure) => [...byFigure.keys()]))) {
    if (!/1 stream/.test(name)) continue
    const cells = [TSRAY, V2RAY, TSRAY_TO_V2RAY, V2RAY_TO_TSRAY, TSRAY_JS].map((chain) => {
      const entry = perProcess.get(chain.key)?.get(name)
      if (entry === undefined) return '–'
      const client = summarize(entry.client)?.median ?? Number.NaN
      const server = summarize(entry.server)?.median ?? Number.NaN
      return `${formatNumber(client)} + ${formatNumber(server)}`
    })
    processRows.push([name, ...cells])
  }
  if (processRows.length > 0) {
    console.log()
    console.log('CPU s/GiB per process, client + server (median):')
    console.log(
      markdownTable(
        ['figure', 'tsray', 'V2Ray', 'tsray→V2Ray', 'V2Ray→tsray', 'tsray (node:crypto)'],
        processRows,
      ),
    )
  }
}
