/**
 * Goal: a PUT figure's warm pages are written and freed between the warm-up and the timed
 * runs, leave no file behind, cost none of the server's measured CPU, and can be turned off.
 * Method: real files in the temp folder; measureThroughput with a clock that advances only
 * in the ops, and the order of calls recorded.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { measureThroughput } from '../../bench/measure.ts'
import { setPageWarming, warmPages } from '../../bench/page-pool.ts'

const scratch = () => readdirSync(tmpdir()).filter((n) => n.startsWith('o3-bench-pages-'))

test('warmPages writes the bytes asked for (4 MiB pieces), deletes them and says what the kernel spent', () => {
  const before = scratch()
  const msPerMiB = warmPages(9 * 1024 * 1024)
  assert.type(msPerMiB, 'number')
  assert.ok(msPerMiB! >= 0 && Number.isFinite(msPerMiB!), `a cost per MiB (${msPerMiB})`)
  assert.equal(scratch(), before, 'no scratch folder is left')
  assert.is(warmPages(0), undefined, 'nothing to warm for no bytes')
})

test('--cold-pages: warming off writes nothing', () => {
  setPageWarming(false)
  try {
    assert.is(warmPages(8 * 1024 * 1024), undefined)
  } finally {
    setPageWarming(true)
  }
})

test('measureThroughput runs beforeTimed once, after the warm-up and outside the timed CPU', async () => {
  const calls: string[] = []
  let clock = 0
  const r = await measureThroughput({
    iterations: 2, bytes: 1024,
    op: async (i) => { calls.push(`op ${i}`); clock += 5 },
    beforeTimed: () => { calls.push('warm'); clock += 1000 },
    cpu: () => clock,
  })
  assert.equal(calls, ['op 2', 'warm', 'op 0', 'op 1'])
  assert.is(r.serverCpuMs, 10)
})

test.run()
