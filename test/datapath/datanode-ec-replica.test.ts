/**
 * Goal: a datanode holds EC replicas outside any Raft group: standalone chunk writes with a
 * replica index, putBlock committing at once with the group's length, closing at once
 * (CLOSED), the replica index kept in the container file, the LMDB record, a restart, a
 * container copy and the scanner's view, and a write naming another index refused.
 * Method: a real in-process cluster (SCM, OM, 6 datanodes); block groups of EC/rs-3-2-64k
 * written to datanodes 1..5 with replica indexes 1..5 exactly as an EC writer does (cells
 * round-robin, parity from the WASM codec, putBlock on all five after each stripe, test/
 * datapath/ec-group.ts), in sizes around cell and stripe boundaries; every replica read back
 * byte for byte over /chunk/read (readChunk, checksums verified) against the bytes the codec
 * says it must hold. The SCM allocates nothing here: the container id is far above its own.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { KiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { ContainerId, DatanodeDetails } from '../../core/wire.ts'
import { containerFile } from '../../datapath/datanode/index.ts'
import { errorCode, until } from '../helpers.ts'
import { randomBytes, startMiniCluster } from '../cluster/mini-cluster.ts'
import { ecPutBlock, ecWriteChunk, readReplica, schemeOf, writeGroup, type EcBlock } from './ec-group.ts'

const REPLICATION = 'EC/rs-3-2-64k'
const CELL = 64 * KiB
const STRIPE = 3 * CELL
const CONTAINER = 930_001
const PIPELINE = 'ec-pipeline-930001'

const cluster = await startMiniCluster({ datanodes: 6 })
const nodes = (): DatanodeDetails[] => cluster.datanodes.slice(0, 5).map((d) => ({ id: d!.id, address: d!.address }))
const rpc = (i: number) => new RpcClient('Datanode', cluster.datanodes[i]!.address)
const block = (localId: number): EcBlock => ({ containerId: CONTAINER, localId, replication: REPLICATION, pipelineId: PIPELINE })
type Listed = { replicaIndex: number; blocks: { localId: number; length: number; blockGroupLength: number }[] }
type Held = { id: number; state: string; replicaIndex?: number; bcsid?: number; blockCount: number }

/** Sizes around the boundaries, one block each: 1, cell - 1, cell + 1, stripe, stripe + 1, two stripes and a bit. */
const SIZES = [1, CELL - 1, CELL + 1, STRIPE, STRIPE + 1, 2 * STRIPE + CELL + 5]
const written = new Map<number, { data: Uint8Array; replicas: Uint8Array[] }>()

async function checkReplicas(localId: number, on: (i: number) => DatanodeDetails = (i) => nodes()[i]!): Promise<void> {
  const { replicas } = written.get(localId)!
  for (let i = 0; i < 5; i++) {
    const got = await readReplica(on(i), CONTAINER, localId, replicas[i]!.length)
    assert.ok(Buffer.from(got).equals(Buffer.from(replicas[i]!)), `block ${localId} replica ${i + 1} reads back byte for byte`)
  }
}

test('EC chunks and putBlocks commit on each replica without a group; every replica reads back byte for byte', async () => {
  for (const [n, size] of SIZES.entries()) {
    const localId = n + 1
    const data = randomBytes(size, localId)
    written.set(localId, { data, replicas: await writeGroup(nodes(), block(localId), data) })
  }
  for (const localId of written.keys()) await checkReplicas(localId)
  const s = schemeOf(REPLICATION)
  for (let i = 0; i < 5; i++) {
    const listed = await rpc(i).call<Listed>('listBlocks', { containerId: CONTAINER })
    assert.is(listed.replicaIndex, i + 1, `node ${i + 1} holds replica index ${i + 1}`)
    assert.equal(listed.blocks.map((b) => b.localId), [...written.keys()], 'every block listed, in order')
    for (const b of listed.blocks) {
      assert.is(b.blockGroupLength, written.get(b.localId)!.data.length, `block ${b.localId} keeps its group length`)
      assert.is(b.length, written.get(b.localId)!.replicas[i]!.length, `block ${b.localId} replica ${i + 1} length`)
    }
    const held = (await rpc(i).call<Held[]>('listContainers', {})).find((c) => c.id === CONTAINER)!
    assert.is(held.state, 'OPEN')
    assert.is(held.replicaIndex, i + 1)
    assert.ok((held.bcsid ?? 0) >= SIZES.length, 'each putBlock took the next local BCSID')
  }
  assert.ok(s.cellSizeBytes === CELL)
})

test('a write or putBlock naming another replica index, or none, is refused with INVALID_ARGUMENT', async () => {
  const b = block(100)
  const address = nodes()[0]!.address
  assert.is(await errorCode(ecWriteChunk(address, { ...b, offset: 0, data: randomBytes(10), replicaIndex: 2 })), 'INVALID_ARGUMENT', 'index 2 to replica 1')
  assert.is(await errorCode(ecWriteChunk(address, { ...b, offset: 0, data: randomBytes(10) })), 'INVALID_ARGUMENT', 'no index')
  assert.is(await errorCode(ecWriteChunk(address, { ...b, offset: 0, data: randomBytes(10), replicaIndex: 6 })), 'INVALID_ARGUMENT', 'index past k+m')
  assert.is(await errorCode(ecPutBlock(address, { ...block(1), replicaIndex: 3, length: 1, blockGroupLength: 1 })), 'INVALID_ARGUMENT', 'putBlock naming index 3')
  // The replica still serves what it held.
  await checkReplicas(1)
})

test('a chunk with commit commits at once; block deletion of an open EC container is direct', async () => {
  const address = nodes()[1]!.address
  const data = randomBytes(CELL, 7)
  const r = await ecWriteChunk(address, { ...block(200), offset: 0, data, replicaIndex: 2, commit: true, blockGroupLength: 2 * CELL })
  assert.ok((r.index ?? 0) > 0, 'answered with its BCSID')
  const got = await rpc(1).call<{ length: number; blockGroupLength?: number }>('getBlock', { containerId: CONTAINER, localId: 200 })
  assert.is(got.length, CELL)
  assert.is(got.blockGroupLength, 2 * CELL)
  await cluster.datanodes[1]!.command({ type: 'deleteBlocks', containerId: CONTAINER, localIds: [200] })
  assert.is(await errorCode(rpc(1).call('getBlock', { containerId: CONTAINER, localId: 200 })), 'BLOCK_NOT_FOUND')
  assert.is(await errorCode(ecPutBlock(address, { ...block(200), replicaIndex: 2, length: CELL, blockGroupLength: 2 * CELL })), 'BLOCK_NOT_FOUND', 'a deleted block stays deleted')
})

test('a restart keeps the committed blocks and the replica index of an open EC replica', async () => {
  await cluster.stopDatanode(2)
  await cluster.startDatanode(2)
  const held = (await rpc(2).call<Held[]>('listContainers', {})).find((c) => c.id === CONTAINER)!
  assert.is(held.replicaIndex, 3)
  assert.is(held.state, 'OPEN')
  for (const localId of written.keys()) await checkReplicas(localId)
  // Writes go on after the restart.
  const localId = 300
  const data = randomBytes(CELL + 3, 300)
  written.set(localId, { data, replicas: await writeGroup(nodes(), block(localId), data) })
  await checkReplicas(localId)
})

test('closeContainer closes an EC replica at once (CLOSED); after a restart it keeps its index, in its file too', async () => {
  for (let i = 0; i < 5; i++) assert.equal(await rpc(i).call('closeContainer', { containerId: CONTAINER }), { state: 'CLOSED' })
  assert.is(await errorCode(ecWriteChunk(nodes()[0]!.address, { ...block(400), offset: 0, data: randomBytes(10), replicaIndex: 1 })), 'CONTAINER_NOT_OPEN')
  await cluster.stopDatanode(0)
  const dn = await cluster.startDatanode(0)
  const held = (await rpc(0).call<Held[]>('listContainers', {})).find((c) => c.id === CONTAINER)!
  assert.is(held.state, 'CLOSED')
  assert.is(held.replicaIndex, 1)
  const file = JSON.parse(readFileSync(containerFile(dn.dirs[0]!, dn.clusterId, CONTAINER as ContainerId), 'utf8')) as { replicaIndex: number; state: string }
  assert.is(file.replicaIndex, 1, 'the container file holds the index')
  for (const localId of written.keys()) await checkReplicas(localId)
  // Replicas 2 and 3 of the 1-byte block hold none of it: an empty block, with its empty file.
  for (let i = 0; i < 5; i++) {
    const scan = await rpc(i).call<{ result: string; error?: string }>('scanContainer', { containerId: CONTAINER })
    assert.is(scan.result, 'HEALTHY', `replica ${i + 1}: the scanner finds its files and records agree (${scan.error ?? ''})`)
  }
})

test('a copy of an EC replica (replicateContainer) keeps its replica index and group lengths', async () => {
  const target = cluster.datanodes[5]!
  await target.command({ type: 'replicateContainer', containerId: CONTAINER, sources: [nodes()[3]!] })
  await until('the copy imported', async () => (await rpc(5).call<Held[]>('listContainers', {})).some((c) => c.id === CONTAINER))
  const listed = await rpc(5).call<Listed>('listBlocks', { containerId: CONTAINER })
  assert.is(listed.replicaIndex, 4)
  assert.equal(listed.blocks.map((b) => [b.localId, b.blockGroupLength]), [...written.entries()].map(([id, w]) => [id, w.data.length]))
  const on = (i: number) => i === 3 ? { id: target.id, address: target.address } : nodes()[i]!
  for (const localId of written.keys()) await checkReplicas(localId, on)
  const file = JSON.parse(readFileSync(containerFile(target.dirs[0]!, target.clusterId, CONTAINER as ContainerId), 'utf8')) as { replicaIndex: number }
  assert.is(file.replicaIndex, 4)
})

test.after(async () => { await cluster.dispose() })
test.run()
