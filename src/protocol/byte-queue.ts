/**
 * A queue of received bytes for push parsers: `push` what arrives, `consume(n)` when n bytes are
 * there. A value that lies in one received buffer comes back as a view, one that spans buffers is
 * copied once (no concat per read).
 */
export class ByteQueue {
  #chunks: Buffer[] = []
  #offset = 0
  #length = 0
  #removed = 0
  // Where the last indexOf began (piece index and the queue index of its first byte), valid while
  // nothing was removed since: a search resumed further on skips the pieces before it.
  #cursorChunk = 0
  #cursorBase = 0
  #cursorRemoved = -1

  /** Bytes buffered and not yet consumed. */
  get length(): number {
    return this.#length
  }

  /** Bytes removed from the front since the queue was made (consumed, skipped or drained). */
  get removed(): number {
    return this.#removed
  }

  /** Appends received bytes; the queue keeps a reference, so the caller must not reuse `bytes`. */
  push(bytes: Buffer): void {
    if (bytes.length === 0) return
    this.#chunks.push(bytes)
    this.#length += bytes.length
  }

  /** The byte at `index` from the front, without consuming it. */
  byteAt(index: number): number {
    if (index < 0 || index >= this.#length)
      throw new RangeError(`Cannot read byte ${index}: ${this.#length} buffered`)
    let i = index + this.#offset
    for (const chunk of this.#chunks) {
      if (i < chunk.length) return chunk.readUInt8(i)
      i -= chunk.length
    }
    throw new RangeError('unreachable')
  }

  /** The big-endian 16-bit value at `index`, without consuming it. */
  uint16At(index: number): number {
    return (this.byteAt(index) << 8) | this.byteAt(index + 1)
  }

  /** The first `n` bytes, without consuming them. */
  peek(n: number): Buffer {
    return this.#take(n, false)
  }

  /** Removes and returns the first `n` bytes. */
  consume(n: number): Buffer {
    return this.#take(n, true)
  }

  /** Removes the first `n` bytes. */
  skip(n: number): void {
    if (n > this.#length) throw new RangeError(`Cannot skip ${n} bytes: ${this.#length} buffered`)
    this.#length -= n
    this.#removed += n
    while (n > 0) {
      const first = this.#chunks[0]!
      const left = first.length - this.#offset
      if (n < left) {
        this.#offset += n
        return
      }
      n -= left
      this.#chunks.shift()
      this.#offset = 0
    }
  }

  /** Removes and returns everything buffered, as the received pieces. */
  drain(): Buffer[] {
    const out = this.#chunks
    if (out.length > 0 && this.#offset > 0) out[0] = out[0]!.subarray(this.#offset)
    this.#chunks = []
    this.#offset = 0
    this.#removed += this.#length
    this.#length = 0
    return out
  }

  /**
   * The index of the first `pattern` at or after `from`, or -1. Searches the received pieces in
   * place: a match within a piece by Buffer.indexOf, one across pieces in a seam of at most
   * 2 × (pattern length − 1) bytes, so a search costs the bytes searched, never a copy of the queue.
   */
  indexOf(pattern: Uint8Array, from = 0): number {
    if (pattern.length === 0) return from <= this.#length ? Math.max(from, 0) : -1
    const tail = pattern.length - 1
    let c = 0
    let base = 0
    if (this.#cursorRemoved === this.#removed && this.#cursorBase <= from) {
      c = this.#cursorChunk
      base = this.#cursorBase
    }
    this.#cursorChunk = c
    this.#cursorBase = base
    this.#cursorRemoved = this.#removed
    for (; c < this.#chunks.length; c++) {
      const chunk = this.#chunks[c]!
      const start = c === 0 ? this.#offset : 0
      const size = chunk.length - start
      const local = Math.max(0, from - base)
      if (local >= size) {
        base += size
        this.#cursorChunk = c + 1
        this.#cursorBase = base
        continue
      }
      const at = chunk.indexOf(pattern, start + local)
      if (at >= 0) return base + at - start
      const seamFrom = Math.max(local, size - tail)
      if (seamFrom < size && c + 1 < this.#chunks.length) {
        const hit = this.#seam(c, start + seamFrom, tail).indexOf(pattern)
        if (hit >= 0) return base + seamFrom + hit
      }
      base += size
    }
    return -1
  }

  /** Chunk `c` from `at` on, followed by up to `extra` bytes of the chunks after it. */
  #seam(c: number, at: number, extra: number): Buffer {
    const parts = [this.#chunks[c]!.subarray(at)]
    for (let next = c + 1; next < this.#chunks.length && extra > 0; next++) {
      const piece = this.#chunks[next]!.subarray(0, extra)
      parts.push(piece)
      extra -= piece.length
    }
    return Buffer.concat(parts)
  }

  #take(n: number, remove: boolean): Buffer {
    if (n > this.#length) throw new RangeError(`Cannot take ${n} bytes: ${this.#length} buffered`)
    if (n === 0) return Buffer.alloc(0)
    const first = this.#chunks[0]!
    if (first.length - this.#offset >= n) {
      const view = first.subarray(this.#offset, this.#offset + n)
      if (remove) this.skip(n)
      return view
    }
    const out = Buffer.allocUnsafe(n)
    let written = 0
    let offset = this.#offset
    for (const chunk of this.#chunks) {
      const count = Math.min(chunk.length - offset, n - written)
      chunk.copy(out, written, offset, offset + count)
      written += count
      offset = 0
      if (written === n) break
    }
    if (remove) this.skip(n)
    return out
  }
}
