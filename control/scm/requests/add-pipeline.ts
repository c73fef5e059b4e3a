/** @module
 * addPipeline: a new pipeline on the datanodes placement chose, ALLOCATED (its Raft group to
 * form), with the leader the SCM leader suggests first among
 * its nodes; the leader draws its id and time. Closed pipelines no container refers to are
 * forgotten past PIPELINES_MAX.
 */
import { randomUUID } from 'node:crypto'
import { O3Error } from '../../../core/errors.ts'
import { PIPELINES_MAX } from '../../../core/limits.ts'
import { entryCount } from '../../../core/metadata-db.ts'
import type { DatanodeDetails, DatanodeId, PipelineId } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { PipelineRecord, ScmTables } from '../tables.ts'

export interface AddPipelineArgs {
  replication: string
  nodes: DatanodeDetails[]
  /** ALLOCATED (the default is OPEN, as before issue 12). */
  state?: 'ALLOCATED' | 'OPEN'
  /** One of `nodes` (default nodes[0]): it is put first. */
  leaderId?: DatanodeId
}

export function addPipeline(t: () => ScmTables): ReplicatedRequest<AddPipelineArgs, PipelineRecord, PipelineRecord> {
  return {
    name: 'addPipeline',
    prepare: (a) => {
      if (a.nodes.length === 0) throw new O3Error('INVALID_ARGUMENT', `Cannot add a ${a.replication} pipeline: no datanodes`)
      const leaderId = a.leaderId ?? a.nodes[0].id
      const leader = a.nodes.find((n) => n.id === leaderId)
      if (leader === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot add a ${a.replication} pipeline led by ${leaderId}: not one of its datanodes`)
      if (a.state !== undefined && a.state !== 'ALLOCATED' && a.state !== 'OPEN') throw new O3Error('INVALID_ARGUMENT', `Cannot add a pipeline in state ${String(a.state)}`)
      // Clients that know no leader write to nodes[0]: the suggested leader.
      const nodes = [leader, ...a.nodes.filter((n) => n.id !== leaderId)]
      return { id: randomUUID() as PipelineId, replication: a.replication, state: a.state ?? 'OPEN', nodes, createdAtMs: Date.now(), leaderId }
    },
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
