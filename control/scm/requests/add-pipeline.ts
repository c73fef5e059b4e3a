/** @module
 * addPipeline: a new OPEN pipeline on the datanodes placement chose (the leader draws its id
 * and time); closed pipelines no container refers to are forgotten past PIPELINES_MAX.
 */
import { randomUUID } from 'node:crypto'
import { PIPELINES_MAX } from '../../../core/limits.ts'
import { entryCount } from '../../../core/metadata-db.ts'
import type { DatanodeDetails, Pipeline, PipelineId } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ScmTables } from '../tables.ts'

export function addPipeline(t: () => ScmTables): ReplicatedRequest<{ replication: string; nodes: DatanodeDetails[] }, Pipeline, Pipeline> {
  return {
    name: 'addPipeline',
    prepare: (a) => ({ id: randomUUID() as PipelineId, replication: a.replication, state: 'OPEN', nodes: a.nodes, createdAtMs: Date.now() }),
    apply: (_db, p) => {
      const { pipelines, containers } = t()
      if (entryCount(pipelines) >= PIPELINES_MAX) {
        const used = new Set<string>()
        for (const { value } of containers.getRange()) used.add(value.pipelineId)
        for (const { key, value } of pipelines.getRange()) if (value.state === 'CLOSED' && !used.has(value.id)) pipelines.removeSync(key)
      }
      pipelines.putSync(p.id, p)
      return p
    },
  }
}
