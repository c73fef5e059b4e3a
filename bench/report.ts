/** @module
 * Formats benchmark figures for the terminal. Pure: no I/O.
 */
import { cpuPerUnit, type OpsResult, type ThroughputResult } from './measure.ts'

export function formatThroughput(t: ThroughputResult): string {
  // Long runs list only their range; the JSON copy keeps every sample.
  const runs = t.samplesMbPerSec.length <= 6
    ? `runs: ${t.samplesMbPerSec.map((x) => x.toFixed(0)).join(', ')}`
    : `${t.samplesMbPerSec.length} runs: ${Math.min(...t.samplesMbPerSec).toFixed(0)}-${Math.max(...t.samplesMbPerSec).toFixed(0)}`
  return `${t.mbPerSec.toFixed(0).padStart(5)} MB/s (${runs})${formatCpu(t)}`
}

export function formatOps(o: OpsResult): string {
  return `${o.opsPerSec.toFixed(0).padStart(6)} ops/s, p50 ${o.p50Ms.toFixed(1)} ms, p99 ${o.p99Ms.toFixed(1)} ms${formatCpu(o)}`
}

/** Each untimed warm-up round's rate (warmUntilSettled), or why there is none. */
export function formatWarmUp(rates: readonly number[] | { error: string } | undefined): string {
  if (rates === undefined) return 'none'
  return 'error' in rates ? `FAILED ${rates.error}` : rates.map((x) => x.toFixed(0)).join(', ')
}

export function ratio(value: number, base: number): string {
  return base > 0 ? (value / base).toFixed(2) : 'n/a'
}

/** The server's CPU per unit, when it was measured: ms per MiB moved, or µs per operation. */
function formatCpu(r: ThroughputResult | OpsResult): string {
  const unit = cpuPerUnit(r)
  if (unit === undefined) return ''
  return 'mbPerSec' in r ? `, server CPU ${unit.toFixed(2)} ms/MiB` : `, server CPU ${unit.toFixed(0)} µs/op`
}

/** How many times the base's CPU per unit a figure's server spent (lower is better), when both were measured. */
export function cpuRatio(r: ThroughputResult | OpsResult, base: ThroughputResult | OpsResult): string | undefined {
  const a = cpuPerUnit(r), b = cpuPerUnit(base)
  return a === undefined || b === undefined || b <= 0 ? undefined : (a / b).toFixed(2)
}
