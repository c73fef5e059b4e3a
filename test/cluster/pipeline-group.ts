/** @module
 * Test helper: a pipeline's Raft group formed by hand on chosen datanodes of a mini cluster
 * (the datanode RPC createPipeline, as the SCM's heartbeat command does), waited for until
 * its suggested leader leads; and a member's view of a group (listPipelines), for tests that
 * must wait until a follower applied a write before reading it there.
 */
import { randomUUID } from 'node:crypto'
import { PIPELINE_TICK_MS } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { DatanodeDetails, DatanodeId, Pipeline, PipelineId, PipelineReport } from '../../core/wire.ts'
import type { startMiniCluster } from './mini-cluster.ts'
import { until } from '../helpers.ts'

type Cluster = Awaited<ReturnType<typeof startMiniCluster>>

/** A liveness bound for a group to elect its leader, far above an honest election on loopback. */
const FORM_MS = 20_000
/** How long a formed group's state must stay unchanged to count as settled: a few Raft ticks. */
const SETTLE_MS = 3 * PIPELINE_TICK_MS

export interface FormedGroup {
  pipelineId: PipelineId
  /** The leader's host:port: raw writes go here. */
  leader: string
  /** The other real members' host:port (not the fake peers). */
  followers: string[]
  /** Every member as the group knows it, fake peers included. */
  members: DatanodeDetails[]
}

/** One member's description of a group (Datanode listPipelines). */
export type GroupView = PipelineReport & { replication: string; members: DatanodeDetails[]; leader: boolean }

export interface FormOptions {
  /** Indexes into cluster.datanodes of the real members; the first is the suggested leader. */
  datanodes: number[]
  /**
   * Members that are not datanodes of the cluster (a test's fake peer at `address`): they
   * are in the group, so the leader sends them its Raft messages and forwards chunk bytes to
   * them, but nobody starts a group there. The leader needs a majority of real members.
   */
  peers?: DatanodeDetails[]
  replication?: string
}

/**
 * Forms a group on the members (createPipeline on each real one, the first suggested as
 * leader) and waits until it is settled: that member leads, every real member names it
 * leader in the same term, and all have applied the same index, unchanged a few ticks later
 * (a new leader's empty entry is then applied everywhere, so a test that counts entries
 * after this point counts only its own, or a later election's). Returns the group's id and
 * where its leader and followers listen.
 */
export async function formPipelineGroup(cluster: Cluster, o: FormOptions): Promise<FormedGroup> {
  const real = o.datanodes.map((i) => {
    const dn = cluster.datanodes[i]
    if (dn === undefined) throw new TypeError(`Cannot form a group on datanode ${i}: it is not running`)
    return { id: dn.id, address: dn.address }
  })
  const members = [...real, ...(o.peers ?? [])]
  const pipelineId = randomUUID() as PipelineId
  const replication = o.replication ?? (members.length === 1 ? 'RATIS/ONE' : 'RATIS/THREE')
  await createOn(real.map((m) => m.address), { pipelineId, replication, members, suggestedLeaderId: real[0]!.id })
  await until(`datanode ${real[0]!.address} leading pipeline ${pipelineId}`, async () => (await groupView(real[0]!.address, pipelineId))?.leader === true, FORM_MS, 20)
  const state = async () => {
    const views = await Promise.all(real.map((m) => groupView(m.address, pipelineId)))
    const [lead] = views
    const same = views.every((v) => v !== undefined && v.leaderId === real[0]!.id && v.term === lead!.term && v.applied === lead!.applied)
    return same && lead!.leader ? `${lead!.term}:${lead!.applied}` : undefined
  }
  await until(`pipeline ${pipelineId} settled on its leader`, async () => {
    const first = await state()
    if (first === undefined) return false
    await new Promise((r) => setTimeout(r, SETTLE_MS))
    return first === await state()
  }, FORM_MS, 20)
  return { pipelineId, leader: real[0]!.address, followers: real.slice(1).map((m) => m.address), members }
}

/**
 * Starts the groups of the pipelines the SCM created (what its createPipeline command will do
 * once the SCM sends it), so that a client can write through them; waits until the SCM lists
 * an OPEN pipeline of `replication` and its leader leads. Idempotent on the datanodes.
 */
export async function formScmPipelines(cluster: Cluster, replication: string): Promise<void> {
  const scm = new RpcClient('SCM', cluster.scmAddress)
  const wanted = await until(`an OPEN ${replication} pipeline at the SCM`, async () => {
    const all = await scm.call<Pipeline[]>('listPipelines', {})
    const open = all.filter((p) => p.state === 'OPEN' && p.replication === replication)
    return open.length > 0 ? open : undefined
  }, FORM_MS, 20)
  for (const p of wanted) {
    const leaderId = (p.leaderId ?? p.nodes[0]!.id) as DatanodeId
    const members = p.nodes.map((n) => ({ id: n.id, address: n.address }))
    await createOn(members.map((m) => m.address), { pipelineId: p.id, replication: p.replication, members, suggestedLeaderId: leaderId })
    const leader = members.find((m) => m.id === leaderId)!.address
    await until(`datanode ${leader} leading pipeline ${p.id}`, async () => (await groupView(leader, p.id))?.leader === true, FORM_MS, 20)
  }
}

async function createOn(addresses: string[], args: { pipelineId: PipelineId; replication: string; members: DatanodeDetails[]; suggestedLeaderId: DatanodeId }): Promise<void> {
  await Promise.all(addresses.map((a) => new RpcClient('Datanode', a).call('createPipeline', args)))
}

/** What the datanode at `address` reports of the group, or undefined when it runs none. */
export async function groupView(address: string, pipelineId: string): Promise<GroupView | undefined> {
  const all = await new RpcClient('Datanode', address).call<GroupView[]>('listPipelines', {})
  return all.find((g) => g.pipelineId === pipelineId)
}

/** Waits until the member at `address` has applied the group's log through `index` (what it then serves includes that entry). */
export async function appliedThrough(address: string, pipelineId: string, index: number): Promise<void> {
  await until(`datanode ${address} applying pipeline ${pipelineId} through ${index}`, async () => ((await groupView(address, pipelineId))?.applied ?? 0) >= index, FORM_MS, 10)
}
