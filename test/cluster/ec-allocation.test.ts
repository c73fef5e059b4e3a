/**
 * Goal: EC allocation on a real cluster (issue 14): with six datanodes the SCM's allocateBlock
 * for EC/rs-3-2-1024k answers an OPEN pipeline of five distinct registered datanodes, reuses
 * it, honours the exclude list and refuses with NO_PIPELINE when fewer than five are usable;
 * the OM's openKey in an EC bucket answers EC block groups on such pipelines, commits a group
 * up to its capacity and lookupKey lists the five nodes in index order; RATIS keys still write
 * and read beside them; a stopped member closes the EC pipeline. Method: SCM, OM and six
 * datanodes in-process on loopback (mini-cluster.ts), the SCM's and OM's own RPCs.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { groupCapacityBytes } from '../../core/ec-layout.ts'
import { O3Error } from '../../core/errors.ts'
import { KiB } from '../../core/limits.ts'
import type { KeyInfo, OpenKeyResult } from '../../core/om-wire.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { parseReplication, type AllocatedBlock, type DatanodeId, type Pipeline } from '../../core/wire.ts'
import { until } from '../helpers.ts'
import { adminRpc, omRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'

const RS32 = 'EC/rs-3-2-1024k'
const BLOCK = 4096 * KiB
let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: ReturnType<typeof cluster.client>
let scm: RpcClient
let om: RpcClient
let first: AllocatedBlock
const none = () => ({ datanodes: [] as DatanodeId[], containers: [] as number[], pipelines: [] as string[] })
const allocate = (excludeList = none()) => scm.call<AllocatedBlock[]>('allocateBlock', { replication: RS32, excludeList })

test.before(async () => {
  cluster = await startMiniCluster({ datanodes: 6, overrides: { 'scm.block.sizeBytes': BLOCK, 'scm.safemode.minDatanodes': 6 } })
  await cluster.waitOutOfSafeMode()
  client = cluster.client()
  // allocateBlock is the OM's call: on a secure cluster it is made with an om certificate.
  scm = await omRpc(cluster, 'SCM', cluster.scmAddress)
  om = adminRpc(cluster, 'OM', cluster.omAddress)
  await client.createVolume('vol')
})

test.after(async () => {
  await cluster.dispose()
})

test('allocateBlock EC/rs-3-2-1024k answers an OPEN pipeline of 5 distinct registered datanodes', async () => {
  ;[first] = await allocate()
  const registered = new Set((await scm.call<{ id: DatanodeId }[]>('listDatanodes', {})).map((d) => d.id))
  assert.is(first.pipeline.replication, RS32)
  assert.is(first.pipeline.state, 'OPEN')
  assert.is(new Set(first.pipeline.nodes.map((n) => n.id)).size, 5)
  assert.ok(first.pipeline.nodes.every((n) => registered.has(n.id)))
  assert.equal(new Set(first.pipeline.nodes.map((n) => n.address)), new Set(cluster.datanodeAddresses.filter((a) => first.pipeline.nodes.some((n) => n.address === a))))
})

test('allocateBlock reuses the open EC pipeline and honours the exclude list', async () => {
  const [again] = await allocate()
  assert.is(again.pipeline.id, first.pipeline.id)
  assert.is(again.blockId.containerId, first.blockId.containerId)
  const excluded = first.pipeline.nodes[2].id
  const [around] = await allocate({ ...none(), datanodes: [excluded] })
  assert.is(new Set(around.pipeline.nodes.map((n) => n.id)).size, 5)
  assert.ok(around.pipeline.nodes.every((n) => n.id !== excluded))
})

test('allocateBlock refuses EC clearly with fewer than 5 usable datanodes', async () => {
  const two = first.pipeline.nodes.slice(0, 2).map((n) => n.id)
  const err = await allocate({ ...none(), datanodes: two }).then(() => undefined, (e: unknown) => e as O3Error)
  assert.ok(err !== undefined, 'refused')
  assert.is(err.code, 'NO_PIPELINE')
  assert.is(err.message, `Cannot allocate an ${RS32} block: it needs 5 healthy in-service datanodes with room, 6 are (2 of them excluded)`)
})

test('openKey in an EC bucket answers EC block groups; commitKey takes a group up to its capacity; lookupKey lists its 5 nodes', async () => {
  await client.createBucket('vol', 'ecb', { replication: RS32 })
  const capacity = groupCapacityBytes(parseReplication(RS32).ec!, BLOCK)
  const o = await om.call<OpenKeyResult>('openKey', { volume: 'vol', bucket: 'ecb', key: 'k', sizeBytes: 2 * capacity })
  assert.is(o.replication, RS32)
  assert.is(o.blocks.length, 2)
  for (const b of o.blocks) {
    assert.is(b.pipeline.replication, RS32)
    assert.is(new Set(b.pipeline.nodes.map((n) => n.id)).size, 5)
  }
  // No bytes are written here: the OM checks lengths, not data (the EC writer is the client's).
  const k = await om.call<KeyInfo>('commitKey', { clientId: o.clientId, blocks: [{ blockId: o.blocks[0].blockId, length: capacity }], size: capacity })
  assert.is(k.replication, RS32)
  const looked = await om.call<KeyInfo>('lookupKey', { volume: 'vol', bucket: 'ecb', key: 'k' })
  assert.is(looked.locations.length, 1)
  const p: Pipeline = looked.locations[0].pipeline
  assert.equal(p.nodes.map((n) => n.id), o.blocks[0].pipeline.nodes.map((n) => n.id), 'nodes[i] holds replica index i + 1')
})

test('RATIS/THREE keys write and read beside the EC pipelines', async () => {
  await client.createBucket('vol', 'rat3', { replication: 'RATIS/THREE' })
  const data = randomBytes(300 * KiB)
  await client.putKey('vol', 'rat3', 'x', data)
  assert.ok(Buffer.from(await client.getKey('vol', 'rat3', 'x')).equals(data))
})

test('a stopped member closes the EC pipeline; allocations then use the 5 datanodes left', async () => {
  const member = first.pipeline.nodes[4]
  const index = cluster.datanodeAddresses.indexOf(member.address)
  assert.ok(index >= 0)
  await cluster.stopDatanode(index)
  // STALE after 3 s (mini-cluster.ts).
  await until('the EC pipeline CLOSED', async () => (await scm.call<Pipeline[]>('listPipelines', {})).find((p) => p.id === first.pipeline.id)?.state === 'CLOSED', 20_000)
  assert.is((await scm.call<{ state: string }>('getContainer', { containerId: first.blockId.containerId })).state, 'CLOSING')
  const [b] = await allocate()
  assert.ok(b.pipeline.nodes.every((n) => n.id !== member.id))
  assert.is(new Set(b.pipeline.nodes.map((n) => n.id)).size, 5)
})

test.run()
