/** @module
 * The erasure-coding part of `npm run bench` (issue 14): a second `o3 local`, nine datanodes
 * each in a process of its own, buckets of RATIS/THREE, EC rs-3-2 and EC rs-6-3 side by side;
 * 64 MiB PUT and GET through the S3 gateway, the replications taking turns (one transfer each
 * per round, the order changing: measure.ts turnOrder), bytes on disk per byte written, then a degraded GET of each
 * EC bucket with m of its key's data replicas killed (kill -9 of their processes).
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { S3_VOLUME } from '../datapath/s3/index.ts'
import { parseReplication } from '../core/wire.ts'
import { combineRounds, expectLength, inTurnOrder, measureThroughput, type ThroughputResult, failure } from './measure.ts'
import { warmPagesForPuts } from './page-pool.ts'
import { BenchCluster, bucketName } from './o3-cluster.ts'
import { cpuMs } from './proc-cpu.ts'
import { S3Load } from './s3-load.ts'
import type { Failure } from './s3.ts'

export const EC_BENCH_REPLICATIONS = ['RATIS/THREE', 'EC/rs-3-2-1024k', 'EC/rs-6-3-1024k'] as const
/** rs-6-3 needs nine datanodes. */
export const EC_BENCH_DATANODES = 9
const USER = 'bench'

export interface EcFigures {
  put64MiB: ThroughputResult | Failure
  get64MiB: ThroughputResult | Failure
  /** EC only: GET with m of the key's data replicas down. */
  degradedGet64MiB?: ThroughputResult | Failure
  /** Bytes the datanodes' block files grew by per key byte written (3 for RATIS/THREE). */
  diskBytesPerByte?: number
}

/** Progress steps measureS3Ec announces for `rounds` timed transfers per figure. */
export function s3EcStepCount(rounds: number): number {
  return 2 + 2 * rounds * EC_BENCH_REPLICATIONS.length + (EC_BENCH_REPLICATIONS.length - 1)
}

/** Bytes of block data under a datanode folder: every file but LMDB's and the logs. */
function blockBytes(dir: string): number {
  let n = 0
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    const st = statSync(path)
    if (st.isDirectory()) n += blockBytes(path)
    else if (!name.endsWith('.mdb') && !name.endsWith('.lock')) n += st.size
  }
  return n
}

export async function measureS3Ec(options: {
  dir: string; profileDir?: string; large: Uint8Array; iterations: number; onStep: (name: string) => void
  /** Each server process the run starts, so that --profile can name its profiles. */
  onProcess?: (pid: number, name: string) => void
}): Promise<Record<string, EcFigures>> {
  const { large, iterations, onStep } = options
  onStep(`S3 EC: start o3 local, ${EC_BENCH_DATANODES} datanodes (one process each)`)
  const bench = new BenchCluster(options.dir, { topology: 'processes', profileDir: options.profileDir, datanodes: EC_BENCH_DATANODES })
  const results: Record<string, EcFigures> = {}
  try {
    await bench.start([])
    for (const [pid, name] of bench.processNames()) options.onProcess?.(pid, `ec ${name}`)
    const client = bench.client
    const secret = await client.getS3Secret(USER)
    await client.createVolume(S3_VOLUME)
    const load = new S3Load(bench.endpoints.s3, { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret })
    const cpu = () => cpuMs(bench.pids())
    const dataDir = join(options.dir, 'o3')
    const datanodeDirs = () => readdirSync(dataDir).filter((d) => d.startsWith('datanode-')).map((d) => join(dataDir, d))
    const onDisk = () => datanodeDirs().reduce((sum, d) => sum + blockBytes(d), 0)
    const expect = (n: number) => expectLength(n, large.length)
    const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | Failure> => {
      onStep(`S3 EC: ${name}`)
      try { return await fn() } catch (err) { return failure(err) }
    }
    try {
      const bucketOf = (r: string) => `s3-${bucketName(r)}`
      // Untimed first: each bucket's first PUT (its growth on disk gives bytes per byte) and
      // GET, warming up connections, pipelines and JIT for all of them.
      onStep('S3 EC: one untimed PUT and GET per bucket')
      const disk = new Map<string, number>()
      for (const r of EC_BENCH_REPLICATIONS) {
        await client.createBucket(S3_VOLUME, bucketOf(r), { replication: r, owner: USER })
        const before = onDisk()
        await load.put(bucketOf(r), 'warm', large)
        disk.set(r, (onDisk() - before) / large.length)
        expect(await load.get(bucketOf(r), 'warm'))
      }
      // Then the timed transfers in turns, one per replication per round, so that every
      // replication meets the same machine (a load that comes or goes moves them all).
      type Figure = ThroughputResult | Failure
      const puts = new Map<string, Figure[]>(), gets = new Map<string, Figure[]>()
      const timed = async (into: Map<string, Figure[]>, r: string, name: string, op: () => Promise<void>, beforeTimed?: (timedBytes: number) => void) => {
        onStep(`S3 EC: ${r} ${name}`)
        let f: Figure
        try { f = await measureThroughput({ iterations: 1, warmUp: false, bytes: large.length, op, cpu, beforeTimed }) } catch (err) { f = failure(err) }
        into.set(r, [...into.get(r) ?? [], f])
      }
      for (let round = 0; round < iterations; round++) {
        for (const r of inTurnOrder(EC_BENCH_REPLICATIONS, round)) await timed(puts, r, `PUT 64 MiB, round ${round + 1}`, () => load.put(bucketOf(r), `large-${round}`, large), warmPagesForPuts)
      }
      for (let round = 0; round < iterations; round++) {
        for (const r of inTurnOrder(EC_BENCH_REPLICATIONS, round)) await timed(gets, r, `GET 64 MiB, round ${round + 1}`, async () => expect(await load.get(bucketOf(r), `large-${round}`)))
      }
      for (const r of EC_BENCH_REPLICATIONS) {
        let get64MiB = combineRounds(gets.get(r) ?? []) as Figure
        if (!('error' in get64MiB) && !(await client.getKey(S3_VOLUME, bucketOf(r), 'large-0')).equals(large)) get64MiB = failure(new Error(`${bucketOf(r)}/large-0 read back different bytes`))
        results[r] = { put64MiB: combineRounds(puts.get(r) ?? []) as Figure, get64MiB, diskBytesPerByte: disk.get(r) }
      }
      // Degraded reads last: they kill datanodes for good.
      const pids = bench.endpoints.pids ?? {}
      const byAddress = new Map(bench.endpoints.datanodes.map((a, i) => [a, pids[`datanode-${i + 1}`]]))
      const killed = new Set<string>()
      for (const r of EC_BENCH_REPLICATIONS.filter((x) => x.startsWith('EC/'))) {
        const bucket = bucketOf(r)
        const m = parseReplication(r).ec!.parity
        results[r].degradedGet64MiB = await step(`${r} GET 64 MiB with ${m} data replicas down`, async () => {
          const info = await client.headKey(S3_VOLUME, bucket, 'large-0')
          for (const location of info.locations) {
            const nodes = location.pipeline.nodes.map((n) => n.address)
            for (const address of nodes) {
              if (nodes.filter((a) => killed.has(a)).length >= m) break
              const pid = byAddress.get(address)
              if (pid === undefined || killed.has(address)) continue
              process.kill(pid, 'SIGKILL')
              killed.add(address)
            }
          }
          const t = await measureThroughput({ iterations, bytes: large.length, op: async () => expect(await load.get(bucket, 'large-0')), cpu: () => cpuMs(bench.pids().filter((p) => ![...killed].some((a) => byAddress.get(a) === p))) })
          if (!(await client.getKey(S3_VOLUME, bucket, 'large-0')).equals(large)) throw new Error(`${bucket}/large-0 read back different bytes with ${m} nodes down`)
          return t
        })
      }
    } finally {
      await load.close()
    }
  } finally {
    await bench.stop()
  }
  return results
}
