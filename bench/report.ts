/** @module
 * Formats benchmark figures for the terminal. Pure: no I/O.
 */
import type { OpsResult, ThroughputResult } from './measure.ts'

export function formatThroughput(t: ThroughputResult): string {
  // Long runs list only their range; the JSON copy keeps every sample.
  const runs = t.samplesMbPerSec.length <= 6
    ? `runs: ${t.samplesMbPerSec.map((x) => x.toFixed(0)).join(', ')}`
    : `${t.samplesMbPerSec.length} runs: ${Math.min(...t.samplesMbPerSec).toFixed(0)}-${Math.max(...t.samplesMbPerSec).toFixed(0)}`
  return `${t.mbPerSec.toFixed(0).padStart(5)} MB/s (${runs})`
}

export function formatOps(o: OpsResult): string {
  return `${o.opsPerSec.toFixed(0).padStart(6)} ops/s, p50 ${o.p50Ms.toFixed(1)} ms, p99 ${o.p99Ms.toFixed(1)} ms`
}

export function ratio(value: number, base: number): string {
  return base > 0 ? (value / base).toFixed(2) : 'n/a'
}
