/** Goal: RaftLog keeps Raft's log rules (§5.3): matching by term, truncating a conflicting
 * suffix, never rewriting committed entries, tracking what is unstable, compaction and
 * snapshot restore. Method: direct calls on small logs. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RaftLog } from '../../../core/raft/log.ts'
import type { Entry, Snapshot } from '../../../core/raft/index.ts'

const snap = (index: number, term: number): Snapshot => ({ meta: { index, term, confState: { voters: [1], learners: [] } }, data: new Uint8Array(0) })
const ents = (...terms: number[]): Entry[] => terms.map((term, i) => ({ term, index: i + 1, type: 'normal', data: new Uint8Array(0) }))
const terms = (log: RaftLog) => log.entries.map((e) => e.term)

test('evictData() drops the data of persisted, applied entries of at least minBytes, keeping their size for slice()', () => {
  const sized = (...sizes: number[]): Entry[] => sizes.map((n, i) => ({ term: 1, index: i + 1, type: 'normal', data: new Uint8Array(n).fill(i + 1) }))
  const log = new RaftLog(snap(0, 0), [], 0)
  log.truncateAndAppend(sized(100, 10, 200, 300, 400))
  log.stableTo(4, 1)
  log.commitTo(5)
  log.appliedTo(3)
  log.evictData(50)
  // 1 and 3 are applied and large; 2 is small; 4 is persisted but not applied; 5 is not persisted.
  assert.equal(log.entries.map((e) => e.evictedBytes), [100, undefined, 200, undefined, undefined])
  assert.equal(log.entries.map((e) => e.data.byteLength), [0, 10, 0, 300, 400])
  assert.equal(log.entries.map((e) => e.term), [1, 1, 1, 1, 1])
  // slice() bounds a message's bytes by the entries' sizes, evicted or not.
  assert.equal(log.slice(1, 6, Infinity, 310).map((e) => e.index), [1, 2, 3])
  log.appliedTo(5)
  log.stableTo(5, 1)
  log.evictData(50)
  assert.equal(log.entries.map((e) => e.evictedBytes), [100, undefined, 200, 300, 400])
  log.compact(snap(3, 1))
  assert.equal(log.entries.map((e) => e.index), [4, 5])
})

test('evictData() gives a small entry kept whole bytes of its own, not a view of the batch it came in', () => {
  const batch = new Uint8Array(4096).fill(7)
  const log = new RaftLog(snap(0, 0), [], 0)
  log.truncateAndAppend([{ term: 1, index: 1, type: 'normal', data: batch.subarray(0, 3000) }, { term: 1, index: 2, type: 'normal', data: batch.subarray(3000, 3010) }, { term: 1, index: 3, type: 'normal', data: batch.subarray(3010, 3010) }])
  log.stableTo(3, 1)
  log.commitTo(3)
  log.appliedTo(3)
  log.evictData(1024)
  assert.equal(log.entries.map((e) => e.evictedBytes), [3000, undefined, undefined])
  assert.equal(log.entries.map((e) => e.data.buffer.byteLength), [0, 10, 0])
  assert.equal([...log.entries[1].data], new Array(10).fill(7))
})

test('maybeAppend() truncates a conflicting suffix', () => {
  const log = new RaftLog(snap(0, 0), ents(1, 1, 2, 2), 1)
  const last = log.maybeAppend(2, 1, 1, [{ term: 3, index: 3, type: 'normal', data: new Uint8Array(0) }])
  assert.is(last, 3)
  assert.equal(terms(log), [1, 1, 3])
  assert.is(log.unstableFrom, 3)
})

test('maybeAppend() keeps matching entries and a longer tail', () => {
  const log = new RaftLog(snap(0, 0), ents(1, 1, 2, 2), 1)
  assert.is(log.maybeAppend(1, 1, 3, ents(1, 1, 2).slice(1)), 3)
  assert.equal(terms(log), [1, 1, 2, 2])
  assert.is(log.committed, 3)
  assert.is(log.unstableFrom, 5, 'nothing was rewritten')
})

test('maybeAppend() rejects a mismatched previous entry', () => {
  const log = new RaftLog(snap(0, 0), ents(1, 1), 0)
  assert.is(log.maybeAppend(2, 2, 0, []), undefined)
  assert.is(log.maybeAppend(5, 1, 0, []), undefined)
})

test('maybeAppend() refuses to rewrite a committed entry', () => {
  const log = new RaftLog(snap(0, 0), ents(1, 1, 1), 3)
  assert.throws(() => log.maybeAppend(1, 1, 3, [{ term: 2, index: 2, type: 'normal', data: new Uint8Array(0) }]), /committed/)
})

test('isUpToDate() compares last term, then length (§5.4.1)', () => {
  const log = new RaftLog(snap(0, 0), ents(1, 2, 2), 0)
  assert.ok(log.isUpToDate(1, 3))
  assert.ok(log.isUpToDate(3, 2))
  assert.not.ok(log.isUpToDate(2, 2))
  assert.not.ok(log.isUpToDate(9, 1))
})

test('compact() drops applied entries and keeps the term at the snapshot', () => {
  const log = new RaftLog(snap(0, 0), ents(1, 1, 2, 2), 3)
  log.appliedTo(3)
  log.compact(snap(3, 2))
  assert.is(log.firstIndex(), 4)
  assert.is(log.term(3), 2)
  assert.is(log.term(2), undefined)
  assert.equal(terms(log), [2])
  assert.throws(() => log.compact(snap(4, 2)), /applied/)
})

test('restore() replaces the log with a leader snapshot', () => {
  const log = new RaftLog(snap(0, 0), ents(1, 1), 1)
  log.restore(snap(10, 3))
  assert.is(log.lastIndex(), 10)
  assert.is(log.committed, 10)
  assert.is(log.applied, 10)
  assert.ok(log.pendingSnapshot !== undefined)
})

test('new RaftLog() rejects a commit index beyond the log', () => {
  assert.throws(() => new RaftLog(snap(0, 0), ents(1), 2), /commit/)
})

test.run()
