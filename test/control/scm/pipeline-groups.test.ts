/** Goal: the SCM's pure pipeline-group decisions (control/scm/pipeline-groups.ts): reports
 * checked at the edge, leader and term from the members' reports (highest term, a leaderless
 * report not hiding the last leader, a non-member never taken), MinLeaderCount, the
 * createPipeline/closePipeline commands of a heartbeat, and ALLOCATED pipelines that never
 * formed. Method: the functions called on literal pipelines and reports. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import { PIPELINE_ALLOCATED_MS_MAX, PIPELINE_REPORTS_MAX } from '../../../core/limits.ts'
import type { DatanodeId, PipelineId, PipelineReport, PipelineState } from '../../../core/wire.ts'
import {
  everyMemberReports, formingTooLong, leaderFromReports, parsePipelineReports, pipelineCommands, suggestLeader,
} from '../../../control/scm/pipeline-groups.ts'
import type { PipelineRecord } from '../../../control/scm/tables.ts'

const dn = (n: number) => `0000000${n}-0000-0000-0000-000000000000` as DatanodeId
const pid = (n: number) => `a000000${n}-0000` as PipelineId
function pipeline(n: number, members: number[], state: PipelineState = 'OPEN', extra: Partial<PipelineRecord> = {}): PipelineRecord {
  return { id: pid(n), replication: members.length === 1 ? 'RATIS/ONE' : 'RATIS/THREE', state, nodes: members.map((m) => ({ id: dn(m), address: `h:${m}` })), createdAtMs: 1000, leaderId: dn(members[0]), ...extra }
}
const report = (n: number, leader: number | '', term: number, diverged = false): PipelineReport => ({ pipelineId: pid(n), leaderId: leader === '' ? '' : dn(leader), term, applied: 0, diverged })

test('parsePipelineReports() takes none as absent, checks every field, and refuses too many', () => {
  assert.is(parsePipelineReports(undefined, 'dn'), undefined)
  assert.equal(parsePipelineReports([report(1, 2, 3)], 'dn'), [report(1, 2, 3)])
  const code = (raw: unknown) => { try { parsePipelineReports(raw, 'dn'); return 'OK' } catch (e) { return (e as O3Error).code } }
  assert.is(code([{ ...report(1, 2, 3), term: 1.5 }]), 'INVALID_ARGUMENT')
  assert.is(code([{ ...report(1, 2, 3), pipelineId: 7 }]), 'INVALID_ARGUMENT')
  assert.is(code(Array.from({ length: PIPELINE_REPORTS_MAX + 1 }, (_, i) => ({ ...report(1, 2, 3), pipelineId: `abcdef00-${String(i).padStart(4, '0')}` }))), 'INVALID_ARGUMENT')
})

test('leaderFromReports() takes the highest term that names a member as leader', () => {
  const p = pipeline(1, [1, 2, 3])
  const reports = new Map([[dn(1), report(1, 1, 1)], [dn(2), report(1, 2, 4)], [dn(3), report(1, '', 5)]])
  assert.equal(leaderFromReports(p, (d) => reports.get(d)), { leaderId: dn(2), term: 4 })
  reports.set(dn(3), report(1, 9, 6))
  assert.equal(leaderFromReports(p, (d) => reports.get(d)), { leaderId: dn(2), term: 4 }, 'a non-member is never the leader')
  assert.is(leaderFromReports(p, () => undefined), undefined)
  assert.is(everyMemberReports({ ...p, state: 'ALLOCATED' }, (d) => reports.get(d)), true)
  assert.is(everyMemberReports({ ...p, state: 'ALLOCATED' }, (d) => (d === dn(3) ? undefined : reports.get(d))), false)
})

test('suggestLeader() picks the member leading the fewest live pipelines, the first on ties', () => {
  const live = [pipeline(1, [1]), pipeline(2, [2]), pipeline(3, [3]), pipeline(4, [1, 2, 3], 'OPEN', { leaderId: dn(2) }), pipeline(5, [4], 'CLOSED'), pipeline(6, [1, 2, 4], 'ALLOCATED', { leaderId: dn(1) })]
  // Leading: 1 -> 2, 2 -> 2, 3 -> 1, 4 -> 0 (its only pipeline is CLOSED).
  assert.is(suggestLeader([dn(1), dn(2), dn(3)], live), dn(3))
  assert.is(suggestLeader([dn(1), dn(2), dn(4)], live), dn(4))
  assert.is(suggestLeader([dn(1), dn(2)], live), dn(1))
})

test('pipelineCommands() creates the live groups a node does not report and removes unknown, foreign and long-closed ones', () => {
  const pipelines = new Map([
    [pid(1), pipeline(1, [1, 2, 3], 'ALLOCATED', { leaderId: dn(2) })],
    [pid(2), pipeline(2, [1], 'OPEN')],
    [pid(3), pipeline(3, [1, 4, 5], 'CLOSED', { closedAtMs: 10_000 })],
    [pid(4), pipeline(4, [4, 5, 6], 'OPEN')],
  ])
  const at = (nowMs: number, reports: PipelineReport[]) => pipelineCommands({ node: dn(1), reports, pipelines, nowMs, destroyTimeoutMs: 5000 })
  assert.equal(at(12_000, [report(2, 1, 1), report(3, 1, 1)]), [
    { type: 'createPipeline', pipelineId: pid(1), replication: 'RATIS/THREE', members: pipelines.get(pid(1))!.nodes, suggestedLeaderId: dn(2) },
  ], 'the closed group stays until the destroy timeout')
  assert.equal(at(15_000, [report(1, 2, 1), report(2, 1, 1), report(3, 1, 1), report(4, 4, 1), report(9, 1, 1)]), [
    { type: 'closePipeline', pipelineId: pid(3) },
    { type: 'closePipeline', pipelineId: pid(4) },
    { type: 'closePipeline', pipelineId: pid(9) },
  ])
})

test('formingTooLong() finds ALLOCATED pipelines older than PIPELINE_ALLOCATED_MS_MAX', () => {
  const ps = [pipeline(1, [1], 'ALLOCATED'), pipeline(2, [2], 'OPEN'), pipeline(3, [3], 'ALLOCATED', { createdAtMs: 5000 })]
  assert.equal(formingTooLong(ps, 1000 + PIPELINE_ALLOCATED_MS_MAX).map((p) => p.id), [pid(1)])
})

test.run()
