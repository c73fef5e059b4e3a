/**
 * Goal: the client's memory of datanodes its reads could not reach (FailedNodes) holds one for
 * CLIENT_FAILED_NODE_MS (one a read waited a whole timeout on for CLIENT_TIMED_OUT_NODE_MS), forgets it at once when a read from it succeeds, counts only
 * unreachable nodes (not a busy node's answer, a corrupt replica or a missing block), and stays within
 * CLIENT_FAILED_NODES_MAX entries, the oldest dropped first. Its memory of corrupt replicas
 * holds a container (or an EC block group) on a datanode for CLIENT_CORRUPT_REPLICA_MS whatever
 * reads succeed meanwhile, until forgetCorrupt(), and stays within CLIENT_CORRUPT_REPLICAS_MAX.
 * Method: FailedNodes on its own with a clock the test moves; real O3Errors.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error, fromWire } from '../../../core/errors.ts'
import { transportError } from '../../../core/rpc/client.ts'
import { CLIENT_CORRUPT_REPLICA_MS, CLIENT_CORRUPT_REPLICAS_MAX, CLIENT_FAILED_NODE_MS, CLIENT_FAILED_NODES_MAX, CLIENT_TIMED_OUT_NODE_MS } from '../../../core/limits.ts'
import type { ContainerId, LocalId } from '../../../core/wire.ts'
import { FailedNodes, corruptBlock, corruptContainer } from '../../../datapath/client/failed-nodes.ts'

test('a failed node is remembered for its time, then forgotten; a read that succeeds forgets it at once', () => {
  let now = 1_000
  const nodes = new FailedNodes(CLIENT_FAILED_NODE_MS, () => now)
  nodes.note('a:1')
  assert.ok(nodes.has('a:1'))
  assert.not.ok(nodes.has('b:1'), 'only the node noted')
  now += CLIENT_FAILED_NODE_MS - 1
  assert.ok(nodes.has('a:1'), 'still within its time')
  now += 1
  assert.not.ok(nodes.has('a:1'), 'forgotten once its time is up')
  nodes.note('a:1')
  nodes.forget('a:1')
  assert.not.ok(nodes.has('a:1'), 'forgotten when a read from it succeeded')
})

test('noting a node again restarts its time', () => {
  let now = 0
  const nodes = new FailedNodes(100, () => now)
  nodes.note('a:1')
  now = 90
  nodes.note('a:1')
  now = 150
  assert.ok(nodes.has('a:1'))
  now = 190
  assert.not.ok(nodes.has('a:1'))
})

test('only unreachable nodes count: a refused or timed-out connection, not an answer the node sent (busy, corrupt, missing)', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
  const timedOut = Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' })
  assert.ok(FailedNodes.unreachable(transportError('127.0.0.1:1', refused)))
  assert.ok(FailedNodes.unreachable(transportError('127.0.0.1:1', timedOut)))
  // As readChunk wraps it, naming the node.
  const named = transportError('127.0.0.1:1', refused)
  assert.ok(FailedNodes.unreachable(new O3Error(named.code, named.message, { node: '127.0.0.1:1', cause: named })))
  // Answers the datanode sent, read back with fromWire (and wrapped the same way).
  const busy = fromWire({ code: 'UNAVAILABLE', message: 'a read buffer (all 8 are in use)' }, 'readChunk')
  assert.not.ok(FailedNodes.unreachable(busy))
  assert.not.ok(FailedNodes.unreachable(new O3Error(busy.code, busy.message, { node: '127.0.0.1:1', cause: busy })))
  assert.not.ok(FailedNodes.unreachable(new O3Error('CHECKSUM_MISMATCH', 'Checksum mismatch')))
  assert.not.ok(FailedNodes.unreachable(fromWire({ code: 'BLOCK_NOT_FOUND', message: 'no block' }, 'readChunk')))
})

test('a node a read waited out its timeout on is remembered for CLIENT_TIMED_OUT_NODE_MS, a refused one for CLIENT_FAILED_NODE_MS', () => {
  let now = 0
  const nodes = new FailedNodes(CLIENT_FAILED_NODE_MS, () => now)
  const refused = transportError('127.0.0.1:1', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))
  const frozen = transportError('127.0.0.2:1', Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))
  assert.ok(FailedNodes.timedOut(frozen))
  assert.ok(FailedNodes.timedOut(transportError('127.0.0.3:1', Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }))), 'a lost host: the connection attempt timed out')
  assert.not.ok(FailedNodes.timedOut(refused))
  nodes.readFailed('127.0.0.1:1', refused)
  nodes.readFailed('127.0.0.2:1', new O3Error(frozen.code, frozen.message, { node: '127.0.0.2:1', cause: frozen }))
  now = CLIENT_FAILED_NODE_MS
  assert.not.ok(nodes.has('127.0.0.1:1'), 'a refused node is tried again soon: finding it out costs little')
  assert.ok(nodes.has('127.0.0.2:1'), 'a node that cost a whole timeout is still gone around')
  now = CLIENT_TIMED_OUT_NODE_MS - 1
  assert.ok(nodes.has('127.0.0.2:1'))
  now = CLIENT_TIMED_OUT_NODE_MS
  assert.not.ok(nodes.has('127.0.0.2:1'))
})

test('bounded: past CLIENT_FAILED_NODES_MAX the oldest is dropped first', () => {
  const nodes = new FailedNodes(CLIENT_FAILED_NODE_MS, () => 0)
  for (let i = 0; i <= CLIENT_FAILED_NODES_MAX; i++) nodes.note(`n:${i}`)
  assert.not.ok(nodes.has('n:0'), 'the oldest dropped')
  assert.ok(nodes.has('n:1'))
  assert.ok(nodes.has(`n:${CLIENT_FAILED_NODES_MAX}`))
})

test('a corrupt replica is remembered by what and datanode for CLIENT_CORRUPT_REPLICA_MS; a read that succeeds does not clear it; forgetCorrupt does; bounded', () => {
  let now = 0
  const nodes = new FailedNodes(CLIENT_FAILED_NODE_MS, () => now)
  const c = (n: number) => corruptContainer(n as ContainerId)
  nodes.corrupt(c(7), 'a:1')
  assert.ok(nodes.isCorrupt(c(7), 'a:1'))
  assert.not.ok(nodes.isCorrupt(c(8), 'a:1'), 'another container on the same datanode is not')
  assert.not.ok(nodes.isCorrupt(c(7), 'b:1'), 'another replica of the container is not')
  assert.not.ok(nodes.has('a:1'), 'the datanode itself is not failed')
  const group = { containerId: 7 as ContainerId, localId: 3 as LocalId }
  nodes.corrupt(corruptBlock(group), 'b:1')
  assert.ok(nodes.isCorrupt(corruptBlock(group), 'b:1'))
  assert.not.ok(nodes.isCorrupt(corruptBlock({ ...group, localId: 4 as LocalId }), 'b:1'), 'an EC block group: only that group')
  assert.not.ok(nodes.isCorrupt(c(7), 'b:1'), 'a block group is not its container')
  nodes.forget('a:1')
  now += CLIENT_CORRUPT_REPLICA_MS - 1
  assert.ok(nodes.isCorrupt(c(7), 'a:1'), 'a read from the datanode that succeeded does not clear it')
  now += 1
  assert.not.ok(nodes.isCorrupt(c(7), 'a:1'), 'forgotten once its time is up')
  nodes.corrupt(c(7), 'a:1')
  nodes.forgetCorrupt(c(7), 'a:1')
  assert.not.ok(nodes.isCorrupt(c(7), 'a:1'), 'forgotten when the SCM did not take the report')
  for (let i = 0; i <= CLIENT_CORRUPT_REPLICAS_MAX; i++) nodes.corrupt(c(i), 'a:1')
  assert.not.ok(nodes.isCorrupt(c(0), 'a:1'), 'the oldest dropped past the limit')
  assert.ok(nodes.isCorrupt(c(1), 'a:1') && nodes.isCorrupt(c(CLIENT_CORRUPT_REPLICAS_MAX), 'a:1'))
})

test.run()
