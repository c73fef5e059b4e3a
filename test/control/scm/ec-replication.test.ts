/**
 * Goal: the SCM's replication manager keeps EC containers whole through real heartbeats
 * (issue 14): an EC container closes when its replicas report CLOSED (each with its index);
 * when a member dies, its index is rebuilt by a reconstructECContainer sent to the target
 * (the coordinator) in its heartbeat, naming one source per available index and the target
 * with the lost index; the command is in flight until the target reports that index CLOSED,
 * then the container is HEALTHY again (an admin's replicateContainer of it is refused); when the dead member comes back with its old replica
 * the index is over-replicated and exactly one of its two replicas is deleted.
 * Method: a real SCM on loopback (LMDB in a temp dir, the replication manager on a short
 * interval) and six scripted datanodes (scripted-datanode.ts) that heartbeat over the real RPC
 * and report the replicas the test sets, as datanodes running the commands would.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RpcClient } from '../../../core/rpc/client.ts'
import type { AllocatedBlock, ContainerId, DatanodeDetails, DatanodeId } from '../../../core/wire.ts'
import { errorCode, until } from '../../helpers.ts'
import { ScriptedScm, type ScriptedDatanode, type Received } from './scripted-datanode.ts'

const RS32 = 'EC/rs-3-2-1024k'
const cluster = new ScriptedScm('o3-scm-ec-replication-', 6, {
  'scm.heartbeat.staleMs': 1000, 'scm.heartbeat.deadMs': 2000,
  'scm.replication.intervalMs': 200, 'scm.replication.commandTimeoutMs': 60_000,
})
const nodes = cluster.nodes
let rpc: RpcClient
const byId = (id: DatanodeId) => cluster.byId(id)
let block: AllocatedBlock
let id: ContainerId
let members: ScriptedDatanode[]

type Reconstruct = Received & { replication: string; sources: { replicaIndex: number; datanode: DatanodeDetails }[]; targets: { replicaIndex: number; datanode: DatanodeDetails }[] }
const report = () => rpc.call<{ health: Record<string, number>; inflight: { reconstruct: number; delete: number } }>('containerReport', {})
const health = async () => (await rpc.call<{ health: string[] }>('getContainer', { containerId: id })).health

/** The replica the scripted node reports for the container (replacing any). */
function holds(n: ScriptedDatanode, replicaIndex: number, state = 'CLOSED'): void {
  n.containers = [...n.containers.filter((c) => c.containerId !== id), { containerId: id, state, usedBytes: 4096, blockCount: 1, bcsid: 1, replicaIndex }]
}

test.before(async () => {
  await cluster.start()
  rpc = cluster.rpc
})

test.after(() => cluster.stop())

test('an EC container closes once its members report their indexes CLOSED, and is HEALTHY', async () => {
  ;[block] = await rpc.call<AllocatedBlock[]>('allocateBlock', { replication: RS32 })
  id = block.blockId.containerId
  members = block.pipeline.nodes.map((n) => byId(n.id))
  members.forEach((n, i) => holds(n, i + 1, 'OPEN'))
  await rpc.call('closeContainer', { containerId: id })
  await until('closeContainer sent to every member', () => members.every((n) => n.received.some((c) => c.type === 'closeContainer' && c.containerId === id)))
  members.forEach((n, i) => holds(n, i + 1))
  await until('the container CLOSED', async () => (await rpc.call<{ state: string }>('getContainer', { containerId: id })).state === 'CLOSED')
  await until('HEALTHY', async () => (await health()).join() === 'HEALTHY')
  // An admin's copy would copy one index of several, at random: refused.
  const spare = nodes.find((n) => !members.includes(n))!
  assert.is(await errorCode(rpc.call('replicateContainer', { containerId: id, targetId: spare.id })), 'INVALID_ARGUMENT')
})

test('a dead member\'s index is rebuilt: reconstructECContainer to the target, one source per available index; done once the target reports it', async () => {
  const lost = members[1]
  const spare = nodes.find((n) => !members.includes(n))!
  lost.pause()
  const command = await until('reconstructECContainer at the spare node', () => spare.received.find((c) => c.type === 'reconstructECContainer' && c.containerId === id) as Reconstruct | undefined, 20_000)
  assert.is(command.replication, RS32)
  assert.equal(command.targets.map((t) => [t.replicaIndex, t.datanode.id]), [[2, spare.id]])
  assert.equal(command.targets[0].datanode.address, spare.address)
  assert.equal(command.sources.map((s) => s.replicaIndex), [1, 3, 4, 5])
  assert.equal(command.sources.map((s) => s.datanode.id), [0, 2, 3, 4].map((i) => members[i].id), 'each index from the member written with it')
  assert.ok(nodes.every((n) => n === spare || !n.received.some((c) => c.type === 'reconstructECContainer')), 'only the coordinator is told')
  assert.ok((await health()).includes('UNDER_REPLICATED'))
  assert.is((await report()).inflight.reconstruct, 1)
  // The target rebuilds the index (the datanode's coordinator would) and reports it closed.
  holds(spare, 2, 'OPEN')
  await new Promise((r) => setTimeout(r, 600))
  assert.is((await report()).inflight.reconstruct, 1, 'an open (partial) replica is not done')
  assert.is(spare.received.filter((c) => c.type === 'reconstructECContainer').length, 1, 'not sent twice while in flight')
  holds(spare, 2)
  await until('the reconstruction done', async () => (await report()).inflight.reconstruct === 0)
  assert.equal(await health(), ['HEALTHY'])
})

test('the dead member back with its old replica: the index is over-replicated and one of its two replicas is deleted', async () => {
  const back = members[1]
  const spare = nodes.find((n) => !members.includes(n))!
  back.resume()
  const deleted = await until('a deleteContainer for index 2', () => [back, spare].find((n) => n.received.some((c) => c.type === 'deleteContainer' && c.containerId === id)), 20_000)
  assert.ok(nodes.filter((n) => n.received.some((c) => c.type === 'deleteContainer' && c.containerId === id)).length === 1, 'exactly one replica deleted')
  deleted.containers = deleted.containers.filter((c) => c.containerId !== id)
  await until('HEALTHY again', async () => (await health()).join() === 'HEALTHY' && (await report()).inflight.delete === 0)
})

test.run()
