/** @module
 * The datanode admin workflow on the SCM leader (Ozone's NodeDecommissionManager and
 * DatanodeAdminMonitorImpl): an operator's decommission, maintenance and recommission
 * become setNodeStates entries; on every SCM tick the monitor closes the pipelines of nodes
 * not IN_SERVICE and moves each node a step on when rules.ts allows. Every state lives in
 * the replicated table, so a new leader picks up where the last one stopped; what it asks of
 * the SCM goes through AdminHost.
 */
import { O3Error } from '../../../core/errors.ts'
import { DATANODE_ADMIN_TARGETS_MAX, MAINTENANCE_END_HOURS_MAX } from '../../../core/limits.ts'
import { log } from '../../../core/log.ts'
import type { DatanodeId, NodeHealth, NodeOperationalState, Pipeline } from '../../../core/wire.ts'
import type { NodeStateChange } from '../requests/set-node-state.ts'
import type { NodeAdminRecord } from '../tables.ts'
import { adminStep, type AdminContainer, type AdminStep } from './rules.ts'

export type AdminAction = 'decommission' | 'maintenance' | 'recommission'

/** What the monitor sees of the SCM and may ask of it. */
export interface AdminHost {
  isLeader(): boolean
  /** Nodes not IN_SERVICE, from the replicated table. */
  records(): [DatanodeId, NodeAdminRecord][]
  operationalState(dn: DatanodeId): NodeOperationalState
  /** Datanodes this SCM knows (registered). */
  nodes(): { id: DatanodeId; address: string }[]
  /** Its health; undefined until this SCM has heard a container report from it sent after its last pipeline closed (or it is DEAD). */
  health(dn: DatanodeId): NodeHealth | undefined
  /** Pipelines not CLOSED that `dn` is a member of. */
  livePipelinesOf(dn: DatanodeId): Pipeline[]
  closePipeline(p: Pipeline, why: string): Promise<unknown>
  /** Every container `dn` reported, with its replicas as this SCM knows them. */
  containersOf(dn: DatanodeId): AdminContainer[]
  submit(changes: NodeStateChange[]): Promise<DatanodeId[]>
  /** Nodes came back IN_SERVICE: place pipelines on them. */
  backInService(): void
  maintenanceMinimum: number
}

/** One node's answer to an admin request. */
export interface AdminResult { id: DatanodeId; address: string; from: NodeOperationalState; state: NodeOperationalState; endMs?: number }

export class DatanodeAdminMonitor {
  /** The last step decided per node, for the log (once per change) and the datanode list. */
  private readonly steps = new Map<DatanodeId, AdminStep>()
  private running = false

  constructor(private readonly host: AdminHost) {}

  /** Why a node not IN_SERVICE is where it is, as the monitor last decided. */
  progress(dn: DatanodeId): string | undefined {
    return this.steps.get(dn)?.why
  }

  /**
   * An operator's request for `targets` (datanode ids or host:port addresses), all or none:
   * an unknown node, or one whose state does not allow the action, fails the whole request
   * before any change. Already there is no change (decommissioning twice is a no-op).
   */
  async admin(action: AdminAction, targets: string[], endHours?: number): Promise<AdminResult[]> {
    if (targets.length === 0) throw new O3Error('INVALID_ARGUMENT', `Cannot ${action}: no datanode named`)
    if (endHours !== undefined && action !== 'maintenance') throw new O3Error('INVALID_ARGUMENT', `Cannot ${action} with an end time: only maintenance has one`)
    const known = this.host.nodes()
    const unknown = targets.filter((t) => !known.some((n) => n.id === t || n.address === t))
    if (unknown.length > 0) throw new O3Error('NODE_NOT_FOUND', `Cannot ${action} ${unknown.join(', ')}: no such datanode (o3 admin datanode list shows their ids and addresses)`)
    const nodes = [...new Map(targets.map((t) => known.find((n) => n.id === t || n.address === t)!).map((n) => [n.id, n])).values()]
    const changes: NodeStateChange[] = []
    const results: AdminResult[] = []
    for (const n of nodes) {
      const from = this.host.operationalState(n.id)
      const to = target(action, from, n.address)
      results.push({ id: n.id, address: n.address, from, state: to })
      if (to !== from || action === 'maintenance') changes.push({ id: n.id, from, to, ...(endHours !== undefined ? { endHours } : {}) })
    }
    const applied = changes.length === 0 ? [] : await this.host.submit(changes)
    for (const r of results) {
      if (!applied.includes(r.id)) { r.state = this.host.operationalState(r.id); continue }
      const endMs = this.host.records().find(([id]) => id === r.id)?.[1].endMs
      if (endMs !== undefined) r.endMs = endMs
      this.steps.delete(r.id)
      log.info(`SCM: datanode ${r.id} (${r.address}) ${r.from} -> ${r.state}: ${action} requested${endMs !== undefined ? `, ends ${new Date(endMs).toISOString()}` : ''}`)
    }
    if (results.some((r) => r.state === 'IN_SERVICE' && r.from !== 'IN_SERVICE')) this.host.backInService()
    else this.closePipelines()
    return results
  }

  /** Leader, on the SCM's tick: pipelines closed, steps taken. Overlapping ticks are skipped. */
  async tick(nowMs: number): Promise<void> {
    if (!this.host.isLeader() || this.running) return
    this.running = true
    try {
      this.closePipelines()
      const changes: NodeStateChange[] = []
      const records = this.host.records()
      for (const id of this.steps.keys()) if (!records.some(([r]) => r === id)) this.steps.delete(id)
      for (const [id, record] of records) {
        const health = this.host.health(id)
        const step = adminStep({
          id, state: record.state, endMs: record.endMs, health, pipelines: this.host.livePipelinesOf(id).length,
          // Containers matter only while it is leaving.
          containers: record.state === 'DECOMMISSIONING' || record.state === 'ENTERING_MAINTENANCE' ? this.host.containersOf(id) : [],
        }, nowMs, this.host.maintenanceMinimum)
        if (this.steps.get(id)?.why !== step.why) log.info(`SCM: datanode ${id} ${record.state}: ${step.why}`)
        this.steps.set(id, step)
        if (step.to !== undefined) changes.push({ id, from: record.state, to: step.to })
      }
      if (changes.length === 0) return
      const applied = await this.host.submit(changes)
      for (const c of changes) if (applied.includes(c.id)) log.info(`SCM: datanode ${c.id} ${c.from} -> ${c.to}`)
      if (changes.some((c) => c.to === 'IN_SERVICE' && applied.includes(c.id))) this.host.backInService()
    } finally {
      this.running = false
    }
  }

  /** A node not IN_SERVICE is in no pipeline: its open containers close as on any pipeline close. */
  private closePipelines(): void {
    for (const [id, record] of this.host.records()) {
      for (const p of this.host.livePipelinesOf(id)) {
        this.host.closePipeline(p, `datanode ${id} is ${record.state}`).catch((err: unknown) => log.warn(`SCM: closing pipeline ${p.id} failed: ${(err as Error).message}`))
      }
    }
  }
}

const ACTIONS: readonly AdminAction[] = ['decommission', 'maintenance', 'recommission']

/** The `datanodeAdmin` RPC's arguments, checked: `{ action, datanodes: [id or host:port...], endHours? }`. */
export function parseAdminRequest(a: { action?: unknown; datanodes?: unknown; endHours?: unknown }): { action: AdminAction; datanodes: string[]; endHours?: number } {
  if (!ACTIONS.includes(a.action as AdminAction)) throw new O3Error('INVALID_ARGUMENT', `Cannot change datanodes: action must be one of ${ACTIONS.join(', ')}`)
  if (!Array.isArray(a.datanodes) || !a.datanodes.every((d) => typeof d === 'string') || a.datanodes.length > DATANODE_ADMIN_TARGETS_MAX) {
    throw new O3Error('INVALID_ARGUMENT', `Cannot ${String(a.action)}: datanodes must be 1..${DATANODE_ADMIN_TARGETS_MAX} ids or host:port addresses`)
  }
  if (a.endHours !== undefined && (typeof a.endHours !== 'number' || !Number.isFinite(a.endHours) || a.endHours < 0 || a.endHours > MAINTENANCE_END_HOURS_MAX)) {
    throw new O3Error('INVALID_ARGUMENT', `Cannot put datanodes in maintenance: its end (endHours, --end-hours) must be 0 (no end) to ${MAINTENANCE_END_HOURS_MAX} hours (a year), not ${JSON.stringify(a.endHours)}`)
  }
  return { action: a.action as AdminAction, datanodes: a.datanodes as string[], ...(a.endHours !== undefined ? { endHours: a.endHours } : {}) }
}

/** The state an action takes a node to from `from` (Ozone's NodeDecommissionManager rules). */
function target(action: AdminAction, from: NodeOperationalState, address: string): NodeOperationalState {
  switch (action) {
    case 'recommission':
      return 'IN_SERVICE'
    case 'decommission':
      if (from === 'IN_SERVICE') return 'DECOMMISSIONING'
      if (from === 'DECOMMISSIONING' || from === 'DECOMMISSIONED') return from
      throw new O3Error('INVALID_NODE_STATE', `Cannot decommission datanode ${address}: it is ${from} (recommission it first)`)
    case 'maintenance':
      if (from === 'IN_SERVICE') return 'ENTERING_MAINTENANCE'
      if (from === 'ENTERING_MAINTENANCE' || from === 'IN_MAINTENANCE') return from
      throw new O3Error('INVALID_NODE_STATE', `Cannot put datanode ${address} in maintenance: it is ${from} (recommission it first)`)
  }
}
