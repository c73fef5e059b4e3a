/**
 * Goal: the SCM's side of EC pipelines (issue 14): allocateBlock for an EC replication puts
 * a pipeline of k + m distinct datanodes OPEN at once, whose members are never told
 * createPipeline (no Raft group); it is reused, concurrent first allocations add one pipeline
 * not one each, the exclude list is honoured, fewer than k + m usable nodes is NO_PIPELINE
 * naming the counts; each replica's reported replicaIndex is kept and listed (a report
 * without one is index 0); a member going STALE closes the pipeline, its open container goes
 * CLOSING and every member is sent closeContainer directly. Method: a real SCM on loopback
 * (LMDB in a temp dir) and six scripted datanodes (scripted-datanode.ts) heartbeating over
 * the real RPC; the cases run in order on one SCM.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import { RpcClient } from '../../../core/rpc/client.ts'
import type { AllocatedBlock, ContainerId, ContainerLocation, DatanodeId, Pipeline } from '../../../core/wire.ts'
import { until } from '../../helpers.ts'
import { ScriptedScm } from './scripted-datanode.ts'

const RS32 = 'EC/rs-3-2-1024k'
const cluster = new ScriptedScm('o3-scm-ec-', 6, {
  'scm.heartbeat.staleMs': 3000,
  // DEAD late: a paused node is surely still STALE when its pipelines close.
  'scm.heartbeat.deadMs': 60_000,
})
const nodes = cluster.nodes
let rpc: RpcClient
const byId = (id: DatanodeId) => cluster.byId(id)
const none = () => ({ datanodes: [] as DatanodeId[], containers: [] as ContainerId[], pipelines: [] as string[] })
const allocate = (replication: string, excludeList = none(), count = 1) => rpc.call<AllocatedBlock[]>('allocateBlock', { replication, count, excludeList })
const pipelines = () => rpc.call<Pipeline[]>('listPipelines', {})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
let first: AllocatedBlock

async function refusal(p: Promise<unknown>): Promise<O3Error> {
  try { await p } catch (err) { return err as O3Error }
  throw new Error('expected a refusal')
}

test.before(async () => {
  await cluster.start()
  rpc = cluster.rpc
})

test.after(() => cluster.stop())

test('allocateBlock EC/rs-3-2-1024k: an OPEN pipeline of 5 distinct datanodes, at once, and its container records the EC replication', async () => {
  const [block, second] = await allocate(RS32, none(), 2)
  first = block
  const p = block.pipeline
  assert.is(p.replication, RS32)
  assert.is(p.state, 'OPEN')
  assert.is(p.nodes.length, 5)
  assert.is(new Set(p.nodes.map((n) => n.id)).size, 5, 'distinct datanodes')
  assert.is(second.blockId.containerId, block.blockId.containerId, 'a container per pipeline, as RATIS')
  assert.is(second.blockId.localId, block.blockId.localId + 1)
  const listed = (await pipelines()).find((x) => x.id === p.id)
  assert.is(listed?.state, 'OPEN')
  assert.equal(listed?.nodes.map((n) => n.id), p.nodes.map((n) => n.id), 'members in replica-index order')
  const c = await rpc.call<{ replication: string; state: string; pipelineId: string }>('getContainer', { containerId: block.blockId.containerId })
  assert.is(c.replication, RS32)
  assert.is(c.state, 'OPEN')
  assert.is(c.pipelineId, p.id)
})

test('an EC pipeline has no Raft group: no member is told createPipeline or closePipeline for it', async () => {
  // Several heartbeats of every member (200 ms apart): a createPipeline would have gone out in any of them.
  await sleep(1000)
  for (const n of nodes) {
    assert.equal(n.commandsOf('createPipeline', first.pipeline.id), [], `createPipeline to ${n.id}`)
    assert.equal(n.commandsOf('closePipeline', first.pipeline.id), [])
  }
})

test('allocateBlock reuses the open EC pipeline and its container', async () => {
  for (let i = 0; i < 3; i++) {
    const [b] = await allocate(RS32)
    assert.is(b.pipeline.id, first.pipeline.id)
    assert.is(b.blockId.containerId, first.blockId.containerId)
  }
  assert.is((await pipelines()).filter((p) => p.replication === RS32).length, 1)
})

test('concurrent first allocations of another EC replication add one pipeline, not one each', async () => {
  const blocks = (await Promise.all(Array.from({ length: 6 }, () => allocate('EC/xor-2-1-1024k')))).flat()
  assert.is(new Set(blocks.map((b) => b.pipeline.id)).size, 1)
  assert.is(blocks[0].pipeline.nodes.length, 3)
  assert.is((await pipelines()).filter((p) => p.replication === 'EC/xor-2-1-1024k').length, 1)
})

test('allocateBlock honours the exclude list: an excluded member, pipeline or container', async () => {
  const member = first.pipeline.nodes[0].id
  const [b] = await allocate(RS32, { ...none(), datanodes: [member] })
  assert.ok(b.pipeline.nodes.every((n) => n.id !== member), 'no excluded datanode')
  assert.is(new Set(b.pipeline.nodes.map((n) => n.id)).size, 5)
  const [byPipeline] = await allocate(RS32, { ...none(), pipelines: [first.pipeline.id] })
  assert.is.not(byPipeline.pipeline.id, first.pipeline.id)
  const [byContainer] = await allocate(RS32, { ...none(), containers: [first.blockId.containerId] })
  assert.is.not(byContainer.blockId.containerId, first.blockId.containerId)
})

test('allocateBlock refuses EC with NO_PIPELINE when fewer than k + m datanodes are usable', async () => {
  const two = nodes.slice(0, 2).map((n) => n.id)
  const err = await refusal(allocate(RS32, { ...none(), datanodes: two }))
  assert.is(err.code, 'NO_PIPELINE')
  assert.is(err.message, `Cannot allocate an ${RS32} block: it needs 5 healthy in-service datanodes with room, 6 are (2 of them excluded)`)
  const wide = await refusal(allocate('EC/rs-6-3-1024k'))
  assert.is(wide.code, 'NO_PIPELINE')
  assert.match(wide.message, 'it needs 9 healthy in-service datanodes with room, 6 are')
})

test('replica reports keep each replica\'s replicaIndex; getContainer and getContainerLocations list it (none sent: 0)', async () => {
  const id = first.blockId.containerId
  first.pipeline.nodes.forEach((m, i) => {
    const n = byId(m.id)
    // The last member is a datanode from before issue 14: its report has no index.
    n.containers = [{ containerId: id, state: 'OPEN', usedBytes: 1024, blockCount: 1, bcsid: 1, ...(i < 4 ? { replicaIndex: i + 1 } : {}) }]
  })
  const info = await until('every member\'s replica reported', async () => {
    const c = await rpc.call<{ replicas: { datanodeId: DatanodeId; replicaIndex: number }[] }>('getContainer', { containerId: id })
    return c.replicas.length === 5 ? c : undefined
  })
  const indexOf = (dn: DatanodeId) => info.replicas.find((r) => r.datanodeId === dn)?.replicaIndex
  assert.equal(first.pipeline.nodes.map((n) => indexOf(n.id)), [1, 2, 3, 4, 0])
  const locations = await rpc.call<Record<string, ContainerLocation>>('getContainerLocations', { containerIds: [id] })
  assert.equal(first.pipeline.nodes.map((n) => locations[id].replicas.find((r) => r.id === n.id)?.replicaIndex), [1, 2, 3, 4, 0])
})

test('a STALE member closes the EC pipeline; its open container goes CLOSING and every member is sent closeContainer', async () => {
  const id = first.blockId.containerId
  const members = first.pipeline.nodes.map((n) => byId(n.id))
  const stale = members[4]
  stale.pause()
  await until('the EC pipeline CLOSED', async () => (await pipelines()).find((p) => p.id === first.pipeline.id)?.state === 'CLOSED', 15_000)
  assert.is((await rpc.call<{ state: string }>('getContainer', { containerId: id })).state, 'CLOSING')
  await until('closeContainer at every live member', () => members.slice(0, 4).every((n) => n.received.some((c) => c.type === 'closeContainer' && c.containerId === id)))
  // The closes went to the members themselves: no Raft group carries them.
  for (const n of members) assert.equal(n.commandsOf('closePipeline', first.pipeline.id), [])
  // The next allocation avoids the STALE node.
  const [b] = await allocate(RS32)
  assert.is.not(b.pipeline.id, first.pipeline.id)
  assert.ok(b.pipeline.nodes.every((n) => n.id !== stale.id))
  stale.resume()
})

test.run()
