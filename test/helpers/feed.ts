// Every piece is a copy: a push parser owns what it is given and may decrypt it in place
// (ChunkOpener.push), so pieces of one input must not share memory across runs.

/** Yields `bytes` cut in two at every boundary, from before the first byte to after the last. */
export function* splits(bytes: Buffer): Generator<Buffer[]> {
  for (let cut = 0; cut <= bytes.length; cut++) {
    yield [Buffer.from(bytes.subarray(0, cut)), Buffer.from(bytes.subarray(cut))]
  }
}

/** `bytes` as one piece per byte. */
export function bytewise(bytes: Buffer): Buffer[] {
  const pieces: Buffer[] = []
  for (let i = 0; i < bytes.length; i++) pieces.push(Buffer.from(bytes.subarray(i, i + 1)))
  return pieces
}

/** `bytes` cut at the given offsets (any order, duplicates and out-of-range values allowed). */
export function splitAt(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const cuts = [...new Set(offsets.map((o) => Math.min(Math.max(o, 0), bytes.length)))].sort((a, b) => a - b)
  const pieces: Buffer[] = []
  let start = 0
  for (const cut of cuts) {
    pieces.push(Buffer.from(bytes.subarray(start, cut)))
    start = cut
  }
  pieces.push(Buffer.from(bytes.subarray(start)))
  return pieces
}

/** Feeds `pieces` in order to a push parser and collects everything it returns. */
export function feed<T>(pieces: Iterable<Buffer>, push: (bytes: Buffer) => Iterable<T>): T[] {
  const out: T[] = []
  for (const piece of pieces) for (const item of push(piece)) out.push(item)
  return out
}
