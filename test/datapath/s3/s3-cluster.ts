/** @module
 * Test helper: a mini cluster with an S3 gateway on a free port and key pairs for two users.
 */
import { S3Gateway } from '../../../datapath/s3/index.ts'
import { startMiniCluster } from '../../cluster/mini-cluster.ts'
import type { S3Secret } from '../../../datapath/client/index.ts'

export interface S3TestCluster {
  cluster: Awaited<ReturnType<typeof startMiniCluster>>
  gateway: S3Gateway
  endpoint: string
  alice: S3Secret
  bob: S3Secret
  dispose(): Promise<void>
}

export async function startS3Cluster(options: { domain?: string } = {}): Promise<S3TestCluster> {
  // 16 MiB blocks: keys span several blocks, and a container (5 GiB) takes 320 preallocated
  // blocks before it closes, so that many small concurrent writes do not keep closing it.
  const cluster = await startMiniCluster({ datanodes: 1, overrides: { 'scm.block.sizeBytes': 16 * 1024 * 1024 } })
  const gateway = new S3Gateway({ config: cluster.config, omAddress: cluster.omAddress, scmAddress: cluster.scmAddress, port: 0, domain: options.domain })
  await gateway.start()
  const client = cluster.client()
  const alice = await client.getS3Secret('alice')
  const bob = await client.getS3Secret('bob')
  return {
    cluster, gateway, endpoint: gateway.endpoint, alice, bob,
    async dispose() { await gateway.stop(); await cluster.dispose() },
  }
}
