/**
 * Goal: the datanode admin rules (control/scm/node-admin/rules.ts) say a node may go offline
 * exactly when Ozone's DatanodeAdminMonitor would: decommission needs the factor's worth of
 * good replicas elsewhere (maintenance replicas counting only while the minimum of
 * IN_SERVICE ones holds), maintenance needs the minimum on IN_SERVICE nodes elsewhere, open
 * containers and open pipelines hold a node back, a maintenance ends at its time, a node
 * that dies while leaving goes back IN_SERVICE and one in maintenance stays.
 * Method: the pure functions on hand-built views.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { ContainerId, ContainerState, DatanodeId, NodeOperationalState } from '../../../../core/wire.ts'
import { adminStep, offlineCheck, type AdminContainer, type AdminNode, type AdminReplica } from '../../../../control/scm/node-admin/index.ts'

const dn = (i: number) => `0000000${i}-0000-0000-0000-000000000000` as DatanodeId
const ME = dn(1)

function replica(i: number, more: Partial<AdminReplica> = {}): AdminReplica {
  return { datanodeId: dn(i), state: 'CLOSED', health: 'HEALTHY', operationalState: 'IN_SERVICE', ...more }
}

function container(replicas: AdminReplica[], state: ContainerState = 'CLOSED', factor = 3): AdminContainer {
  return { id: 7 as ContainerId, state, factor, replicas }
}

test('offlineCheck(DECOMMISSION): the node\'s own replica does not count, three good ones elsewhere do', () => {
  assert.is(offlineCheck(container([replica(1), replica(2), replica(3)]), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
  assert.is(offlineCheck(container([replica(1), replica(2), replica(3), replica(4)]), ME, 'DECOMMISSION', 2), 'SUFFICIENT')
  // RATIS/ONE: one elsewhere is enough.
  assert.is(offlineCheck(container([replica(1), replica(2)], 'CLOSED', 1), ME, 'DECOMMISSION', 2), 'SUFFICIENT')
})

test('offlineCheck: replicas on STALE or DEAD nodes, UNHEALTHY, not closed or behind in bcsid do not count', () => {
  const others = (r: AdminReplica) => container([replica(1), replica(2), replica(3), r])
  assert.is(offlineCheck(others(replica(4, { health: 'STALE' })), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
  assert.is(offlineCheck(others(replica(4, { health: 'DEAD' })), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
  assert.is(offlineCheck(others(replica(4, { state: 'UNHEALTHY' })), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
  assert.is(offlineCheck(others(replica(4, { state: 'QUASI_CLOSED' })), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
  const behind = container([replica(1, { bcsid: 9 }), replica(2, { bcsid: 9 }), replica(3, { bcsid: 9 }), replica(4, { bcsid: 8 })])
  assert.is(offlineCheck(behind, ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
  const level = container([replica(1, { bcsid: 9 }), replica(2, { bcsid: 9 }), replica(3, { bcsid: 9 }), replica(4, { bcsid: 9 })])
  assert.is(offlineCheck(level, ME, 'DECOMMISSION', 2), 'SUFFICIENT')
})

test('offlineCheck: a QUASI_CLOSED container counts its QUASI_CLOSED replicas until one is CLOSED', () => {
  const q = (s: ContainerState) => replica(0, { state: s })
  const quasi = [replica(1, { state: 'QUASI_CLOSED' }), replica(2, { state: 'QUASI_CLOSED' }), replica(3, { state: 'QUASI_CLOSED' }), replica(4, { state: 'QUASI_CLOSED' })]
  assert.is(offlineCheck(container(quasi, 'QUASI_CLOSED'), ME, 'DECOMMISSION', 2), 'SUFFICIENT')
  assert.is(offlineCheck(container([...quasi, { ...q('CLOSED'), datanodeId: dn(5) }], 'QUASI_CLOSED'), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
  // A CLOSED one on a DEAD node does not decide it (the replication manager leaves it aside too).
  assert.is(offlineCheck(container([...quasi, { ...q('CLOSED'), datanodeId: dn(5), health: 'DEAD' }], 'QUASI_CLOSED'), ME, 'DECOMMISSION', 2), 'SUFFICIENT')
})

// Catches: a decommission waiting for good on a container whose replicas are all corrupt
// (none ever counts, though the replication manager copies them off as they are).
test('offlineCheck: with every replica UNHEALTHY, the corrupt ones elsewhere count', () => {
  const corrupt = (i: number, more: Partial<AdminReplica> = {}) => replica(i, { state: 'UNHEALTHY', ...more })
  assert.is(offlineCheck(container([corrupt(1), corrupt(2), corrupt(3)]), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
  assert.is(offlineCheck(container([corrupt(1), corrupt(2), corrupt(3), corrupt(4)]), ME, 'DECOMMISSION', 2), 'SUFFICIENT')
  assert.is(offlineCheck(container([corrupt(1), corrupt(2, { bcsid: 9 }), corrupt(3, { bcsid: 9 }), corrupt(4, { bcsid: 8 })]), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED', 'not one behind')
  // One healthy replica left: the corrupt ones do not count; one on a DEAD node is not left (found by a probe).
  assert.is(offlineCheck(container([replica(1), corrupt(2), corrupt(3), replica(4)]), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
  assert.is(offlineCheck(container([corrupt(1), corrupt(2), corrupt(3), corrupt(4), replica(5, { health: 'DEAD' })]), ME, 'DECOMMISSION', 2), 'SUFFICIENT')
})

test('offlineCheck: an OPEN or CLOSING container is UNCLOSED whatever its replicas', () => {
  const many = [replica(1), replica(2), replica(3), replica(4), replica(5)]
  assert.is(offlineCheck(container(many, 'OPEN'), ME, 'DECOMMISSION', 2), 'UNCLOSED')
  assert.is(offlineCheck(container(many, 'CLOSING'), ME, 'MAINTENANCE', 2), 'UNCLOSED')
})

test('offlineCheck(DECOMMISSION): replicas on nodes in maintenance count while the minimum of IN_SERVICE ones holds', () => {
  const m = (i: number, s: NodeOperationalState) => replica(i, { operationalState: s })
  assert.is(offlineCheck(container([replica(1), replica(2), replica(3), m(4, 'IN_MAINTENANCE')]), ME, 'DECOMMISSION', 2), 'SUFFICIENT')
  assert.is(offlineCheck(container([replica(1), replica(2), m(3, 'IN_MAINTENANCE'), m(4, 'ENTERING_MAINTENANCE')]), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
  assert.is(offlineCheck(container([replica(1), replica(2), m(3, 'IN_MAINTENANCE'), m(4, 'ENTERING_MAINTENANCE')]), ME, 'DECOMMISSION', 1), 'SUFFICIENT')
  // Replicas on other decommissioning or decommissioned nodes never count.
  assert.is(offlineCheck(container([replica(1), replica(2), replica(3), m(4, 'DECOMMISSIONING')]), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
  assert.is(offlineCheck(container([replica(1), replica(2), replica(3), m(4, 'DECOMMISSIONED')]), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
})

test('offlineCheck(MAINTENANCE): maintenance.replica.minimum good replicas on IN_SERVICE nodes elsewhere', () => {
  assert.is(offlineCheck(container([replica(1), replica(2), replica(3)]), ME, 'MAINTENANCE', 2), 'SUFFICIENT')
  assert.is(offlineCheck(container([replica(1), replica(2), replica(3, { health: 'DEAD' })]), ME, 'MAINTENANCE', 2), 'UNDER_REPLICATED')
  assert.is(offlineCheck(container([replica(1), replica(2), replica(3, { operationalState: 'IN_MAINTENANCE' })]), ME, 'MAINTENANCE', 2), 'UNDER_REPLICATED')
  assert.is(offlineCheck(container([replica(1), replica(2), replica(3, { health: 'DEAD' })]), ME, 'MAINTENANCE', 1), 'SUFFICIENT')
  assert.is(offlineCheck(container([replica(1), replica(2), replica(3)]), ME, 'MAINTENANCE', 3), 'UNDER_REPLICATED')
  // The minimum is at most the factor: RATIS/ONE needs one elsewhere.
  assert.is(offlineCheck(container([replica(1), replica(2)], 'CLOSED', 1), ME, 'MAINTENANCE', 2), 'SUFFICIENT')
})

function node(more: Partial<AdminNode>): AdminNode {
  return { id: ME, state: 'DECOMMISSIONING', health: 'HEALTHY', pipelines: 0, containers: [], ...more }
}

test('adminStep: DECOMMISSIONING -> DECOMMISSIONED once pipelines are closed and every container is replicated elsewhere', () => {
  const good = container([replica(1), replica(2), replica(3), replica(4)])
  const short = { ...container([replica(1), replica(2), replica(3)]), id: 8 as ContainerId }
  assert.is(adminStep(node({ containers: [good] }), 0, 2).to, 'DECOMMISSIONED')
  assert.is(adminStep(node({ containers: [] }), 0, 2).to, 'DECOMMISSIONED', 'a node holding nothing goes at once')
  const waiting = adminStep(node({ containers: [good, short] }), 0, 2)
  assert.is(waiting.to, undefined)
  assert.equal([waiting.sufficient, waiting.underReplicated, waiting.unclosed], [1, 1, 0])
  assert.match(waiting.why, /1 under-replicated/)
  assert.match(waiting.why, 'RATIS/THREE needs a fourth', 'what a copy needs, in case the cluster is too small')
  const open = adminStep(node({ containers: [good], pipelines: 1 }), 0, 2)
  assert.is(open.to, undefined)
  assert.match(open.why, /1 pipeline/)
  assert.is(adminStep(node({ containers: [container([replica(1), replica(2), replica(3), replica(4)], 'CLOSING')] }), 0, 2).unclosed, 1)
})

test('adminStep: ENTERING_MAINTENANCE -> IN_MAINTENANCE with the minimum elsewhere; both end at endMs', () => {
  const two = container([replica(1), replica(2), replica(3)])
  assert.is(adminStep(node({ state: 'ENTERING_MAINTENANCE', containers: [two] }), 0, 2).to, 'IN_MAINTENANCE')
  const waiting = adminStep(node({ state: 'ENTERING_MAINTENANCE', containers: [two] }), 0, 3)
  assert.is(waiting.to, undefined)
  assert.match(waiting.why, 'each keeps 3 replicas (maintenance.replica.minimum)', 'the maintenance rule, not the decommission one')
  assert.not.match(waiting.why, 'needs a fourth')
  assert.is(adminStep(node({ state: 'IN_MAINTENANCE', endMs: 1000 }), 999, 2).to, undefined)
  assert.is(adminStep(node({ state: 'IN_MAINTENANCE', endMs: 1000 }), 1000, 2).to, 'IN_SERVICE')
  assert.is(adminStep(node({ state: 'ENTERING_MAINTENANCE', endMs: 1000, pipelines: 2 }), 1000, 2).to, 'IN_SERVICE')
  assert.is(adminStep(node({ state: 'IN_MAINTENANCE' }), Number.MAX_SAFE_INTEGER, 2).to, undefined, 'no end: until recommissioned')
})

test('adminStep: DEAD while leaving goes back IN_SERVICE; DEAD in maintenance or decommissioned stays; unheard waits', () => {
  assert.is(adminStep(node({ health: 'DEAD' }), 0, 2).to, 'IN_SERVICE')
  assert.is(adminStep(node({ state: 'ENTERING_MAINTENANCE', health: 'DEAD' }), 0, 2).to, 'IN_SERVICE')
  assert.is(adminStep(node({ state: 'IN_MAINTENANCE', health: 'DEAD' }), 0, 2).to, undefined)
  assert.is(adminStep(node({ state: 'DECOMMISSIONED', health: 'DEAD' }), 0, 2).to, undefined)
  const unheard = adminStep(node({ health: undefined }), 0, 2)
  assert.is(unheard.to, undefined, 'no container report since this SCM started: it may hold anything')
  assert.match(unheard.why, /container report/)
})

/** An rs-3-2 container: node i holds index i for each [node, index] given (node 1 is the one leaving). */
function ecContainer(held: [number, number, Partial<AdminReplica>?][]): AdminContainer {
  return { id: 8 as ContainerId, state: 'CLOSED', factor: 5, ec: { data: 3, parity: 2 }, replicas: held.map(([n, index, more]) => replica(n, { replicaIndex: index, ...more })) }
}

test('offlineCheck(DECOMMISSION) of an EC container: every index on another IN_SERVICE node, the leaving node\'s index copied', () => {
  const written: [number, number][] = [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]
  assert.is(offlineCheck(ecContainer(written), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED', 'index 1 is only on the leaving node')
  assert.is(offlineCheck(ecContainer([...written, [6, 1]]), ME, 'DECOMMISSION', 2), 'SUFFICIENT')
  // Five replicas elsewhere are not enough when two hold one index (a RATIS count would pass).
  assert.is(offlineCheck(ecContainer([...written, [6, 2]]), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
  assert.is(offlineCheck(ecContainer([...written, [6, 1, { health: 'STALE' }]]), ME, 'DECOMMISSION', 2), 'UNDER_REPLICATED')
})

test('offlineCheck(MAINTENANCE) of an EC container: k + 1 indexes in service elsewhere', () => {
  assert.is(offlineCheck(ecContainer([[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]), ME, 'MAINTENANCE', 2), 'SUFFICIENT')
  assert.is(offlineCheck(ecContainer([[1, 1], [2, 2], [3, 3], [4, 4], [5, 5, { operationalState: 'IN_MAINTENANCE' }]]), ME, 'MAINTENANCE', 2), 'UNDER_REPLICATED')
})

test.run()
