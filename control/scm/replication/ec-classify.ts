/** @module
 * Classifies one erasure-coded container as Ozone's ECReplicationCheckHandler does (issue 14):
 * its replicas are indexes 1..k+m, not copies. Per index, the healthy CLOSED replicas on kept
 * nodes: an index with none is missing (reconstructed while at least k indexes remain, else
 * the container is MISSING: unrecoverable), an index only on nodes leaving service is copied
 * (replicateContainer), two healthy replicas of one index are a surplus, UNHEALTHY replicas go
 * once their index is healthy elsewhere, and replicas neither CLOSED nor UNHEALTHY of a CLOSED
 * container are left over (deleted). Pure: no I/O, no clock; node health comes with each replica.
 */
import { EC_MAINTENANCE_REDUNDANCY } from '../../../core/limits.ts'
import type { ContainerId, ContainerState, DatanodeId } from '../../../core/wire.ts'
import type { HealthState, ReplicaView } from './classify.ts'

export interface EcReplicaView extends ReplicaView {
  /** The replica's index: 1..k data, k+1..k+m parity (0: a report without one, never counted). */
  replicaIndex: number
}

export interface EcContainerView {
  id: ContainerId
  state: ContainerState
  /** `EC/rs-3-2-1024k`: what the reconstruction command carries. */
  replication: string
  /** k and m. */
  data: number
  parity: number
  /** The EC pipeline's members: member i was written index i + 1. */
  pipelineNodes: DatanodeId[]
  replicas: EcReplicaView[]
}

export interface EcClassification {
  id: ContainerId
  /** The state that decides what to do first (the first of `states`). */
  health: HealthState
  states: HealthState[]
  /** Indexes with a healthy CLOSED replica on a kept node (not DEAD, or in maintenance), ascending. */
  present: number[]
  /** Indexes with none: to reconstruct, when `present` has at least k. */
  missing: number[]
  /** Indexes whose healthy replicas are all on nodes leaving service (decommissioning, or maintenance past the redundancy it may take): to copy. */
  leaving: number[]
  /** Per present index, its healthy replicas on HEALTHY nodes, IN_SERVICE first: what copies and reconstructions read. */
  sources: Map<number, EcReplicaView[]>
  /** Healthy replicas beyond one per index, on HEALTHY IN_SERVICE nodes: to delete (never the last of an index). */
  surplus: EcReplicaView[]
  /** UNHEALTHY replicas on nodes not DEAD: to delete once their index is healthy elsewhere. */
  unhealthy: EcReplicaView[]
  /** Replicas neither CLOSED nor UNHEALTHY of a CLOSED container, on nodes not DEAD: to delete (force). */
  leftover: EcReplicaView[]
  /** OPEN or CLOSING replicas on nodes not DEAD (a closing container's, to close again). */
  open: EcReplicaView[]
  /** The record's move once the replicas settled it (a CLOSING container whose live replicas closed). */
  moveTo?: 'CLOSED'
}

/** Kept: its node is not DEAD, or is in maintenance (down on purpose, its replicas not lost). */
function kept(r: ReplicaView): boolean {
  return r.health !== 'DEAD' || r.operationalState === 'IN_MAINTENANCE'
}

function inMaintenance(r: ReplicaView): boolean {
  return r.operationalState === 'ENTERING_MAINTENANCE' || r.operationalState === 'IN_MAINTENANCE'
}

/** Replicas in datanode id order. */
export const byId = (a: EcReplicaView, b: EcReplicaView) => (a.datanodeId < b.datanodeId ? -1 : a.datanodeId > b.datanodeId ? 1 : 0)

export function classifyEc(c: EcContainerView): EcClassification {
  const n = c.data + c.parity
  const out: EcClassification = { id: c.id, health: 'HEALTHY', states: [], present: [], missing: [], leaving: [], sources: new Map(), surplus: [], unhealthy: [], leftover: [], open: [] }
  const add = (s: HealthState) => { if (!out.states.includes(s)) out.states.push(s) }
  const alive = c.replicas.filter((r) => r.health !== 'DEAD')
  out.open = alive.filter((r) => r.state === 'OPEN' || r.state === 'CLOSING')
  out.unhealthy = alive.filter((r) => r.state === 'UNHEALTHY')

  if (c.state === 'OPEN' || c.state === 'CLOSING') {
    // As for RATIS: an open container with a corrupt replica is closed (Ozone's
    // OpenContainerHandler); a closing one follows its replicas once none alive is open.
    // EC replicas close on their own, CLOSED, never QUASI_CLOSED.
    if (c.state === 'OPEN' && out.unhealthy.length > 0) add('OPEN_UNHEALTHY')
    // Every replica corrupt: CLOSED as well (Ozone's ClosingContainerHandler), to be reconstructed or reported.
    if (c.state === 'CLOSING' && out.open.length === 0 && (alive.some((r) => r.state === 'CLOSED') || (alive.length > 0 && alive.every((r) => r.state === 'UNHEALTHY')))) out.moveTo = 'CLOSED'
    // Written, and every replica on a DEAD node: MISSING, as for RATIS (none reported yet: never written).
    if (c.replicas.length > 0 && !c.replicas.some(kept)) add('MISSING')
    return finish(out)
  }

  const good = c.replicas.filter((r) => kept(r) && r.state === 'CLOSED' && r.replicaIndex >= 1 && r.replicaIndex <= n)
  if (c.state === 'CLOSED') out.leftover = alive.filter((r) => r.state !== 'CLOSED' && r.state !== 'UNHEALTHY')
  const inService = new Set(good.filter((r) => r.operationalState === 'IN_SERVICE').map((r) => r.replicaIndex))
  // Ozone's hdds.scm.replication.maintenance.remaining.redundancy: replicas in maintenance
  // count while the in-service ones alone could lose this many more and still decode.
  const maintenanceCounts = inService.size >= c.data + EC_MAINTENANCE_REDUNDANCY
  for (let i = 1; i <= n; i++) {
    const of = good.filter((r) => r.replicaIndex === i)
    const healthy = of.filter((r) => r.health === 'HEALTHY')
      .sort((a, b) => Number(a.operationalState !== 'IN_SERVICE') - Number(b.operationalState !== 'IN_SERVICE') || byId(a, b))
    if (healthy.length > 0) out.sources.set(i, healthy)
    if (of.length === 0) { out.missing.push(i); continue }
    out.present.push(i)
    if (inService.has(i)) {
      // One replica per index is enough: keep the pipeline's member for it if it holds one, else the first by id.
      const extra = of.filter((r) => r.operationalState === 'IN_SERVICE' && r.health === 'HEALTHY').sort(byId)
      const keep = extra.find((r) => r.datanodeId === c.pipelineNodes[i - 1]) ?? extra[0]
      if (extra.length > 1) out.surplus.push(...extra.filter((r) => r !== keep))
      continue
    }
    if (maintenanceCounts && of.some(inMaintenance)) continue
    // Only on nodes leaving: copied from a HEALTHY one; with none (in maintenance and down), rebuilt.
    if (healthy.length > 0) out.leaving.push(i)
    else { out.present.pop(); out.missing.push(i) }
  }
  out.missing.sort((a, b) => a - b)

  if (out.present.length < c.data) add('MISSING')
  else if (out.missing.length > 0 || out.leaving.length > 0) add('UNDER_REPLICATED')
  if (out.surplus.length > 0) add('OVER_REPLICATED')
  if (out.unhealthy.length > 0 || out.leftover.length > 0) add('UNHEALTHY')
  return finish(out)
}

function finish(out: EcClassification): EcClassification {
  const rank: HealthState[] = ['MISSING', 'UNDER_REPLICATED', 'OPEN_UNHEALTHY', 'UNHEALTHY', 'OVER_REPLICATED', 'HEALTHY']
  if (out.states.length === 0) out.states.push('HEALTHY')
  out.states.sort((a, b) => rank.indexOf(a) - rank.indexOf(b))
  out.health = out.states[0]
  return out
}
