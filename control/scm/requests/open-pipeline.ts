/** @module
 * openPipeline: an ALLOCATED pipeline whose members all reported its Raft group is OPEN
 * (blocks may be allocated on it); answers the state it has after the entry (a pipeline
 * closed meanwhile stays CLOSED).
 */
import { O3Error } from '../../../core/errors.ts'
import type { PipelineId, PipelineState } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ScmTables } from '../tables.ts'

export function openPipeline(t: () => ScmTables): ReplicatedRequest<{ id: PipelineId }, { id: PipelineId }, PipelineState> {
  return {
    name: 'openPipeline',
    prepare: (a) => ({ id: a.id }),
    apply: (_db, p) => {
      const { pipelines } = t()
      const pipeline = pipelines.get(p.id)
      if (pipeline === undefined) throw new O3Error('PIPELINE_NOT_FOUND', `Cannot open pipeline ${p.id}: not found`)
      if (pipeline.state !== 'ALLOCATED') return pipeline.state
      pipelines.putSync(p.id, { ...pipeline, state: 'OPEN' })
      return 'OPEN'
    },
  }
}
