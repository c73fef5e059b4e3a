/** @module
 * Pipelines as Raft groups on their datanodes (issue 12), the SCM's decisions: datanodes'
 * pipeline reports checked at the wire edge, a group's leader and term from its members'
 * reports, the suggested leader of a new pipeline (Ozone's MinLeaderCountChoosePolicy), and
 * the createPipeline/closePipeline commands a heartbeat answers. Pure: time comes in as
 * `nowMs`, tables as plain values; nothing is stored here.
 */
import { O3Error } from '../../core/errors.ts'
import { PIPELINE_ALLOCATED_MS_MAX, PIPELINE_REPORTS_MAX } from '../../core/limits.ts'
import { isEcReplication, type DatanodeDetails, type DatanodeId, type Pipeline, type PipelineId, type PipelineReport } from '../../core/wire.ts'
import { isDatanodeId } from './nodes.ts'
import type { PipelineRecord } from './tables.ts'

/** The pipeline commands of a heartbeat answer (the contract in PIPELINE-DESIGN.md). */
export type PipelineCommand =
  | { type: 'createPipeline'; pipelineId: PipelineId; replication: string; members: DatanodeDetails[]; suggestedLeaderId: DatanodeId }
  | { type: 'closePipeline'; pipelineId: PipelineId }

export function isPipelineId(value: unknown): value is PipelineId {
  return typeof value === 'string' && /^[0-9a-f-]{8,64}$/i.test(value)
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/**
 * A heartbeat's `pipelines`, checked: undefined when absent (a datanode that runs no groups,
 * from before issue 12); INVALID_ARGUMENT naming the first bad field otherwise.
 */
export function parsePipelineReports(raw: unknown, who: string): PipelineReport[] | undefined {
  if (raw === undefined) return undefined
  const bad = (why: string): never => { throw new O3Error('INVALID_ARGUMENT', `Cannot accept heartbeat from ${who}: ${why}`) }
  if (!Array.isArray(raw)) return bad('pipelines must be an array')
  if (raw.length > PIPELINE_REPORTS_MAX) return bad(`${raw.length} pipeline reports, at most ${PIPELINE_REPORTS_MAX}`)
  const seen = new Set<string>()
  return raw.map((r: unknown, i) => {
    if (typeof r !== 'object' || r === null) return bad(`pipelines[${i}] must be an object`)
    const { pipelineId, leaderId, term, applied, diverged } = r as Record<string, unknown>
    if (!isPipelineId(pipelineId)) return bad(`pipelines[${i}].pipelineId ${JSON.stringify(pipelineId)} is not a pipeline id`)
    if (seen.has(pipelineId)) return bad(`pipeline ${pipelineId} reported twice`)
    seen.add(pipelineId)
    if (leaderId !== '' && !isDatanodeId(leaderId)) return bad(`pipelines[${i}].leaderId ${JSON.stringify(leaderId)} is neither '' nor a datanode id`)
    if (!isCount(term)) return bad(`pipelines[${i}].term ${JSON.stringify(term)} is not a non-negative integer`)
    if (!isCount(applied)) return bad(`pipelines[${i}].applied ${JSON.stringify(applied)} is not a non-negative integer`)
    if (typeof diverged !== 'boolean') return bad(`pipelines[${i}].diverged ${JSON.stringify(diverged)} is not a boolean`)
    return { pipelineId, leaderId, term, applied, diverged }
  })
}

/**
 * The group's leader and its term from the members' last reports: the highest term whose
 * report names a member as leader (a report of a higher term naming none, during an
 * election, does not hide the last leader known). Undefined before any member named one.
 */
export function leaderFromReports(p: Pipeline, reportOf: (dn: DatanodeId) => PipelineReport | undefined): { leaderId: DatanodeId; term: number } | undefined {
  let best: { leaderId: DatanodeId; term: number } | undefined
  for (const n of p.nodes) {
    const r = reportOf(n.id)
    if (r === undefined || r.leaderId === '' || !p.nodes.some((m) => m.id === r.leaderId)) continue
    if (best === undefined || r.term > best.term) best = { leaderId: r.leaderId, term: r.term }
  }
  return best
}

/** Whether every member of an ALLOCATED pipeline reports its group: then it is OPEN. */
export function everyMemberReports(p: Pipeline, reportOf: (dn: DatanodeId) => PipelineReport | undefined): boolean {
  return p.state === 'ALLOCATED' && p.nodes.every((n) => reportOf(n.id) !== undefined)
}

/**
 * Ozone's MinLeaderCountChoosePolicy: of a new pipeline's members, the one leading the fewest
 * live (ALLOCATED or OPEN) pipelines, as each one's leader is known now; ties go to the first
 * member in placement order.
 */
export function suggestLeader(members: readonly DatanodeId[], live: readonly Pipeline[]): DatanodeId {
  if (members.length === 0) throw new RangeError('suggestLeader() needs at least one member')
  const leading = new Map<DatanodeId, number>()
  for (const p of live) {
    if (p.state === 'CLOSED') continue
    const leader = p.leaderId ?? p.nodes[0]?.id
    if (leader !== undefined) leading.set(leader, (leading.get(leader) ?? 0) + 1)
  }
  let best = members[0]
  for (const m of members) if ((leading.get(m) ?? 0) < (leading.get(best) ?? 0)) best = m
  return best
}

export interface HeartbeatPipelines {
  node: DatanodeId
  /** What the node reported in this heartbeat. */
  reports: readonly PipelineReport[]
  /** The SCM's pipelines by id, with addresses and leader resolved (see `resolve`). */
  pipelines: ReadonlyMap<PipelineId, PipelineRecord>
  nowMs: number
  destroyTimeoutMs: number
  /** The member addresses this node's group of a pipeline was last told (undefined: never, by this SCM). */
  toldAddresses?: (pipelineId: PipelineId) => string | undefined
}

/** The members' addresses as one string, as a createPipeline tells them. */
export function memberAddresses(p: Pick<PipelineRecord, 'nodes'>): string {
  return p.nodes.map((n) => n.address).join(',')
}

/**
 * The pipeline commands for one heartbeat: createPipeline for every live pipeline the node
 * is a member of and does not report (again each heartbeat until it does: the command is
 * idempotent), closePipeline for every group it reports that the SCM does not know, that it
 * is no member of, or that was CLOSED at least destroyTimeoutMs ago.
 */
export function pipelineCommands(h: HeartbeatPipelines): PipelineCommand[] {
  const out: PipelineCommand[] = []
  const reported = new Set(h.reports.map((r) => r.pipelineId))
  for (const p of h.pipelines.values()) {
    if (p.state === 'CLOSED' || !p.nodes.some((n) => n.id === h.node)) continue
    // An EC pipeline has no group: the client writes each replica directly (issue 14).
    if (isEcReplication(p.replication)) continue
    // A group that runs is told again only when its members' addresses changed since (a
    // datanode back on another port, or an SCM that never told it).
    if (reported.has(p.id) && (h.toldAddresses === undefined || h.toldAddresses(p.id) === memberAddresses(p))) continue
    out.push({ type: 'createPipeline', pipelineId: p.id, replication: p.replication, members: p.nodes, suggestedLeaderId: p.leaderId ?? p.nodes[0].id })
  }
  for (const r of h.reports) {
    const p = h.pipelines.get(r.pipelineId)
    const stale = p === undefined || !p.nodes.some((n) => n.id === h.node)
      || (p.state === 'CLOSED' && h.nowMs - (p.closedAtMs ?? 0) >= h.destroyTimeoutMs)
    if (stale) out.push({ type: 'closePipeline', pipelineId: r.pipelineId })
  }
  return out
}

/**
 * ALLOCATED pipelines whose groups did not form within PIPELINE_ALLOCATED_MS_MAX (Ozone's
 * ozone.scm.pipeline.allocated.timeout scrubber): they would hold their members' pipeline
 * slots for good, so the SCM closes them and places new ones.
 */
export function formingTooLong(pipelines: readonly PipelineRecord[], nowMs: number): PipelineRecord[] {
  return pipelines.filter((p) => p.state === 'ALLOCATED' && nowMs - p.createdAtMs >= PIPELINE_ALLOCATED_MS_MAX)
}
