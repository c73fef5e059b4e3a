/**
 * Goal: nextWriteRun() cuts a chunk that arrives in any pieces into runs that cover it once,
 * in order, each but the last made of whole checksum windows and at least the minimum long.
 * Method: the pure planner driven by seeded random arrivals, as the datanode drives it (a run
 * finishes before the next is asked for), plus the edge cases named one by one.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { nextWriteRun, writeRunBytesMin, type WriteRun } from '../../datapath/datanode/write-runs.ts'
import { Prng } from '../sim/prng.ts'

function drive(seed: number, lengthBytes: number, windowBytes: number, runBytesMin: number): WriteRun[] {
  const prng = new Prng(seed)
  const runs: WriteRun[] = []
  let doneBytes = 0, arrivedBytes = 0
  for (;;) {
    const run = nextWriteRun({ doneBytes, arrivedBytes, lengthBytes, windowBytes, runBytesMin })
    if (run !== undefined) { runs.push(run); doneBytes = run.to; continue }
    if (arrivedBytes === lengthBytes) return runs
    arrivedBytes = Math.min(lengthBytes, arrivedBytes + 1 + prng.int(3 * windowBytes))
  }
}

test('nextWriteRun() covers the chunk once, in order, in runs of whole windows at least the minimum long', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const prng = new Prng(seed)
    const windowBytes = 1 + prng.int(64)
    const lengthBytes = prng.int(40 * windowBytes)
    const runBytesMin = 1 + prng.int(8 * windowBytes)
    const runs = drive(seed, lengthBytes, windowBytes, runBytesMin)
    let at = 0
    for (const [i, r] of runs.entries()) {
      assert.is(r.from, at, `seed ${seed}: run ${i} starts where the last ended`)
      assert.ok(r.to > r.from, `seed ${seed}: run ${i} is empty`)
      if (i < runs.length - 1) {
        assert.is(r.to % windowBytes, 0, `seed ${seed}: run ${i} ends inside a window`)
        assert.ok(r.to - r.from >= runBytesMin, `seed ${seed}: run ${i} below the minimum`)
      }
      at = r.to
    }
    assert.is(at, lengthBytes, `seed ${seed}: runs cover the chunk`)
  }
})

test('nextWriteRun() with an Infinity minimum makes one run, once the whole chunk has arrived', () => {
  assert.equal(drive(7, 1000, 16, Infinity), [{ from: 0, to: 1000 }])
  assert.is(nextWriteRun({ doneBytes: 0, arrivedBytes: 999, lengthBytes: 1000, windowBytes: 16, runBytesMin: Infinity }), undefined)
})

test('nextWriteRun() waits for a whole window and the minimum, and gives the short last window at the end', () => {
  const s = { doneBytes: 0, lengthBytes: 100, windowBytes: 16, runBytesMin: 40 }
  assert.is(nextWriteRun({ ...s, arrivedBytes: 31 }), undefined)
  assert.is(nextWriteRun({ ...s, arrivedBytes: 47 }), undefined)
  assert.equal(nextWriteRun({ ...s, arrivedBytes: 48 }), { from: 0, to: 48 })
  assert.equal(nextWriteRun({ ...s, doneBytes: 96, arrivedBytes: 99 }), undefined)
  assert.equal(nextWriteRun({ ...s, doneBytes: 96, arrivedBytes: 100 }), { from: 96, to: 100 })
  assert.is(nextWriteRun({ ...s, doneBytes: 100, arrivedBytes: 100 }), undefined)
  assert.is(nextWriteRun({ ...s, lengthBytes: 0, arrivedBytes: 0 }), undefined)
})

test('nextWriteRun() refuses impossible states', () => {
  const s = { doneBytes: 0, arrivedBytes: 0, lengthBytes: 100, windowBytes: 16, runBytesMin: 32 }
  assert.throws(() => nextWriteRun({ ...s, doneBytes: 8, arrivedBytes: 50 }), /inside a window/)
  assert.throws(() => nextWriteRun({ ...s, doneBytes: 32, arrivedBytes: 16 }), /done past arrived/)
  assert.throws(() => nextWriteRun({ ...s, arrivedBytes: 101 }), /past the chunk/)
  assert.throws(() => nextWriteRun({ ...s, windowBytes: 0 }), /window/)
})

test('writeRunBytesMin() cuts a default chunk in runs of 1 MiB and a 1 MiB chunk in four, never below 256 KiB', () => {
  const KiB = 1024, MiB = 1024 * KiB
  assert.is(writeRunBytesMin(4 * MiB), MiB)
  assert.is(writeRunBytesMin(16 * MiB), MiB)
  assert.is(writeRunBytesMin(2 * MiB), 512 * KiB)
  assert.is(writeRunBytesMin(MiB), 256 * KiB)
  assert.is(writeRunBytesMin(64 * KiB), 256 * KiB)
  assert.is(writeRunBytesMin(0), 256 * KiB)
  // A 1 MiB chunk arriving in 64 KiB pieces (16 KiB windows) is written in four runs while it arrives.
  const runs: WriteRun[] = []
  let doneBytes = 0
  for (let arrivedBytes = 64 * KiB; arrivedBytes <= MiB; arrivedBytes += 64 * KiB) {
    const run = nextWriteRun({ doneBytes, arrivedBytes, lengthBytes: MiB, windowBytes: 16 * KiB, runBytesMin: writeRunBytesMin(MiB) })
    if (run !== undefined) { runs.push(run); doneBytes = run.to }
  }
  assert.equal(runs.map((r) => r.to), [256 * KiB, 512 * KiB, 768 * KiB, MiB])
})

test.run()
