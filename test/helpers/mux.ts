import type { Duplex } from 'node:stream'
import { type MuxFrame, MuxFrameParser } from '../../src/protocol/mux-frame.js'
import { randomData, sha256Hex } from './net.js'

/**
 * Writes `data` to a stream that echoes it and reads until as many bytes came back, then ends it.
 * With `halfClose` the uplink is ended right after the data (tsray supports it); without, only after
 * the echo is complete, since V2Ray's mux client drops a sub-session's downlink once its uplink ends.
 */
export function echoOver(
  stream: Duplex,
  data: Buffer,
  options: { halfClose: boolean; timeoutMs?: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let received = 0
    const timer = setTimeout(() => {
      stream.destroy()
      reject(new Error(`echo timed out after ${received}/${data.length} bytes`))
    }, options.timeoutMs ?? 20_000)
    const finish = (): void => {
      clearTimeout(timer)
      if (options.halfClose) stream.destroy()
      else stream.end()
      resolve(Buffer.concat(chunks))
    }
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      received += chunk.length
      if (received >= data.length) finish()
    })
    stream.on('end', () => {
      if (received < data.length) {
        clearTimeout(timer)
        reject(new Error(`stream ended after ${received}/${data.length} bytes`))
      }
    })
    stream.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    if (options.halfClose) stream.end(data)
    else stream.write(data)
  })
}

/** Sizes for concurrent sub-streams: small, one frame, many frames, a few MiB. */
export function streamSizes(count: number): number[] {
  const base = [1, 100, 8 * 1024, 8 * 1024 + 1, 64 * 1024, 300_000, 1024 * 1024, 3 * 1024 * 1024]
  return Array.from({ length: count }, (_, index) => base[index % base.length]!)
}

/**
 * Opens `sizes.length` streams at once with `open`, echoes random data of each size over them, and
 * returns a list of [sha of what was sent, sha of what came back].
 */
export async function concurrentEchoes(
  sizes: number[],
  open: () => Promise<Duplex>,
  options: { halfClose: boolean },
): Promise<[string, string][]> {
  return Promise.all(
    sizes.map(async (size) => {
      const data = randomData(size)
      const stream = await open()
      const back = await echoOver(stream, data, options)
      return [sha256Hex(data), sha256Hex(back)] as [string, string]
    }),
  )
}

/** Reads Mux.Cool frames from a plaintext stream and hands them out as they arrive. */
export class FrameReader {
  readonly frames: MuxFrame[] = []
  ended = false
  readonly #parser = new MuxFrameParser()
  #waiters: (() => void)[] = []

  constructor(stream: Duplex) {
    stream.on('data', (bytes: Buffer) => {
      this.frames.push(...this.#parser.push(bytes))
      this.#wake()
    })
    stream.on('end', () => {
      this.ended = true
      this.#wake()
    })
    stream.on('close', () => {
      this.ended = true
      this.#wake()
    })
  }

  /** Waits until `done(frames)` holds (checked on every arrival), or fails after `timeoutMs`. */
  async until(done: (frames: MuxFrame[], ended: boolean) => boolean, timeoutMs = 5_000): Promise<MuxFrame[]> {
    const deadline = Date.now() + timeoutMs
    while (!done(this.frames, this.ended)) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`frames did not arrive in time: ${describeFrames(this.frames)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.frames
  }

  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const wake of waiters) wake()
  }
}

/** Frames in a short readable form for failure messages. */
export function describeFrames(frames: MuxFrame[]): string {
  return frames
    .map(
      (f) => `#${f.sessionId}:${f.status}/${f.option}${f.host === undefined ? '' : `@${f.host}:${f.port}`}`,
    )
    .join(' ')
}
