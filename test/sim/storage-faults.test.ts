/** Goal: the storage fault class (torn writes, writes reaching the disk out of order) never
 * costs a wrong answer, and an fsync that reports success and loses the writes is caught
 * by recovery's check (a missing record before synced ones) or, where nothing on disk shows
 * it, costs only availability: nodes that distrust fsync recover from their peers.
 * Method: the simulator with SimStorage's faults on, over its own seeds;
 * `npm run sim -- --storage` and `--lost-fsync` run more. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { replay, runSeeds } from './run.ts'
import { SimStorage } from './storage.ts'
import { Prng } from './prng.ts'
import { bootstrap, type Entry } from '../../core/raft/index.ts'

const SEEDS = 200

test(`runSimulation() with torn and reordered writes finds no violation in ${SEEDS} seeds`, () => {
  const { failures } = runSeeds({ first: 1, count: SEEDS, storageFaults: true })
  assert.equal(failures.map((f) => `seed ${f.seed} (${f.nodes} nodes): ${f.violations.join('; ')}`), [])
})

const LOST_FSYNC_SEEDS = 400

test(`runSimulation() with fsyncs that lie gives no wrong answer in ${LOST_FSYNC_SEEDS} seeds`, () => {
  const { failures, detected } = runSeeds({ first: 1, count: LOST_FSYNC_SEEDS, storageFaults: true, lostFsync: true })
  assert.equal(failures.map((f) => `seed ${f.seed} (${f.nodes} nodes): ${f.violations.join('; ')}`), [])
  assert.ok(detected > 0, 'some lie was caught or cost availability')
})

test('replay() of a storage-fault seed gives the same trace twice', () => {
  const a = replay({ seed: 5, storageFaults: true, lostFsync: true })
  const b = replay({ seed: 5, storageFaults: true, lostFsync: true })
  assert.equal(a.trace, b.trace)
})

function entry(index: number): Entry {
  return { index, term: 1, type: 'normal', data: new Uint8Array([index]) }
}

test('SimStorage.restore() keeps only the records before the first hole', () => {
  // A prng whose first draws tear the write in progress and land nothing else.
  for (let seed = 1; seed < 50; seed++) {
    const s = new SimStorage(bootstrap({ voters: [1], learners: [] }), new Prng(seed))
    s.write({ kind: 'entries', entries: [entry(2)] })
    s.sync()
    s.write({ kind: 'entries', entries: [entry(3)] })
    s.write({ kind: 'entries', entries: [entry(4)] })
    s.crash(new Prng(seed + 1000))
    const indexes = s.restore().entries.map((e) => e.index)
    // Whatever landed and whatever tore, the log is a prefix without a gap, and synced 2 survives.
    assert.ok([[2], [2, 3], [2, 3, 4]].some((x) => x.join() === indexes.join()), `seed ${seed}: ${indexes.join()}`)
  }
})

test('SimStorage.restore() refuses a log whose synced records follow a lost one', () => {
  let refused = 0
  for (let seed = 1; seed < 200; seed++) {
    const s = new SimStorage(bootstrap({ voters: [1], learners: [] }), new Prng(seed), true)
    for (let i = 2; i < 200; i++) {
      s.write({ kind: 'entries', entries: [entry(i)] })
      s.sync()
    }
    if (s.lostSyncCount === 0) continue
    s.crash(new Prng(seed))
    assert.throws(() => s.restore(), /lost acknowledged writes/)
    refused++
  }
  assert.ok(refused > 0, 'some fsync lied')
})


test('SimStorage: an fsync that leaves its writes in the cache loses them in a crash, and nothing shows it', () => {
  let lost = 0
  for (let seed = 1; seed < 400; seed++) {
    const s = new SimStorage(bootstrap({ voters: [1], learners: [] }), new Prng(seed), true)
    let i = 2
    while (s.cachedSyncCount === 0 && s.lostSyncCount === 0 && i < 2000) {
      s.write({ kind: 'entries', entries: [entry(i++)] })
      s.sync()
    }
    if (s.cachedSyncCount === 0) continue
    s.crash(new Prng(seed))
    const indexes = s.restore().entries.map((e) => e.index)
    // A prefix without a gap: every write before the lie, maybe some of the lied-about one.
    assert.ok(indexes.length >= i - 3 && indexes.length <= i - 2, `seed ${seed}: ${indexes.length} of ${i - 2}`)
    assert.equal(indexes, indexes.map((_, k) => k + 2))
    if (indexes.length < i - 2) lost++
  }
  assert.ok(lost > 0, 'some crash lost a write an fsync had reported durable')
})

test.run()
