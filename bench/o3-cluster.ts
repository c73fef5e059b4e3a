/** @module
 * O3's side of the benchmark: the cluster as users run it, `o3 local` (SCM, OM, 3 datanodes,
 * S3 gateway) in a child process on free loopback ports in a temp dir, in the topology asked
 * for, and the native client in this process putting and getting keys in a bucket per
 * replication. Reads are consumed as streams and counted, as the bare baseline's are.
 */
import { join } from 'node:path'
import { assert } from '../core/assert.ts'
import { loadConfig } from '../core/config.ts'
import { O3Client } from '../datapath/client/index.ts'
import { closeWorkerPool } from '../datapath/workers/index.ts'
import { moduleCommand, startChild, stopChild, type Child } from './child.ts'

export const VOLUME = 'bench'

/** How `o3 local` runs its services, and the flags that ask for it. */
export const TOPOLOGIES = {
  /** o3 local's default. */
  default: [],
  /** One process per service (SCM, OM, each datanode, the gateway). */
  processes: ['--processes'],
  /** SCM, OM and the gateway on the main thread, the datanodes on one worker thread. */
  'datanode-thread': ['--datanode-thread'],
} as const satisfies Record<string, readonly string[]>

export type Topology = keyof typeof TOPOLOGIES

/** What `o3 local --json` prints (cli/local.ts). */
export interface LocalEndpoints { scm: string; om: string; s3: string; datanodes: string[]; pids?: Record<string, number> }

export class BenchCluster {
  private child: Child<LocalEndpoints> | undefined
  private client_: O3Client | undefined

  constructor(readonly dir: string, readonly options: { topology: Topology; profileDir?: string; datanodes?: number }) {}

  get client(): O3Client {
    assert(this.client_ !== undefined, 'not started')
    return this.client_
  }

  get endpoints(): LocalEndpoints {
    assert(this.child !== undefined, 'not started')
    return this.child.ready
  }

  /** The cluster's processes by PID: `o3 local` itself and, with --processes, each service's. */
  processNames(): Map<number, string> {
    assert(this.child !== undefined, 'not started')
    const names = new Map<number, string>([[this.child.pid, 'o3 local']])
    for (const [name, pid] of Object.entries(this.child.ready.pids ?? {})) names.set(pid, name)
    return names
  }

  /** Every process of the cluster (`o3 local`, and each service's with --processes): whose CPU time a figure costs. */
  pids(): number[] {
    return [...this.processNames().keys()]
  }

  async start(replications: readonly string[]): Promise<void> {
    const args = ['local', '--ports', 'free', '--fresh', '--json', '--datanodes', String(this.options.datanodes ?? 3), '--data', join(this.dir, 'o3'), ...TOPOLOGIES[this.options.topology]]
    // Short heartbeats only shorten start-up (safemode exit); they add a few small RPCs a
    // second. Other O3_* settings in the environment reach the cluster as they are.
    const env = { O3_DATANODE_HEARTBEATINTERVALMS: process.env.O3_DATANODE_HEARTBEATINTERVALMS ?? '250' }
    this.child = await startChild<LocalEndpoints>(moduleCommand('cli/main', { profileDir: this.options.profileDir }), args, env)
    // The client reads the same O3_* settings (chunk size) as the cluster does.
    const config = loadConfig({ env: process.env })
    this.client_ = new O3Client({ om: this.endpoints.om, scm: this.endpoints.scm, chunkSizeBytes: config['client.chunkSizeBytes'] })
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
    if (this.child !== undefined) await stopChild(this.child.process)
    // The native client's checksums ran in this process's pool.
    await closeWorkerPool()
  }
}

/** RATIS/THREE -> ratis-three: bucket names allow only lowercase letters, digits, '-' and '.'. */
export function bucketName(replication: string): string {
  return replication.toLowerCase().replace(/[^a-z0-9.-]/g, '-')
}
