/** @module
 * Turns classified containers into replication actions, as Ozone's ReplicationManager
 * handlers do: a copy of an under-replicated container to a target chosen by free space
 * (pulled from its healthy replicas), a delete of surplus replicas (left-behind and
 * unhealthy ones first), a force close of QUASI_CLOSED replicas the classification allows,
 * and the container record's move when its replicas settled it. Commands in flight count:
 * no second copy to the same need, at most `maxInflightPerDatanode` per datanode.
 * Pure: no I/O, no clock; what is in flight comes in as data.
 */
import type { ContainerId, DatanodeId, NodeHealth, NodeOperationalState } from '../../../core/wire.ts'
import { classify, type Classification, type ClassifyOptions, type ContainerView, type ReplicaView } from './classify.ts'

export interface NodeView {
  id: DatanodeId
  host: string
  health: NodeHealth
  operationalState: NodeOperationalState
  availableBytes: number
  /** Every volume below its reserve: no copy goes there. */
  full?: boolean
}

/**
 * A replicate, reconstruct (EC: one per target) or delete command sent and not yet seen done
 * in reports (nor timed out); `datanodeId` is the node that gains or loses the replica.
 */
export interface InflightOp { kind: 'replicate' | 'reconstruct' | 'delete'; containerId: ContainerId; datanodeId: DatanodeId; replicaIndex?: number }

export type ReplicationAction =
  /** EC: `replicaIndex` is the index copied (the sources hold it; the copy keeps it). */
  | { type: 'replicate'; containerId: ContainerId; target: DatanodeId; sources: DatanodeId[]; replicaIndex?: number; asIs?: true }
  | { type: 'delete'; containerId: ContainerId; datanodeId: DatanodeId; force: boolean }
  | { type: 'close'; containerId: ContainerId; datanodeId: DatanodeId; force: boolean }
  | { type: 'setState'; containerId: ContainerId; state: 'CLOSING' | 'QUASI_CLOSED' | 'CLOSED' }
  /** Have the replica scanned whole (every block against its checksums): what a make-room delete beside it waits for. */
  | { type: 'scan'; containerId: ContainerId; datanodeId: DatanodeId }

export interface PlanInput extends Omit<ClassifyOptions, 'liveHostCount'> {
  containers: ContainerView[]
  nodes: NodeView[]
  inflight: InflightOp[]
  maxInflightPerDatanode: number
  /** Datanodes that must not receive a copy of a container (the SCM marked a replica there corrupt). */
  excludedTargets?: (containerId: ContainerId, dn: DatanodeId) => boolean
  /** Replicas scanned whole and found healthy lately, unchanged since (the manager's memory of the scans it asked for). */
  verified?: (containerId: ContainerId, dn: DatanodeId) => boolean
}

export interface Plan {
  classifications: Classification[]
  actions: ReplicationAction[]
}

export function planReplication(input: PlanInput): Plan {
  const nodes = [...input.nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const usable = nodes.filter((n) => n.health === 'HEALTHY' && n.operationalState === 'IN_SERVICE')
  const liveHostCount = new Set(usable.map((n) => n.host)).size
  const load = new Map<DatanodeId, number>()
  const adds = new Map<ContainerId, DatanodeId[]>()
  const deletes = new Map<ContainerId, DatanodeId[]>()
  for (const op of input.inflight) {
    load.set(op.datanodeId, (load.get(op.datanodeId) ?? 0) + 1)
    const m = op.kind === 'delete' ? deletes : adds
    m.set(op.containerId, [...(m.get(op.containerId) ?? []), op.datanodeId])
  }
  const underLimit = (dn: DatanodeId) => (load.get(dn) ?? 0) < input.maxInflightPerDatanode
  const take = (dn: DatanodeId) => load.set(dn, (load.get(dn) ?? 0) + 1)

  const classifications: Classification[] = []
  const actions: ReplicationAction[] = []
  for (const c of input.containers) {
    const cls = classify(c, { liveHostCount, maintenanceMinimum: input.maintenanceMinimum })
    classifications.push(cls)
    if (cls.moveTo !== undefined) actions.push({ type: 'setState', containerId: c.id, state: cls.moveTo })
    if (cls.states.includes('OPEN_UNHEALTHY')) actions.push({ type: 'setState', containerId: c.id, state: 'CLOSING' })
    // Ozone's ClosingContainerHandler sends close again to replicas not closed yet.
    if (c.state !== 'OPEN') for (const r of cls.open) if (r.health === 'HEALTHY') actions.push({ type: 'close', containerId: c.id, datanodeId: r.datanodeId, force: false })
    for (const r of cls.forceClose) if (r.health === 'HEALTHY') actions.push({ type: 'close', containerId: c.id, datanodeId: r.datanodeId, force: true })
    if (c.state !== 'CLOSED' && c.state !== 'QUASI_CLOSED') continue

    const adding = adds.get(c.id) ?? []
    const deleting = deletes.get(c.id) ?? []
    const holders = new Set(c.replicas.map((r) => r.datanodeId))
    const chosen: DatanodeId[] = []
    const usedHosts = new Set(cls.healthy.map((r) => r.host))
    for (const dn of adding) { const n = nodes.find((x) => x.id === dn); if (n !== undefined) usedHosts.add(n.host) }
    /**
     * Nodes that could take a copy, busy or not, and those whose corrupt replica is gone but
     * still marked (the mark is cleared through the log a moment later).
     */
    const free = () => usable.filter((n) => !holders.has(n.id) && !adding.includes(n.id) && !chosen.includes(n.id) && n.full !== true)
    const target = (newHostOnly: boolean): NodeView | undefined => {
      const candidates = free().filter((n) => underLimit(n.id) && input.excludedTargets?.(c.id, n.id) !== true && (!newHostOnly || !usedHosts.has(n.host)))
      // Spread over hosts first (a host's datanodes fail together), then the most free space.
      candidates.sort((a, b) => Number(usedHosts.has(a.host)) - Number(usedHosts.has(b.host)) || b.availableBytes - a.availableBytes)
      return candidates[0]
    }
    const sources = cls.sources
      .sort((a, b) => (load.get(a.datanodeId) ?? 0) - (load.get(b.datanodeId) ?? 0) || (a.datanodeId < b.datanodeId ? -1 : 1))
      .map((r) => r.datanodeId)
    const replicate = (newHostOnly: boolean, from = sources, asIs = false): boolean => {
      const t = target(newHostOnly)
      if (t === undefined) return false
      chosen.push(t.id)
      usedHosts.add(t.host)
      take(t.id)
      actions.push({ type: 'replicate', containerId: c.id, target: t.id, sources: from, ...(asIs ? { asIs: true as const } : {}) })
      return true
    }
    let unplaced = 0
    // A QUASI_CLOSED container whose replicas are being force-closed is copied once they are CLOSED.
    if (sources.length > 0 && !(c.state === 'QUASI_CLOSED' && cls.forceClose.length > 0)) {
      for (let need = cls.missingCount - adding.length; need > 0; need--) if (!replicate(false)) { unplaced = need; break }
      // Mis-replicated: one more copy on a host without one; the surplus goes once it is there.
      if (cls.states.includes('MIS_REPLICATED') && adding.length === 0) replicate(true)
    }
    // Nothing healthy to copy: the corrupt replicas are, as they are (the copy is as good as its source).
    if (sources.length === 0 && cls.unhealthySources.length > 0) {
      const from = cls.unhealthySources.map((r) => r.datanodeId)
      for (let need = cls.missingCount - adding.length; need > 0; need--) if (!replicate(false, from, true)) break
    }

    // Deletes only from live nodes (a DEAD one cannot do it), never the last good copies. A
    // corrupt replica goes with force, as in Ozone: its datanode may still hold it OPEN.
    const del = (r: ReplicaView): boolean => {
      if (r.health !== 'HEALTHY' || !underLimit(r.datanodeId)) return false
      take(r.datanodeId)
      actions.push({ type: 'delete', containerId: c.id, datanodeId: r.datanodeId, force: r.state === 'UNHEALTHY' })
      return true
    }
    // Never one ahead of the healthy replicas (a higher bcsid): it may hold the only copies of later blocks.
    // (Healthy replicas on nodes leaving for good count here too: they are what copies come from.)
    const healthyTop = Math.max(...[...cls.healthy, ...cls.sources].map((r) => r.bcsid))
    const replaceable = cls.unhealthy.filter((r) => r.state !== 'UNHEALTHY' || r.bcsid <= healthyTop)
    // A copy of a CLOSED container with no target left (every usable node holds a replica; not
    // one merely busy, nor one being freed): one replaceable replica makes room, on a node that
    // can then take the copy (Ozone's RatisUnderReplicationHandler removes an unhealthy replica
    // to unblock under-replication). Left-behind ones first, then the oldest; never while a copy
    // is in flight or planned in this round (its import verifies every block of its source: a
    // replica thought healthy may be corrupt too, and the one deleted the only good copy of a
    // block), nor below two live replicas (Ozone's rule), nor beside a single healthy replica
    // not scanned whole lately (one thought healthy may be corrupt in another block, not found
    // yet: a probe saw the replica deleted then hold a block's only good copy; with two healthy
    // ones, two independent replicas corrupt in the same block are what a loss takes). The lone
    // healthy replica is scanned first (a `scan` action); the delete follows once it is found
    // healthy. A QUASI_CLOSED container's replicas are left alone: without their origins, one
    // may hold what no other does.
    const liveReplicas = c.replicas.filter((r) => r.health !== 'DEAD').length
    const healthyReplicas = [...new Set([...cls.healthy, ...cls.sources].map((r) => r.datanodeId))]
    if (unplaced > 0 && c.state === 'CLOSED' && adding.length === 0 && chosen.length === 0 && deleting.length === 0 && liveReplicas > 2 && healthyReplicas.length > 0 && free().length === 0) {
      const takesCopy = (r: ReplicaView) => usable.some((n) => n.id === r.datanodeId && n.full !== true)
      const room = replaceable.filter(takesCopy)
        .sort((a, b) => Number(a.state === 'UNHEALTHY') - Number(b.state === 'UNHEALTHY') || a.bcsid - b.bcsid || (a.datanodeId < b.datanodeId ? -1 : 1))
      const unverified = healthyReplicas.length >= 2 ? [] : healthyReplicas.filter((dn) => input.verified?.(c.id, dn) !== true)
      if (unverified.length === 0) for (const r of room) { if (del(r)) break }
      else if (room.length > 0) for (const dn of unverified) actions.push({ type: 'scan', containerId: c.id, datanodeId: dn })
    }
    // Other deletes only once nothing is being added or deleted for this container.
    if (adding.length > 0 || deleting.length > 0) continue
    if (cls.healthy.length >= c.factor && cls.missingCount === 0) for (const r of replaceable) del(r)
    for (const r of cls.unhealthySurplus) del(r)
    if (cls.surplusCount > 0 && !cls.states.includes('MIS_REPLICATED')) {
      // Keep one replica per host as long as possible: delete from crowded hosts first, then
      // from the fullest node.
      const perHost = new Map<string, number>()
      for (const r of cls.healthy) perHost.set(r.host, (perHost.get(r.host) ?? 0) + 1)
      const free = (r: ReplicaView) => nodes.find((n) => n.id === r.datanodeId)?.availableBytes ?? 0
      const surplus = cls.healthy.filter((r) => r.health === 'HEALTHY' && r.operationalState === 'IN_SERVICE')
        .sort((a, b) => (perHost.get(b.host) ?? 0) - (perHost.get(a.host) ?? 0) || free(a) - free(b) || (a.datanodeId < b.datanodeId ? 1 : -1))
      for (const r of surplus.slice(0, cls.surplusCount)) {
        perHost.set(r.host, (perHost.get(r.host) ?? 0) - 1)
        del(r)
      }
    }
  }
  return { classifications, actions }
}
