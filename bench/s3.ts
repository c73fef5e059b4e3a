/** @module
 * The S3 part of `npm run bench` (issue 3): the same load generator (bench/s3-load.ts) drives
 * three servers in turn, all in this process over loopback:
 * 1. a sink, a bare node:http server that accepts any request, drains PUT bodies and answers
 *    GETs from memory: the ceiling of the generator itself;
 * 2. s3rver (npm), a Koa S3 emulator storing objects as files (the reference S3 server);
 * 3. O3's S3 gateway on the benchmark's LocalCluster, one bucket per replication.
 * Each gets 4 KiB PUT/GET at 32 concurrent (ops/s, p50, p99), then 1 MiB and 64 MiB PUT/GET
 * one at a time (MB/s). A failing step is recorded and the run goes on.
 */
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { join } from 'node:path'
import S3rver from 's3rver'
import { assert } from '../core/assert.ts'
import { S3Gateway, S3_VOLUME } from '../datapath/s3/index.ts'
import { measureOps, measureThroughput, type OpsResult, type ThroughputResult, failure } from './measure.ts'
import type { BenchCluster } from './o3-cluster.ts'
import { bucketName } from './o3-cluster.ts'
import { S3Load, type S3Credentials } from './s3-load.ts'

export interface S3Settings {
  smallCount: number
  mediumIterations: number
  largeIterations: number
  concurrency: number
}

export interface Failure { error: string }

export interface S3Figures {
  put4KiB: OpsResult | Failure
  get4KiB: OpsResult | Failure
  put1MiB: ThroughputResult | Failure
  get1MiB: ThroughputResult | Failure
  put64MiB: ThroughputResult | Failure
  get64MiB: ThroughputResult | Failure
}

/** Progress steps measureS3 announces for `replications` O3 buckets. */
export function s3StepCount(replications: readonly string[]): number {
  return 3 + (2 + replications.length) * 6
}

/** Figures by target: `sink`, `s3rver`, `O3 RATIS/ONE`, ... */
export type S3Results = Record<string, S3Figures>

const USER = 'bench'

export async function measureS3(options: {
  dir: string
  bench: BenchCluster
  replications: readonly string[]
  settings: S3Settings
  large: Uint8Array
  onStep: (name: string) => void
}): Promise<S3Results> {
  const { settings: s, large, onStep } = options
  const medium = large.subarray(0, 1024 * 1024)
  const small = large.subarray(0, 4 * 1024)
  const results: S3Results = {}

  const run = async (target: string, endpoint: string, credentials: S3Credentials, bucket: string) => {
    const load = new S3Load(endpoint, credentials)
    const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | Failure> => {
      onStep(`S3 ${target}: ${name}`)
      try { return await fn() } catch (err) { return failure(err) }
    }
    const expect = (n: number, length: number) => { if (n !== length) throw new Error(`Read ${n} bytes, expected ${length}`) }
    try {
      const put4KiB = await step(`PUT 4 KiB, ${s.concurrency} concurrent`, () => measureOps({ count: s.smallCount, concurrency: s.concurrency, op: (i) => load.put(bucket, `small-${i}`, small) }))
      const get4KiB = await step(`GET 4 KiB, ${s.concurrency} concurrent`, () => 'error' in put4KiB ? Promise.reject(new Error('not run: the 4 KiB PUTs failed')) : measureOps({
        count: s.smallCount, concurrency: s.concurrency, op: async (i) => expect(await load.get(bucket, `small-${i}`), small.length),
      }))
      const put1MiB = await step('PUT 1 MiB', () => measureThroughput({ iterations: s.mediumIterations, bytes: medium.length, op: (i) => load.put(bucket, `medium-${i}`, medium) }))
      const get1MiB = await step('GET 1 MiB', () => measureThroughput({ iterations: s.mediumIterations, bytes: medium.length, op: async (i) => expect(await load.get(bucket, `medium-${i}`), medium.length) }))
      const put64MiB = await step('PUT 64 MiB', () => measureThroughput({ iterations: s.largeIterations, bytes: large.length, op: (i) => load.put(bucket, `large-${i}`, large) }))
      const get64MiB = await step('GET 64 MiB', () => measureThroughput({ iterations: s.largeIterations, bytes: large.length, op: async (i) => expect(await load.get(bucket, `large-${i}`), large.length) }))
      results[target] = { put4KiB, get4KiB, put1MiB, get1MiB, put64MiB, get64MiB }
    } finally {
      await load.close()
    }
  }

  onStep('S3: start the sink (load generator ceiling)')
  const sink = await Sink.start()
  try {
    await run('sink', sink.endpoint, { accessKeyId: 'any', secretAccessKey: 'any' }, 'sink')
  } finally {
    await sink.stop()
  }

  onStep('S3: start s3rver')
  const s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: join(options.dir, 's3rver'), configureBuckets: [{ name: 'bench' }] })
  const address = await s3rver.run()
  try {
    await run('s3rver', `http://127.0.0.1:${address.port}`, { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, 'bench')
  } finally {
    await s3rver.close()
  }

  onStep('S3: start the O3 gateway')
  const cluster = options.bench.cluster
  const gateway = new S3Gateway({ config: cluster.config, omAddress: cluster.omAddress, scmAddress: cluster.scmAddress, port: 0 })
  await gateway.start()
  try {
    const client = options.bench.client
    const secret = await client.getS3Secret(USER)
    await client.createVolume(S3_VOLUME)
    for (const r of options.replications) {
      // Buckets made with the native client: S3's CreateBucket has no replication parameter.
      const bucket = `s3-${bucketName(r)}`
      await client.createBucket(S3_VOLUME, bucket, { replication: r, owner: USER })
      await run(`O3 ${r}`, gateway.endpoint, { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret }, bucket)
    }
  } finally {
    await gateway.stop()
  }
  return results
}

/**
 * Accepts any request without checking it: PUT bodies are drained and their lengths kept by
 * path, GET answers that many bytes from one preallocated buffer. What the generator reaches
 * against it is the most it can measure of any server.
 */
export class Sink {
  private readonly lengths = new Map<string, number>()
  private readonly zeros = Buffer.alloc(64 * 1024 * 1024)

  private constructor(private readonly server: Server, readonly endpoint: string) {}

  static async start(): Promise<Sink> {
    let sink: Sink | undefined
    const server = createServer((req, res) => {
      const path = req.url ?? '/'
      if (req.method === 'GET') {
        const n = sink!.lengths.get(path) ?? 0
        res.writeHead(200, { 'content-length': n })
        res.end(sink!.zeros.subarray(0, n))
        return
      }
      let n = 0
      req.on('data', (part: Buffer) => { n += part.length })
      req.on('end', () => { sink!.lengths.set(path, n); res.writeHead(200, { etag: '"0"' }); res.end() })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address()
    assert(address !== null && typeof address === 'object', 'sink has no address')
    sink = new Sink(server, `http://127.0.0.1:${address.port}`)
    return sink
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
