/** @module
 * The S3 part of `npm run bench` (issue 3): the same load generator (bench/s3-load.ts), in
 * this process, drives three servers in turn, each in a child process, over loopback:
 * 1. a sink, a bare node:http server that accepts any request, drains PUT bodies and answers
 *    GETs from memory: the ceiling of the generator itself;
 * 2. s3rver (npm), a Koa S3 emulator storing objects as files (the reference S3 server);
 * 3. O3's S3 gateway of the benchmark's `o3 local`, one bucket per replication.
 * Each gets untimed rounds of 4 KiB PUT+GET pairs until its rate settles (measure.ts
 * warmUntilSettled), then 4 KiB PUT/GET at 32 concurrent (ops/s, p50, p99), then the same
 * warm-up with 1 MiB pairs one at a time, then 1 MiB and 64 MiB PUT/GET one at a time
 * (MB/s). A failing step is recorded and the run goes on.
 */
import { S3_VOLUME } from '../datapath/s3/index.ts'
import { measureOps, measureThroughput, warmUpWithPairs, type CpuClock, type OpsResult, type ThroughputResult, type WarmUpSettings, failure } from './measure.ts'
import { warmPagesForPuts } from './page-pool.ts'
import { cpuMs } from './proc-cpu.ts'
import type { BenchCluster } from './o3-cluster.ts'
import { bucketName } from './o3-cluster.ts'
import { S3Load, type S3Credentials } from './s3-load.ts'
import type { ServerKind } from './server-process.ts'

/** A running baseline server (in a child process), its PID (for its CPU time) and how to stop it. */
export interface Served { endpoint: string; pid: number; stop(): Promise<void> }

export interface S3Settings {
  smallCount: number
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
export function s3StepCount(replications: readonly string[]): number {
  return 3 + (2 + replications.length) * 8
}

/** Figures by target: `sink`, `s3rver`, `O3 RATIS/ONE`, ... */
export type S3Results = Record<string, S3Figures>

const USER = 'bench'

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

  const run = async (target: string, endpoint: string, credentials: S3Credentials, bucket: string, pids: readonly number[]) => {
    const cpu: CpuClock = () => cpuMs(pids)
    const load = new S3Load(endpoint, credentials)
    const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | Failure> => {
      onStep(`S3 ${target}: ${name}`)
      try { return await fn() } catch (err) { return failure(err) }
    }
    const expect = (n: number, length: number) => { if (n !== length) throw new Error(`Read ${n} bytes, expected ${length}`) }
    try {
      // Untimed, as the large figures' first run is: a server's first few thousand requests
      // pay for its JIT, connections and caches, which the timed figures would mostly measure.
      const io = { put: (key: string, body: Uint8Array) => load.put(bucket, key, body), getLength: (key: string) => load.get(bucket, key) }
      const small4KiBWarmUp = await step('4 KiB warm-up (untimed, until settled)', () => warmUpWithPairs(options.warmUp.small, s.concurrency, io, 'warm-', small))
      const put4KiB = await step(`PUT 4 KiB, ${s.concurrency} concurrent`, () => measureOps({ count: s.smallCount, concurrency: s.concurrency, op: (i) => load.put(bucket, `small-${i}`, small) , cpu }))
      const get4KiB = await step(`GET 4 KiB, ${s.concurrency} concurrent`, () => 'error' in put4KiB ? Promise.reject(new Error('not run: the 4 KiB PUTs failed')) : measureOps({
        count: s.smallCount, concurrency: s.concurrency, op: async (i) => expect(await load.get(bucket, `small-${i}`), small.length), cpu,
      }))
      const medium1MiBWarmUp = await step('1 MiB warm-up (untimed, until settled)', () => warmUpWithPairs(options.warmUp.medium, 1, io, 'warm-medium-', medium))
      const put1MiB = await step('PUT 1 MiB', () => measureThroughput({ iterations: s.mediumIterations, bytes: medium.length, op: (i) => load.put(bucket, `medium-${i}`, medium), cpu, beforeTimed: warmPagesForPuts }))
      const get1MiB = await step('GET 1 MiB', () => measureThroughput({ iterations: s.mediumIterations, bytes: medium.length, op: async (i) => expect(await load.get(bucket, `medium-${i}`), medium.length), cpu }))
      const put64MiB = await step('PUT 64 MiB', () => measureThroughput({ iterations: s.largeIterations, bytes: large.length, op: (i) => load.put(bucket, `large-${i}`, large), cpu, beforeTimed: warmPagesForPuts }))
      const get64MiB = await step('GET 64 MiB', () => measureThroughput({ iterations: s.largeIterations, bytes: large.length, op: async (i) => expect(await load.get(bucket, `large-${i}`), large.length), cpu }))
      results[target] = { put4KiB, get4KiB, put1MiB, get1MiB, put64MiB, get64MiB, warmUp: { small: small4KiBWarmUp, medium: medium1MiBWarmUp } }
    } finally {
      await load.close()
    }
  }

  onStep('S3: start the sink (load generator ceiling)')
  const sink = await options.serve('sink')
  try {
    await run('sink', sink.endpoint, { accessKeyId: 'any', secretAccessKey: 'any' }, 'sink', [sink.pid])
  } finally {
    await sink.stop()
  }

  onStep('S3: start s3rver')
  const s3rver = await options.serve('s3rver')
  try {
    await run('s3rver', s3rver.endpoint, { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, 'bench', [s3rver.pid])
  } finally {
    await s3rver.stop()
  }

  onStep('S3: the O3 gateway of o3 local')
  const client = options.bench.client
  const secret = await client.getS3Secret(USER)
  await client.createVolume(S3_VOLUME)
  for (const r of options.replications) {
    // Buckets made with the native client: S3's CreateBucket has no replication parameter.
    const bucket = `s3-${bucketName(r)}`
    await client.createBucket(S3_VOLUME, bucket, { replication: r, owner: USER })
    await run(`O3 ${r}`, options.bench.endpoints.s3, { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret }, bucket, options.bench.pids())
  }
  return results
}
