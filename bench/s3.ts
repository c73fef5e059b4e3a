/** @module
 * The S3 part of `npm run bench` (issue 3) and the native client's figures: the same load
 * generator (bench/s3-load.ts), in this process, drives three servers, each in a child
 * process, over loopback, and the native client drives o3 local beside them:
 * 1. a sink, a bare node:http server that accepts any request, drains PUT bodies and answers
 *    GETs from memory: the ceiling of the generator itself, measured alone first;
 * 2. s3rver (npm), a Koa S3 emulator storing objects as files (the reference S3 server);
 * 3. O3's S3 gateway of the benchmark's `o3 local`, one bucket per replication;
 * 4. O3's native client (this process) into the same o3 local, one bucket per replication.
 * Each gets untimed rounds of 4 KiB PUT+GET pairs until its rate settles (measure.ts
 * warmUntilSettled). Then every figure (4 KiB PUT and GET at 32 concurrent, ops/s, p50,
 * p99; 1 MiB and 64 MiB PUT and GET one at a time, MB/s) is timed in rounds that s3rver,
 * O3's buckets and the native client take in turns, the order rotating, so that each ratio
 * (O3 over s3rver, S3 over native) compares figures of the same minutes of a shared machine.
 * Before the 1 MiB rounds each target warms up with 1 MiB pairs until settled, before the 64
 * MiB ones with one pair. Last, untimed, each target reads one key of each size back and
 * compares its bytes. A failing step is recorded and the run goes on.
 */
import { S3_VOLUME } from '../datapath/s3/index.ts'
import { assert } from '../core/assert.ts'
import { combineRounds, measureOps, takeTurns, measureThroughput, warmUpWithPairs, type CpuClock, type OpsResult, type PairIo, type ThroughputResult, type WarmUpSettings, failure } from './measure.ts'
import { warmPagesForPuts } from './page-pool.ts'
import { cpuMs } from './proc-cpu.ts'
import type { BenchCluster } from './o3-cluster.ts'
import { bucketName } from './o3-cluster.ts'
import { S3Load, type S3Credentials } from './s3-load.ts'
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
  /** PUT+GET pairs a second in each untimed warm-up round, 4 KiB and 1 MiB. */
  warmUp: { small: number[] | Failure; medium: number[] | Failure }
}

/** The native client's target name for a replication, in S3Results. */
export function nativeTarget(replication: string): string {
  return `native ${replication}`
}

/** The rounds a figure of `operations` is timed in. */
function roundsOf(operations: number, settings: S3Settings): number {
  return Math.max(1, Math.min(settings.rounds, operations))
}

/** Progress steps `measure` announces for `targets` targets. */
function measureStepCount(targets: number, s: S3Settings): number {
  const timed = 2 * (roundsOf(s.smallCount, s) + roundsOf(s.mediumIterations, s) + roundsOf(s.largeIterations, s))
  return targets * (3 + timed) + 1
}

/** Progress steps measureS3 announces for `replications` O3 buckets (and as many native ones). */
export function s3StepCount(replications: readonly string[], settings: S3Settings): number {
  return 3 + measureStepCount(1, settings) + measureStepCount(1 + 2 * replications.length, settings)
}

/** Figures by target: `sink`, `s3rver`, `O3 RATIS/ONE`, ..., `native RATIS/ONE`, ... */
export type S3Results = Record<string, S3Figures>

const USER = 'bench'

/**
 * Who the load generator (or the native client) drives: its PUT and GET, how to read a key's
 * bytes back for the final check (none for the sink, which keeps nothing), and whose CPU it costs.
 */
interface Target { name: string; io: PairIo; read?: (key: string) => Promise<Uint8Array>; pids: readonly number[] }

/** An S3 bucket of a server as a target, through `load`. */
function s3Target(name: string, load: S3Load, bucket: string, pids: readonly number[], keepsBytes = true): Target {
  return {
    name, pids,
    io: { put: (key, body) => load.put(bucket, key, body), getLength: (key) => load.get(bucket, key) },
    read: keepsBytes ? async (key) => { const parts: Uint8Array[] = []; await load.get(bucket, key, (p) => parts.push(p)); return Buffer.concat(parts) } : undefined,
  }
}

export async function measureS3(options: {
  serve: (kind: ServerKind) => Promise<Served>
  bench: BenchCluster
  replications: readonly string[]
  settings: S3Settings
  warmUp: WarmUps
  large: Uint8Array
  onStep: (name: string) => void
}): Promise<S3Results> {
  const { settings: s, large, onStep } = options
  assert(s.smallCount > 0 && s.mediumIterations > 0 && s.largeIterations > 0, 'every S3 figure needs operations')
  const medium = large.subarray(0, 1024 * 1024)
  const small = large.subarray(0, 4 * 1024)
  const results: S3Results = {}
  const step = async <T>(target: Target, name: string, fn: () => Promise<T>): Promise<T | Failure> => {
    onStep(`${target.name}: ${name}`)
    try { return await fn() } catch (err) { return failure(err) }
  }
  const expect = (n: number, length: number) => { if (n !== length) throw new Error(`Read ${n} bytes, expected ${length}`) }

  /** Every figure of `targets`, each in rounds taken in turns. */
  const measure = async (targets: Target[]) => {
    const cpu = (k: number): CpuClock => () => cpuMs(targets[k].pids)
    const io = (k: number) => targets[k].io
    /** A figure in `rounds` rounds taken in turns (measure.ts takeTurns), combined per target; not run where `skipped` gives a reason. */
    const inTurns = async <T extends OpsResult | ThroughputResult>(what: string, rounds: number, round: (k: number, r: number) => Promise<T>, skipped?: (k: number) => string | undefined): Promise<(T | Failure)[]> => {
      const byTarget = await takeTurns<T>(targets.length, rounds, (k, r) => step(targets[k], `${what}, round ${r + 1} of ${rounds}`, () => {
        const not = skipped?.(k)
        return not !== undefined ? Promise.reject(new Error(not)) : round(k, r)
      }))
      return byTarget.map((rs) => combineRounds(rs) as T | Failure)
    }
    const failed = (f: (OpsResult | ThroughputResult | Failure)[], why: string) => (k: number) => 'error' in f[k] ? why : undefined
    /** Ops of `what` at `s.concurrency`, op (k, index) over s.smallCount indexes split into rounds. */
    const ops = (what: string, op: (k: number, i: number) => Promise<unknown>, skipped?: (k: number) => string | undefined) => {
      const rounds = roundsOf(s.smallCount, s)
      const per = Math.ceil(s.smallCount / rounds)
      return inTurns(what, rounds, (k, r) => measureOps({ count: per, concurrency: s.concurrency, op: async (i) => { await op(k, r * per + i) }, cpu: cpu(k) }), skipped)
    }
    /** One transfer of `bytes` after another, `iterations` of them split into rounds. */
    const transfers = (what: string, iterations: number, bytes: number, op: (k: number, i: number) => Promise<unknown>, put: boolean, skipped?: (k: number) => string | undefined) => {
      const rounds = roundsOf(iterations, s)
      const per = Math.ceil(iterations / rounds)
      return inTurns(what, rounds, (k, r) => measureThroughput({
        iterations: per, bytes, op: async (i) => { await op(k, r * per + i) }, cpu: cpu(k), warmUp: false, beforeTimed: put ? warmPagesForPuts : undefined,
      }), skipped)
    }
    const eachTarget = async <T>(what: string, fn: (k: number) => Promise<T>): Promise<(T | Failure)[]> => {
      const out: (T | Failure)[] = []
      for (const k of targets.keys()) out.push(await step(targets[k], what, () => fn(k)))
      return out
    }

    // Untimed, as every figure's first runs are: a server's first few thousand requests pay
    // for its JIT, connections and caches, which the timed figures would mostly measure.
    const smallWarmUps = await eachTarget('4 KiB warm-up (untimed, until settled)', (k) => warmUpWithPairs(options.warmUp.small, s.concurrency, io(k), 'warm-', small))
    const put4KiB = await ops(`PUT 4 KiB, ${s.concurrency} concurrent`, (k, i) => io(k).put(`small-${i}`, small))
    const get4KiB = await ops(`GET 4 KiB, ${s.concurrency} concurrent`, async (k, i) => expect(await io(k).getLength(`small-${i}`), small.length), failed(put4KiB, 'not run: the 4 KiB PUTs failed'))
    const mediumWarmUps = await eachTarget('1 MiB warm-up (untimed, until settled)', (k) => warmUpWithPairs(options.warmUp.medium, 1, io(k), 'warm-medium-', medium))
    const put1MiB = await transfers('PUT 1 MiB', s.mediumIterations, medium.length, (k, i) => io(k).put(`medium-${i}`, medium), true)
    const get1MiB = await transfers('GET 1 MiB', s.mediumIterations, medium.length, async (k, i) => expect(await io(k).getLength(`medium-${i}`), medium.length), false, failed(put1MiB, 'not run: the 1 MiB PUTs failed'))
    await eachTarget('64 MiB warm-up (one untimed PUT and GET)', (k) => warmUpWithPairs({ roundOps: 1, roundsMax: 1 }, 1, io(k), 'warm-large-', large))
    const put64MiB = await transfers('PUT 64 MiB', s.largeIterations, large.length, (k, i) => io(k).put(`large-${i}`, large), true)
    const get64MiB = await transfers('GET 64 MiB', s.largeIterations, large.length, async (k, i) => expect(await io(k).getLength(`large-${i}`), large.length), false, failed(put64MiB, 'not run: the 64 MiB PUTs failed'))

    // The timed GETs count bytes; here each target's first key of each size comes back whole.
    const readBack: [keyof S3Figures & `get${string}`, string, Uint8Array][] = [['get4KiB', 'small-0', small], ['get1MiB', 'medium-0', medium], ['get64MiB', 'large-0', large]]
    onStep('every target: one key of each size read back and compared')
    const gets = { get4KiB, get1MiB, get64MiB }
    for (const [k, t] of targets.entries()) {
      for (const [figure, key, bytes] of readBack) {
        if (t.read === undefined || 'error' in gets[figure][k]) continue
        try {
          if (!Buffer.from(bytes).equals(await t.read(key))) gets[figure][k] = failure(new Error(`${key} read back different bytes`))
        } catch (err) {
          gets[figure][k] = failure(err)
        }
      }
      results[t.name] = { put4KiB: put4KiB[k], get4KiB: get4KiB[k], put1MiB: put1MiB[k], get1MiB: get1MiB[k], put64MiB: put64MiB[k], get64MiB: get64MiB[k], warmUp: { small: smallWarmUps[k], medium: mediumWarmUps[k] } }
    }
  }

  onStep('S3: start the sink (load generator ceiling)')
  const sink = await options.serve('sink')
  const sinkLoad = new S3Load(sink.endpoint, { accessKeyId: 'any', secretAccessKey: 'any' })
  try {
    await measure([s3Target('sink', sinkLoad, 'sink', [sink.pid], false)])
  } finally {
    await sinkLoad.close()
    await sink.stop()
  }

  onStep('S3: buckets of the O3 gateway of o3 local')
  const bench = options.bench
  const client = bench.client
  const secret = await client.getS3Secret(USER)
  await client.createVolume(S3_VOLUME)
  const o3Load = new S3Load(bench.endpoints.s3, { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret })
  const o3: Target[] = []
  for (const r of options.replications) {
    // Buckets made with the native client: S3's CreateBucket has no replication parameter.
    const bucket = `s3-${bucketName(r)}`
    await client.createBucket(S3_VOLUME, bucket, { replication: r, owner: USER })
    o3.push(s3Target(`O3 ${r}`, o3Load, bucket, bench.pids()))
  }
  const native = options.replications.map((r): Target => ({
    name: nativeTarget(r), pids: bench.pids(),
    io: { put: (key, body) => bench.put(r, key, body), getLength: (key) => bench.getLength(r, key) },
    read: (key) => bench.get(r, key),
  }))
  onStep('S3: start s3rver')
  const s3rver = await options.serve('s3rver')
  const s3rverLoad = new S3Load(s3rver.endpoint, { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' })
  try {
    await measure([s3Target('s3rver', s3rverLoad, 'bench', [s3rver.pid]), ...o3, ...native])
  } finally {
    await Promise.all([s3rverLoad.close(), o3Load.close()])
    await s3rver.stop()
  }
  return results
}
