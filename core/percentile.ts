/** @module
 * Percentiles of measured values, shared by the benchmarks (bench/) and the load generator
 * (cli/freon/), which may not import each other. Pure: no I/O, no clock.
 */
import { assert } from './assert.ts'

/** The nearest-rank percentile of sorted values (ascending); p in (0, 1]. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  assert(sorted.length > 0, 'no values')
  assert(p > 0 && p <= 1, 'percentile out of range')
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
}
