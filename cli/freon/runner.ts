/** @module
 * What every `o3 freon` generator shares (Ozone's BaseFreonGenerator): the options -n, -t, -s,
 * -p and -f; running operation 0..n-1 from t concurrent callers, timing each; the progress bar
 * on stderr; and the summary (ops, failures, elapsed, ops/s, MB/s, latency percentiles) as a
 * table or JSON. A run with any failure, or stopped by Ctrl-C, prints its summary and then
 * fails the command (exit 1) with the first error. Only successful operations are timed into
 * the percentiles, so a failed or wrong read never counts as a fast one.
 */
import { randomBytes } from 'node:crypto'
import { FREON_OPS_MAX, FREON_THREADS_MAX } from '../../core/limits.ts'
import { percentile } from '../../core/percentile.ts'
import { flag, option, stringOption, UsageError, type Invocation } from '../args.ts'
import { printFields, printJson } from '../output.ts'
import { parseSize } from './payload.ts'

/** The options of every generator, checked. */
export interface FreonOptions {
  count: number
  threads: number
  /** -s; undefined where the generator has no default (ockr learns it from each key). */
  sizeBytes: number | undefined
  prefix: string
  failAtEnd: boolean
  json: boolean
}

function positive(inv: Invocation, name: string, max: number): number {
  const text = option(inv, name)
  const n = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > max) throw new UsageError(`--${name} must be a whole number 1..${max}, not ${JSON.stringify(text)}`)
  return n
}

/** Reads -n, -t, -s, -p, -f and --json; a missing -p becomes a random one (printed with the
 *  summary, so that ockr can read the same keys back). */
export function freonOptions(inv: Invocation): FreonOptions {
  const size = stringOption(inv, 'size')
  let prefix = stringOption(inv, 'prefix')
  if (prefix === '') throw new UsageError('--prefix must not be empty')
  // Ozone's default: ten random lowercase letters and digits.
  prefix ??= Array.from(randomBytes(10), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('')
  return {
    count: positive(inv, 'number-of-tests', FREON_OPS_MAX),
    threads: positive(inv, 'threads', FREON_THREADS_MAX),
    sizeBytes: size === undefined ? undefined : parseSize(size),
    prefix,
    failAtEnd: flag(inv, 'fail-at-end'),
    json: flag(inv, 'json'),
  }
}

/** The name of key i of a run, as Ozone's PathSchema makes it. */
export function keyName(prefix: string, i: number): string {
  return `${prefix}/${i}`
}

export interface OpsOutcome {
  attempted: number
  succeeded: number
  failures: number
  /** Bytes moved by the successful operations. */
  bytes: number
  elapsedSeconds: number
  /** Latencies of the successful operations, ascending. */
  latenciesMs: Float64Array
  firstError: unknown
  /** Stopped by Ctrl-C (SIGINT) before every operation ran. */
  interrupted: boolean
}

/**
 * Runs op(0) … op(count - 1) from `threads` callers, each taking the next index when its last
 * op settles (a closed loop, as Ozone's task runners do). Unless -f, the first failure stops
 * the callers from taking more; so does Ctrl-C, and the summary still prints (Ozone prints
 * its report from a shutdown hook); a second Ctrl-C quits at once. The ops in flight settle
 * first either way; at Ctrl-C they are given up through `signal` (a key being written is
 * aborted, not left open with its blocks for the OM's expiry), and one given up so is no
 * failure. `op` resolves with the bytes it moved. `what` is announced on stderr
 * (not with --json), once Ctrl-C is handled.
 */
export async function runOps(options: { label: string; freon: FreonOptions; what: string; op: (i: number, signal: AbortSignal) => Promise<number> }): Promise<OpsOutcome> {
  const { count, threads, failAtEnd, json } = options.freon
  const latenciesMs = new Float64Array(count)
  let next = 0, succeeded = 0, failures = 0, bytes = 0
  let firstError: unknown
  let interrupted = false
  const stopping = new AbortController()
  const onSigint = () => {
    interrupted = true
    stopping.abort(new Error(`freon ${options.label}: interrupted`))
    process.stderr.write(`\nfreon ${options.label}: stopping at Ctrl-C; the operations in flight are given up, their keys not written (Ctrl-C again quits now)\n`)
    process.once('SIGINT', () => process.exit(130))
  }
  process.once('SIGINT', onSigint)
  if (!json) process.stderr.write(`freon ${options.label}: ${options.what}, prefix ${options.freon.prefix}, ${count} ops from ${threads} threads\n`)
  const bar = json ? undefined : await progressBar(options.label, count)
  const started = performance.now()
  try {
    await Promise.all(Array.from({ length: Math.min(threads, count) }, async () => {
      while (next < count && (failAtEnd || failures === 0) && !interrupted) {
        const i = next++
        const t = performance.now()
        try {
          // Not `bytes += await op(i)`: that reads `bytes` before the await and loses
          // what the other callers added meanwhile.
          const moved = await options.op(i, stopping.signal)
          latenciesMs[succeeded++] = performance.now() - t
          bytes += moved
        } catch (err) {
          if (stopping.signal.aborted) continue
          if (failures++ === 0) firstError = err
        }
        bar?.update(succeeded + failures, failures)
      }
    }))
  } finally {
    bar?.stop()
    process.off('SIGINT', onSigint)
  }
  const elapsedSeconds = (performance.now() - started) / 1000
  const timed = latenciesMs.subarray(0, succeeded).sort()
  // A Ctrl-C after the last operation ended stopped nothing.
  return { attempted: succeeded + failures, succeeded, failures, bytes, elapsedSeconds, latenciesMs: timed, firstError, interrupted: interrupted && succeeded + failures < count }
}

/** A bar of operations done on stderr, only on a terminal; cli-progress loads only then. */
async function progressBar(label: string, total: number): Promise<{ update(done: number, failures: number): void; stop(): void }> {
  if (!process.stderr.isTTY) return { update() {}, stop() {} }
  const { default: cliProgress } = await import('cli-progress')
  const bar = new cliProgress.SingleBar({
    stream: process.stderr, format: `${label} [{bar}] {percentage}% | {value}/{total} ops | {failures} failed | {eta_formatted} left`, hideCursor: true,
  }, cliProgress.Presets.shades_classic)
  bar.start(total, 0, { failures: 0 })
  return {
    update(done, failures) { bar.update(done, { failures }) },
    stop() { bar.stop() },
  }
}

export interface FreonSummary {
  generator: string
  prefix: string
  sizeBytes: number | null
  threads: number
  /** Operations asked for (-n), started, and how they ended. */
  requested: number
  ops: number
  succeeded: number
  failures: number
  bytes: number
  elapsedSeconds: number
  opsPerSec: number
  mbPerSec: number
  latencyMs: { p50: number; p95: number; p99: number; max: number } | null
  firstError: string | null
  interrupted: boolean
  [detail: string]: unknown
}

function errorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown }
  const message = typeof e?.message === 'string' ? e.message : String(err)
  return typeof e?.code === 'string' && !message.includes(e.code) ? `${message} (${e.code})` : message
}

/** The summary of a run; `details` (volume, bucket, endpoint) go in after the prefix. */
export function summarize(generator: string, o: FreonOptions, r: OpsOutcome, details: Record<string, unknown>): FreonSummary {
  const l = r.latenciesMs
  const round = (x: number, digits = 3) => Number(x.toFixed(digits))
  return {
    generator, prefix: o.prefix, ...details, sizeBytes: o.sizeBytes ?? null, threads: o.threads,
    requested: o.count, ops: r.attempted, succeeded: r.succeeded, failures: r.failures, bytes: r.bytes,
    elapsedSeconds: round(r.elapsedSeconds), opsPerSec: round(r.succeeded / r.elapsedSeconds, 1), mbPerSec: round(r.bytes / 1e6 / r.elapsedSeconds),
    latencyMs: l.length === 0 ? null : { p50: round(percentile(l, 0.5)), p95: round(percentile(l, 0.95)), p99: round(percentile(l, 0.99)), max: round(l[l.length - 1]) },
    firstError: r.failures === 0 ? null : errorText(r.firstError),
    interrupted: r.interrupted,
  }
}

/** Prints the summary (JSON with --json, else a table); then, if any operation failed, fails
 *  the command with the count and the first error. */
export function report(s: FreonSummary, json: boolean): void {
  if (json) printJson(s)
  else {
    const { latencyMs, firstError, ...rest } = s
    printFields({
      ...Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, v ?? '-'])),
      ...(latencyMs === null ? {} : { 'latency p50 ms': latencyMs.p50, 'latency p95 ms': latencyMs.p95, 'latency p99 ms': latencyMs.p99, 'latency max ms': latencyMs.max }),
      ...(firstError === null ? {} : { 'first error': firstError }),
    })
  }
  if (s.failures > 0) throw new Error(`freon ${s.generator}: ${s.failures} of ${s.ops} operations failed; the first: ${s.firstError}`)
  if (s.succeeded < s.requested) throw new Error(`freon ${s.generator}: ${s.interrupted ? 'interrupted: ' : ''}only ${s.succeeded} of ${s.requested} operations ran`)
}
