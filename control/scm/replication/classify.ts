/** @module
 * Classifies one container from its record and its replicas as Ozone's ReplicationManager
 * does (RatisReplicationCheckHandler, ClosingContainerHandler, QuasiClosedContainerHandler):
 * healthy, under-, over- or mis-replicated, missing, with unhealthy replicas, or QUASI_CLOSED
 * stuck. Pure: no I/O, no clock; node health comes in with each replica.
 */
import type { ContainerId, ContainerState, DatanodeId, NodeHealth, NodeOperationalState } from '../../../core/wire.ts'

/** Ozone's ReplicationManagerReport.HealthState, as far as RATIS containers go. */
export type HealthState =
  | 'HEALTHY' | 'UNDER_REPLICATED' | 'OVER_REPLICATED' | 'MIS_REPLICATED' | 'MISSING'
  | 'UNHEALTHY' | 'QUASI_CLOSED_STUCK' | 'OPEN_UNHEALTHY'

export const HEALTH_STATES: readonly HealthState[] = [
  'HEALTHY', 'UNDER_REPLICATED', 'OVER_REPLICATED', 'MIS_REPLICATED', 'MISSING', 'UNHEALTHY', 'QUASI_CLOSED_STUCK', 'OPEN_UNHEALTHY',
]

/** One replica as the SCM last heard it, with what it knows of the replica's datanode now. */
export interface ReplicaView {
  datanodeId: DatanodeId
  state: ContainerState
  /** The replica's block commit sequence id (its last committed log index). */
  bcsid: number
  usedBytes: number
  /** The datanode's host (address without port): replicas on one host fail together. */
  host: string
  health: NodeHealth
  operationalState: NodeOperationalState
}

export interface ContainerView {
  id: ContainerId
  state: ContainerState
  /** Replicas the container should have (3 for RATIS/THREE). */
  factor: number
  /** The members of the pipeline the container was written on (its replicas' origins). */
  pipelineNodes: DatanodeId[]
  replicas: ReplicaView[]
}

export interface Classification {
  id: ContainerId
  /** The state that decides what to do first (the first of `states`). */
  health: HealthState
  /** Every state that applies (a container can be under-replicated and hold an unhealthy replica). */
  states: HealthState[]
  /** Replicas that count toward the factor: a live node, the state the container wants, the latest bcsid. */
  healthy: ReplicaView[]
  /** Replicas to replace and then delete: UNHEALTHY, or left behind (a lower bcsid, a state the container is past). */
  unhealthy: ReplicaView[]
  /** Healthy replicas on HEALTHY nodes, whatever their operational state: where copies come from. */
  sources: ReplicaView[]
  /**
   * No healthy replica left, and fewer corrupt ones than the factor: copies are made of those,
   * as they are (Ozone's RatisUnhealthyReplicationCheckHandler keeps the most of what is left;
   * readers verify every block and go to another copy on a mismatch). Those at the highest bcsid only.
   */
  unhealthySources: ReplicaView[]
  /**
   * No healthy replica, as many corrupt ones at the highest bcsid as the factor, and none
   * holding a byte: the older corrupt ones and the newest beyond the factor (an as-is copy
   * made while one was away), to delete, on IN_SERVICE nodes.
   */
  unhealthySurplus: ReplicaView[]
  /** Replicas still OPEN or CLOSING on a node not DEAD (they need a close, not a copy). */
  open: ReplicaView[]
  /** QUASI_CLOSED replicas with the highest bcsid that may be force-closed (a majority of the pipeline agrees). */
  forceClose: ReplicaView[]
  /** How many more healthy replicas the container needs (0 if none). */
  missingCount: number
  /** How many healthy replicas are surplus (0 if none). */
  surplusCount: number
  /** The state the container record should move to, if its replicas settled it (CLOSING -> CLOSED/QUASI_CLOSED, QUASI_CLOSED -> CLOSED). */
  moveTo?: 'CLOSED' | 'QUASI_CLOSED'
}

export interface ClassifyOptions {
  /** Hosts with a HEALTHY IN_SERVICE datanode: a container needs its replicas on min(factor, this) hosts. */
  liveHostCount: number
  /** Replicas of a node in maintenance that still count, as long as this many live ones remain (maintenance.replica.minimum). */
  maintenanceMinimum: number
}

/**
 * Is the replica's node still there for the cluster's purposes? Not DEAD, except IN_MAINTENANCE:
 * a node in maintenance may be down, its replicas are not lost (Ozone's maintenance mode).
 */
function kept(r: ReplicaView): boolean {
  return r.health !== 'DEAD' || r.operationalState === 'IN_MAINTENANCE'
}

/** Does the replica count toward the factor (its node kept, and not leaving for good)? */
function countable(r: ReplicaView): boolean {
  return kept(r) && (r.operationalState === 'IN_SERVICE' || r.operationalState === 'ENTERING_MAINTENANCE' || r.operationalState === 'IN_MAINTENANCE')
}

function inMaintenance(r: ReplicaView): boolean {
  return r.operationalState === 'ENTERING_MAINTENANCE' || r.operationalState === 'IN_MAINTENANCE'
}

export function classify(c: ContainerView, o: ClassifyOptions): Classification {
  const out: Classification = { id: c.id, health: 'HEALTHY', states: [], healthy: [], sources: [], unhealthySources: [], unhealthySurplus: [], unhealthy: [], open: [], forceClose: [], missingCount: 0, surplusCount: 0 }
  const present = c.replicas.filter((r) => r.health !== 'DEAD')
  out.open = present.filter((r) => r.state === 'OPEN' || r.state === 'CLOSING')
  const add = (s: HealthState) => { if (!out.states.includes(s)) out.states.push(s) }

  if (c.state === 'OPEN' || c.state === 'CLOSING') {
    // Copies are made of closed containers only; an open one is watched for corrupt replicas
    // (Ozone's OpenContainerHandler closes it), a closing one for replicas that settled.
    const bad = present.filter((r) => r.state === 'UNHEALTHY')
    out.unhealthy = bad
    if (c.state === 'OPEN' && bad.length > 0) add('OPEN_UNHEALTHY')
    if (c.state === 'CLOSING' && out.open.length === 0) {
      // No live replica can still close through its group: the record follows the replicas
      // (Ozone's container report handler: a CLOSED replica closes a CLOSING container, a
      // QUASI_CLOSED one quasi-closes it). A replica on a STALE node may still be open: wait.
      if (present.some((r) => r.state === 'CLOSED')) out.moveTo = 'CLOSED'
      else if (present.some((r) => r.state === 'QUASI_CLOSED')) out.moveTo = 'QUASI_CLOSED'
      // Every replica corrupt (a reader's report marks one whatever its datanode says): none
      // will settle the record, which Ozone's ClosingContainerHandler moves to QUASI_CLOSED,
      // where the classification below says UNHEALTHY.
      else if (present.length > 0 && present.every((r) => r.state === 'UNHEALTHY')) out.moveTo = 'QUASI_CLOSED'
    }
    // No replica at all is not MISSING here: a container is made on a datanode by its first
    // write, and one allocated but never written has none. One written (replicas reported)
    // whose every replica is on a DEAD node cannot be read until one comes back: MISSING
    // (Ozone's ClosingContainerHandler: a closing container with keys and no replica).
    if (c.replicas.length > 0 && !c.replicas.some(kept)) add('MISSING')
    finish(out)
    return out
  }

  // CLOSED or QUASI_CLOSED: which replicas count.
  const closed = c.replicas.filter((r) => kept(r) && r.state === 'CLOSED')
  const quasi = c.replicas.filter((r) => kept(r) && r.state === 'QUASI_CLOSED')
  if (c.state === 'QUASI_CLOSED' && closed.length > 0) out.moveTo = 'CLOSED'
  let good: ReplicaView[] = []
  if (closed.length > 0) {
    const top = Math.max(...closed.map((r) => r.bcsid))
    good = closed.filter((r) => r.bcsid === top)
    // A QUASI_CLOSED replica as far as the closed ones is force-closed (Ozone's handling of
    // mismatched replicas); one behind them, like a CLOSED one behind, is left behind.
    out.forceClose = quasi.filter((r) => r.bcsid >= top)
    out.unhealthy = [...closed.filter((r) => r.bcsid !== top), ...quasi.filter((r) => r.bcsid < top)]
  } else if (quasi.length > 0) {
    const top = Math.max(...quasi.map((r) => r.bcsid))
    const latest = quasi.filter((r) => r.bcsid === top)
    out.unhealthy = quasi.filter((r) => r.bcsid !== top)
    // Ozone's rule (QuasiClosedContainerHandler): force close the replicas with the highest
    // BCSID once more than half of the original pipeline's members hold a QUASI_CLOSED one.
    // A container the SCM already decided CLOSED needs no vote.
    const origins = new Set(quasi.map((r) => r.datanodeId).filter((id) => c.pipelineNodes.includes(id)))
    if (c.state === 'CLOSED' || origins.size * 2 > c.pipelineNodes.length) out.forceClose = latest
    else add('QUASI_CLOSED_STUCK')
    // Until they close, the latest QUASI_CLOSED replicas are what a QUASI_CLOSED container has.
    if (c.state === 'QUASI_CLOSED') good = latest
  }
  out.unhealthy.push(...present.filter((r) => r.state === 'UNHEALTHY'))

  out.healthy = good.filter(countable)
  const live = out.healthy.filter((r) => !inMaintenance(r))
  const maintenance = out.healthy.length - live.length
  // A replica in maintenance counts while enough live ones remain (Ozone's
  // hdds.scm.replication.maintenance.replica.minimum).
  const counted = live.length + (live.length >= Math.min(o.maintenanceMinimum, c.factor) ? maintenance : 0)
  out.missingCount = Math.max(0, c.factor - counted)
  const onHealthy = live.filter((r) => r.health === 'HEALTHY').length
  out.surplusCount = Math.max(0, onHealthy - c.factor)
  out.sources = good.filter((r) => r.health === 'HEALTHY')
  if (present.length === 0) add('MISSING')
  else if (good.length === 0 && out.forceClose.length === 0) {
    add('UNHEALTHY')
    // Only those at the highest bcsid count and are copied (Ozone's getSources): an older one
    // may lack committed blocks. Those on a node leaving for good do not count, but are copied
    // from all the same.
    const corrupt = c.replicas.filter((r) => kept(r) && r.state === 'UNHEALTHY')
    const top = Math.max(...corrupt.map((r) => r.bcsid))
    const newest = corrupt.filter((r) => countable(r) && r.bcsid === top)
    out.missingCount = Math.max(0, c.factor - newest.length)
    if (out.missingCount > 0) out.unhealthySources = corrupt.filter((r) => r.health === 'HEALTHY' && r.bcsid === top).sort((a, b) => (a.datanodeId < b.datanodeId ? -1 : 1))
    // Corrupt replicas differ in which blocks they lost: any one may hold the only good copy
    // of a block, so none is deleted while no healthy replica exists, unless none holds a
    // byte (a container emptied by deletions): then, once the newest reach the factor, the
    // older ones go (oldest first), then the newest beyond it.
    if (newest.length >= c.factor && corrupt.every((r) => r.usedBytes === 0)) {
      const byId = (a: ReplicaView, b: ReplicaView) => (a.datanodeId < b.datanodeId ? 1 : -1)
      const older = corrupt.filter((r) => countable(r) && r.bcsid < top).sort((a, b) => a.bcsid - b.bcsid || byId(a, b))
      out.unhealthySurplus = [...older, ...newest.sort(byId).slice(0, newest.length - c.factor)].filter((r) => r.operationalState === 'IN_SERVICE')
    }
  }
  if (out.missingCount > 0 && (good.length > 0 || out.forceClose.length > 0)) add('UNDER_REPLICATED')
  if (out.surplusCount > 0) add('OVER_REPLICATED')
  const hosts = new Set(live.map((r) => r.host))
  if (out.missingCount === 0 && live.length > 0 && hosts.size < Math.min(c.factor, o.liveHostCount)) add('MIS_REPLICATED')
  if (out.unhealthy.length > 0) add('UNHEALTHY')
  finish(out)
  return out
}

/** Orders the states by what to fix first and picks the first. */
function finish(out: Classification): void {
  const rank: HealthState[] = ['MISSING', 'UNDER_REPLICATED', 'MIS_REPLICATED', 'QUASI_CLOSED_STUCK', 'OPEN_UNHEALTHY', 'UNHEALTHY', 'OVER_REPLICATED', 'HEALTHY']
  if (out.states.length === 0) out.states.push('HEALTHY')
  out.states.sort((a, b) => rank.indexOf(a) - rank.indexOf(b))
  out.health = out.states[0]
}
