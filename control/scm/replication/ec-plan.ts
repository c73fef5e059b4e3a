/** @module
 * Turns classified EC containers into commands, as Ozone's ECUnderReplicationHandler and
 * ECOverReplicationHandler do (issue 14): missing indexes are rebuilt by one
 * reconstructECContainer per container (sources: one HEALTHY node per available index;
 * targets: distinct HEALTHY IN_SERVICE nodes holding no replica of it, most free space first,
 * the command to the first; with no node left for one, a corrupt replica of a missing index
 * is deleted to make room), indexes only on nodes leaving service are copied with
 * replicateContainer (from the nodes holding that index), and once nothing is added or deleted
 * for the container: surplus replicas of an index, UNHEALTHY replicas whose index is healthy
 * elsewhere and left-over unclosed replicas of a CLOSED container are deleted. A MISSING
 * container (fewer than k indexes) is reported, not touched. Commands in flight count as in
 * plan.ts. Pure: no I/O, no clock.
 */
import type { ContainerId, DatanodeId } from '../../../core/wire.ts'
import { byId, classifyEc, type EcClassification, type EcContainerView, type EcReplicaView } from './ec-classify.ts'
import type { InflightOp, NodeView, ReplicationAction } from './plan.ts'

/** One index of a reconstruction and the node that holds it (a source) or is to hold it (a target). */
export interface EcEndpoint { replicaIndex: number; datanodeId: DatanodeId }

export type EcAction =
  | ReplicationAction
  | { type: 'reconstruct'; containerId: ContainerId; replication: string; sources: EcEndpoint[]; targets: EcEndpoint[] }

export interface EcPlanInput {
  containers: EcContainerView[]
  nodes: NodeView[]
  inflight: InflightOp[]
  maxInflightPerDatanode: number
  /** Datanodes that must not receive a replica of a container (the SCM marked one there corrupt). */
  excludedTargets?: (containerId: ContainerId, dn: DatanodeId) => boolean
  /** Replicas scanned whole and found healthy lately, unchanged since (as in plan.ts). */
  verified?: (containerId: ContainerId, dn: DatanodeId) => boolean
}

export interface EcPlan {
  classifications: EcClassification[]
  actions: EcAction[]
}

export function planEcReplication(input: EcPlanInput): EcPlan {
  const nodes = [...input.nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const usable = nodes.filter((n) => n.health === 'HEALTHY' && n.operationalState === 'IN_SERVICE')
  const load = new Map<DatanodeId, number>()
  for (const op of input.inflight) load.set(op.datanodeId, (load.get(op.datanodeId) ?? 0) + 1)
  const underLimit = (dn: DatanodeId) => (load.get(dn) ?? 0) < input.maxInflightPerDatanode
  const take = (dn: DatanodeId) => load.set(dn, (load.get(dn) ?? 0) + 1)

  const classifications: EcClassification[] = []
  const actions: EcAction[] = []
  for (const c of input.containers) {
    const cls = classifyEc(c)
    classifications.push(cls)
    if (cls.moveTo !== undefined) actions.push({ type: 'setState', containerId: c.id, state: cls.moveTo })
    if (cls.states.includes('OPEN_UNHEALTHY')) actions.push({ type: 'setState', containerId: c.id, state: 'CLOSING' })
    if (c.state === 'CLOSING') for (const r of cls.open) if (r.health === 'HEALTHY') actions.push({ type: 'close', containerId: c.id, datanodeId: r.datanodeId, force: false })
    if (c.state !== 'CLOSED' && c.state !== 'QUASI_CLOSED') continue
    // Fewer than k indexes: nothing can rebuild it; keep every replica for an operator.
    if (cls.states.includes('MISSING')) continue

    const ops = input.inflight.filter((op) => op.containerId === c.id)
    const adding = ops.filter((op) => op.kind !== 'delete')
    const deleting = ops.filter((op) => op.kind === 'delete')
    const coming = new Set(adding.map((op) => op.replicaIndex))
    const holders = new Set([...c.replicas.map((r) => r.datanodeId), ...adding.map((op) => op.datanodeId)])
    /** Scanned whole and found healthy lately (the manager's memory). */
    const scanned = (r: EcReplicaView) => input.verified?.(c.id, r.datanodeId) === true
    const hosts = new Set(c.replicas.filter((r) => r.health !== 'DEAD').map((r) => r.host))
    const target = (): NodeView | undefined => {
      const candidates = usable.filter((n) => !holders.has(n.id) && underLimit(n.id) && n.full !== true && input.excludedTargets?.(c.id, n.id) !== true)
      // Spread over hosts first (a host's datanodes fail together), then the most free space.
      candidates.sort((a, b) => Number(hosts.has(a.host)) - Number(hosts.has(b.host)) || b.availableBytes - a.availableBytes)
      const t = candidates[0]
      if (t !== undefined) { holders.add(t.id); hosts.add(t.host); take(t.id) }
      return t
    }

    // Missing indexes: one reconstruction at a time per container (Ozone's handler too).
    const need = cls.missing.filter((i) => !coming.has(i))
    let unplaced = false
    if (need.length > 0 && !adding.some((op) => op.kind === 'reconstruct')) {
      // A replica scanned healthy lately first: at k indexes, what made room was waiting for it.
      const sources = [...cls.sources].map(([replicaIndex, rs]) => {
        const verified = rs.filter(scanned)
        return { replicaIndex, datanodeId: leastLoaded(verified.length > 0 ? verified : rs, load) }
      })
      if (sources.length >= c.data) {
        const targets: EcEndpoint[] = []
        for (const replicaIndex of need) {
          const t = target()
          if (t === undefined) break
          targets.push({ replicaIndex, datanodeId: t.id })
        }
        if (targets.length > 0) actions.push({ type: 'reconstruct', containerId: c.id, replication: c.replication, sources, targets })
        unplaced = targets.length === 0
      }
    }
    // No target for a missing index: every usable node holds a replica of the container (not
    // one merely busy, nor one whose corrupt replica is gone and its mark being cleared). A
    // corrupt replica of a missing index makes room on its node, which then takes the rebuild
    // (Ozone's ECUnderReplicationHandler frees a node so too); the rebuild reads k healthy
    // indexes, not it. Only with nothing added or deleted in flight for the container, and
    // with more than k indexes healthy, or exactly k each scanned whole lately: with k, each is
    // needed for every block, and if one were corrupt in a block not found yet, the deleted
    // replica's cell of that block might be what decodes it (as RATIS wants two healthy
    // replicas, or its lone one scanned). Those not scanned yet are scanned first (`scan`).
    if (unplaced && c.state === 'CLOSED' && adding.length === 0 && deleting.length === 0
      && !usable.some((n) => !holders.has(n.id) && n.full !== true)) {
      const room = cls.unhealthy
        .filter((r) => need.includes(r.replicaIndex) && usable.some((n) => n.id === r.datanodeId && n.full !== true) && underLimit(r.datanodeId))
        .sort((a, b) => a.replicaIndex - b.replicaIndex || byId(a, b))[0]
      // One replica of each index scanned is enough (the rebuild then reads those).
      const unverified = cls.present.length > c.data ? [] : [...cls.sources.values()]
        .filter((rs) => !rs.some(scanned))
        .map((rs) => leastLoaded(rs, load))
      if (room !== undefined && unverified.length === 0) {
        take(room.datanodeId)
        actions.push({ type: 'delete', containerId: c.id, datanodeId: room.datanodeId, force: true })
        continue
      }
      if (room !== undefined) for (const dn of unverified) actions.push({ type: 'scan', containerId: c.id, datanodeId: dn })
    }
    // Indexes only on nodes leaving service: a plain copy keeps the index.
    for (const replicaIndex of cls.leaving) {
      if (coming.has(replicaIndex)) continue
      const from = cls.sources.get(replicaIndex) ?? []
      if (from.length === 0) continue
      const t = target()
      if (t === undefined) break
      actions.push({ type: 'replicate', containerId: c.id, target: t.id, sources: from.map((r) => r.datanodeId), replicaIndex })
    }

    if (adding.length > 0 || deleting.length > 0 || actions.some((a) => a.containerId === c.id && (a.type === 'reconstruct' || a.type === 'replicate'))) continue
    const del = (r: EcReplicaView, force: boolean) => {
      if (r.health !== 'HEALTHY' || !underLimit(r.datanodeId)) return
      take(r.datanodeId)
      actions.push({ type: 'delete', containerId: c.id, datanodeId: r.datanodeId, force })
    }
    for (const r of cls.surplus) del(r, false)
    // An UNHEALTHY replica goes once its index is healthy elsewhere (rebuilt first if it was the only one).
    // With force, as in Ozone: its datanode may still hold it OPEN (a reader found it corrupt).
    for (const r of cls.unhealthy) if (cls.present.includes(r.replicaIndex) && !cls.leaving.includes(r.replicaIndex)) del(r, true)
    // Unclosed replicas of a CLOSED container that no command is writing (nothing is added now).
    for (const r of cls.leftover) del(r, true)
  }
  return { classifications, actions }
}

/** The replica on the node with the fewest commands in flight (ties: the first, IN_SERVICE ones lead). */
function leastLoaded(rs: EcReplicaView[], load: Map<DatanodeId, number>): DatanodeId {
  let best = rs[0]
  for (const r of rs) if ((load.get(r.datanodeId) ?? 0) < (load.get(best.datanodeId) ?? 0)) best = r
  return best.datanodeId
}
