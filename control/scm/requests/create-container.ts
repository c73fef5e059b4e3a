/** @module
 * createContainer: a new OPEN container on a pipeline, with an id from the leader's reserved
 * batch; refused if the pipeline is gone or closed by the time it applies.
 */
import { O3Error } from '../../../core/errors.ts'
import type { ContainerId, PipelineId } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ContainerInfo, ScmTables } from '../tables.ts'

export function createContainer(t: () => ScmTables): ReplicatedRequest<{ id: ContainerId; pipelineId: PipelineId }, ContainerInfo, ContainerInfo> {
  return {
    name: 'createContainer',
    prepare: (a) => {
      const p = t().pipelines.get(a.pipelineId)
      if (p === undefined) throw new O3Error('NO_PIPELINE', `Cannot create a container on pipeline ${a.pipelineId}: not found`)
      return { id: a.id, state: 'OPEN', replication: p.replication, pipelineId: a.pipelineId, createdAtMs: Date.now() }
    },
    apply: (_db, c) => {
      const { pipelines, containers } = t()
      if (pipelines.get(c.pipelineId)?.state !== 'OPEN') throw new O3Error('NO_PIPELINE', `Cannot create container ${c.id}: pipeline ${c.pipelineId} is not open`)
      if (containers.get(c.id) !== undefined) throw new O3Error('INTERNAL_ERROR', `Cannot create container ${c.id}: the id is taken`)
      containers.putSync(c.id, c)
      return c
    },
  }
}
