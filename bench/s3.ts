/** @module
 * The S3 part of `npm run bench` (issue 3) and the native client's figures: the same load
 * generator (bench/s3-load.ts), in this process, drives three servers, each in a child
 * process, over loopback, and the native client drives o3 local beside them:
 * 1. a sink, a bare node:http server that accepts any request, drains PUT bodies and answers
 *    GETs from memory: the ceiling of the generator itself, measured alone first;
 * 2. s3rver (npm), a Koa S3 emulator storing objects as files (the reference S3 server);
 * 3. O3's S3 gateway of the benchmark's `o3 local`, one bucket per replication;
 * 4. O3's native client (this process) into the same o3 local, one bucket per replication.
 * Size by size (4 KiB at 32 concurrent, ops/s, p50, p99; then 1 MiB and 64 MiB one at a
 * time, MB/s): each target warms up untimed (4 KiB and 1 MiB PUT+GET pairs until its rate
 * settles, measure.ts warmUntilSettled; one 64 MiB pair), then the PUTs and then the GETs
 * are timed in rounds that s3rver, O3's buckets and the native client take in turns
 * (measure.ts takeTurns), so that the ratios among them (O3 over s3rver, S3 over native)
 * compare figures of the same minutes of a shared machine. Last, untimed, each target reads
 * one key of each size back and compares its bytes. A failing step or target is recorded
 * and the run goes on.
 */
import { S3_VOLUME } from '../datapath/s3/index.ts'
import { assert } from '../core/assert.ts'
import { combineRounds, expectLength, measureOps, measureThroughput, splitCount, takeTurns, warmUpWithPairs, type OpsResult, type PairIo, type ThroughputResult, type WarmUpSettings, failure, NOT_RUN_AFTER_FAILURE } from './measure.ts'
import { warmPagesForPuts } from './page-pool.ts'
import { cpuMs } from './proc-cpu.ts'
import type { BenchCluster } from './o3-cluster.ts'
import { bucketName } from './o3-cluster.ts'
import { S3Load } from './s3-load.ts'
import type { ServerKind } from './server-process.ts'

/** A running baseline server (in a child process), its PID (for its CPU time) and how to stop it. */
export interface Served { endpoint: string; pid: number; stop(): Promise<void> }

export interface S3Settings {
  /** 4 KiB PUTs (and GETs) per target. */
  smallCount: number
  mediumIterations: number
  largeIterations: number
  /** Rounds each figure is timed in, taken in turns with the other targets (fewer when a figure has fewer operations). */
  rounds: number
  concurrency: number
}

/** Untimed rounds before the 4 KiB figures (4 KiB PUT+GET pairs, `concurrency` at once) and before the 1 MiB ones (one pair at a time). */
export interface WarmUps { small: WarmUpSettings; medium: WarmUpSettings }

export interface Failure { error: string }

export interface S3Figures {
  put4KiB: OpsResult | Failure
  get4KiB: OpsResult | Failure
  put1MiB: ThroughputResult | Failure
  get1MiB: ThroughputResult | Failure
  put64MiB: ThroughputResult | Failure
  get64MiB: ThroughputResult | Failure
  /** PUT+GET pairs a second in each untimed warm-up round: 4 KiB, 1 MiB, and the one 64 MiB pair. */
  warmUp: { small: number[] | Failure; medium: number[] | Failure; large: number[] | Failure }
}

/** Figures by target: `sink`, `s3rver`, `O3 RATIS/ONE`, ... */
export type S3Results = Record<string, S3Figures>

/** What measureS3 answers: the S3 servers' figures, and the native client's by replication. */
export interface S3AndNative { servers: S3Results; native: Record<string, S3Figures> }

/** One object size of the figures: its bytes, how many operations at once, how it warms up. */
interface Size {
  label: string
  put: 'put4KiB' | 'put1MiB' | 'put64MiB'
  get: 'get4KiB' | 'get1MiB' | 'get64MiB'
  warmUp: keyof S3Figures['warmUp']
  /** Key prefix of the timed objects (`<prefix>-<index>`); warm-ups use `warm-<prefix>-`. */
  prefix: string
  bytes: number
  operations: (s: S3Settings) => number
  /** Concurrent callers: ops/s with latencies at more than one, MB/s one at a time. */
  concurrency: (s: S3Settings) => number
  warmUpSettings: (w: WarmUps) => WarmUpSettings
}

const SIZES: readonly Size[] = [
  { label: '4 KiB', put: 'put4KiB', get: 'get4KiB', warmUp: 'small', prefix: 'small', bytes: 4 * 1024, operations: (s) => s.smallCount, concurrency: (s) => s.concurrency, warmUpSettings: (w) => w.small },
  { label: '1 MiB', put: 'put1MiB', get: 'get1MiB', warmUp: 'medium', prefix: 'medium', bytes: 1024 * 1024, operations: (s) => s.mediumIterations, concurrency: () => 1, warmUpSettings: (w) => w.medium },
  { label: '64 MiB', put: 'put64MiB', get: 'get64MiB', warmUp: 'large', prefix: 'large', bytes: 64 * 1024 * 1024, operations: (s) => s.largeIterations, concurrency: () => 1, warmUpSettings: () => ({ roundOps: 1, roundsMax: 1 }) },
]

/** The rounds a figure of `operations` is timed in. */
function roundsOf(operations: number, settings: S3Settings): number {
  return Math.max(1, Math.min(settings.rounds, operations))
}

/** Progress steps `measure` announces for `targets` targets: per size a warm-up each and the PUT and GET rounds, then the read-back. */
function measureStepCount(targets: number, s: S3Settings): number {
  return targets * SIZES.reduce((n, size) => n + 1 + 2 * roundsOf(size.operations(s), s), 0) + 1
}

/** Progress steps measureS3 announces for `replications` O3 buckets (and as many native ones). */
export function s3StepCount(replications: readonly string[], settings: S3Settings): number {
  return 3 + measureStepCount(1, settings) + measureStepCount(1 + 2 * replications.length, settings)
}

const USER = 'bench'

/**
 * Who the load generator (or the native client) drives: its name in the results, its
 * progress label, its PUT and GET, how to read a key's bytes back for the final check (none
 * for the sink, which keeps nothing), and whose CPU it costs.
 */
interface Target { name: string; label: string; io: PairIo; read?: (key: string) => Promise<Uint8Array>; pids: readonly number[] }

/** An S3 bucket of a server as a target, through `load`. */
function s3Target(name: string, load: S3Load, bucket: string, pids: readonly number[], keepsBytes = true): Target {
  return {
    name, label: `S3 ${name}`, pids,
    io: { put: (key, body) => load.put(bucket, key, body), getLength: (key) => load.get(bucket, key) },
    read: keepsBytes ? async (key) => { const parts: Uint8Array[] = []; await load.get(bucket, key, (p) => parts.push(p)); return Buffer.concat(parts) } : undefined,
  }
}

/** Every figure of a target that could not run: the reason, for each. */
function failedFigures(reason: Failure): S3Figures {
  return { put4KiB: reason, get4KiB: reason, put1MiB: reason, get1MiB: reason, put64MiB: reason, get64MiB: reason, warmUp: { small: reason, medium: reason, large: reason } }
}

export async function measureS3(options: {
  serve: (kind: ServerKind) => Promise<Served>
  bench: BenchCluster
  replications: readonly string[]
  settings: S3Settings
  warmUp: WarmUps
  large: Uint8Array
  onStep: (name: string) => void
}): Promise<S3AndNative> {
  const { settings: s, large, onStep } = options
  assert(SIZES.every((size) => size.operations(s) > 0), 'every S3 figure needs operations')
  assert(large.length === SIZES[SIZES.length - 1].bytes, 'the large object is 64 MiB')
  const body = (size: Size) => large.subarray(0, size.bytes)
  const step = async <T>(target: Target, name: string, fn: () => Promise<T>): Promise<T | Failure> => {
    onStep(`${target.label}: ${name}`)
    try { return await fn() } catch (err) { return failure(err) }
  }

  /** Every figure of `targets` (in their order), size by size, each in rounds taken in turns. */
  const measure = async (targets: Target[]): Promise<S3Figures[]> => {
    // Each size below sets its figures; none is left at this.
    const figures = targets.map(() => failedFigures({ error: 'not run' }))
    /** A figure of `total` operations in rounds taken in turns, combined per target; not run where `skipped` gives a reason. */
    const inTurns = async <T extends OpsResult | ThroughputResult>(what: string, total: number, run: (k: number, first: number, count: number) => Promise<T>, skipped: (k: number) => string | undefined): Promise<(T | Failure)[]> => {
      const parts = splitCount(total, roundsOf(total, s))
      const title = (r: number) => `${what}, round ${r + 1} of ${parts.length}`
      const byTarget = await takeTurns<T>(targets.length, parts.length, (k, r) => step(targets[k], title(r), () => {
        const not = skipped(k)
        return not !== undefined ? Promise.reject(new Error(not)) : run(k, parts[r].first, parts[r].count)
      }), (k, r) => onStep(`${targets[k].label}: ${title(r)} (${NOT_RUN_AFTER_FAILURE})`))
      return byTarget.map((rs) => combineRounds(rs) as T | Failure)
    }
    for (const size of SIZES) {
      const bytes = body(size)
      const concurrency = size.concurrency(s)
      const cpu = (k: number) => () => cpuMs(targets[k].pids)
      // Untimed, as every figure's first runs are: a server's first few thousand requests pay
      // for its JIT, connections and caches, which the timed figures would mostly measure.
      for (const [k, t] of targets.entries()) {
        figures[k].warmUp[size.warmUp] = await step(t, `${size.label} warm-up (untimed${size.warmUp === 'large' ? ', one pair' : ', until settled'})`, () => warmUpWithPairs(size.warmUpSettings(options.warmUp), concurrency, t.io, `warm-${size.prefix}-`, bytes))
      }
      const key = (i: number) => `${size.prefix}-${i}`
      const warmedUp = (k: number) => 'error' in figures[k].warmUp[size.warmUp] ? `not run: the ${size.label} warm-up failed` : undefined
      const timed = <T extends OpsResult | ThroughputResult>(what: string, op: (k: number, i: number) => Promise<unknown>, put: boolean, skipped: (k: number) => string | undefined) =>
        inTurns<T>(what, size.operations(s), (k, first, count) => (concurrency > 1
          ? measureOps({ count, concurrency, op: async (i) => { await op(k, first + i) }, cpu: cpu(k) })
          : measureThroughput({ iterations: count, bytes: bytes.length, op: async (i) => { await op(k, first + i) }, cpu: cpu(k), warmUp: false, beforeTimed: put ? warmPagesForPuts : undefined })) as Promise<T>, skipped)
      const suffix = concurrency > 1 ? `, ${concurrency} concurrent` : ''
      const puts = await timed(`PUT ${size.label}${suffix}`, (k, i) => targets[k].io.put(key(i), bytes), true, warmedUp)
      const gets = await timed(`GET ${size.label}${suffix}`, async (k, i) => expectLength(await targets[k].io.getLength(key(i)), bytes.length), false, (k) => 'error' in puts[k] ? `not run: the ${size.label} PUTs failed` : undefined)
      for (const k of targets.keys()) Object.assign(figures[k], { [size.put]: puts[k], [size.get]: gets[k] })
    }
    // The timed GETs count bytes; here each target's first key of each size comes back whole.
    onStep('every target: one key of each size read back and compared')
    for (const [k, t] of targets.entries()) {
      const f = figures[k]
      for (const size of SIZES) {
        if (t.read === undefined || 'error' in f[size.get]) continue
        try {
          if (Buffer.compare(body(size), await t.read(`${size.prefix}-0`)) !== 0) f[size.get] = failure(new Error(`${size.prefix}-0 read back different bytes`))
        } catch (err) {
          f[size.get] = failure(err)
        }
      }
    }
    return figures
  }

  /** A server started, or why not (its figures then all say so, and the rest go on). */
  const started = async (kind: ServerKind): Promise<Served | Failure> => {
    try {
      return await options.serve(kind)
    } catch (err) {
      return failure(err)
    }
  }

  onStep('S3: start the sink (load generator ceiling)')
  const sink = await started('sink')
  let sinkFigures: S3Figures
  if ('error' in sink) sinkFigures = failedFigures(sink)
  else {
    const sinkLoad = new S3Load(sink.endpoint, { accessKeyId: 'any', secretAccessKey: 'any' })
    try {
      [sinkFigures] = await measure([s3Target('sink', sinkLoad, 'sink', [sink.pid], false)])
    } finally {
      await sinkLoad.close()
      await sink.stop()
    }
  }

  onStep('S3: buckets of the O3 gateway of o3 local')
  const bench = options.bench
  let o3Load: S3Load | undefined
  const o3: Target[] = []
  let o3Failed: Failure | undefined
  try {
    const client = bench.client
    const secret = await client.getS3Secret(USER)
    await client.createVolume(S3_VOLUME)
    o3Load = new S3Load(bench.endpoints.s3, { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret })
    for (const r of options.replications) {
      // Buckets made with the native client: S3's CreateBucket has no replication parameter.
      const bucket = `s3-${bucketName(r)}`
      await client.createBucket(S3_VOLUME, bucket, { replication: r, owner: USER })
      o3.push(s3Target(`O3 ${r}`, o3Load, bucket, bench.pids()))
    }
  } catch (err) {
    o3Failed = failure(err)
    o3.length = 0
  }
  const native = options.replications.map((r): Target => ({
    name: `native ${r}`, label: `native ${r}`, pids: bench.pids(),
    io: { put: (key, bytes) => bench.put(r, key, bytes), getLength: (key) => bench.getLength(r, key) },
    read: (key) => bench.get(r, key),
  }))
  onStep('S3: start s3rver')
  const s3rver = await started('s3rver')
  const s3rverLoad = 'error' in s3rver ? undefined : new S3Load(s3rver.endpoint, { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' })
  const served = [...(s3rverLoad === undefined || 'error' in s3rver ? [] : [s3Target('s3rver', s3rverLoad, 'bench', [s3rver.pid])]), ...o3]
  let figures: S3Figures[]
  try {
    figures = await measure([...served, ...native])
  } finally {
    await Promise.all([s3rverLoad?.close(), o3Load?.close()])
    if (!('error' in s3rver)) await s3rver.stop()
  }
  const of = (name: string) => figures[served.findIndex((t) => t.name === name)]
  return {
    servers: {
      sink: sinkFigures,
      s3rver: 'error' in s3rver ? failedFigures(s3rver) : of('s3rver'),
      ...Object.fromEntries(options.replications.map((r) => [`O3 ${r}`, o3Failed !== undefined ? failedFigures(o3Failed) : of(`O3 ${r}`)])),
    },
    native: Object.fromEntries(options.replications.map((r, j) => [r, figures[served.length + j]])),
  }
}
