/**
 * A queue of received bytes for push parsers: `push` what arrives, `consume(n)` when n bytes are
 * there. A value that lies in one received buffer comes back as a view, one that spans buffers is
 * copied once (no concat per read).
 */
export class ByteQueue {
  #chunks: Buffer[] = []
  #offset = 0
  #length = 0

  /** Bytes buffered and not yet consumed. */
  get length(): number {
    return this.#length
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
    this.#length = 0
    return out
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
