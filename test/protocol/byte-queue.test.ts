import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { ByteQueue } from '../../src/protocol/byte-queue.js'

test('ByteQueue.indexOf agrees with Buffer.indexOf over any pieces, removals and starting points', () => {
  fc.assert(
    fc.property(
      // A small alphabet, so patterns occur and straddle pieces often.
      fc.array(
        fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b.map((x) => x % 3))),
        { maxLength: 12 },
      ),
      fc.uint8Array({ maxLength: 5 }).map((b) => Buffer.from(b.map((x) => x % 3))),
      fc.array(fc.tuple(fc.nat(40), fc.nat(3)), { maxLength: 6 }),
      (pieces, pattern, steps) => {
        const queue = new ByteQueue()
        let model = Buffer.alloc(0)
        let next = 0
        for (const [from, action] of steps) {
          // Interleave searches with pushes and removals, so the resumed search is checked too.
          if (action === 0 && next < pieces.length) {
            queue.push(pieces[next]!)
            model = Buffer.concat([model, pieces[next++]!])
          } else if (action === 1 && model.length > 0) {
            queue.skip(1)
            model = model.subarray(1)
          }
          const expected = from > model.length ? -1 : model.indexOf(pattern, from)
          assert.equal(queue.indexOf(pattern, from), expected)
        }
        while (next < pieces.length) {
          queue.push(pieces[next]!)
          model = Buffer.concat([model, pieces[next++]!])
          for (const from of [0, model.length >> 1, Math.max(0, model.length - 3)])
            assert.equal(queue.indexOf(pattern, from), model.indexOf(pattern, from))
        }
        assert.equal(queue.removed + queue.length, Buffer.concat(pieces).length)
      },
    ),
    { numRuns: 2_000 },
  )
})

test('ByteQueue.removed counts consumed, skipped and drained bytes', () => {
  const queue = new ByteQueue()
  queue.push(Buffer.alloc(10))
  queue.push(Buffer.alloc(5))
  queue.consume(3)
  queue.skip(8)
  assert.equal(queue.removed, 11)
  queue.drain()
  assert.equal(queue.removed, 15)
  assert.equal(queue.length, 0)
})
