/**
 * Goal: classifyEc() and planEcReplication() handle erasure-coded containers as Ozone's
 * ECReplicationCheckHandler, ECUnderReplicationHandler and ECOverReplicationHandler do
 * (issue 14): per index 1..k+m the healthy CLOSED replicas on kept nodes; a missing index is
 * rebuilt by one reconstructECContainer (sources: one HEALTHY node per available index;
 * targets: distinct HEALTHY IN_SERVICE nodes holding no replica, most free space first) while
 * k indexes remain, else the container is MISSING and left alone; an index only on a
 * decommissioning node (or in maintenance past the redundancy it may take) is copied with
 * replicateContainer from the nodes holding it; a second replica of an index is deleted,
 * never the last; an UNHEALTHY replica goes once its index is healthy elsewhere (rebuilt
 * first when it was the only one); an unclosed replica of a CLOSED container goes (force)
 * once no command is writing the container; in-flight commands and per-node limits hold.
 * Method: the pure functions on hand-built rs-3-2 containers, one case per rule.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  classifyEc, planEcReplication, type EcAction, type EcContainerView, type EcReplicaView, type InflightOp, type NodeView,
} from '../../../../control/scm/replication/index.ts'
import type { ContainerId, ContainerState, DatanodeId } from '../../../../core/wire.ts'

const RS32 = 'EC/rs-3-2-1024k'
const dn = (i: number) => `dn-${String(i).padStart(8, '0')}` as DatanodeId
const cid = (i: number) => i as ContainerId

/** Nodes 1..9, HEALTHY and IN_SERVICE, node i with 1000 * i bytes free (9 the emptiest). */
function cluster(more: Record<number, Partial<NodeView>> = {}): NodeView[] {
  return Array.from({ length: 9 }, (_, j) => ({ id: dn(j + 1), host: `h${j + 1}`, health: 'HEALTHY', operationalState: 'IN_SERVICE', availableBytes: 1000 * (j + 1), ...more[j + 1] }) as NodeView)
}

/** Replica of index `index` on node `node` (its health and state from the cluster). */
function replica(node: number, index: number, nodes: NodeView[], state: ContainerState = 'CLOSED'): EcReplicaView {
  const n = nodes.find((x) => x.id === dn(node))!
  return { datanodeId: dn(node), state, bcsid: 0, usedBytes: 100, host: n.host, health: n.health, operationalState: n.operationalState, replicaIndex: index }
}

/** An rs-3-2 container written on nodes 1..5 (index i on node i), with these replicas. */
function container(replicas: EcReplicaView[], state: ContainerState = 'CLOSED', id = 1): EcContainerView {
  return { id: cid(id), state, replication: RS32, data: 3, parity: 2, pipelineNodes: [1, 2, 3, 4, 5].map(dn), replicas }
}

/** Index i on node i for each listed index. */
const written = (nodes: NodeView[], ...indexes: number[]) => indexes.map((i) => replica(i, i, nodes))

function plan(containers: EcContainerView[], nodes: NodeView[], inflight: InflightOp[] = [], more: { max?: number; excluded?: (c: ContainerId, d: DatanodeId) => boolean; verified?: (c: ContainerId, d: DatanodeId) => boolean } = {}): EcAction[] {
  return planEcReplication({ containers, nodes, inflight, maxInflightPerDatanode: more.max ?? 10, excludedTargets: more.excluded, verified: more.verified }).actions
}

// --- classifyEc -------------------------------------------------------------------------

test('classifyEc(): every index CLOSED on a healthy node is HEALTHY', () => {
  const nodes = cluster()
  const c = classifyEc(container(written(nodes, 1, 2, 3, 4, 5)))
  assert.equal(c.states, ['HEALTHY'])
  assert.equal(c.present, [1, 2, 3, 4, 5])
  assert.equal(c.missing, [])
  assert.equal([...c.sources.keys()], [1, 2, 3, 4, 5])
})

test('classifyEc(): an index on a DEAD node is missing (UNDER_REPLICATED); with fewer than k indexes left the container is MISSING', () => {
  const one = cluster({ 3: { health: 'DEAD' } })
  const c = classifyEc(container(written(one, 1, 2, 3, 4, 5)))
  assert.equal(c.states, ['UNDER_REPLICATED'])
  assert.equal(c.missing, [3])
  const two = cluster({ 2: { health: 'DEAD' }, 4: { health: 'DEAD' } })
  assert.equal(classifyEc(container(written(two, 1, 2, 3, 4, 5))).missing, [2, 4])
  const three = cluster({ 1: { health: 'DEAD' }, 2: { health: 'DEAD' }, 4: { health: 'DEAD' } })
  const lost = classifyEc(container(written(three, 1, 2, 3, 4, 5)))
  assert.equal(lost.states, ['MISSING'])
  assert.equal(lost.present, [3, 5])
  assert.equal(classifyEc(container([])).states, ['MISSING'], 'a CLOSED container without replicas')
})

test('classifyEc(): a STALE node\'s index still counts (it is not lost yet), but is no source', () => {
  const nodes = cluster({ 2: { health: 'STALE' } })
  const c = classifyEc(container(written(nodes, 1, 2, 3, 4, 5)))
  assert.equal(c.states, ['HEALTHY'])
  assert.equal([...c.sources.keys()], [1, 3, 4, 5])
})

test('classifyEc(): a report without an index (0) or with one past k + m counts for nothing', () => {
  const nodes = cluster()
  const c = classifyEc(container([...written(nodes, 1, 2, 3, 4), replica(5, 0, nodes), replica(6, 9, nodes)]))
  assert.equal(c.missing, [5])
})

test('classifyEc(): two healthy in-service replicas of one index are OVER_REPLICATED; the pipeline member\'s is kept', () => {
  const nodes = cluster()
  const c = classifyEc(container([...written(nodes, 1, 2, 3, 4, 5), replica(7, 2, nodes), replica(6, 2, nodes)]))
  assert.equal(c.states, ['OVER_REPLICATED'])
  assert.equal(c.surplus.map((r) => r.datanodeId).sort(), [dn(6), dn(7)])
  // With the member gone, the first by id stays.
  const d = classifyEc(container([...written(nodes, 1, 3, 4, 5), replica(7, 2, nodes), replica(6, 2, nodes)]))
  assert.equal(d.surplus.map((r) => r.datanodeId), [dn(7)])
  // A second replica on a STALE node is not a surplus yet.
  const stale = cluster({ 6: { health: 'STALE' } })
  assert.equal(classifyEc(container([...written(stale, 1, 2, 3, 4, 5), replica(6, 2, stale)])).surplus, [])
})

test('classifyEc(): an UNHEALTHY replica beside a healthy one of its index is UNHEALTHY; alone, its index is missing too', () => {
  const nodes = cluster()
  const beside = classifyEc(container([...written(nodes, 1, 2, 3, 4, 5), replica(6, 2, nodes, 'UNHEALTHY')]))
  assert.equal(beside.states, ['UNHEALTHY'])
  assert.equal(beside.unhealthy.map((r) => r.datanodeId), [dn(6)])
  const alone = classifyEc(container([...written(nodes, 1, 3, 4, 5), replica(2, 2, nodes, 'UNHEALTHY')]))
  assert.equal(alone.states, ['UNDER_REPLICATED', 'UNHEALTHY'])
  assert.equal(alone.missing, [2])
})

test('classifyEc(): an index only on a decommissioning node is leaving (UNDER_REPLICATED), copied from there; if that node is DEAD it is missing', () => {
  const nodes = cluster({ 4: { operationalState: 'DECOMMISSIONING' } })
  const c = classifyEc(container(written(nodes, 1, 2, 3, 4, 5)))
  assert.equal(c.states, ['UNDER_REPLICATED'])
  assert.equal(c.leaving, [4])
  assert.equal(c.missing, [])
  assert.equal(c.sources.get(4)?.map((r) => r.datanodeId), [dn(4)])
  const dead = cluster({ 4: { operationalState: 'DECOMMISSIONING', health: 'DEAD' } })
  assert.equal(classifyEc(container(written(dead, 1, 2, 3, 4, 5))).missing, [4])
  // Copied already: the in-service copy counts, the leaving one is no surplus.
  const copied = classifyEc(container([...written(nodes, 1, 2, 3, 4, 5), replica(6, 4, nodes)]))
  assert.equal(copied.states, ['HEALTHY'])
})

test('classifyEc(): replicas in maintenance count while k + 1 indexes are in service; below that they are copied, or rebuilt if their node is down', () => {
  const one = cluster({ 5: { operationalState: 'IN_MAINTENANCE', health: 'DEAD' } })
  assert.equal(classifyEc(container(written(one, 1, 2, 3, 4, 5))).states, ['HEALTHY'])
  const two = cluster({ 4: { operationalState: 'IN_MAINTENANCE' }, 5: { operationalState: 'IN_MAINTENANCE', health: 'DEAD' } })
  const c = classifyEc(container(written(two, 1, 2, 3, 4, 5)))
  assert.equal(c.states, ['UNDER_REPLICATED'])
  assert.equal(c.leaving, [4])
  assert.equal(c.missing, [5])
})

test('classifyEc(): an unclosed replica of a CLOSED container is left over (UNHEALTHY), and its index counts as missing', () => {
  const nodes = cluster()
  const c = classifyEc(container([...written(nodes, 1, 2, 3, 4), replica(5, 5, nodes, 'OPEN')]))
  assert.equal(c.states, ['UNDER_REPLICATED', 'UNHEALTHY'])
  assert.equal(c.leftover.map((r) => r.datanodeId), [dn(5)])
  assert.equal(c.missing, [5])
})

test('classifyEc(): a CLOSING container moves to CLOSED once no live replica is open; an OPEN one with a corrupt replica is OPEN_UNHEALTHY', () => {
  const dead = cluster({ 5: { health: 'DEAD' } })
  const closing = [...written(dead, 1, 2, 3, 4), replica(5, 5, dead, 'OPEN')]
  assert.is(classifyEc(container(closing, 'CLOSING')).moveTo, 'CLOSED')
  const stale = cluster({ 5: { health: 'STALE' } })
  assert.is(classifyEc(container([...written(stale, 1, 2, 3, 4), replica(5, 5, stale, 'OPEN')], 'CLOSING')).moveTo, undefined, 'a STALE node may still close it')
  const nodes = cluster()
  assert.is(classifyEc(container([1, 2, 3, 4, 5].map((i) => replica(i, i, nodes, 'UNHEALTHY')), 'CLOSING')).moveTo, 'CLOSED', 'every replica corrupt')
  const open = classifyEc(container([replica(1, 1, nodes, 'OPEN'), replica(2, 2, nodes, 'UNHEALTHY')], 'OPEN'))
  assert.equal(open.states, ['OPEN_UNHEALTHY'])
  assert.equal(classifyEc(container([], 'OPEN')).states, ['HEALTHY'], 'an open container never written has no replica and is fine')
})

test('classifyEc(): a written OPEN or CLOSING container whose replicas are all on DEAD nodes is MISSING', () => {
  const allDead = cluster(Object.fromEntries([1, 2, 3, 4, 5].map((i) => [i, { health: 'DEAD' as const }])))
  for (const state of ['OPEN', 'CLOSING'] as const) {
    const c = container([1, 2, 3, 4, 5].map((i) => replica(i, i, allDead, 'OPEN')), state)
    assert.equal(classifyEc(c).states, ['MISSING'], state)
  }
  const oneAlive = cluster(Object.fromEntries([1, 2, 3, 4].map((i) => [i, { health: 'DEAD' as const }])))
  assert.equal(classifyEc(container([1, 2, 3, 4, 5].map((i) => replica(i, i, oneAlive, 'OPEN')), 'CLOSING')).states, ['HEALTHY'], 'a live replica may still close it')
})

// --- planEcReplication ------------------------------------------------------------------

test('planEcReplication(): a missing index is rebuilt on the emptiest node holding no replica, from one node per available index', () => {
  const nodes = cluster({ 3: { health: 'DEAD' } })
  assert.equal(plan([container(written(nodes, 1, 2, 3, 4, 5))], nodes), [{
    type: 'reconstruct', containerId: cid(1), replication: RS32,
    sources: [1, 2, 4, 5].map((i) => ({ replicaIndex: i, datanodeId: dn(i) })),
    targets: [{ replicaIndex: 3, datanodeId: dn(9) }],
  }])
})

test('planEcReplication(): a full node (every volume below its reserve) is no target, however much the disk has', () => {
  const nodes = cluster({ 3: { health: 'DEAD' }, 9: { full: true, availableBytes: 1e12 } })
  const [a] = plan([container(written(nodes, 1, 2, 3, 4, 5))], nodes)
  assert.ok(a !== undefined && a.type === 'reconstruct')
  if (a.type === 'reconstruct') assert.equal(a.targets, [{ replicaIndex: 3, datanodeId: dn(8) }])
})

test('planEcReplication(): two missing indexes go to two distinct targets in one command; too few targets rebuild what fits', () => {
  const nodes = cluster({ 2: { health: 'DEAD' }, 4: { health: 'DEAD' } })
  const [a] = plan([container(written(nodes, 1, 2, 3, 4, 5))], nodes)
  assert.is(a.type, 'reconstruct')
  if (a.type !== 'reconstruct') return
  assert.equal(a.targets, [{ replicaIndex: 2, datanodeId: dn(9) }, { replicaIndex: 4, datanodeId: dn(8) }])
  assert.equal(a.sources.map((s) => s.replicaIndex), [1, 3, 5])
  // Only node 6 is free of replicas and in service: one index now, the other in a later round.
  const few = cluster({ 2: { health: 'DEAD' }, 4: { health: 'DEAD' }, 7: { health: 'STALE' }, 8: { operationalState: 'DECOMMISSIONING' }, 9: { health: 'DEAD' } })
  const [b] = plan([container(written(few, 1, 2, 3, 4, 5))], few)
  assert.ok(b.type === 'reconstruct')
  if (b.type === 'reconstruct') assert.equal(b.targets, [{ replicaIndex: 2, datanodeId: dn(6) }])
})

test('planEcReplication(): no reconstruction without k sources on HEALTHY nodes, nor for a MISSING container', () => {
  const staleSources = cluster({ 3: { health: 'DEAD' }, 1: { health: 'STALE' }, 2: { health: 'STALE' } })
  assert.equal(plan([container(written(staleSources, 1, 2, 3, 4, 5))], staleSources), [])
  const lost = cluster({ 1: { health: 'DEAD' }, 2: { health: 'DEAD' }, 3: { health: 'DEAD' } })
  assert.equal(plan([container([...written(lost, 1, 2, 3, 4), replica(5, 5, lost, 'OPEN'), replica(6, 4, lost)])], lost), [], 'no delete either: every replica kept for an operator')
})

test('planEcReplication(): one reconstruction per container in flight; none while it runs, and no deletes then', () => {
  const nodes = cluster({ 2: { health: 'DEAD' }, 4: { health: 'DEAD' } })
  const inflight: InflightOp[] = [{ kind: 'reconstruct', containerId: cid(1), datanodeId: dn(9), replicaIndex: 2 }]
  // Index 4's rebuild waits for index 2's; the target's partial replica (OPEN) is not left over.
  const c = container([...written(nodes, 1, 2, 3, 4, 5), replica(9, 2, nodes, 'OPEN'), replica(6, 1, nodes)])
  assert.equal(plan([c], nodes, inflight), [])
})

test('planEcReplication(): targets respect the per-datanode limit and the nodes the SCM marked corrupt for the container', () => {
  const nodes = cluster({ 3: { health: 'DEAD' } })
  const busy: InflightOp[] = [{ kind: 'replicate', containerId: cid(99), datanodeId: dn(9) }]
  const [a] = plan([container(written(nodes, 1, 2, 3, 4, 5))], nodes, busy, { max: 1, excluded: (_, d) => d === dn(8) })
  assert.ok(a.type === 'reconstruct')
  if (a.type === 'reconstruct') assert.equal(a.targets, [{ replicaIndex: 3, datanodeId: dn(7) }])
})

test('planEcReplication(): an index on a decommissioning node only is copied with replicateContainer from that node, keeping its index', () => {
  const nodes = cluster({ 4: { operationalState: 'DECOMMISSIONING' } })
  assert.equal(plan([container(written(nodes, 1, 2, 3, 4, 5))], nodes), [{ type: 'replicate', containerId: cid(1), target: dn(9), sources: [dn(4)], replicaIndex: 4 }])
  // In flight already: nothing more.
  assert.equal(plan([container(written(nodes, 1, 2, 3, 4, 5))], nodes, [{ kind: 'replicate', containerId: cid(1), datanodeId: dn(9), replicaIndex: 4 }]), [])
})

test('planEcReplication(): a second replica of an index is deleted, never the last, and not while a command for the container is in flight', () => {
  const nodes = cluster()
  const c = container([...written(nodes, 1, 2, 3, 4, 5), replica(6, 2, nodes)])
  assert.equal(plan([c], nodes), [{ type: 'delete', containerId: cid(1), datanodeId: dn(6), force: false }])
  assert.equal(plan([c], nodes, [{ kind: 'delete', containerId: cid(1), datanodeId: dn(6) }]), [])
})

test('planEcReplication(): an UNHEALTHY replica is deleted once its index is healthy elsewhere; alone, its index is rebuilt elsewhere first', () => {
  const nodes = cluster()
  const beside = container([...written(nodes, 1, 2, 3, 4, 5), replica(6, 2, nodes, 'UNHEALTHY')])
  assert.equal(plan([beside], nodes), [{ type: 'delete', containerId: cid(1), datanodeId: dn(6), force: true }], 'with force: its datanode may hold it OPEN')
  const alone = container([...written(nodes, 1, 3, 4, 5), replica(2, 2, nodes, 'UNHEALTHY')])
  const actions = plan([alone], nodes)
  assert.equal(actions.map((a) => a.type), ['reconstruct'])
  const [a] = actions
  if (a.type === 'reconstruct') {
    assert.equal(a.targets, [{ replicaIndex: 2, datanodeId: dn(9) }])
    assert.ok(a.sources.every((s) => s.datanodeId !== dn(2)), 'never read from the corrupt replica')
  }
  // Rebuilt: now the corrupt one goes.
  assert.equal(plan([container([...alone.replicas, replica(9, 2, nodes)])], nodes), [{ type: 'delete', containerId: cid(1), datanodeId: dn(2), force: true }])
})

// Catches: rs-3-2 on exactly five datanodes with one corrupt index staying UNDER_REPLICATED for
// good (found by a probe): every node held a replica, so the rebuild had no target.
test('planEcReplication(): with no node left for a missing index, its corrupt replica is deleted to make room, then the index is rebuilt there', () => {
  const five = cluster().slice(0, 5)
  const stuck = container([...written(five, 1, 3, 4, 5), replica(2, 2, five, 'UNHEALTHY')])
  assert.equal(plan([stuck], five), [{ type: 'delete', containerId: cid(1), datanodeId: dn(2), force: true }])
  // Gone: node 2 takes the rebuild.
  const freed = plan([container(written(five, 1, 3, 4, 5))], five)
  assert.equal(freed.map((a) => a.type === 'reconstruct' && a.targets), [[{ replicaIndex: 2, datanodeId: dn(2) }]])
  // Not while a node is free but busy, nor while its mark is cleared, nor with a command in flight, nor in a QUASI_CLOSED container.
  const six = cluster().slice(0, 6)
  const stuckOfSix = container([...written(six, 1, 3, 4, 5), replica(2, 2, six, 'UNHEALTHY')])
  assert.equal(plan([stuckOfSix], six, [{ kind: 'replicate', containerId: cid(7), datanodeId: dn(6) }], { max: 1 }), [])
  assert.equal(plan([stuckOfSix], six, [], { excluded: (_, d) => d === dn(6) }), [])
  assert.equal(plan([stuck], five, [{ kind: 'delete', containerId: cid(1), datanodeId: dn(3) }]), [])
  assert.equal(plan([container(stuck.replicas, 'QUASI_CLOSED')], five), [])
  // Nor with only k indexes healthy, until each was scanned whole and found healthy: each is
  // then needed, and the corrupt one's cells may be too.
  const fiveOneDead = cluster({ 5: { health: 'DEAD' } }).slice(0, 5)
  const atK = container([...written(fiveOneDead, 1, 3, 4, 5), replica(2, 2, fiveOneDead, 'UNHEALTHY')])
  const scans = (...ids: number[]) => ids.map((i) => ({ type: 'scan', containerId: cid(1), datanodeId: dn(i) }))
  assert.equal(plan([atK], fiveOneDead), scans(1, 3, 4), 'k healthy indexes: each scanned, nothing deleted')
  assert.equal(plan([atK], fiveOneDead, [], { verified: (_, d) => d !== dn(3) }), scans(3), 'only those not scanned yet')
  assert.equal(plan([atK], fiveOneDead, [], { verified: () => true }), [{ type: 'delete', containerId: cid(1), datanodeId: dn(2), force: true }], 'all scanned healthy: the corrupt one makes room')
  // Two replicas of index 1 (one on a decommissioning node): one of them scanned is enough, and
  // the rebuild then reads the scanned one.
  const twoOfOne = cluster({ 5: { health: 'DEAD' }, 6: { operationalState: 'DECOMMISSIONING' } }).slice(0, 6)
  const atKTwice = container([...written(twoOfOne, 1, 3, 4, 5), replica(2, 2, twoOfOne, 'UNHEALTHY'), replica(6, 1, twoOfOne)])
  const asked = plan([atKTwice], twoOfOne).filter((a) => a.type === 'scan').map((a) => a.type === 'scan' && a.datanodeId)
  assert.is(asked.length, 3, `one scan per healthy index: ${asked.join(', ')}`)
  assert.ok(asked.includes(dn(3)) && asked.includes(dn(4)) && (asked.includes(dn(1)) !== asked.includes(dn(6))))
  const scannedSix = (_: ContainerId, d: DatanodeId) => d === dn(6) || d === dn(3) || d === dn(4)
  assert.equal(plan([atKTwice], twoOfOne, [], { verified: scannedSix }).filter((a) => a.type === 'delete'), [{ type: 'delete', containerId: cid(1), datanodeId: dn(2), force: true }])
  const rebuilt = plan([container([...written(twoOfOne, 1, 3, 4, 5), replica(6, 1, twoOfOne)])], twoOfOne, [], { verified: scannedSix }).find((a) => a.type === 'reconstruct')
  assert.ok(rebuilt?.type === 'reconstruct' && rebuilt.sources.find((x) => x.replicaIndex === 1)?.datanodeId === dn(6), 'index 1 read from its scanned replica')
  // A corrupt replica whose index is healthy elsewhere is no room for the missing one: it goes as before.
  const other = container([...written(five, 1, 3, 4, 5), replica(2, 3, five, 'UNHEALTHY')])
  assert.equal(plan([other], five), [{ type: 'delete', containerId: cid(1), datanodeId: dn(2), force: true }])
})

test('planEcReplication(): an unclosed replica of a CLOSED container is deleted with force once its index is rebuilt', () => {
  const nodes = cluster()
  const c = container([...written(nodes, 1, 2, 3, 4), replica(5, 5, nodes, 'OPEN')])
  const first = plan([c], nodes)
  assert.equal(first.map((a) => a.type), ['reconstruct'], 'its index rebuilt first, elsewhere')
  if (first[0].type === 'reconstruct') assert.ok(first[0].targets.every((t) => t.datanodeId !== dn(5)))
  const rebuilt = container([...c.replicas, replica(9, 5, nodes)])
  assert.equal(plan([rebuilt], nodes), [{ type: 'delete', containerId: cid(1), datanodeId: dn(5), force: true }])
})

test('planEcReplication(): a CLOSING container: close again to its open replicas on HEALTHY nodes, and the record moves once they settled', () => {
  const nodes = cluster()
  const c = container([...written(nodes, 1, 2, 3), replica(4, 4, nodes, 'CLOSING'), replica(5, 5, nodes, 'OPEN')], 'CLOSING')
  assert.equal(plan([c], nodes), [
    { type: 'close', containerId: cid(1), datanodeId: dn(4), force: false },
    { type: 'close', containerId: cid(1), datanodeId: dn(5), force: false },
  ])
  assert.equal(plan([container(written(nodes, 1, 2, 3, 4, 5), 'CLOSING')], nodes), [{ type: 'setState', containerId: cid(1), state: 'CLOSED' }])
  assert.equal(plan([container([replica(1, 1, nodes, 'UNHEALTHY')], 'OPEN')], nodes), [{ type: 'setState', containerId: cid(1), state: 'CLOSING' }])
})

test('planEcReplication(): a healthy container gets nothing', () => {
  const nodes = cluster()
  assert.equal(plan([container(written(nodes, 1, 2, 3, 4, 5)), container(written(nodes, 1, 2, 3, 4, 5), 'CLOSED', 2)], nodes), [])
})

test.run()
