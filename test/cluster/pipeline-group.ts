/** @module
 * Test helper: the SCM's own pipeline of a replication in a mini cluster (the SCM forms its
 * groups through heartbeats and closes any group it does not know), waited for until its
 * group is settled on a leader; and a member's view of a group (listPipelines), for tests
 * that must wait until a follower applied a write before reading it there.
 */
import { PIPELINE_TICK_MS } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { DatanodeDetails, DatanodeId, Pipeline, PipelineId, PipelineReport } from '../../core/wire.ts'
import type { Datanode } from '../../datapath/datanode/index.ts'
import type { startMiniCluster } from './mini-cluster.ts'
import { until } from '../helpers.ts'

type Cluster = Awaited<ReturnType<typeof startMiniCluster>>

/** A liveness bound for the SCM to open a pipeline and its group to elect a leader, far above an honest wait on loopback. */
const FORM_MS = 20_000
/** How long a group's state must stay unchanged to count as settled: a few Raft ticks. */
const SETTLE_MS = 3 * PIPELINE_TICK_MS

/** A member of a pipeline: its id, where it listens, and its index in cluster.datanodes. */
export interface Member {
  id: DatanodeId
  address: string
  index: number
}

export interface SettledPipeline {
  pipelineId: PipelineId
  /** The member leading the group: raw writes go to its address. */
  leader: Member
  /** The other members. */
  followers: Member[]
}

/** One member's description of a group (Datanode listPipelines). */
export type GroupView = PipelineReport & { replication: string; members: DatanodeDetails[]; leader: boolean }

/**
 * Waits for an OPEN pipeline of `replication` at the SCM (its admin listPipelines; the first
 * such, or the one with id `pipelineId` when given), then until its group is settled: one
 * member says it leads (Datanode listPipelines `leader: true`), every member names that one
 * leader in the same term and has applied the same index, and nothing changed a few ticks
 * later (a new leader's empty entry is then applied everywhere, so a test that counts
 * entries after this point counts only its own, or a later election's). Every member must
 * run in this process (cluster.datanodes).
 */
export async function scmPipeline(cluster: Cluster, replication: string, pipelineId?: PipelineId): Promise<SettledPipeline> {
  const client = cluster.client()
  const pipeline = await until(`an OPEN ${replication} pipeline at the SCM`, async () => {
    const all = await client.admin<Pipeline[]>('listPipelines')
    return all.find((p) => p.state === 'OPEN' && p.replication === replication && (pipelineId === undefined || p.id === pipelineId))
  }, FORM_MS, 20)
  const members = pipeline.nodes.map((n): Member => {
    const index = cluster.datanodes.findIndex((dn) => dn?.id === n.id)
    if (index < 0) throw new TypeError(`Cannot use pipeline ${pipeline.id}: its member ${n.id} is not a running datanode of the cluster`)
    return { id: n.id, address: cluster.datanodes[index]!.address, index }
  })
  const state = async () => {
    const views = await Promise.all(members.map((m) => groupView(m.address, pipeline.id)))
    const leading = members.filter((_, i) => views[i]?.leader === true)
    if (leading.length !== 1) return undefined
    const lead = views[members.indexOf(leading[0]!)]!
    const same = views.every((v) => v !== undefined && v.leaderId === leading[0]!.id && v.term === lead.term && v.applied === lead.applied)
    return same ? { key: `${leading[0]!.id}:${lead.term}:${lead.applied}`, leader: leading[0]! } : undefined
  }
  const settled = await until(`pipeline ${pipeline.id} settled on its leader`, async () => {
    const first = await state()
    if (first === undefined) return false
    await new Promise((r) => setTimeout(r, SETTLE_MS))
    return first.key === (await state())?.key ? first.leader : false
  }, FORM_MS, 20)
  return { pipelineId: pipeline.id, leader: settled, followers: members.filter((m) => m !== settled) }
}

/** The running datanode of a member. */
export function datanodeOf(cluster: Cluster, m: Member): Datanode {
  const dn = cluster.datanodes[m.index]
  if (dn === undefined || dn.id !== m.id) throw new TypeError(`Cannot find datanode ${m.id}: it is not running`)
  return dn
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
