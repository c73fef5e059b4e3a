/**
 * Goal: the replication manager's back-off for copies that fail (copyFailed): a replicate
 * command a datanode says failed from every source stays in flight for
 * REPLICATION_RETRY_BASE_MS, doubled for each failure in a row of the same container and
 * target, never longer than scm.replication.commandTimeoutMs, and is then planned again; a copy
 * seen done clears the count; a report for a command not in flight, or one already backing
 * off, changes nothing; /prom counts each failure. With one healthy replica and no free
 * datanode, a corrupt replica makes room only after a whole scan of the healthy one found it
 * healthy (one scan at a time, its answer good for REPLICATION_SCAN_VALID_MS and the bcsid it
 * was taken at); an UNHEALTHY answer or a failed scan deletes nothing.
 * Method: the real ReplicationManager and planner over a host built in the test (the SCM's
 * view of four datanodes, one DEAD, and one CLOSED RATIS/THREE container), rounds driven by
 * tick(nowMs) with a clock the test sets.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { loadConfig } from '../../../../core/config.ts'
import { REPLICATION_RETRY_BASE_MS, REPLICATION_SCAN_VALID_MS, REPLICATION_SCANNED_HEARD_HEARTBEATS } from '../../../../core/limits.ts'
import { ServiceMetrics } from '../../../../core/metrics.ts'
import type { ContainerId, DatanodeId } from '../../../../core/wire.ts'
import { ReplicationManager, type NodeView, type ReplicationCommand, type ReportedReplica } from '../../../../control/scm/replication/index.ts'

const dn = (i: number) => `dn-0000000${i}` as DatanodeId
const ID = 7 as ContainerId
const TIMEOUT_MS = 20_000
const HEARTBEAT_MS = 100

function setup() {
  const queued: { dn: DatanodeId; command: ReplicationCommand }[] = []
  const replicas = new Map<DatanodeId, ReportedReplica>([1, 2, 3].map((i) => [dn(i), { state: 'CLOSED', bcsid: 5, usedBytes: 100, blockCount: 1, reportedAtMs: 0, replicaIndex: 0 }]))
  const nodes: NodeView[] = [1, 2, 3, 4].map((i) => ({ id: dn(i), host: `h${i}`, health: i === 3 ? 'DEAD' : 'HEALTHY', operationalState: 'IN_SERVICE', availableBytes: 1000 }))
  const config = loadConfig({ overrides: { 'scm.replication.intervalMs': 100, 'scm.replication.commandTimeoutMs': TIMEOUT_MS, 'datanode.heartbeatIntervalMs': HEARTBEAT_MS }, env: {} })
  const metrics = new ServiceMetrics('scm')
  const manager = new ReplicationManager({
    isLeader: () => true, term: () => 1, inSafeMode: () => false,
    containers: () => [{ id: ID, state: 'CLOSED', replication: 'RATIS/THREE', pipelineNodes: [dn(1), dn(2), dn(3)] }],
    replicas: () => replicas, nodes: () => nodes, details: (id) => ({ id, address: `127.0.0.1:${9000 + Number(id.slice(-1))}` }),
    markedUnhealthy: () => false, queue: (d, command) => { queued.push({ dn: d, command }) }, setContainerState: async () => undefined,
    scanReplica: async () => { throw new Error('no scan here') },
  }, config, metrics)
  const copies = () => queued.filter((q) => q.command.type === 'replicateContainer' && q.dn === dn(4)).length
  const failures = async () => Number(/o3_scm_replication_commands_failed_total\{[^}]*kind="replicate"[^}]*\} (\d+)/.exec(await metrics.text())?.[1] ?? 0)
  return { manager, replicas, copies, failures }
}

test('a copy that failed from every source is planned again after a back-off that doubles, up to the command timeout', async () => {
  const { manager, copies, failures } = setup()
  // The first round after leading waits for reports (the grace), the next plans the copy to dn4.
  await manager.tick(0)
  await manager.tick(1000)
  assert.is(copies(), 1)
  let now = 1000
  for (const [n, waitMs] of [REPLICATION_RETRY_BASE_MS, 2 * REPLICATION_RETRY_BASE_MS, 4 * REPLICATION_RETRY_BASE_MS].entries()) {
    manager.copyFailed(ID, dn(4), now)
    manager.copyFailed(ID, dn(4), now + 1)
    assert.is(await failures(), n + 1, 'a repeated report of one failure counts once')
    await manager.tick(now + waitMs - 1)
    assert.is(copies(), n + 1, `still backing off ${waitMs - 1} ms after failure ${n + 1}`)
    await manager.tick(now + waitMs)
    assert.is(copies(), n + 2, `planned again ${waitMs} ms after failure ${n + 1}`)
    now += waitMs
  }
  // Many failures later the wait stops at the command timeout.
  for (let n = 0; n < 20; n++) {
    manager.copyFailed(ID, dn(4), now)
    await manager.tick(now + TIMEOUT_MS)
    now += TIMEOUT_MS
  }
  const before = copies()
  manager.copyFailed(ID, dn(4), now)
  await manager.tick(now + TIMEOUT_MS - 1)
  assert.is(copies(), before)
  await manager.tick(now + TIMEOUT_MS)
  assert.is(copies(), before + 1, 'never longer than scm.replication.commandTimeoutMs')
})

test('a copy seen done clears the count of failures; a report for no copy in flight changes nothing', async () => {
  const { manager, replicas, copies, failures } = setup()
  await manager.tick(0)
  await manager.tick(1000)
  manager.copyFailed(ID, dn(4), 1000)
  await manager.tick(1000 + REPLICATION_RETRY_BASE_MS)
  assert.is(copies(), 2)
  // Done: dn4 reports the replica.
  replicas.set(dn(4), { state: 'CLOSED', bcsid: 5, usedBytes: 100, blockCount: 1, reportedAtMs: 5000, replicaIndex: 0 })
  await manager.tick(5000)
  assert.equal(manager.status().inflight, [])
  manager.copyFailed(ID, dn(4), 5000)
  assert.is(await failures(), 1, 'no copy in flight: not counted')
  // Lost again: the next failure waits the base back-off, not twice it.
  replicas.delete(dn(4))
  await manager.tick(6000)
  assert.is(copies(), 3)
  manager.copyFailed(ID, dn(4), 6000)
  await manager.tick(6000 + REPLICATION_RETRY_BASE_MS)
  assert.is(copies(), 4)
})

/** Three datanodes, each with a replica of one CLOSED RATIS/THREE container: dn1's CLOSED, dn2's and dn3's UNHEALTHY; scans answered by the test. */
function lone() {
  const queued: { dn: DatanodeId; command: ReplicationCommand }[] = []
  const replica = (state: 'CLOSED' | 'UNHEALTHY', bcsid = 5): ReportedReplica => ({ state, bcsid, usedBytes: 100, blockCount: 1, reportedAtMs: 0, replicaIndex: 0 })
  const replicas = new Map<DatanodeId, ReportedReplica>([[dn(1), replica('CLOSED')], [dn(2), replica('UNHEALTHY', 4)], [dn(3), replica('UNHEALTHY')]])
  const nodes: NodeView[] = [1, 2, 3].map((i) => ({ id: dn(i), host: `h${i}`, health: 'HEALTHY', operationalState: 'IN_SERVICE', availableBytes: 1000 }))
  const config = loadConfig({ overrides: { 'scm.replication.intervalMs': 100, 'scm.replication.commandTimeoutMs': TIMEOUT_MS, 'datanode.heartbeatIntervalMs': HEARTBEAT_MS }, env: {} })
  const scans: { dn: DatanodeId; answer: (r: { result: string } | Error) => void }[] = []
  const manager = new ReplicationManager({
    isLeader: () => true, term: () => 1, inSafeMode: () => false,
    containers: () => [{ id: ID, state: 'CLOSED', replication: 'RATIS/THREE', pipelineNodes: [dn(1), dn(2), dn(3)] }],
    replicas: () => replicas, nodes: () => nodes, details: (id) => ({ id, address: `127.0.0.1:${9000 + Number(id.slice(-1))}` }),
    markedUnhealthy: () => false, queue: (d, command) => { queued.push({ dn: d, command }) }, setContainerState: async () => undefined,
    scanReplica: (id, d) => {
      assert.is(id, ID)
      return new Promise((resolve, reject) => scans.push({ dn: d, answer: (r) => (r instanceof Error ? reject(r) : resolve(r)) }))
    },
  }, config, new ServiceMetrics('scm'))
  const deletes = () => queued.filter((q) => q.command.type === 'deleteContainer').map((q) => q.dn)
  const answer = async (r: { result: string } | Error) => { scans.shift()!.answer(r); await new Promise((resolve) => setImmediate(resolve)) }
  /** A round at `nowMs`, dn1 (the healthy replica) heard from at `heardAtMs` (its heartbeat's report; by default just now). */
  const tick = (nowMs: number, heardAtMs = nowMs) => {
    replicas.set(dn(1), { ...replicas.get(dn(1))!, reportedAtMs: heardAtMs })
    return manager.tick(nowMs)
  }
  return { manager: { tick }, replicas, scans, deletes, answer, replica }
}

test('one healthy replica and no free datanode: a corrupt one makes room only once a whole scan found the healthy one healthy', async () => {
  const { manager, replicas, scans, deletes, answer, replica } = lone()
  await manager.tick(0)
  await manager.tick(1000)
  assert.equal(scans.map((s) => s.dn), [dn(1)], 'the lone healthy replica is scanned')
  assert.equal(deletes(), [], 'nothing deleted before its answer')
  await manager.tick(2000)
  assert.is(scans.length, 1, 'one scan of it at a time')
  await answer({ result: 'HEALTHY' })
  await manager.tick(3000, 3000 - REPLICATION_SCANNED_HEARD_HEARTBEATS * HEARTBEAT_MS - 1)
  assert.equal(deletes(), [], 'not while the scanned replica\'s datanode has not been heard from for REPLICATION_SCANNED_HEARD_HEARTBEATS heartbeats (it may have just died)')
  assert.is(scans.length, 0, 'nor scanned again meanwhile')
  await manager.tick(3000)
  assert.equal(deletes(), [dn(2)], 'then the oldest corrupt replica goes')
  // The scan stands while the replica is unchanged, for REPLICATION_SCAN_VALID_MS.
  replicas.delete(dn(2))
  await manager.tick(4000)
  replicas.set(dn(2), replica('UNHEALTHY', 4))
  await manager.tick(5000 + TIMEOUT_MS)
  assert.equal(deletes(), [dn(2), dn(2)], 'again, within its time, with no new scan')
  assert.is(scans.length, 0)
  await manager.tick(3000 + REPLICATION_SCAN_VALID_MS)
  assert.equal(scans.map((s) => s.dn), [dn(1)], 'scanned again once its answer is old')
  await answer({ result: 'HEALTHY' })
  replicas.set(dn(1), replica('CLOSED', 6))
  await manager.tick(4000 + REPLICATION_SCAN_VALID_MS)
  assert.is(deletes().length, 2, 'a replica changed since its scan (another bcsid) is not taken as scanned')
})

test('a scan that finds the lone replica UNHEALTHY, or fails, deletes nothing', async () => {
  const { manager, scans, deletes, answer } = lone()
  await manager.tick(0)
  await manager.tick(1000)
  await answer({ result: 'UNHEALTHY' })
  await manager.tick(2000)
  assert.equal(deletes(), [])
  assert.equal(scans.map((s) => s.dn), [dn(1)], 'asked again (the datanode\'s report would have marked it by now)')
  await answer(new Error('connection refused'))
  await manager.tick(3000)
  assert.equal(deletes(), [])
})

// Catches: EC scans that never all stand at once (each answer expiring before the last came),
// or a delete before every index's answer.
test('rs-3-2 at exactly k healthy indexes, no datanode free: each index is scanned, and the corrupt replica makes room only once all are found healthy', async () => {
  const queued: { dn: DatanodeId; command: ReplicationCommand }[] = []
  const replica = (index: number, state: 'CLOSED' | 'UNHEALTHY' = 'CLOSED'): ReportedReplica => ({ state, bcsid: 5, usedBytes: 100, blockCount: 1, reportedAtMs: 0, replicaIndex: index })
  const replicas = new Map<DatanodeId, ReportedReplica>([[dn(1), replica(1)], [dn(2), replica(2, 'UNHEALTHY')], [dn(3), replica(3)], [dn(4), replica(4)], [dn(5), replica(5)]])
  const nodes: NodeView[] = [1, 2, 3, 4, 5].map((i) => ({ id: dn(i), host: `h${i}`, health: i === 5 ? 'DEAD' : 'HEALTHY', operationalState: 'IN_SERVICE', availableBytes: 1000 }))
  const config = loadConfig({ overrides: { 'scm.replication.intervalMs': 100, 'scm.replication.commandTimeoutMs': TIMEOUT_MS, 'datanode.heartbeatIntervalMs': HEARTBEAT_MS }, env: {} })
  const scans = new Map<DatanodeId, (r: { result: string }) => void>()
  const manager = new ReplicationManager({
    isLeader: () => true, term: () => 1, inSafeMode: () => false,
    containers: () => [{ id: ID, state: 'CLOSED', replication: 'EC/rs-3-2-1024k', pipelineNodes: [1, 2, 3, 4, 5].map(dn) }],
    replicas: () => replicas, nodes: () => nodes, details: (id) => ({ id, address: `127.0.0.1:${9000 + Number(id.slice(-1))}` }),
    markedUnhealthy: () => false, queue: (d, command) => { queued.push({ dn: d, command }) }, setContainerState: async () => undefined,
    scanReplica: (_, d) => new Promise((resolve) => scans.set(d, resolve)),
  }, config, new ServiceMetrics('scm'))
  const deletes = () => queued.filter((q) => q.command.type === 'deleteContainer').map((q) => q.dn)
  const answer = async (d: DatanodeId) => { scans.get(d)!({ result: 'HEALTHY' }); scans.delete(d); await new Promise((resolve) => setImmediate(resolve)) }
  // Every round right after the healthy replicas' heartbeats.
  const tick = (nowMs: number) => {
    for (const i of [1, 3, 4]) replicas.set(dn(i), { ...replicas.get(dn(i))!, reportedAtMs: nowMs })
    return manager.tick(nowMs)
  }
  await manager.tick(0)
  await tick(1000)
  assert.equal([...scans.keys()].sort(), [dn(1), dn(3), dn(4)], 'each healthy index scanned')
  assert.is(manager.report().inflight.scan, 3)
  await answer(dn(1))
  await answer(dn(3))
  // The last answer comes hours later (big replicas, throttled scans): the first still stand.
  await tick(2000)
  assert.equal(deletes(), [], 'not before every index is found healthy')
  await answer(dn(4))
  await tick(3 * 3600_000)
  assert.equal(deletes(), [dn(2)], 'then the corrupt replica of the lost index goes')
  // Gone: the index is rebuilt there, from the scanned replicas.
  replicas.delete(dn(2))
  await tick(3 * 3600_000 + 1000)
  const rebuild = queued.find((q) => q.command.type === 'reconstructECContainer')
  assert.ok(rebuild !== undefined && rebuild.dn === dn(2), 'index 2 rebuilt on the freed datanode')
})

test.run()
