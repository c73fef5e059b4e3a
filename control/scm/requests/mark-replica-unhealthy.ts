/** @module
 * markReplicaUnhealthy: a replica found corrupt (a checksum failed on read) is out of reads
 * on every SCM until it is replaced.
 */
import type { ContainerId, DatanodeId } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ScmTables } from '../tables.ts'

export function markReplicaUnhealthy(t: () => ScmTables): ReplicatedRequest<{ containerId: ContainerId; datanodeId: DatanodeId }, { containerId: ContainerId; datanodeId: DatanodeId }, true> {
  return {
    name: 'markReplicaUnhealthy',
    prepare: (a) => ({ containerId: a.containerId, datanodeId: a.datanodeId }),
    apply: (_db, p) => {
      t().unhealthy.putSync(`${p.containerId}/${p.datanodeId}`, true)
      return true
    },
  }
}
