/** @module
 * closePipeline: a pipeline that lost a member closes, and its OPEN containers go CLOSING;
 * answers the containers it moved, for the leader to send close commands.
 */
import type { ContainerId, PipelineId } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ScmTables } from '../tables.ts'

export function closePipeline(t: () => ScmTables): ReplicatedRequest<{ id: PipelineId }, { id: PipelineId }, ContainerId[]> {
  return {
    name: 'closePipeline',
    prepare: (a) => ({ id: a.id }),
    apply: (_db, p) => {
      const { pipelines, containers } = t()
      const pipeline = pipelines.get(p.id)
      if (pipeline === undefined || pipeline.state === 'CLOSED') return []
      pipelines.putSync(p.id, { ...pipeline, state: 'CLOSED' })
      const closing: ContainerId[] = []
      for (const { value } of containers.getRange()) {
        if (value.pipelineId !== p.id || value.state !== 'OPEN') continue
        containers.putSync(value.id, { ...value, state: 'CLOSING' })
        closing.push(value.id)
      }
      return closing
    },
  }
}
