/**
 * Goal: classify() sorts containers as Ozone's ReplicationManager does: healthy, under-,
 * over- and mis-replicated, missing, unhealthy replicas, QUASI_CLOSED stuck or force-closable
 * (more than half of the pipeline's members hold one, the highest bcsid wins), and CLOSING
 * containers whose live replicas all settled move to CLOSED or QUASI_CLOSED.
 * Method: the pure function on hand-built containers, one case per rule.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { classify, type ContainerView, type ReplicaView } from '../../../../control/scm/replication/index.ts'
import type { ContainerId, ContainerState, DatanodeId } from '../../../../core/wire.ts'

const dn = (i: number) => `dn-0000000${i}` as DatanodeId
const opts = { liveHostCount: 1, maintenanceMinimum: 2 }

function replica(i: number, state: ContainerState, more: Partial<ReplicaView> = {}): ReplicaView {
  return { datanodeId: dn(i), state, bcsid: 10, usedBytes: 100, host: '127.0.0.1', health: 'HEALTHY', operationalState: 'IN_SERVICE', ...more }
}

function container(state: ContainerState, replicas: ReplicaView[], more: Partial<ContainerView> = {}): ContainerView {
  return { id: 7 as ContainerId, state, factor: 3, pipelineNodes: [dn(1), dn(2), dn(3)], replicas, ...more }
}

test('classify() calls three CLOSED replicas with one bcsid HEALTHY', () => {
  const c = classify(container('CLOSED', [replica(1, 'CLOSED'), replica(2, 'CLOSED'), replica(3, 'CLOSED')]), opts)
  assert.equal(c.states, ['HEALTHY'])
  assert.is(c.healthy.length, 3)
  assert.is(c.missingCount, 0)
  assert.is(c.surplusCount, 0)
})

test('classify() does not count a replica on a DEAD node: UNDER_REPLICATED by one', () => {
  const c = classify(container('CLOSED', [replica(1, 'CLOSED'), replica(2, 'CLOSED'), replica(3, 'CLOSED', { health: 'DEAD' })]), opts)
  assert.is(c.health, 'UNDER_REPLICATED')
  assert.is(c.missingCount, 1)
  assert.equal(c.sources.map((r) => r.datanodeId), [dn(1), dn(2)])
})

test('classify() still counts a replica on a STALE node (not re-replicated before DEAD) but takes no copy from it', () => {
  const c = classify(container('CLOSED', [replica(1, 'CLOSED'), replica(2, 'CLOSED'), replica(3, 'CLOSED', { health: 'STALE' })]), opts)
  assert.equal(c.states, ['HEALTHY'])
  assert.is(c.sources.length, 2)
})

test('classify() calls a container whose replicas are all on DEAD nodes, or that has none, MISSING', () => {
  assert.is(classify(container('CLOSED', [replica(1, 'CLOSED', { health: 'DEAD' })]), opts).health, 'MISSING')
  assert.is(classify(container('CLOSED', []), opts).health, 'MISSING')
  assert.is(classify(container('QUASI_CLOSED', []), opts).health, 'MISSING')
})

test('classify() calls four CLOSED replicas on HEALTHY nodes OVER_REPLICATED by one', () => {
  const c = classify(container('CLOSED', [1, 2, 3, 4].map((i) => replica(i, 'CLOSED'))), opts)
  assert.is(c.health, 'OVER_REPLICATED')
  assert.is(c.surplusCount, 1)
})

test('classify() puts UNHEALTHY replicas and CLOSED ones behind the highest bcsid aside', () => {
  const c = classify(container('CLOSED', [replica(1, 'CLOSED'), replica(2, 'CLOSED', { bcsid: 9 }), replica(3, 'UNHEALTHY'), replica(4, 'CLOSED')]), opts)
  assert.equal(c.unhealthy.map((r) => r.datanodeId).sort(), [dn(2), dn(3)])
  assert.is(c.health, 'UNDER_REPLICATED')
  assert.ok(c.states.includes('UNHEALTHY'))
  assert.is(c.missingCount, 1)
})

test('classify() calls a container with only UNHEALTHY replicas UNHEALTHY, with nothing to copy from', () => {
  const c = classify(container('CLOSED', [replica(1, 'UNHEALTHY'), replica(2, 'UNHEALTHY')]), opts)
  assert.is(c.health, 'UNHEALTHY')
  assert.is(c.sources.length, 0)
})

test('classify() force-closes the QUASI_CLOSED replicas with the highest bcsid once a majority of the pipeline holds one', () => {
  const c = classify(container('QUASI_CLOSED', [replica(1, 'QUASI_CLOSED', { bcsid: 12 }), replica(2, 'QUASI_CLOSED', { bcsid: 11 })]), opts)
  assert.equal(c.forceClose.map((r) => r.datanodeId), [dn(1)])
  assert.equal(c.unhealthy.map((r) => r.datanodeId), [dn(2)])
  assert.not.ok(c.states.includes('QUASI_CLOSED_STUCK'))
})

test('classify() leaves a QUASI_CLOSED container with one of three pipeline members QUASI_CLOSED_STUCK, and copies its latest replica', () => {
  const c = classify(container('QUASI_CLOSED', [replica(1, 'QUASI_CLOSED'), replica(2, 'QUASI_CLOSED', { health: 'DEAD' }), replica(3, 'OPEN', { health: 'DEAD' })]), opts)
  assert.ok(c.states.includes('QUASI_CLOSED_STUCK'))
  assert.is(c.forceClose.length, 0)
  assert.is(c.missingCount, 2)
  assert.equal(c.sources.map((r) => r.datanodeId), [dn(1)])
})

test('classify() does not count a copy outside the pipeline toward the majority of QUASI_CLOSED origins', () => {
  const c = classify(container('QUASI_CLOSED', [replica(1, 'QUASI_CLOSED'), replica(5, 'QUASI_CLOSED'), replica(6, 'QUASI_CLOSED')]), opts)
  assert.ok(c.states.includes('QUASI_CLOSED_STUCK'))
  assert.is(c.forceClose.length, 0)
})

test('classify() moves a QUASI_CLOSED container with a CLOSED replica to CLOSED, and force-closes the QUASI_CLOSED replica as far', () => {
  const c = classify(container('QUASI_CLOSED', [replica(1, 'CLOSED'), replica(2, 'QUASI_CLOSED'), replica(3, 'QUASI_CLOSED', { bcsid: 3 })]), opts)
  assert.is(c.moveTo, 'CLOSED')
  assert.equal(c.forceClose.map((r) => r.datanodeId), [dn(2)])
  assert.equal(c.unhealthy.map((r) => r.datanodeId), [dn(3)])
})

test('classify() moves a CLOSING container whose live replicas are all QUASI_CLOSED (its pipeline lost a member) to QUASI_CLOSED', () => {
  const c = classify(container('CLOSING', [replica(1, 'QUASI_CLOSED'), replica(2, 'QUASI_CLOSED'), replica(3, 'OPEN', { health: 'DEAD' })]), opts)
  assert.is(c.moveTo, 'QUASI_CLOSED')
})

test('classify() moves a CLOSING container with a CLOSED replica and no open live one to CLOSED', () => {
  assert.is(classify(container('CLOSING', [replica(1, 'CLOSED'), replica(2, 'QUASI_CLOSED'), replica(3, 'OPEN', { health: 'DEAD' })]), opts).moveTo, 'CLOSED')
})

// Catches: a closing container whose replicas were all found corrupt staying CLOSING for good, reported HEALTHY.
test('classify() moves a CLOSING container whose live replicas are all UNHEALTHY to QUASI_CLOSED (Ozone), where it is UNHEALTHY', () => {
  const closing = classify(container('CLOSING', [replica(1, 'UNHEALTHY'), replica(2, 'UNHEALTHY'), replica(3, 'OPEN', { health: 'DEAD' })]), opts)
  assert.is(closing.moveTo, 'QUASI_CLOSED')
  assert.is(classify(container('CLOSING', [replica(1, 'UNHEALTHY'), replica(2, 'OPEN')]), opts).moveTo, undefined, 'one may still close')
  assert.is(classify(container('CLOSING', [replica(1, 'UNHEALTHY'), replica(2, 'CLOSED')]), opts).moveTo, 'CLOSED')
  const quasi = classify(container('QUASI_CLOSED', [replica(1, 'UNHEALTHY'), replica(2, 'UNHEALTHY'), replica(3, 'UNHEALTHY')]), opts)
  assert.equal(quasi.states, ['UNHEALTHY'])
  assert.is(quasi.unhealthy.length, 3)
})

test('classify() waits on a CLOSING container while a replica on a live (even STALE) node is still open', () => {
  const c = classify(container('CLOSING', [replica(1, 'CLOSED'), replica(2, 'CLOSING', { health: 'STALE' })]), opts)
  assert.is(c.moveTo, undefined)
  assert.equal(c.open.map((r) => r.datanodeId), [dn(2)])
})

test('classify() does not call an OPEN or CLOSING container without replicas MISSING (never written)', () => {
  assert.equal(classify(container('CLOSING', []), opts).states, ['HEALTHY'])
  assert.is(classify(container('CLOSING', []), opts).moveTo, undefined)
  assert.equal(classify(container('OPEN', []), opts).states, ['HEALTHY'])
})

test('classify() calls a written OPEN or CLOSING container whose replicas are all on DEAD nodes MISSING; one live or in maintenance keeps it', () => {
  for (const state of ['OPEN', 'CLOSING'] as const) {
    assert.equal(classify(container(state, [replica(1, 'OPEN', { health: 'DEAD' }), replica(2, 'CLOSED', { health: 'DEAD' })]), opts).states, ['MISSING'], state)
    assert.equal(classify(container(state, [replica(1, 'OPEN', { health: 'DEAD' }), replica(2, 'OPEN', { health: 'STALE' })]), opts).states, ['HEALTHY'], state)
    assert.equal(classify(container(state, [replica(1, 'OPEN', { health: 'DEAD', operationalState: 'IN_MAINTENANCE' })]), opts).states, ['HEALTHY'], state)
  }
})

test('classify() calls an OPEN container with an UNHEALTHY replica OPEN_UNHEALTHY and plans no copy of it', () => {
  const c = classify(container('OPEN', [replica(1, 'OPEN'), replica(2, 'UNHEALTHY')]), opts)
  assert.is(c.health, 'OPEN_UNHEALTHY')
  assert.is(c.missingCount, 0)
})

test('classify() calls replicas on one host MIS_REPLICATED when other hosts have live datanodes', () => {
  const rs = [replica(1, 'CLOSED', { host: 'a' }), replica(2, 'CLOSED', { host: 'a' }), replica(3, 'CLOSED', { host: 'b' })]
  assert.is(classify(container('CLOSED', rs), { ...opts, liveHostCount: 3 }).health, 'MIS_REPLICATED')
  assert.equal(classify(container('CLOSED', rs), { ...opts, liveHostCount: 2 }).states, ['HEALTHY'])
})

test('classify() does not count a DECOMMISSIONING node\'s replica, but copies from it', () => {
  const c = classify(container('CLOSED', [replica(1, 'CLOSED'), replica(2, 'CLOSED'), replica(3, 'CLOSED', { operationalState: 'DECOMMISSIONING' })]), opts)
  assert.is(c.missingCount, 1)
  assert.is(c.sources.length, 3)
})

test('classify() counts replicas in maintenance only while maintenance.replica.minimum live ones remain', () => {
  const m = { operationalState: 'IN_MAINTENANCE' as const }
  assert.is(classify(container('CLOSED', [replica(1, 'CLOSED'), replica(2, 'CLOSED'), replica(3, 'CLOSED', m)]), opts).missingCount, 0)
  assert.is(classify(container('CLOSED', [replica(1, 'CLOSED'), replica(2, 'CLOSED', m), replica(3, 'CLOSED', m)]), opts).missingCount, 2)
})

test('classify() keeps counting the replica of a DEAD node IN_MAINTENANCE while the minimum holds, not one ENTERING or leaving', () => {
  const down = (s: 'IN_MAINTENANCE' | 'ENTERING_MAINTENANCE' | 'DECOMMISSIONED') => replica(3, 'CLOSED', { health: 'DEAD', operationalState: s })
  const c = classify(container('CLOSED', [replica(1, 'CLOSED'), replica(2, 'CLOSED'), down('IN_MAINTENANCE')]), opts)
  assert.equal(c.states, ['HEALTHY'])
  assert.is(c.missingCount, 0)
  assert.is(c.sources.length, 2, 'a DEAD node is no source')
  assert.is(classify(container('CLOSED', [replica(1, 'CLOSED'), replica(2, 'CLOSED'), down('IN_MAINTENANCE')]), { ...opts, maintenanceMinimum: 3 }).missingCount, 1)
  assert.is(classify(container('CLOSED', [replica(1, 'CLOSED'), replica(2, 'CLOSED'), down('ENTERING_MAINTENANCE')]), opts).missingCount, 1)
  assert.is(classify(container('CLOSED', [replica(1, 'CLOSED'), replica(2, 'CLOSED'), down('DECOMMISSIONED')]), opts).missingCount, 1)
})

test('classify() of a RATIS/ONE container wants one replica', () => {
  const c = classify(container('CLOSED', [replica(1, 'CLOSED')], { factor: 1, pipelineNodes: [dn(1)] }), opts)
  assert.equal(c.states, ['HEALTHY'])
})

test.run()
