/**
 * Goal: figures the bench compares are taken in turns: every target runs once per round, no
 * target always first or always after the same other, a target that failed is not run again
 * (and says so), a figure's operations split over its rounds exactly, and its rounds combine
 * into total work over total time.
 * Method: takeTurns with a recording round function (no clock); turnOrder, splitCount and
 * combineRounds on fixed inputs.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { combineRounds, NOT_RUN_AFTER_FAILURE, splitCount, takeTurns, turnOrder } from '../../bench/measure.ts'

test('each round runs every target once; the order changes so that none always goes first or after the same other', async () => {
  const order: string[] = []
  const byTarget = await takeTurns(3, 4, async (k, r) => { order.push(`${k}@${r}`); return { k, r } })
  assert.equal(order, ['0@0', '1@0', '2@0', '2@1', '1@1', '0@1', '2@2', '0@2', '1@2', '1@3', '0@3', '2@3'])
  assert.equal(byTarget.map((rs) => rs.map((x) => (x as { r: number }).r)), [[0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]], 'results by target, in round order')
  // Two targets alternate who goes first.
  assert.equal([0, 1, 2, 3].map((r) => turnOrder(2, r)), [[0, 1], [1, 0], [0, 1], [1, 0]])
  // Five targets over four rounds: four different first targets, and each target's predecessor changes.
  const five = [0, 1, 2, 3].map((r) => turnOrder(5, r))
  assert.is(new Set(five.map((o) => o[0])).size, 4)
  for (let k = 0; k < 5; k++) {
    const before = five.map((o) => o[o.indexOf(k) - 1])
    assert.ok(new Set(before).size > 1, `target ${k} follows different targets: ${before.join(', ')}`)
  }
})

test('a target whose round failed is not run again; the others go on', async () => {
  const runs: string[] = []
  const skipped: string[] = []
  const byTarget = await takeTurns(2, 3, async (k, r) => {
    runs.push(`${k}@${r}`)
    return k === 1 && r === 0 ? { error: 'ERROR: refused' } : { ok: true }
  }, (k, r) => skipped.push(`${k}@${r}`))
  assert.equal(runs, ['0@0', '1@0', '0@1', '0@2'])
  assert.equal(skipped, ['1@1', '1@2'], 'each round not run is told, so progress still counts it')
  assert.equal(byTarget[1], [{ error: 'ERROR: refused' }, { error: NOT_RUN_AFTER_FAILURE }, { error: NOT_RUN_AFTER_FAILURE }])
  assert.is(byTarget[0].length, 3)
})

test('a figure\'s operations split over its rounds exactly', () => {
  assert.equal(splitCount(6, 4), [{ first: 0, count: 2 }, { first: 2, count: 2 }, { first: 4, count: 1 }, { first: 5, count: 1 }])
  assert.equal(splitCount(2000, 4).map((p) => p.count), [500, 500, 500, 500])
  assert.equal(splitCount(1, 1), [{ first: 0, count: 1 }])
  assert.throws(() => splitCount(1, 2), /at least one operation per round/)
})

test('rounds combine into total work over total time, with the slowest round\'s latencies', () => {
  const ops = combineRounds([
    { ops: 100, concurrency: 32, seconds: 1, opsPerSec: 100, p50Ms: 5, p99Ms: 9, serverCpuMs: 50 },
    { ops: 100, concurrency: 32, seconds: 3, opsPerSec: 33.3, p50Ms: 7, p99Ms: 8, serverCpuMs: 70 },
  ])
  assert.equal(ops, { ops: 200, concurrency: 32, seconds: 4, opsPerSec: 50, p50Ms: 7, p99Ms: 9, serverCpuMs: 120 })
  const mb = combineRounds([
    { bytes: 2_000_000, seconds: 1, mbPerSec: 2, samplesMbPerSec: [2] },
    { bytes: 6_000_000, seconds: 1, mbPerSec: 6, samplesMbPerSec: [6] },
  ])
  assert.equal(mb, { bytes: 8_000_000, seconds: 2, mbPerSec: 4, samplesMbPerSec: [2, 6], serverCpuMs: undefined })
  assert.equal(combineRounds([{ bytes: 1, seconds: 1, mbPerSec: 1, samplesMbPerSec: [1] }, { error: 'ERROR: x' }]), { error: 'ERROR: x' }, 'a failed round fails the figure')
})

test.run()
