/** @module
 * Timing helpers for the benchmark: throughput of whole transfers and throughput plus latency
 * percentiles of many small operations run by a fixed number of concurrent callers. Reads the
 * monotonic clock (performance.now); does no I/O of its own.
 */
import { assert } from '../core/assert.ts'
import { percentile } from '../core/percentile.ts'

export const MB = 1_000_000
const MiB = 1024 * 1024

export interface ThroughputResult {
  bytes: number
  seconds: number
  mbPerSec: number
  /** MB/s of each iteration, in the order they ran. */
  samplesMbPerSec: number[]
  /** CPU ms the server used over the timed iterations (all its processes and threads), when measured. */
  serverCpuMs?: number
}

export interface OpsResult {
  ops: number
  concurrency: number
  seconds: number
  opsPerSec: number
  p50Ms: number
  p99Ms: number
  /** CPU ms the server used over the run (all its processes and threads), when measured. */
  serverCpuMs?: number
}

/** The server's CPU ms used so far (bench/proc-cpu.ts cpuMs of its PIDs): read before and after the timed part. */
export type CpuClock = () => number

/** CPU ms per MiB moved, or per operation in µs: what a figure cost its server per unit. */
export function cpuPerUnit(r: ThroughputResult | OpsResult): number | undefined {
  if (r.serverCpuMs === undefined || !Number.isFinite(r.serverCpuMs)) return undefined
  return 'mbPerSec' in r ? r.serverCpuMs / (r.bytes / MiB) : (r.serverCpuMs * 1000) / r.ops
}

/**
 * Runs `op` once untimed (warming up JIT, connections and caches: the first of each was a
 * third slower here; `warmUp: false` for a caller that warmed up itself), then `iterations`
 * times one after another; each moves `bytes`. MB/s is total bytes over total time. The
 * warm-up gets the index `iterations`; `beforeTimed` runs between it and the timed part,
 * given the bytes the timed part moves (a PUT figure's warm pages, bench/page-pool.ts).
 */
export async function measureThroughput(options: { iterations: number; bytes: number; op: (iteration: number) => Promise<void>; cpu?: CpuClock; warmUp?: boolean; beforeTimed?: (timedBytes: number) => unknown }): Promise<ThroughputResult> {
  assert(options.iterations > 0, 'iterations must be positive')
  if (options.warmUp !== false) await options.op(options.iterations)
  options.beforeTimed?.(options.bytes * options.iterations)
  const cpuBefore = options.cpu?.()
  const samples: number[] = []
  let seconds = 0
  for (let i = 0; i < options.iterations; i++) {
    const started = performance.now()
    await options.op(i)
    const s = (performance.now() - started) / 1000
    seconds += s
    samples.push(options.bytes / MB / s)
  }
  const bytes = options.bytes * options.iterations
  const serverCpuMs = cpuBefore === undefined ? undefined : options.cpu!() - cpuBefore
  return { bytes, seconds, mbPerSec: bytes / MB / seconds, samplesMbPerSec: samples, serverCpuMs }
}

/**
 * Runs `op(0)` … `op(count - 1)` from `concurrency` callers, each taking the next index when
 * its previous op settles (a closed loop, as 32 clients each waiting for their reply would).
 */
export async function measureOps(options: { count: number; concurrency: number; op: (index: number) => Promise<void>; cpu?: CpuClock }): Promise<OpsResult> {
  assert(options.count > 0, 'count must be positive')
  assert(options.concurrency > 0, 'concurrency must be positive')
  const latenciesMs = new Float64Array(options.count)
  let next = 0
  let failure: { error: unknown } | undefined
  const cpuBefore = options.cpu?.()
  const started = performance.now()
  // On the first failure the other callers stop taking work, and every op in flight settles
  // before the error is thrown: the caller may then stop the servers safely.
  await Promise.all(Array.from({ length: Math.min(options.concurrency, options.count) }, async () => {
    while (next < options.count && failure === undefined) {
      const i = next++
      const t = performance.now()
      try {
        await options.op(i)
      } catch (error) {
        failure ??= { error }
      }
      latenciesMs[i] = performance.now() - t
    }
  }))
  if (failure !== undefined) throw failure.error
  const seconds = (performance.now() - started) / 1000
  const serverCpuMs = cpuBefore === undefined ? undefined : options.cpu!() - cpuBefore
  latenciesMs.sort()
  return {
    ops: options.count, concurrency: options.concurrency, seconds, opsPerSec: options.count / seconds,
    p50Ms: percentile(latenciesMs, 0.5), p99Ms: percentile(latenciesMs, 0.99), serverCpuMs,
  }
}


/** How long warmUntilSettled runs: ops per round, and the rounds it runs at most. */
export interface WarmUpSettings { roundOps: number; roundsMax: number }

/**
 * A round counts as faster when it beats every round before it by more than this: the
 * rounds of a server that has settled move by a few percent here.
 */
const WARM_UP_FASTER = 1.05
/** Rounds in a row that must not be faster before the server counts as settled. */
const WARM_UP_SETTLED_ROUNDS = 2

/**
 * Whether a server whose warm-up rounds ran at `rates` (ops/s, in order) has settled: the
 * last WARM_UP_SETTLED_ROUNDS rounds each no faster (by WARM_UP_FASTER) than the best round
 * before it. Pure.
 */
export function warmUpSettled(rates: readonly number[]): boolean {
  if (rates.length <= WARM_UP_SETTLED_ROUNDS) return false
  let best = 0
  let notFaster = 0
  for (const rate of rates) {
    notFaster = rate > best * WARM_UP_FASTER ? 0 : notFaster + 1
    best = Math.max(best, rate)
  }
  return notFaster >= WARM_UP_SETTLED_ROUNDS
}

/**
 * Untimed rounds of `settings.roundOps` ops from `concurrency` callers until the rates
 * settle (warmUpSettled), at most `settings.roundsMax`: a server's first few thousand
 * requests run while V8 still compiles its code (O3's 4 KiB S3 GET cost 850 us of CPU in its
 * first 1000 and 230 after 7000), so a figure measured after a fixed short warm-up measured
 * the compiler. Every target gets the same rule. Answers each round's ops/s, in order; an op
 * that fails fails the warm-up.
 */
export async function warmUntilSettled(settings: WarmUpSettings, concurrency: number, op: (index: number) => Promise<void>): Promise<number[]> {
  assert(settings.roundsMax > 0, 'roundsMax must be positive')
  const rates: number[] = []
  while (rates.length < settings.roundsMax && !warmUpSettled(rates)) {
    const base = rates.length * settings.roundOps
    const round = await measureOps({ count: settings.roundOps, concurrency, op: (i) => op(base + i) })
    rates.push(round.opsPerSec)
  }
  return rates
}

/** Where a warm-up's PUT+GET pairs go: a server's PUT and its GET, answering the bytes read. */
export interface PairIo {
  put(key: string, body: Uint8Array): Promise<unknown>
  getLength(key: string): Promise<number>
}

/**
 * warmUntilSettled with PUT+GET pairs: op i puts `body` at `${prefix}${i}` and reads it back
 * whole (a short read fails the warm-up).
 */
export function warmUpWithPairs(settings: WarmUpSettings, concurrency: number, io: PairIo, prefix: string, body: Uint8Array): Promise<number[]> {
  return warmUntilSettled(settings, concurrency, async (i) => {
    const key = `${prefix}${i}`
    await io.put(key, body)
    const n = await io.getLength(key)
    if (n !== body.length) throw new Error(`Read ${n} bytes of ${key}, expected ${body.length}`)
  })
}

/**
 * The rounds of one figure as one (figures measured in turns with others, so that each sees
 * the same machine): total work over total time, latencies of the slowest round; the first
 * failure if any.
 */
export function combineRounds(rounds: (OpsResult | ThroughputResult | { error: string })[]): OpsResult | ThroughputResult | { error: string } {
  const failed = rounds.find((r): r is { error: string } => 'error' in r)
  if (failed !== undefined || rounds.length === 0) return failed ?? { error: 'not run' }
  const cpu = (r: OpsResult | ThroughputResult) => r.serverCpuMs
  const serverCpuMs = rounds.every((r) => cpu(r as OpsResult) !== undefined) ? rounds.reduce((a, r) => a + cpu(r as OpsResult)!, 0) : undefined
  const seconds = rounds.reduce((a, r) => a + (r as OpsResult).seconds, 0)
  if ('mbPerSec' in rounds[0]) {
    const all = rounds as ThroughputResult[]
    const bytes = all.reduce((a, r) => a + r.bytes, 0)
    return { bytes, seconds, mbPerSec: bytes / MB / seconds, samplesMbPerSec: all.flatMap((r) => r.samplesMbPerSec), serverCpuMs }
  }
  const all = rounds as OpsResult[]
  const ops = all.reduce((a, r) => a + r.ops, 0)
  return { ops, concurrency: all[0].concurrency, seconds, opsPerSec: ops / seconds, p50Ms: Math.max(...all.map((r) => r.p50Ms)), p99Ms: Math.max(...all.map((r) => r.p99Ms)), serverCpuMs }
}

/**
 * The order targets 0..n-1 take their turns in round `round`: rounds go in pairs, the second
 * the first reversed, and each pair starts two further along, so that over a few rounds no
 * target always goes first or last, nor always right after the same other (whose caches,
 * disk or page cache it would meet). With two targets, who goes first alternates. Pure.
 */
export function turnOrder(n: number, round: number): number[] {
  assert(n > 0, 'at least one target')
  const rotated = Array.from({ length: n }, (_, j) => (round - (round % 2) + j) % n)
  return round % 2 === 0 ? rotated : rotated.reverse()
}

/** `items` in the order of round `round` (turnOrder). */
export function inTurnOrder<T>(items: readonly T[], round: number): T[] {
  return turnOrder(items.length, round).map((i) => items[i])
}

/**
 * `total` operations split over `rounds` rounds as evenly as they go (the first rounds one
 * more): each round's first index and count, the counts adding up to `total`. Pure.
 */
export function splitCount(total: number, rounds: number): { first: number; count: number }[] {
  assert(Number.isSafeInteger(total) && total >= rounds && rounds > 0, 'at least one operation per round')
  const base = Math.floor(total / rounds)
  const out: { first: number; count: number }[] = []
  let first = 0
  for (let r = 0; r < rounds; r++) {
    const count = base + (r < total % rounds ? 1 : 0)
    out.push({ first, count })
    first += count
  }
  return out
}

/** What a target's later rounds answer once one of its rounds failed. */
export const NOT_RUN_AFTER_FAILURE = 'not run: an earlier round failed'

/**
 * `rounds` rounds in which each of `targets` targets runs `round(k, r)` once, in turnOrder;
 * answers each target's results in round order. A target whose round answered a failure (an
 * object with `error`) is not run again: `skipped(k, r)` is told instead, and its later
 * rounds answer `{ error: NOT_RUN_AFTER_FAILURE }`.
 */
export async function takeTurns<T extends object>(targets: number, rounds: number, round: (k: number, r: number) => Promise<T | { error: string }>, skipped?: (k: number, r: number) => void): Promise<(T | { error: string })[][]> {
  const byTarget: (T | { error: string })[][] = Array.from({ length: targets }, () => [])
  for (let r = 0; r < rounds; r++) {
    for (const k of turnOrder(targets, r)) {
      if (byTarget[k].some((x) => 'error' in x)) {
        skipped?.(k, r)
        byTarget[k].push({ error: NOT_RUN_AFTER_FAILURE })
      } else byTarget[k].push(await round(k, r))
    }
  }
  return byTarget
}

/** Fails unless a read answered `expected` bytes. */
export function expectLength(n: number, expected: number): void {
  if (n !== expected) throw new Error(`Read ${n} bytes, expected ${expected}`)
}

/** A failed figure: recorded so the run goes on, and the run then exits non-zero. */
export function failure(err: unknown): { error: string } {
  process.exitCode = 1
  return { error: `${(err as { code?: string }).code ?? 'ERROR'}: ${(err as Error).message}` }
}
