/** @module
 * closePipeline: a pipeline that lost a member (or an operator closed) is CLOSED, with the
 * time the leader decided, and its OPEN containers go CLOSING; answers the containers it
 * moved, for the leader to send close commands.
 */
import type { ContainerId, PipelineId } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ScmTables } from '../tables.ts'

export function closePipeline(t: () => ScmTables): ReplicatedRequest<{ id: PipelineId }, { id: PipelineId; atMs: number }, ContainerId[]> {
  return {
    name: 'closePipeline',
    prepare: (a) => ({ id: a.id, atMs: Date.now() }),
    apply: (_db, p) => {
      const { pipelines, containers } = t()
      const pipeline = pipelines.get(p.id)
      if (pipeline === undefined || pipeline.state === 'CLOSED') return []
      // Entries from before issue 12 carry no time: their groups may go at once.
      pipelines.putSync(p.id, { ...pipeline, state: 'CLOSED', closedAtMs: p.atMs ?? 0 })
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
