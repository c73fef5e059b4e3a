/**
 * Goal: the client's memory of datanodes its reads could not reach (FailedNodes) holds one for
 * CLIENT_FAILED_NODE_MS, forgets it at once when a read from it succeeds, counts only
 * unreachable nodes (not a corrupt replica or a missing block), and stays within
 * CLIENT_FAILED_NODES_MAX entries, the oldest dropped first.
 * Method: FailedNodes on its own with a clock the test moves; real O3Errors.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import { CLIENT_FAILED_NODE_MS, CLIENT_FAILED_NODES_MAX } from '../../../core/limits.ts'
import { FailedNodes } from '../../../datapath/client/failed-nodes.ts'

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

test('only unreachable nodes count: connection errors and timeouts, not a corrupt replica or a missing block', () => {
  assert.ok(FailedNodes.unreachable(new O3Error('UNAVAILABLE', 'Cannot reach 127.0.0.1:1: ECONNREFUSED')))
  assert.ok(FailedNodes.unreachable(new O3Error('TIMEOUT', 'Cannot reach 127.0.0.1:1: UND_ERR_HEADERS_TIMEOUT')))
  assert.not.ok(FailedNodes.unreachable(new O3Error('CHECKSUM_MISMATCH', 'Checksum mismatch')))
  assert.not.ok(FailedNodes.unreachable(new O3Error('BLOCK_NOT_FOUND', 'no block')))
})

test('bounded: past CLIENT_FAILED_NODES_MAX the oldest is dropped first', () => {
  const nodes = new FailedNodes(CLIENT_FAILED_NODE_MS, () => 0)
  for (let i = 0; i <= CLIENT_FAILED_NODES_MAX; i++) nodes.note(`n:${i}`)
  assert.not.ok(nodes.has('n:0'), 'the oldest dropped')
  assert.ok(nodes.has('n:1'))
  assert.ok(nodes.has(`n:${CLIENT_FAILED_NODES_MAX}`))
})

test.run()
