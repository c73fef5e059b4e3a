/**
 * Goal: the client's leader routing decides right without a network: where a pipeline's
 * writes go first (cache, leaderId, nodes[0]), which member a failed write tries next
 * (NOT_LEADER hint, next member, a sibling's finding), when it waits, when it gives up and
 * with what message; and the slow datanodes a client avoids expire.
 * Method: the pure functions of datapath/client/pipeline-leader.ts and slow-datanodes.ts
 * with time passed in; errors built as datanode-io builds them.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import { PIPELINE_LEADER_WAIT_MS_MAX, RPC_GROUP_BACKOFF_MS_MAX } from '../../../core/limits.ts'
import type { DatanodeId, Pipeline, PipelineId } from '../../../core/wire.ts'
import { LeaderCache, nextTry, startSearch, type NextTry } from '../../../datapath/client/pipeline-leader.ts'
import { SlowDatanodes } from '../../../datapath/client/slow-datanodes.ts'

const A = 'dn-a:1', B = 'dn-b:2', C = 'dn-c:3'

function pipeline(extra: Partial<Pipeline> = {}): Pipeline {
  return {
    id: 'p1' as PipelineId, replication: 'RATIS/THREE', state: 'OPEN', createdAtMs: 0,
    nodes: [{ id: 'a' as DatanodeId, address: A }, { id: 'b' as DatanodeId, address: B }, { id: 'c' as DatanodeId, address: C }],
    ...extra,
  }
}

const refused = (at: string) => new O3Error('UNAVAILABLE', `Cannot reach ${at}: ECONNREFUSED`, { node: at })
const notLeader = (leader?: string) => new O3Error('NOT_LEADER', 'Cannot write chunk: not the leader', { leader })

function address(t: NextTry): string {
  assert.ok('address' in t, `a next try, got ${'error' in t ? t.error.message : ''}`)
  return (t as { address: string }).address
}

test('LeaderCache.leaderOf() takes leaderId, else nodes[0]', () => {
  const cache = new LeaderCache()
  assert.is(cache.leaderOf(pipeline()), A)
  assert.is(cache.leaderOf(pipeline({ leaderId: 'c' as DatanodeId, term: 2 })), C)
  // A leaderId that is no member (a stale answer) falls back to nodes[0].
  assert.is(cache.leaderOf(pipeline({ leaderId: 'z' as DatanodeId })), A)
})

test('LeaderCache.leaderOf() prefers the learned leader unless the pipeline names a later term', () => {
  const cache = new LeaderCache()
  cache.learned(pipeline({ leaderId: 'a' as DatanodeId, term: 3 }), B)
  assert.is(cache.leaderOf(pipeline({ leaderId: 'a' as DatanodeId, term: 3 })), B)
  assert.is(cache.leaderOf(pipeline({ leaderId: 'a' as DatanodeId })), B)
  assert.is(cache.leaderOf(pipeline({ leaderId: 'c' as DatanodeId, term: 4 })), C)
})

test('LeaderCache drops the oldest pipeline past its size', () => {
  const cache = new LeaderCache(2)
  for (const id of ['p1', 'p2', 'p3']) cache.learned(pipeline({ id: id as PipelineId }), B)
  assert.is(cache.size, 2)
  assert.is(cache.cached('p1' as PipelineId), undefined)
  assert.is(cache.cached('p3' as PipelineId), B)
})

test('nextTry() on a one-member pipeline: a member not reached fails the write at once; NOT_LEADER (no leader yet) waits as in a group', () => {
  const one = pipeline({ replication: 'RATIS/ONE', nodes: [{ id: 'a' as DatanodeId, address: A }] })
  for (const err of [refused(A), new O3Error('TIMEOUT', `Cannot reach ${A}: UND_ERR_HEADERS_TIMEOUT`, { node: A })]) {
    const t = nextTry(startSearch(one, A, 0), err, 1)
    assert.ok('error' in t, 'no second try')
    const e = (t as { error: O3Error }).error
    assert.is(e.code, err.code)
    assert.is(e.node, A, 'the failed node is named: the writer excludes its pipeline')
    assert.is(e.message, `Cannot write to pipeline p1: its one member ${A} did not take the write (${err.message})`)
  }
  assert.is(address(nextTry(startSearch(one, A, 0), notLeader(), 1)), A)
})

test('nextTry() follows a NOT_LEADER hint at once, a second hint in a row after a pause', () => {
  const s = startSearch(pipeline({ leaderId: 'a' as DatanodeId }), A, 0)
  const first = nextTry(s, notLeader(C), 0)
  assert.equal(first, { address: C, delayMs: 0 })
  const second = nextTry(s, notLeader(B), 10)
  assert.is(address(second), B)
  assert.ok((second as { delayMs: number }).delayMs > 0)
  assert.equal(s.tried, [A, C, B])
})

test('nextTry() goes to the next member after a refusal, an empty hint or a timeout, wrapping around', () => {
  const s = startSearch(pipeline({ leaderId: 'b' as DatanodeId }), B, 0)
  assert.equal(nextTry(s, refused(B), 0), { address: C, delayMs: 0 })
  assert.equal(nextTry(s, notLeader(''), 0), { address: A, delayMs: 0 })
  // A full round failed: the next goes round again, after a pause that grows to its bound.
  const t = nextTry(s, new O3Error('TIMEOUT', 'timed out'), 0)
  assert.is(address(t), B)
  assert.ok((t as { delayMs: number }).delayMs > 0)
  let delay = 0
  for (let i = 0; i < 30; i++) delay = (nextTry(s, refused(s.current), 0) as { delayMs: number }).delayMs
  assert.is(delay, RPC_GROUP_BACKOFF_MS_MAX)
})

test('nextTry() goes to the leader a sibling write learned meanwhile', () => {
  const s = startSearch(pipeline(), A, 0)
  assert.equal(nextTry(s, refused(A), 0, C), { address: C, delayMs: 0 })
  // The cached leader is the one that failed: on to the next member.
  assert.equal(nextTry(s, refused(C), 0, C), { address: A, delayMs: 0 })
})

test('nextTry() fails at once with an error that is the write\'s own', () => {
  const s = startSearch(pipeline(), A, 0)
  for (const code of ['CONTAINER_NOT_OPEN', 'CHECKSUM_MISMATCH', 'INVALID_ARGUMENT', 'DISK_FULL'] as const) {
    const err = new O3Error(code, 'no')
    const t = nextTry(s, err, 0)
    assert.ok('error' in t && t.error === err, code)
  }
  assert.is(s.failures, 0)
})

test('nextTry() gives up after PIPELINE_LEADER_WAIT_MS_MAX with UNAVAILABLE naming the pipeline and the members tried', () => {
  const s = startSearch(pipeline(), A, 1000)
  address(nextTry(s, refused(A), 1000))
  address(nextTry(s, notLeader(''), 1000 + PIPELINE_LEADER_WAIT_MS_MAX / 2))
  const t = nextTry(s, refused(C), 1000 + PIPELINE_LEADER_WAIT_MS_MAX)
  assert.ok('error' in t)
  const e = (t as { error: O3Error }).error
  assert.is(e.code, 'UNAVAILABLE')
  assert.match(e.message, 'pipeline p1')
  assert.match(e.message, `tried ${A}, ${B}, ${C}`)
  assert.match(e.message, 'ECONNREFUSED')
  assert.is(e.node, undefined, 'a pipeline given up on names no one member to exclude')
})

test('nextTry() past the wait still tries each member never tried, once', () => {
  // A leader that hung answers TIMEOUT only after an RPC timeout, past the whole wait.
  const s = startSearch(pipeline(), A, 0)
  const timeout = new O3Error('TIMEOUT', 'Cannot reach dn-a:1: UND_ERR_HEADERS_TIMEOUT')
  assert.equal(nextTry(s, timeout, 30_000), { address: B, delayMs: 0 })
  assert.equal(nextTry(s, notLeader(A), 30_001), { address: C, delayMs: 0 })
  const t = nextTry(s, refused(C), 30_002)
  assert.ok('error' in t && t.error.code === 'UNAVAILABLE')
})

test('nextTry() with a shorter wait (a watch) gives up sooner', () => {
  const s = startSearch(pipeline(), A, 0, 100)
  address(nextTry(s, refused(A), 50))
  address(nextTry(s, refused(B), 60))
  assert.ok('error' in nextTry(s, refused(C), 100))
})

test('SlowDatanodes.list() keeps a datanode until its time is up, and at most its size', () => {
  const slow = new SlowDatanodes(1000, 2)
  slow.add(['a' as DatanodeId], 0)
  slow.add(['b' as DatanodeId], 500)
  assert.equal(slow.list(999), ['a', 'b'])
  assert.equal(slow.list(1000), ['b'])
  slow.add(['a' as DatanodeId, 'c' as DatanodeId], 1200)
  assert.equal(slow.list(1200), ['a', 'c'])
  assert.equal(slow.list(2200), [])
  slow.add(['a' as DatanodeId, 'b' as DatanodeId], 3000)
  slow.forget(['a' as DatanodeId])
  assert.equal(slow.list(3000), ['b'])
})

test('SlowDatanodes.anyLagging() remembers a forgotten datanode lagged, until its time is up', () => {
  const slow = new SlowDatanodes(1000, 4)
  slow.add(['a' as DatanodeId], 0)
  slow.forget(['a' as DatanodeId])
  assert.equal(slow.list(10), [], 'no longer avoided')
  assert.ok(slow.anyLagging(['x' as DatanodeId, 'a' as DatanodeId], 10), 'still known to lag: the next watch is short')
  assert.not.ok(slow.anyLagging(['a' as DatanodeId], 1000), 'expired')
  assert.not.ok(slow.anyLagging(['b' as DatanodeId], 10))
})

test.run()
