/** @module
 * Test helper: a mini cluster whose OM alone runs with security.enabled=1 on plain HTTP, so
 * that users' signed calls can be tested before the rest of the cluster serves TLS (the SCM
 * and datanodes stay insecure; the OM is restarted secure on its port and data).
 */
import type { O3Config } from '../../../core/config.ts'
import { OzoneManager } from '../../../control/om/index.ts'
import { startMiniCluster } from '../../cluster/mini-cluster.ts'

export async function startSecureOmCluster(overrides: Partial<O3Config> = {}): Promise<Awaited<ReturnType<typeof startMiniCluster>>> {
  const cluster = await startMiniCluster({ datanodes: 1, overrides: { 'client.replication': 'RATIS/ONE' } })
  const port = cluster.om.port
  await cluster.om.stop()
  cluster.om = new OzoneManager({ config: { ...cluster.config, 'security.enabled': 1, ...overrides }, port, scmAddress: cluster.scmAddress })
  await cluster.om.start()
  return cluster
}
