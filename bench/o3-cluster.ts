/** @module
 * O3's side of the benchmark: an in-process LocalCluster of three datanodes in a temp dir on
 * free loopback ports, and the native client putting and getting keys in a bucket per
 * replication. Reads are consumed as streams and counted, as the bare baseline's are.
 */
import { join } from 'node:path'
import { LocalCluster } from '../cli/cluster.ts'
import { assert } from '../core/assert.ts'
import type { O3Client } from '../datapath/client/index.ts'

export const VOLUME = 'bench'

export class BenchCluster {
  readonly cluster: LocalCluster
  private client_: O3Client | undefined

  constructor(dir: string) {
    this.cluster = new LocalCluster({
      dataDir: join(dir, 'o3'), datanodes: 3, freePorts: true,
      // Short heartbeats only shorten start-up (safemode exit); they add a few small RPCs a second.
      overrides: { 'datanode.heartbeatIntervalMs': 250 },
      // O3_* environment overrides apply, so that a setting can be benchmarked without an edit.
      env: true,
    })
  }

  get client(): O3Client {
    assert(this.client_ !== undefined, 'not started')
    return this.client_
  }

  async start(replications: readonly string[]): Promise<void> {
    await this.cluster.start()
    this.client_ = this.cluster.client()
    await this.client.createVolume(VOLUME)
    for (const r of replications) await this.client.createBucket(VOLUME, bucketName(r), { replication: r })
  }

  async put(replication: string, key: string, bytes: Uint8Array): Promise<void> {
    await this.client.putKey(VOLUME, bucketName(replication), key, bytes)
  }

  /** Streams a key and returns its length, keeping no bytes. */
  async getLength(replication: string, key: string): Promise<number> {
    let n = 0
    for await (const part of await this.client.readKey(VOLUME, bucketName(replication), key)) n += (part as Buffer).length
    return n
  }

  get(replication: string, key: string): Promise<Buffer> {
    return this.client.getKey(VOLUME, bucketName(replication), key)
  }

  async stop(): Promise<void> {
    await this.cluster.stop()
  }
}

/** RATIS/THREE -> ratis-three: bucket names allow only lowercase letters, digits, '-' and '.'. */
export function bucketName(replication: string): string {
  return replication.toLowerCase().replace(/[^a-z0-9.-]/g, '-')
}
