/**
 * Goal: EC replicas as the SCM sees them: the SCM's own EC allocation, replicas written there
 * reported with their replica index (pipeline.nodes[i] reports index i + 1), the SCM's close
 * of the container reaching every replica directly (CLOSED, no Raft group), and the replicas
 * rebuilt by reconstructECContainer after two datanodes stopped reported from their new
 * datanodes with the lost indexes, CLOSED, holding the original bytes.
 * Method: SCM, OM and 7 datanodes in-process (mini-cluster.ts); allocateBlock for
 * EC/rs-3-2-64k through the SCM's RPC; block groups written to the pipeline's nodes as an EC
 * writer does (ec-group.ts); the command sent to the coordinator through Datanode.command()
 * (the heartbeat's path: the SCM's EC replication handling is not in this branch); the
 * SCM's getContainerLocations and getContainer read back.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { KiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { AllocatedBlock, DatanodeDetails, DatanodeId } from '../../core/wire.ts'
import { until } from '../helpers.ts'
import { randomBytes, startMiniCluster } from '../cluster/mini-cluster.ts'
import { readReplica, writeGroup } from './ec-group.ts'

const RS = 'EC/rs-3-2-64k'
const CELL = 64 * KiB
const SIZES = [1, 3 * CELL + 1, 7 * 3 * CELL + 2 * CELL + 5]

const cluster = await startMiniCluster({ datanodes: 7, overrides: { 'scm.safemode.minDatanodes': 7 } })
await cluster.waitOutOfSafeMode()
const scm = new RpcClient('SCM', cluster.scmAddress)
const none = () => ({ datanodes: [] as DatanodeId[], containers: [] as number[], pipelines: [] as string[] })
type Located = { state: string; replicas: { id: DatanodeId; address: string; state: string; replicaIndex?: number }[] }
const written = new Map<number, { data: Uint8Array; replicas: Uint8Array[] }>()
let blocks: AllocatedBlock[] = []

async function located(containerId: number): Promise<Located> {
  return (await scm.call<Record<string, Located>>('getContainerLocations', { containerIds: [containerId] }))[containerId]!
}

test('replicas written to an EC pipeline the SCM allocated are reported with their replica index', async () => {
  for (const _ of SIZES) blocks.push(...await scm.call<AllocatedBlock[]>('allocateBlock', { replication: RS, excludeList: none() }))
  const { pipeline, blockId } = blocks[0]!
  assert.ok(blocks.every((b) => b.blockId.containerId === blockId.containerId && b.pipeline.id === pipeline.id), 'one container on one pipeline')
  for (const [n, b] of blocks.entries()) {
    const data = randomBytes(SIZES[n]!, 77 + n)
    written.set(b.blockId.localId, { data, replicas: await writeGroup(pipeline.nodes, { containerId: b.blockId.containerId, localId: b.blockId.localId, replication: RS, pipelineId: pipeline.id }, data) })
  }
  const want = pipeline.nodes.map((n, i) => `${n.id}=${i + 1}`).sort()
  await until('the SCM knows each replica\'s index', async () => {
    const l = await located(blockId.containerId)
    return l.replicas.length === 5 && JSON.stringify(l.replicas.map((r) => `${r.id}=${r.replicaIndex}`).sort()) === JSON.stringify(want)
  })
})

test('the SCM\'s close reaches every EC replica directly: the container is CLOSED', async () => {
  const id = blocks[0]!.blockId.containerId
  await scm.call('closeContainer', { containerId: id })
  await until('the container CLOSED', async () => (await scm.call<{ state: string }>('getContainer', { containerId: id })).state === 'CLOSED')
  const l = await located(id)
  assert.ok(l.replicas.every((r) => r.state === 'CLOSED'), JSON.stringify(l.replicas))
})

test('two datanodes stop; replicas 2 and 4 rebuilt on the other two are reported there, CLOSED, with the original bytes', async () => {
  const { pipeline, blockId } = blocks[0]!
  const id = blockId.containerId
  const index = (n: DatanodeDetails) => cluster.datanodes.findIndex((d) => d?.id === n.id)
  const outside = cluster.datanodes.filter((d) => !pipeline.nodes.some((n) => n.id === d!.id)).map((d) => ({ id: d!.id, address: d!.address }) as DatanodeDetails)
  assert.is(outside.length, 2)
  const lost = [pipeline.nodes[1]!, pipeline.nodes[3]!]
  for (const n of lost) await cluster.stopDatanode(index(n))
  const coordinator = cluster.datanodes[index(outside[0]!)]!
  await coordinator.command({
    type: 'reconstructECContainer', containerId: id, replication: RS,
    sources: [1, 3, 5].map((i) => ({ replicaIndex: i, datanode: pipeline.nodes[i - 1]! })),
    targets: [{ replicaIndex: 2, datanode: outside[0]! }, { replicaIndex: 4, datanode: outside[1]! }],
  })
  await coordinator.reconstruction.idle()
  await until('the SCM sees the rebuilt replicas', async () => {
    const r = (await located(id)).replicas
    return [[outside[0]!, 2], [outside[1]!, 4]].every(([n, i]) => r.some((x) => x.id === (n as DatanodeDetails).id && x.replicaIndex === i && x.state === 'CLOSED'))
  })
  for (const [t, i] of [[outside[0]!, 2], [outside[1]!, 4]] as const) {
    for (const [localId, w] of written) {
      const got = await readReplica(t, id, localId, w.replicas[i - 1]!.length)
      assert.ok(Buffer.from(got).equals(Buffer.from(w.replicas[i - 1]!)), `block ${localId} replica ${i} rebuilt on ${t.address}`)
    }
  }
})

test.after(async () => { await cluster.dispose() })
test.run()
