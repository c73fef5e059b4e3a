/** Goal: each SCM request's apply (issue 11) does what the SCM group must agree on, from its
 * payload and the tables alone: id batches never overlap, containers only move forward,
 * closing a pipeline closes its open containers, a pipeline goes ALLOCATED -> OPEN -> CLOSED
 * with its suggested leader first, deletions are numbered in the log and end
 * when every holder acknowledged (a later copy's holder too), a cluster id is drawn once. Method: prepare then apply on
 * a real LMDB in a temporary directory, inside a transaction as the state machine runs it. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open, type RootDatabase } from 'lmdb'
import type { ContainerId, DatanodeId, LocalId, Pipeline, PipelineId } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../../control/ha/replicated-service.ts'
import { scmRequests } from '../../../control/scm/requests/index.ts'
import { openScmTables, type ScmTables } from '../../../control/scm/tables.ts'
import { errorCode } from '../../helpers.ts'

const root = mkdtempSync(join(tmpdir(), 'o3-scm-requests-'))
const db: RootDatabase = open({ path: join(root, 'state.mdb') })
const tables: ScmTables = openScmTables(db)
const requests = new Map(scmRequests(() => tables).map((r) => [r.name, r]))
let index = 0

/** prepare then apply, as the leader and then every replica would. */
async function run(name: string, args: unknown): Promise<unknown> {
  const r = requests.get(name) as ReplicatedRequest<unknown, unknown, unknown>
  const payload = JSON.parse(JSON.stringify(await r.prepare(args, db))) as unknown
  return db.transactionSync(() => r.apply(db, payload, { index: ++index, term: 1 }))
}

const dn = (n: number) => `0000000${n}-0000-0000-0000-000000000000` as DatanodeId

test('initCluster keeps the first cluster id drawn', async () => {
  const first = await run('initCluster', {})
  assert.match(String(first), /^CID-/)
  assert.is(await run('initCluster', {}), first)
})

test('reserveIds hands out batches that never overlap, at least a thousand ids each', async () => {
  const a = await run('reserveIds', { kind: 'localId', count: 1 }) as { first: number; last: number }
  const b = await run('reserveIds', { kind: 'localId', count: 5000 }) as { first: number; last: number }
  assert.equal(a, { first: 1, last: 1000 })
  assert.equal(b, { first: 1001, last: 6000 })
  assert.equal(await run('reserveIds', { kind: 'containerId', count: 1 }), { first: 1, last: 1000 })
  assert.is(await errorCode(run('reserveIds', { kind: 'other', count: 1 })), 'INVALID_ARGUMENT')
})

test('containers move forward only, and closing a pipeline moves its open containers to CLOSING', async () => {
  const p = await run('addPipeline', { replication: 'RATIS/THREE', nodes: [1, 2, 3].map((n) => ({ id: dn(n), address: `127.0.0.1:${9900 + n}` })) }) as Pipeline
  assert.is(p.state, 'OPEN')
  await run('createContainer', { id: 1 as ContainerId, pipelineId: p.id })
  await run('createContainer', { id: 2 as ContainerId, pipelineId: p.id })
  assert.is(await run('setContainerState', { id: 2, state: 'CLOSING' }), 'CLOSING')
  assert.is(await run('setContainerState', { id: 2, state: 'OPEN' }), 'CLOSING', 'never back')
  assert.is(await run('setContainerState', { id: 2, state: 'CLOSED' }), 'CLOSED')
  assert.equal(await run('closePipeline', { id: p.id }), [1])
  assert.is(tables.containers.get(1)?.state, 'CLOSING')
  assert.is(tables.pipelines.get(p.id)?.state, 'CLOSED')
  assert.equal(await run('closePipeline', { id: p.id }), [], 'closing twice changes nothing')
  assert.is(await errorCode(run('createContainer', { id: 3 as ContainerId, pipelineId: p.id })), 'NO_PIPELINE')
  assert.is(await errorCode(run('createContainer', { id: 3 as ContainerId, pipelineId: 'nope' as PipelineId })), 'NO_PIPELINE')
  assert.is(await errorCode(run('setContainerState', { id: 99, state: 'CLOSED' })), 'CONTAINER_NOT_FOUND')
})

test('addPipeline puts the suggested leader first; an ALLOCATED pipeline opens once, takes no container until OPEN, and records when it closed', async () => {
  const nodes = [1, 2, 3].map((n) => ({ id: dn(n), address: `127.0.0.1:${9900 + n}` }))
  const p = await run('addPipeline', { replication: 'RATIS/THREE', nodes, state: 'ALLOCATED', leaderId: dn(2) }) as Pipeline
  assert.is(p.state, 'ALLOCATED')
  assert.is(p.leaderId, dn(2))
  assert.equal(p.nodes.map((n) => n.id), [dn(2), dn(1), dn(3)])
  assert.is(await errorCode(run('createContainer', { id: 10 as ContainerId, pipelineId: p.id })), 'NO_PIPELINE')
  assert.is(await run('openPipeline', { id: p.id }), 'OPEN')
  assert.is(await run('openPipeline', { id: p.id }), 'OPEN', 'opening twice changes nothing')
  await run('createContainer', { id: 10 as ContainerId, pipelineId: p.id })
  const before = Date.now()
  assert.equal(await run('closePipeline', { id: p.id }), [10])
  const closed = tables.pipelines.get(p.id)!
  assert.is(closed.state, 'CLOSED')
  assert.ok(closed.closedAtMs !== undefined && closed.closedAtMs >= before, 'the leader\'s time of closing is in the entry')
  assert.is(await run('openPipeline', { id: p.id }), 'CLOSED', 'a closed pipeline never opens again')
  assert.is(await errorCode(run('openPipeline', { id: 'feedface-0000' })), 'PIPELINE_NOT_FOUND')
  assert.is(await errorCode(run('addPipeline', { replication: 'RATIS/THREE', nodes, leaderId: dn(7) })), 'INVALID_ARGUMENT')
  assert.is(await errorCode(run('addPipeline', { replication: 'RATIS/THREE', nodes: [] })), 'INVALID_ARGUMENT')
})

test('deletions are numbered by the log and end once every holder acknowledged them', async () => {
  const ids = await run('addDeleteTxs', { txs: [
    { containerId: 1, localIds: [5 as LocalId, 6 as LocalId], pending: [dn(1), dn(2)] },
    { containerId: 2, localIds: [7 as LocalId], pending: [dn(1)] },
  ] }) as number[]
  assert.equal(ids, [1, 2])
  assert.is(await run('ackDeletes', { datanodeId: dn(1), ids }), 1, 'tx 2 is done; tx 1 waits for the second holder')
  assert.equal(tables.deletes.get(1)?.pending, [dn(2)])
  assert.is(tables.deletes.get(2), undefined)
  assert.is(await run('ackDeletes', { datanodeId: dn(2), ids: [1] }), 1)
  assert.is(tables.deletes.get(1), undefined)
  assert.equal(await run('addDeleteTxs', { txs: [{ containerId: 1, localIds: [8], pending: [dn(3)] }] }), [3], 'numbers are never reused')
})

test('addDeleteHolder puts a datanode with a later copy on the lists of pending deletions, once, and not on finished ones', async () => {
  const [id] = await run('addDeleteTxs', { txs: [{ containerId: 4, localIds: [9], pending: [dn(1)] }] }) as number[]
  assert.equal(await run('addDeleteHolder', { datanodeId: dn(4), ids: [id, 999] }), [id], 'an unknown or finished one is skipped')
  assert.equal(tables.deletes.get(id)?.pending, [dn(1), dn(4)])
  assert.equal(await run('addDeleteHolder', { datanodeId: dn(4), ids: [id] }), [], 'already on it')
  assert.is(await run('ackDeletes', { datanodeId: dn(1), ids: [id] }), 0, 'the copy has yet to acknowledge')
  assert.is(await run('ackDeletes', { datanodeId: dn(4), ids: [id] }), 1)
})

test('markReplicaUnhealthy records a corrupt replica for every SCM', async () => {
  await run('markReplicaUnhealthy', { containerId: 1, datanodeId: dn(2) })
  assert.is(tables.unhealthy.get(`1/${dn(2)}`), true)
})

test.after(async () => {
  await db.close()
  rmSync(root, { recursive: true, force: true })
})

test.run()
