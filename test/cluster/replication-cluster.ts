/** @module
 * What the replication manager's cluster tests share (issue 13): four in-process datanodes
 * with replication rounds every 300 ms, the SCM's view of every container, its /prom
 * counters, and RATIS/THREE keys written into containers that are then closed.
 */
import type { O3Config } from '../../core/config.ts'
import { KiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { O3Client } from '../../datapath/client/index.ts'
import { until } from '../helpers.ts'
import { adminFetch, adminRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'

export type Cluster = Awaited<ReturnType<typeof startMiniCluster>>
/** A replica as the SCM's getContainer lists it. */
export interface Replica { datanodeId: string; state: string; nodeState: string; bcsid: number; blockCount: number }
export interface Container { id: number; state: string; health: string[]; replicas: Replica[] }

/** The cluster, with volume `vol` and bucket `bkt`; `commandTimeoutMs` is how soon an unanswered command is sent again. */
export async function startReplicationCluster(commandTimeoutMs = 10_000, overrides: Partial<O3Config> = {}): Promise<{ cluster: Cluster; client: O3Client; scm: RpcClient }> {
  const cluster = await startMiniCluster({
    datanodes: 4,
    overrides: {
      'scm.block.sizeBytes': 256 * KiB, 'client.chunkSizeBytes': 64 * KiB,
      'scm.replication.intervalMs': 300, 'scm.replication.commandTimeoutMs': commandTimeoutMs, 'scm.pipeline.destroyTimeoutMs': 1000, ...overrides,
    },
  })
  const client = cluster.client()
  const scm = adminRpc(cluster, 'SCM', cluster.scm.address)
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt')
  return { cluster, client, scm }
}

/** Every container, with its replicas, as the SCM sees it now. */
export async function containers(scm: RpcClient): Promise<Container[]> {
  const list = await scm.call<{ id: number }[]>('listContainers', {})
  return Promise.all(list.map((c) => scm.call<Container>('getContainer', { containerId: c.id })))
}

/** The SCM's /prom counter `o3_scm_<name>` of one command kind (0 before its first count). */
export async function scmCounter(cluster: Cluster, name: string, kind: string): Promise<number> {
  const prom = await (await adminFetch(cluster, cluster.scm.address, '/prom')).text()
  const m = new RegExp(`^o3_scm_${name}\\{[^}]*kind="${kind}"[^}]*\\} (\\d+)`, 'm').exec(prom)
  return m === null ? 0 : Number(m[1])
}

/** Puts `count` RATIS/THREE keys k0.. of 300 KiB (kept in `keys`), closes every container and waits until each has three CLOSED replicas. */
export async function writeClosedKeys(client: O3Client, scm: RpcClient, count: number, keys: Map<string, Buffer>): Promise<Container[]> {
  for (let i = 0; i < count; i++) {
    const data = randomBytes(300 * KiB, i + 1)
    await client.putKey('vol', 'bkt', `k${i}`, data, { replication: 'RATIS/THREE' })
    keys.set(`k${i}`, data)
  }
  for (const c of await containers(scm)) await scm.call('closeContainer', { containerId: c.id })
  return until('every container CLOSED with three CLOSED replicas', async () => {
    const cs = await containers(scm)
    return cs.every((c) => c.state === 'CLOSED' && c.replicas.filter((r) => r.state === 'CLOSED').length === 3) ? cs : undefined
  }, 30_000, 100)
}

/** The datanode holding the most of these containers' replicas. */
export function busiestNode(closed: Container[]): string {
  const counts = new Map<string, number>()
  for (const c of closed) for (const r of c.replicas) counts.set(r.datanodeId, (counts.get(r.datanodeId) ?? 0) + 1)
  return [...counts].sort((a, b) => b[1] - a[1])[0][0]
}
