/** @module
 * The datanode admin workflow's decisions (Ozone's DatanodeAdminMonitorImpl): whether a
 * container is replicated well enough elsewhere for a node to go offline, and the next state
 * of a node that is decommissioning or in maintenance. Pure: no I/O, no clock (`nowMs` comes
 * in), what the SCM knows of nodes and replicas comes in as data.
 */
import { EC_MAINTENANCE_REDUNDANCY } from '../../../core/limits.ts'
import type { ContainerId, ContainerState, DatanodeId, NodeHealth, NodeOperationalState } from '../../../core/wire.ts'

/** One replica as the SCM last heard it, with its datanode's health and operational state now. */
export interface AdminReplica {
  datanodeId: DatanodeId
  state: ContainerState
  /** The replica's block commit sequence id, where the SCM knows it: a replica behind the others does not count. */
  bcsid?: number
  health: NodeHealth
  operationalState: NodeOperationalState
  /** EC: the replica's index, 1..k+m. */
  replicaIndex?: number
}

export interface AdminContainer {
  id: ContainerId
  state: ContainerState
  /** Replicas the container should have (3 for RATIS/THREE; k + m for EC). */
  factor: number
  /** EC (issue 14): k and m; its replicas are indexes, not copies. */
  ec?: { data: number; parity: number }
  replicas: AdminReplica[]
}

export type OfflineMode = 'DECOMMISSION' | 'MAINTENANCE'

/**
 * SUFFICIENT: the node may go offline as far as this container goes; UNCLOSED: it is still
 * OPEN or CLOSING (Ozone waits for it to close); UNDER_REPLICATED: too few good replicas
 * elsewhere (the replication manager is to make them).
 */
export type OfflineCheck = 'SUFFICIENT' | 'UNCLOSED' | 'UNDER_REPLICATED'

function inMaintenance(s: NodeOperationalState): boolean {
  return s === 'ENTERING_MAINTENANCE' || s === 'IN_MAINTENANCE'
}

/**
 * Whether `node` may go offline as far as container `c` goes (Ozone's
 * ContainerReplicaCount.isSufficientlyReplicatedForOffline). Good replicas are those on
 * other HEALTHY nodes, in the container's settled state (CLOSED; QUASI_CLOSED without a
 * CLOSED replica; UNHEALTHY when no other is left) at the highest sequence id.
 * - DECOMMISSION: the node's replica does not count, so the good ones elsewhere must reach
 *   the factor: those on IN_SERVICE nodes, plus those on nodes in maintenance as long as
 *   min(maintenanceMinimum, factor) IN_SERVICE ones remain (the replication manager's rule).
 * - MAINTENANCE: min(maintenanceMinimum, factor) good replicas on IN_SERVICE nodes elsewhere.
 */
export function offlineCheck(c: AdminContainer, node: DatanodeId, mode: OfflineMode, maintenanceMinimum: number): OfflineCheck {
  if (c.state === 'OPEN' || c.state === 'CLOSING') return 'UNCLOSED'
  if (c.ec !== undefined) return offlineCheckEc(c, c.ec, node, mode)
  // With no replica in a settled state, the corrupt ones are all there is: they count once
  // copied elsewhere as they are (Ozone considers UNHEALTHY replicas when no other is left).
  // (A replica on a DEAD node does not decide it: the replication manager leaves it aside too.)
  const settled: ContainerState = !c.replicas.some((r) => r.health !== 'DEAD' && (r.state === 'CLOSED' || r.state === 'QUASI_CLOSED')) ? 'UNHEALTHY'
    : c.state === 'QUASI_CLOSED' && !c.replicas.some((r) => r.health !== 'DEAD' && r.state === 'CLOSED') ? 'QUASI_CLOSED' : 'CLOSED'
  const candidates = c.replicas.filter((r) => r.state === settled)
  const top = Math.max(0, ...candidates.map((r) => r.bcsid ?? 0))
  const good = candidates.filter((r) => r.datanodeId !== node && r.health === 'HEALTHY' && (r.bcsid ?? 0) === top)
  const inService = good.filter((r) => r.operationalState === 'IN_SERVICE').length
  const maintenance = good.filter((r) => inMaintenance(r.operationalState)).length
  const minimum = Math.min(maintenanceMinimum, c.factor)
  if (mode === 'MAINTENANCE') return inService >= minimum ? 'SUFFICIENT' : 'UNDER_REPLICATED'
  const counted = inService + (inService >= minimum ? maintenance : 0)
  return counted >= c.factor ? 'SUFFICIENT' : 'UNDER_REPLICATED'
}

/**
 * EC (Ozone's ECContainerReplicaCount.isSufficientlyReplicatedForOffline): counted are the
 * indexes with a CLOSED replica on another HEALTHY node.
 * - DECOMMISSION: every index 1..k+m on IN_SERVICE nodes elsewhere (those on nodes in
 *   maintenance count while k + EC_MAINTENANCE_REDUNDANCY indexes are in service).
 * - MAINTENANCE: k + EC_MAINTENANCE_REDUNDANCY indexes in service elsewhere.
 */
function offlineCheckEc(c: AdminContainer, ec: { data: number; parity: number }, node: DatanodeId, mode: OfflineMode): OfflineCheck {
  const n = ec.data + ec.parity
  const good = c.replicas.filter((r) => r.state === 'CLOSED' && r.datanodeId !== node && r.health === 'HEALTHY'
    && r.replicaIndex !== undefined && r.replicaIndex >= 1 && r.replicaIndex <= n)
  const inService = new Set(good.filter((r) => r.operationalState === 'IN_SERVICE').map((r) => r.replicaIndex))
  const redundant = inService.size >= ec.data + EC_MAINTENANCE_REDUNDANCY
  if (mode === 'MAINTENANCE') return redundant ? 'SUFFICIENT' : 'UNDER_REPLICATED'
  const counted = new Set([...inService, ...(redundant ? good.filter((r) => inMaintenance(r.operationalState)).map((r) => r.replicaIndex) : [])])
  return counted.size >= n ? 'SUFFICIENT' : 'UNDER_REPLICATED'
}

/** What the monitor knows of one node not IN_SERVICE. */
export interface AdminNode {
  id: DatanodeId
  state: Exclude<NodeOperationalState, 'IN_SERVICE'>
  /** Maintenance: when it ends (none: until recommissioned). */
  endMs?: number
  /** Its health as this SCM sees it; undefined until this SCM has heard a container report from it sent after its pipelines closed. */
  health?: NodeHealth
  /** Pipelines not CLOSED that it is a member of. */
  pipelines: number
  /** Every container it reported holding. */
  containers: AdminContainer[]
}

export interface AdminStep {
  /** The state to move to, if any. */
  to?: NodeOperationalState
  /** Why, or what it waits for: for the log and `o3 admin datanode list`. */
  why: string
  /** Containers counted: ready to go offline, under-replicated, not closed yet. */
  sufficient: number
  underReplicated: number
  unclosed: number
}

/**
 * The next step of a node in the admin workflow (Ozone's processTransitioningNodes):
 * - maintenance past its end -> IN_SERVICE;
 * - a DEAD node that is DECOMMISSIONING or ENTERING_MAINTENANCE -> IN_SERVICE: its replicas
 *   are lost and re-made as any dead node's (Ozone aborts the workflow likewise);
 * - DECOMMISSIONING / ENTERING_MAINTENANCE, once its pipelines are closed and every
 *   container it holds passes offlineCheck -> DECOMMISSIONED / IN_MAINTENANCE.
 * DECOMMISSIONED and IN_MAINTENANCE (before its end) stay, down or not.
 */
export function adminStep(n: AdminNode, nowMs: number, maintenanceMinimum: number): AdminStep {
  const counts = { sufficient: 0, underReplicated: 0, unclosed: 0 }
  if (inMaintenance(n.state) && n.endMs !== undefined && nowMs >= n.endMs) return { to: 'IN_SERVICE', why: 'its maintenance ended', ...counts }
  if (n.state === 'DECOMMISSIONED') return { why: 'safe to stop', ...counts }
  if (n.state === 'IN_MAINTENANCE') return { why: 'may go down until its maintenance ends', ...counts }
  if (n.health === undefined) return { why: 'waiting for its container report', ...counts }
  if (n.health === 'DEAD') return { to: 'IN_SERVICE', why: `it is DEAD while ${n.state}: its replicas are re-made as any dead node's`, ...counts }
  const mode: OfflineMode = n.state === 'DECOMMISSIONING' ? 'DECOMMISSION' : 'MAINTENANCE'
  for (const c of n.containers) {
    const check = offlineCheck(c, n.id, mode, maintenanceMinimum)
    if (check === 'SUFFICIENT') counts.sufficient++
    else if (check === 'UNCLOSED') counts.unclosed++
    else counts.underReplicated++
  }
  if (n.pipelines > 0) return { why: `waiting for ${n.pipelines} pipeline(s) to close`, ...counts }
  if (counts.underReplicated > 0 || counts.unclosed > 0) {
    // A copy needs a node that holds none: with too few datanodes it waits for good, so say so.
    const rule = mode === 'DECOMMISSION'
      ? 'each is copied to an in-service datanode that holds none: RATIS/THREE needs a fourth, EC rs-k-m a (k + m + 1)th'
      : `each keeps ${maintenanceMinimum} replicas (maintenance.replica.minimum), EC k + ${EC_MAINTENANCE_REDUNDANCY} indexes, on in-service datanodes, copied to ones that hold none`
    const hint = counts.underReplicated > 0 ? ` (${rule})` : ''
    return { why: `waiting for ${counts.underReplicated} under-replicated and ${counts.unclosed} unclosed container(s)${hint}`, ...counts }
  }
  return { to: mode === 'DECOMMISSION' ? 'DECOMMISSIONED' : 'IN_MAINTENANCE', why: `every one of its ${counts.sufficient} container(s) is replicated elsewhere`, ...counts }
}
