/**
 * Goal: figures the bench compares are taken in turns: every target runs once per round, no
 * target always first, a target that failed is not run again, and a figure's rounds combine
 * into total work over total time.
 * Method: takeTurns with a recording round function (no clock); combineRounds on fixed rounds.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { combineRounds, takeTurns } from '../../bench/measure.ts'

test('each round runs every target once, starting one further along each time', async () => {
  const order: string[] = []
  const byTarget = await takeTurns(3, 4, async (k, r) => { order.push(`${k}@${r}`); return { k, r } })
  assert.equal(order, ['0@0', '1@0', '2@0', '1@1', '2@1', '0@1', '2@2', '0@2', '1@2', '0@3', '1@3', '2@3'])
  assert.equal(byTarget.map((rs) => rs.map((x) => (x as { r: number }).r)), [[0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]], 'results by target, in round order')
})

test('a target whose round failed is not run again; the others go on', async () => {
  const runs: string[] = []
  const byTarget = await takeTurns(2, 3, async (k, r) => {
    runs.push(`${k}@${r}`)
    return k === 1 && r === 0 ? { error: 'ERROR: refused' } : { ok: true }
  })
  assert.equal(runs, ['0@0', '1@0', '0@1', '0@2'])
  assert.equal(byTarget[1], [{ error: 'ERROR: refused' }, { error: 'not run: an earlier round failed' }, { error: 'not run: an earlier round failed' }])
  assert.is(byTarget[0].length, 3)
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
