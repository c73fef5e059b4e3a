/** @module
 * markReplicaUnhealthy: a replica found corrupt (a checksum failed on read, or its datanode's
 * scanner) is UNHEALTHY on every SCM, and its datanode no target for a copy of that container,
 * until the replica is gone: clearReplicaUnhealthy, once its datanode no longer reports it.
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

export function clearReplicaUnhealthy(t: () => ScmTables): ReplicatedRequest<{ containerId: ContainerId; datanodeId: DatanodeId }, { containerId: ContainerId; datanodeId: DatanodeId }, true> {
  return {
    name: 'clearReplicaUnhealthy',
    prepare: (a) => ({ containerId: a.containerId, datanodeId: a.datanodeId }),
    apply: (_db, p) => {
      t().unhealthy.removeSync(`${p.containerId}/${p.datanodeId}`)
      return true
    },
  }
}
