/** @module
 * The S3 part of `npm run bench` (issue 3): the same load generator (bench/s3-load.ts), in
 * this process, drives three servers, each in a child process, over loopback:
 * 1. a sink, a bare node:http server that accepts any request, drains PUT bodies and answers
 *    GETs from memory: the ceiling of the generator itself, measured alone first;
 * 2. s3rver (npm), a Koa S3 emulator storing objects as files (the reference S3 server);
 * 3. O3's S3 gateway of the benchmark's `o3 local`, one bucket per replication.
 * Each gets untimed rounds of 4 KiB PUT+GET pairs until its rate settles (measure.ts
 * warmUntilSettled); then the 4 KiB PUTs at 32 concurrent (ops/s, p50, p99) are timed in
 * rounds that s3rver and O3's buckets take in turns, the order rotating, and so are the GETs,
 * so that each ratio compares figures of the same minutes of a shared machine. Then, target
 * by target, the same warm-up with 1 MiB pairs one at a time, then 1 MiB and 64 MiB PUT/GET
 * one at a time (MB/s). A failing step is recorded and the run goes on.
 */
import { S3_VOLUME } from '../datapath/s3/index.ts'
import { combineRounds, measureOps, measureThroughput, warmUpWithPairs, type CpuClock, type OpsResult, type ThroughputResult, type WarmUpSettings, failure } from './measure.ts'
import { warmPagesForPuts } from './page-pool.ts'
import { cpuMs } from './proc-cpu.ts'
import type { BenchCluster } from './o3-cluster.ts'
import { bucketName } from './o3-cluster.ts'
import { S3Load, type S3Credentials } from './s3-load.ts'
import type { ServerKind } from './server-process.ts'

/** A running baseline server (in a child process), its PID (for its CPU time) and how to stop it. */
export interface Served { endpoint: string; pid: number; stop(): Promise<void> }

export interface S3Settings {
  /** 4 KiB PUTs (and GETs) per target, timed in `smallRounds` rounds taken in turns with the other targets. */
  smallCount: number
  smallRounds: number
  mediumIterations: number
  largeIterations: number
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

/** Progress steps measureS3 announces for `replications` O3 buckets. */
export function s3StepCount(replications: readonly string[], settings: S3Settings): number {
  return 3 + (2 + replications.length) * (6 + 2 * settings.smallRounds)
}

/** Figures by target: `sink`, `s3rver`, `O3 RATIS/ONE`, ... */
export type S3Results = Record<string, S3Figures>

const USER = 'bench'

/** A server the load generator drives: where, as whom, into which bucket, and whose CPU it costs. */
interface Target { name: string; endpoint: string; credentials: S3Credentials; bucket: string; pids: readonly number[] }

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
  const medium = large.subarray(0, 1024 * 1024)
  const small = large.subarray(0, 4 * 1024)
  const results: S3Results = {}
  const step = async <T>(target: Target, name: string, fn: () => Promise<T>): Promise<T | Failure> => {
    onStep(`S3 ${target.name}: ${name}`)
    try { return await fn() } catch (err) { return failure(err) }
  }
  const expect = (n: number, length: number) => { if (n !== length) throw new Error(`Read ${n} bytes, expected ${length}`) }

  /** Every figure of `targets`: their 4 KiB ones in rounds taken in turns, the rest target by target. */
  const measure = async (targets: Target[]) => {
    const loads = targets.map((t) => new S3Load(t.endpoint, t.credentials))
    try {
      const cpu = (k: number): CpuClock => () => cpuMs(targets[k].pids)
      const ios = targets.map((t, k) => ({ put: (key: string, body: Uint8Array): Promise<void> => loads[k].put(t.bucket, key, body), getLength: (key: string) => loads[k].get(t.bucket, key) }))
      // Untimed, as the large figures' first run is: a server's first few thousand requests
      // pay for its JIT, connections and caches, which the timed figures would mostly measure.
      const smallWarmUps: (number[] | Failure)[] = []
      for (const [k, t] of targets.entries()) smallWarmUps.push(await step(t, '4 KiB warm-up (untimed, until settled)', () => warmUpWithPairs(options.warmUp.small, s.concurrency, ios[k], 'warm-', small)))
      const rounds = Math.max(1, Math.min(s.smallRounds, s.smallCount))
      const perRound = Math.ceil(s.smallCount / rounds)
      /** `op` in rounds taken in turns, combined per target; a target `skipped` names fails its rounds with that reason. */
      const inTurns = async (what: string, op: (k: number, index: number) => Promise<void>, skipped?: (k: number) => string | undefined) => {
        const byTarget: (OpsResult | Failure)[][] = targets.map(() => [])
        for (let r = 0; r < rounds; r++) {
          for (let j = 0; j < targets.length; j++) {
            const k = (r + j) % targets.length
            const not = skipped?.(k)
            byTarget[k].push(await step(targets[k], `${what}, round ${r + 1} of ${rounds}`, () => not !== undefined ? Promise.reject(new Error(not)) : measureOps({
              count: perRound, concurrency: s.concurrency, op: (i) => op(k, r * perRound + i), cpu: cpu(k),
            })))
          }
        }
        return byTarget.map((rs) => combineRounds(rs) as OpsResult | Failure)
      }
      const put4KiB = await inTurns(`PUT 4 KiB, ${s.concurrency} concurrent`, (k, i) => ios[k].put(`small-${i}`, small))
      const get4KiB = await inTurns(`GET 4 KiB, ${s.concurrency} concurrent`, async (k, i) => expect(await ios[k].getLength(`small-${i}`), small.length), (k) => 'error' in put4KiB[k] ? 'not run: the 4 KiB PUTs failed' : undefined)
      for (const [k, t] of targets.entries()) {
        const medium1MiBWarmUp = await step(t, '1 MiB warm-up (untimed, until settled)', () => warmUpWithPairs(options.warmUp.medium, 1, ios[k], 'warm-medium-', medium))
        const put1MiB = await step(t, 'PUT 1 MiB', () => measureThroughput({ iterations: s.mediumIterations, bytes: medium.length, op: (i) => ios[k].put(`medium-${i}`, medium), cpu: cpu(k), beforeTimed: warmPagesForPuts }))
        const get1MiB = await step(t, 'GET 1 MiB', () => measureThroughput({ iterations: s.mediumIterations, bytes: medium.length, op: async (i) => expect(await ios[k].getLength(`medium-${i}`), medium.length), cpu: cpu(k) }))
        const put64MiB = await step(t, 'PUT 64 MiB', () => measureThroughput({ iterations: s.largeIterations, bytes: large.length, op: (i) => ios[k].put(`large-${i}`, large), cpu: cpu(k), beforeTimed: warmPagesForPuts }))
        const get64MiB = await step(t, 'GET 64 MiB', () => measureThroughput({ iterations: s.largeIterations, bytes: large.length, op: async (i) => expect(await ios[k].getLength(`large-${i}`), large.length), cpu: cpu(k) }))
        results[t.name] = { put4KiB: put4KiB[k], get4KiB: get4KiB[k], put1MiB, get1MiB, put64MiB, get64MiB, warmUp: { small: smallWarmUps[k], medium: medium1MiBWarmUp } }
      }
    } finally {
      await Promise.all(loads.map((l) => l.close()))
    }
  }

  onStep('S3: start the sink (load generator ceiling)')
  const sink = await options.serve('sink')
  try {
    await measure([{ name: 'sink', endpoint: sink.endpoint, credentials: { accessKeyId: 'any', secretAccessKey: 'any' }, bucket: 'sink', pids: [sink.pid] }])
  } finally {
    await sink.stop()
  }

  onStep('S3: buckets of the O3 gateway of o3 local')
  const client = options.bench.client
  const secret = await client.getS3Secret(USER)
  await client.createVolume(S3_VOLUME)
  const o3: Target[] = []
  for (const r of options.replications) {
    // Buckets made with the native client: S3's CreateBucket has no replication parameter.
    const bucket = `s3-${bucketName(r)}`
    await client.createBucket(S3_VOLUME, bucket, { replication: r, owner: USER })
    o3.push({ name: `O3 ${r}`, endpoint: options.bench.endpoints.s3, credentials: { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret }, bucket, pids: options.bench.pids() })
  }
  onStep('S3: start s3rver')
  const s3rver = await options.serve('s3rver')
  try {
    await measure([{ name: 's3rver', endpoint: s3rver.endpoint, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, bucket: 'bench', pids: [s3rver.pid] }, ...o3])
  } finally {
    await s3rver.stop()
  }
  return results
}
