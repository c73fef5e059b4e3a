/**
 * Goal: percentile() is the nearest-rank percentile the benchmarks and `o3 freon` report.
 * Method: small sorted arrays with known answers.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { percentile } from '../../core/percentile.ts'

test('percentile() takes the nearest rank: ceil(p * n)-th value', () => {
  const v = Float64Array.from({ length: 100 }, (_, i) => i + 1)
  assert.equal([0.5, 0.95, 0.99, 1].map((p) => percentile(v, p)), [50, 95, 99, 100])
  assert.equal([0.01, 0.5, 1].map((p) => percentile([7], p)), [7, 7, 7])
  assert.is(percentile([1, 2, 3], 0.5), 2)
})

test('percentile() refuses no values and p outside (0, 1]', () => {
  assert.throws(() => percentile([], 0.5), /no values/)
  assert.throws(() => percentile([1], 0), /out of range/)
  assert.throws(() => percentile([1], 1.5), /out of range/)
})

test.run()
