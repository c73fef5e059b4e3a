/** @module
 * setNodeStates: datanodes change operational state (issue 13, Ozone's
 * NodeManager.setNodeOperationalState): an operator decommissions one, puts it in or out of
 * maintenance, or the admin monitor finishes a step. Each change names the state it expects
 * to find and is skipped on any other, so that an operator's recommission and the monitor's
 * step decided before it never undo each other. The leader decides the clock (the time of
 * the change, a maintenance's end); apply is pure.
 */
import { assert } from '../../../core/assert.ts'
import { O3Error } from '../../../core/errors.ts'
import { MAINTENANCE_END_HOURS_MAX } from '../../../core/limits.ts'
import type { DatanodeId, NodeOperationalState } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { isDatanodeId } from '../nodes.ts'
import type { NodeAdminRecord, ScmTables } from '../tables.ts'

export const OPERATIONAL_STATES: readonly NodeOperationalState[] = ['IN_SERVICE', 'DECOMMISSIONING', 'DECOMMISSIONED', 'ENTERING_MAINTENANCE', 'IN_MAINTENANCE']

/** One change: `id` moves from `from` to `to`; `endHours` (maintenance) > 0 ends it that many hours later, 0 or none never. */
export interface NodeStateChange { id: DatanodeId; from: NodeOperationalState; to: NodeOperationalState; endHours?: number }
interface PreparedChange { id: DatanodeId; from: NodeOperationalState; to: NodeOperationalState; endMs?: number }

/** A datanode's operational state as the table holds it: no record is IN_SERVICE. */
export function operationalStateOf(t: ScmTables, id: DatanodeId): NodeOperationalState {
  return t.nodeStates.get(id)?.state ?? 'IN_SERVICE'
}

export function setNodeStates(t: () => ScmTables): ReplicatedRequest<{ changes: NodeStateChange[] }, { atMs: number; changes: PreparedChange[] }, DatanodeId[]> {
  return {
    name: 'setNodeStates',
    prepare: (a) => {
      const atMs = Date.now()
      const changes = a.changes.map((c): PreparedChange => {
        if (!isDatanodeId(c.id)) throw new O3Error('INVALID_ARGUMENT', `Cannot change datanode ${JSON.stringify(c.id)}: not a datanode id`)
        if (!OPERATIONAL_STATES.includes(c.from) || !OPERATIONAL_STATES.includes(c.to)) throw new O3Error('INVALID_ARGUMENT', `Cannot move datanode ${c.id} from ${c.from} to ${c.to}: unknown state`)
        const hours = c.endHours ?? 0
        if (!Number.isFinite(hours) || hours < 0 || hours > MAINTENANCE_END_HOURS_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot put datanode ${c.id} in maintenance for ${hours} hours: expected 0 (no end) to ${MAINTENANCE_END_HOURS_MAX} (a year)`)
        const maintenance = c.to === 'ENTERING_MAINTENANCE' || c.to === 'IN_MAINTENANCE'
        return { id: c.id, from: c.from, to: c.to, ...(maintenance && hours > 0 ? { endMs: atMs + Math.round(hours * 3_600_000) } : {}) }
      })
      return { atMs, changes }
    },
    apply: (_db, p) => {
      const { nodeStates } = t()
      const applied: DatanodeId[] = []
      for (const c of p.changes) {
        const current = nodeStates.get(c.id)
        if ((current?.state ?? 'IN_SERVICE') !== c.from) continue
        if (c.to === 'IN_SERVICE') {
          nodeStates.removeSync(c.id)
        } else {
          // The monitor's move into IN_MAINTENANCE keeps the end the operator gave; an operator's request sets its own (none: no end).
          const record: NodeAdminRecord = { state: c.to, sinceMs: current?.state === c.to ? current.sinceMs : p.atMs }
          const endMs = c.endMs ?? (c.from === 'ENTERING_MAINTENANCE' && c.to === 'IN_MAINTENANCE' ? current?.endMs : undefined)
          if (endMs !== undefined) record.endMs = endMs
          nodeStates.putSync(c.id, record)
        }
        assert(operationalStateOf(t(), c.id) === c.to, `datanode ${c.id} not ${c.to} after its change`)
        applied.push(c.id)
      }
      return applied
    },
  }
}
