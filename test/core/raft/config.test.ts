/** Goal: makeConfig() fills defaults and rejects bad settings at construction (etcd's
 * Config.validate); RawNode refuses input between ready() and advance(). Method: direct calls. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { bootstrap, makeConfig, quorum, RawNode } from '../../../core/raft/index.ts'

const randomInt = () => 0

test('makeConfig() fills defaults', () => {
  const c = makeConfig({ id: 1, randomInt })
  assert.is(c.electionTimeoutTicks, 10)
  assert.is(c.heartbeatTimeoutTicks, 1)
  assert.ok(c.preVote)
  assert.ok(c.checkQuorum)
})

test('makeConfig() rejects bad values with RangeError', () => {
  assert.throws(() => makeConfig({ id: 0, randomInt }), RangeError)
  assert.throws(() => makeConfig({ id: 1.5, randomInt }), RangeError)
  assert.throws(() => makeConfig({ id: 1, randomInt, electionTimeoutTicks: 1 }), RangeError)
  assert.throws(() => makeConfig({ id: 1, randomInt, electionTimeoutTicks: 5, heartbeatTimeoutTicks: 5 }), RangeError)
  assert.throws(() => makeConfig({ id: 1, randomInt, inflightCountMax: 0 }), RangeError)
  assert.throws(() => makeConfig({ id: 1, randomInt, appendEntriesCountMax: 1e9 }), RangeError)
})

test('quorum() is a strict majority', () => {
  assert.equal([1, 2, 3, 4, 5].map((n) => quorum(Array.from({ length: n }, (_, i) => i + 1))), [1, 2, 2, 3, 3])
})

test('RawNode: a single voter elects itself and commits at once', () => {
  const node = new RawNode({ id: 1, randomInt }, bootstrap({ voters: [1], learners: [] }))
  const applied: string[] = []
  const drain = () => {
    while (node.hasReady()) {
      const rd = node.ready()
      for (const e of rd.committedEntries) applied.push(new TextDecoder().decode(e.data))
      node.advance(rd)
    }
  }
  node.campaign()
  assert.is(node.status().role, 'leader')
  assert.ok(node.propose(new TextEncoder().encode('x')).ok)
  drain()
  assert.equal(applied, ['', 'x'], 'the no-op, then the proposal')
  assert.is(node.status().applied, node.status().lastIndex)
})

test('RawNode refuses input between ready() and advance()', () => {
  const node = new RawNode({ id: 1, randomInt }, bootstrap({ voters: [1], learners: [] }))
  node.campaign()
  const rd = node.ready()
  assert.throws(() => node.tick(), /advance/)
  node.advance(rd)
  node.tick()
})

test.run()
