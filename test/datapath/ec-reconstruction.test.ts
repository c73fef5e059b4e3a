/**
 * Goal: a datanode given a reconstructECContainer command rebuilds the lost replicas of a
 * closed EC container on their targets (Ozone's ECReconstructionCoordinator): every block of
 * each rebuilt index byte for byte what the writer's codec made, committed with its group
 * length, the replica CLOSED with the right index; a source that cannot be listed or read is
 * replaced by another index; with fewer than k sources nothing is left on the targets.
 * Method: a real in-process cluster (SCM, OM, 7 datanodes). An EC/rs-3-2-64k container is
 * written to datanodes 1..5 (replica indexes 1..5) as an EC writer does (test/datapath/
 * ec-group.ts: blocks of sizes around cell and stripe boundaries, partial last stripes, an
 * empty one), closed, and two replicas deleted. The command goes to the coordinator through
 * Datanode.command() (the heartbeat's path); the expected bytes of every index come from
 * createCodec (wasm/) in the test, and the rebuilt replicas are read back over /chunk/read.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { KiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { ContainerId, DatanodeDetails, LocalId } from '../../core/wire.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import { flipByte } from '../helpers.ts'
import { randomBytes, startMiniCluster } from '../cluster/mini-cluster.ts'
import { readReplica, writeGroup, type EcBlock } from './ec-group.ts'

const REPLICATION = 'EC/rs-3-2-64k'
const CELL = 64 * KiB
const STRIPE = 3 * CELL
const CONTAINER = 940_001
const PIPELINE = 'ec-pipeline-940001'
/** Around the boundaries: empty, 1, cell +- 1, stripe +- 1, two stripes with a partial third (two cells and a bit), and many stripes. */
const SIZES = [0, 1, CELL - 1, CELL + 1, STRIPE - 1, STRIPE, STRIPE + 1, 2 * STRIPE + 2 * CELL + 7, 20 * STRIPE + CELL + 100]

const cluster = await startMiniCluster({ datanodes: 7 })
/** Each datanode's id and address, as at the start (a stopped one keeps them). */
const details = cluster.datanodes.map((d) => ({ id: d!.id, address: d!.address }) as DatanodeDetails)
const node = (i: number): DatanodeDetails => details[i]!
const rpc = (i: number) => new RpcClient('Datanode', cluster.datanodes[i]!.address)
type Held = { id: number; state: string; replicaIndex?: number }
type Listed = { replicaIndex: number; blocks: { localId: number; length: number; blockGroupLength: number }[] }
const written = new Map<number, { data: Uint8Array; replicas: Uint8Array[] }>()

async function held(i: number): Promise<Held | undefined> {
  return (await rpc(i).call<Held[]>('listContainers', {})).find((c) => c.id === CONTAINER)
}

/** Datanode `i` holds replica `index`, CLOSED, every block byte for byte with its group length. */
async function assertRebuilt(i: number, index: number): Promise<void> {
  const c = await held(i)
  assert.is(c?.state, 'CLOSED', `datanode ${i + 1}'s replica is CLOSED`)
  assert.is(c?.replicaIndex, index, `datanode ${i + 1} holds replica index ${index}`)
  const listed = await rpc(i).call<Listed>('listBlocks', { containerId: CONTAINER })
  assert.equal(listed.blocks.map((b) => [b.localId, b.length, b.blockGroupLength]), [...written].map(([id, w]) => [id, w.replicas[index - 1]!.length, w.data.length]))
  for (const [localId, w] of written) {
    const got = await readReplica(node(i), CONTAINER, localId, w.replicas[index - 1]!.length)
    assert.ok(Buffer.from(got).equals(Buffer.from(w.replicas[index - 1]!)), `block ${localId} (${w.data.length} bytes) of index ${index} rebuilt byte for byte`)
  }
}

function reconstruct(coordinator: number, sources: [index: number, dn: number][], targets: [index: number, dn: number][]) {
  return cluster.datanodes[coordinator]!.command({
    type: 'reconstructECContainer', containerId: CONTAINER, replication: REPLICATION,
    sources: sources.map(([replicaIndex, dn]) => ({ replicaIndex, datanode: node(dn) })),
    targets: targets.map(([replicaIndex, dn]) => ({ replicaIndex, datanode: node(dn) })),
  })
}

test('setup: a closed EC container on datanodes 1..5, replicas 2 and 5 lost', async () => {
  const nodes = [0, 1, 2, 3, 4].map(node)
  for (const [n, size] of SIZES.entries()) {
    const localId = n + 1
    const data = randomBytes(size, 1000 + localId)
    const b: EcBlock = { containerId: CONTAINER, localId, replication: REPLICATION, pipelineId: PIPELINE }
    written.set(localId, { data, replicas: await writeGroup(nodes, b, data) })
  }
  for (let i = 0; i < 5; i++) assert.equal(await rpc(i).call('closeContainer', { containerId: CONTAINER }), { state: 'CLOSED' })
  await cluster.datanodes[1]!.command({ type: 'deleteContainer', containerId: CONTAINER })
  await cluster.datanodes[4]!.command({ type: 'deleteContainer', containerId: CONTAINER })
  assert.is(await held(1), undefined)
  assert.is(await held(4), undefined)
})

test('reconstructECContainer rebuilds a data and a parity index on two new datanodes, CLOSED, byte for byte', async () => {
  await reconstruct(5, [[1, 0], [3, 2], [4, 3]], [[2, 5], [5, 6]])
  await cluster.datanodes[5]!.reconstruction.idle()
  await assertRebuilt(5, 2)
  await assertRebuilt(6, 5)
})

test('a source that cannot be listed (down) or read (UNHEALTHY) is replaced by another index', async () => {
  // Index 3 turns UNHEALTHY: it still lists its blocks, but refuses every read.
  const dn2 = cluster.datanodes[2]!
  const largest = SIZES.length
  flipByte(blockFile(dn2.dirs[0]!, dn2.clusterId, CONTAINER as ContainerId, largest as LocalId), 10)
  assert.is((await rpc(2).call<{ result: string }>('scanContainer', { containerId: CONTAINER })).result, 'UNHEALTHY')
  // Index 1's datanode goes down.
  await cluster.stopDatanode(0)
  try {
    // Rebuild index 1 on datanode 2 (which lost its index 2 earlier and holds nothing now).
    await reconstruct(1, [[1, 0], [3, 2], [2, 5], [4, 3], [5, 6]], [[1, 1]])
    await cluster.datanodes[1]!.reconstruction.idle()
    await assertRebuilt(1, 1)
  } finally {
    await cluster.startDatanode(0)
  }
})

test('with fewer than k readable sources the command fails and leaves no replica on its targets', async () => {
  const failures = async () => Number(/ec_reconstruction_failures_total(?:\{[^}]*\})? (\d+)/.exec(await cluster.datanodes[4]!.metrics.text())?.[1] ?? 0)
  const before = await failures()
  // Index 3 is UNHEALTHY (above): only indexes 4 and 5 can be read.
  await reconstruct(4, [[3, 2], [4, 3], [5, 6]], [[2, 4]])
  await cluster.datanodes[4]!.reconstruction.idle()
  assert.is(await failures(), before + 1, 'counted as failed')
  assert.is(await held(4), undefined, 'the partial replica was deleted')
})

test('a malformed command is refused', async () => {
  const dn = cluster.datanodes[4]!
  const bad = [
    { replication: 'RATIS/THREE' },
    { targets: [{ replicaIndex: 6, datanode: node(4) }] },
    { targets: [{ replicaIndex: 1, datanode: node(4) }, { replicaIndex: 2, datanode: node(4) }] },
    { targets: [{ replicaIndex: 1, datanode: node(4) }, { replicaIndex: 2, datanode: node(5) }, { replicaIndex: 3, datanode: node(6) }] },
  ]
  for (const b of bad) {
    let code = 'OK'
    try {
      await dn.command({ type: 'reconstructECContainer', containerId: CONTAINER, replication: REPLICATION, sources: [{ replicaIndex: 4, datanode: node(3) }], targets: [{ replicaIndex: 2, datanode: node(4) }], ...b })
    } catch (err) { code = (err as { code: string }).code }
    assert.is(code, 'INVALID_ARGUMENT', JSON.stringify(b))
  }
})

test.after(async () => { await cluster.dispose() })
test.run()
