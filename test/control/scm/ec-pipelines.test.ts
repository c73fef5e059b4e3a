/**
 * Goal: chooseEcPipeline() and placeEcPipeline() place EC pipelines as Ozone's
 * ECPipelineProvider and WritableECContainerProvider do (issue 14): an open EC pipeline of the
 * same replication that avoids the exclude list is reused; otherwise k + m distinct usable
 * nodes, the least loaded first, form a new one; a pipeline whose open container is excluded
 * is passed over while a new one can be placed; fewer than k + m usable nodes is a typed
 * NO_PIPELINE naming what is needed, what there is and how many were excluded.
 * Method: the pure functions on hand-built node lists and pipelines, one case per rule.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import { parseReplication, type ContainerId, type DatanodeId, type Pipeline, type PipelineId } from '../../../core/wire.ts'
import { chooseEcPipeline, ecRefusal, placeEcPipeline, type EcChoiceInput } from '../../../control/scm/ec-pipelines.ts'

const dn = (i: number) => `dn-0000000${i}` as DatanodeId
const nodes = (...is: number[]) => is.map(dn)
const RS32 = 'EC/rs-3-2-1024k'

function pipeline(id: string, replication: string, members: number[], state: Pipeline['state'] = 'OPEN'): Pipeline {
  return { id: id as PipelineId, replication, state, nodes: members.map((i) => ({ id: dn(i), address: `127.0.0.1:${9000 + i}` })), createdAtMs: 0 }
}

function input(more: Partial<EcChoiceInput> = {}): EcChoiceInput {
  return {
    replication: RS32, parsed: parseReplication(RS32), usable: nodes(1, 2, 3, 4, 5, 6), live: [],
    exclude: { datanodes: new Set(), pipelines: new Set(), containers: new Set() }, openContainerOf: () => undefined, ...more,
  }
}

function refusal(run: () => unknown): O3Error {
  try { run() } catch (err) { assert.instance(err, O3Error); return err as O3Error }
  throw new Error('expected a refusal')
}

test('placeEcPipeline() takes k + m distinct nodes, those in the fewest live pipelines first, ties by id', () => {
  const live = [pipeline('p1', 'RATIS/THREE', [1, 2, 3]), pipeline('p2', 'RATIS/ONE', [1])]
  assert.equal(placeEcPipeline(nodes(1, 2, 3, 4, 5, 6), new Set(), 5, live), nodes(4, 5, 6, 2, 3))
  assert.equal(placeEcPipeline(nodes(1, 1, 2, 3, 4), new Set(), 5, []), undefined, 'a node twice counts once')
  assert.equal(placeEcPipeline(nodes(1, 2, 3, 4, 5, 6), new Set([dn(6)]), 5, []), nodes(1, 2, 3, 4, 5))
  assert.equal(placeEcPipeline(nodes(1, 2, 3, 4, 5, 6), new Set([dn(5), dn(6)]), 5, []), undefined)
})

test('chooseEcPipeline() with no EC pipeline places a new one of k + m distinct nodes', () => {
  const c = chooseEcPipeline(input())
  assert.ok('create' in c)
  assert.is(new Set(c.create).size, 5)
  const xor = chooseEcPipeline(input({ replication: 'EC/xor-2-1-1024k', parsed: parseReplication('EC/xor-2-1-1024k') }))
  assert.ok('create' in xor && xor.create.length === 3)
})

test('chooseEcPipeline() reuses open pipelines of the same replication only', () => {
  const live = [
    pipeline('rs', RS32, [1, 2, 3, 4, 5]), pipeline('rs63', 'EC/rs-6-3-1024k', [1, 2, 3, 4, 5, 6]),
    pipeline('other-cell', 'EC/rs-3-2-2048k', [2, 3, 4, 5, 6]), pipeline('closed', RS32, [2, 3, 4, 5, 6], 'CLOSED'), pipeline('r3', 'RATIS/THREE', [1, 2, 3]),
  ]
  const c = chooseEcPipeline(input({ live }))
  assert.ok('reuse' in c)
  assert.equal(c.reuse.map((p) => p.id), ['rs'])
})

test('chooseEcPipeline() passes over a pipeline with an excluded, unhealthy or out-of-service member, or itself excluded', () => {
  const live = [pipeline('a', RS32, [1, 2, 3, 4, 5]), pipeline('b', RS32, [2, 3, 4, 5, 6])]
  const byNode = chooseEcPipeline(input({ live, exclude: { datanodes: new Set([dn(1)]), pipelines: new Set(), containers: new Set() } }))
  assert.ok('reuse' in byNode)
  assert.equal(byNode.reuse.map((p) => p.id), ['b'])
  const byPipeline = chooseEcPipeline(input({ live, exclude: { datanodes: new Set(), pipelines: new Set(['b' as PipelineId]), containers: new Set() } }))
  assert.ok('reuse' in byPipeline)
  assert.equal(byPipeline.reuse.map((p) => p.id), ['a'])
  // Node 6 not usable (STALE, or decommissioning) rules out b, excluded node 1 rules out a, and 4 nodes cannot hold a new one.
  const none = refusal(() => chooseEcPipeline(input({ live, usable: nodes(1, 2, 3, 4, 5), exclude: { datanodes: new Set([dn(1)]), pipelines: new Set(), containers: new Set() } })))
  assert.is(none.code, 'NO_PIPELINE')
  assert.is(none.message, `Cannot allocate an ${RS32} block: it needs 5 healthy in-service datanodes with room, 5 are (1 of them excluded)`)
})

test('chooseEcPipeline() places a new pipeline rather than reuse one whose open container is excluded, and reuses it when it cannot', () => {
  const live = [pipeline('a', RS32, [1, 2, 3, 4, 5])]
  const openContainerOf = (id: PipelineId) => (id === 'a' ? 7 as ContainerId : undefined)
  const exclude = { datanodes: new Set<DatanodeId>(), pipelines: new Set<PipelineId>(), containers: new Set([7 as ContainerId]) }
  const fresh = chooseEcPipeline(input({ live, openContainerOf, exclude }))
  assert.ok('create' in fresh)
  assert.is(fresh.create[0], dn(6), 'the unloaded node first')
  const fallback = chooseEcPipeline(input({ live, openContainerOf, exclude, usable: nodes(1, 2, 3, 4, 5) }))
  assert.ok('reuse' in fallback)
  assert.equal(fallback.reuse.map((p) => p.id), ['a'])
})

test('chooseEcPipeline() refuses with NO_PIPELINE when fewer than k + m nodes are usable, saying how many and how many were excluded', () => {
  const few = refusal(() => chooseEcPipeline(input({ usable: nodes(1, 2, 3) })))
  assert.is(few.code, 'NO_PIPELINE')
  assert.is(few.message, `Cannot allocate an ${RS32} block: it needs 5 healthy in-service datanodes with room, 3 are`)
  const excluded = refusal(() => chooseEcPipeline(input({ exclude: { datanodes: new Set([dn(1), dn(2), dn(9)]), pipelines: new Set(), containers: new Set() } })))
  assert.is(excluded.message, `Cannot allocate an ${RS32} block: it needs 5 healthy in-service datanodes with room, 6 are (2 of them excluded)`)
  assert.is(ecRefusal('EC/rs-6-3-1024k', 9, nodes(1), new Set()).message, 'Cannot allocate an EC/rs-6-3-1024k block: it needs 9 healthy in-service datanodes with room, 1 is')
  assert.is(ecRefusal('EC/rs-6-3-1024k', 9, nodes(1, 2, 3, 4, 5, 6), new Set(), 3).message, 'Cannot allocate an EC/rs-6-3-1024k block: it needs 9 healthy in-service datanodes with room, 6 are; 3 more are full')
})

test.run()
