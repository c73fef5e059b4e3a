/** @module
 * Formats benchmark figures for the terminal. Pure: no I/O.
 */
import type { OpsResult, ThroughputResult } from './measure.ts'

export function formatThroughput(t: ThroughputResult): string {
  const samples = t.samplesMbPerSec.map((x) => x.toFixed(0)).join(', ')
  return `${t.mbPerSec.toFixed(0).padStart(5)} MB/s (runs: ${samples})`
}

export function formatOps(o: OpsResult): string {
  return `${o.opsPerSec.toFixed(0).padStart(6)} ops/s, p50 ${o.p50Ms.toFixed(1)} ms, p99 ${o.p99Ms.toFixed(1)} ms`
}

export function ratio(value: number, base: number): string {
  return base > 0 ? (value / base).toFixed(2) : 'n/a'
}
