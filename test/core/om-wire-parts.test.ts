/**
 * Goal: a key's part list (KeyInfo.parts) stays small for S3's 10,000 parts and finds every
 * part's bytes. Method: the pure run-length helpers of core/om-wire.ts on part lists built
 * as CompleteMultipartUpload builds them.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { appendParts, partCount, partRange, type PartRun } from '../../core/om-wire.ts'

const MiB = 1024 * 1024

test('appendParts() keeps 10,000 equal parts and a smaller last one in two runs', () => {
  const runs: PartRun[] = []
  for (let i = 0; i < 9_999; i++) appendParts(runs, 5 * MiB)
  appendParts(runs, 17)
  assert.equal(runs, [{ sizeBytes: 5 * MiB, count: 9_999 }, { sizeBytes: 17, count: 1 }])
  assert.is(partCount(runs), 10_000)
})

test('appendParts() merges a run of the last part\'s size, and starts a new one otherwise', () => {
  const runs: PartRun[] = []
  appendParts(runs, 8, 2)
  appendParts(runs, 8, 3)
  appendParts(runs, 0)
  appendParts(runs, 8)
  assert.equal(runs, [{ sizeBytes: 8, count: 5 }, { sizeBytes: 0, count: 1 }, { sizeBytes: 8, count: 1 }])
  assert.throws(() => appendParts(runs, -1), /negative/)
  assert.throws(() => appendParts(runs, 1, 0), /at least one/)
})

test('partRange() finds each part, including empty ones, and nothing past the last', () => {
  const runs: PartRun[] = [{ sizeBytes: 10, count: 3 }, { sizeBytes: 0, count: 1 }, { sizeBytes: 4, count: 2 }]
  assert.equal([1, 2, 3, 4, 5, 6].map((n) => partRange(runs, n)), [
    { offset: 0, length: 10 }, { offset: 10, length: 10 }, { offset: 20, length: 10 }, { offset: 30, length: 0 }, { offset: 30, length: 4 }, { offset: 34, length: 4 },
  ])
  assert.is(partRange(runs, 7), undefined)
  assert.is(partRange([], 1), undefined)
  assert.throws(() => partRange(runs, 0), /start at 1/)
})

test.run()
