/** Goal: the Raft store writes what a restart needs and no more: a hard state that moved only
 * its commit index waits for the next write (or a clean stop) instead of costing an LMDB
 * commit of its own, and a term or vote is always written at once. Method: a real LMDB store
 * in a temporary directory, closed and opened again as a restarted node would. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftLmdbStore } from '../../../core/raft-io/lmdb-store.ts'
import { bootstrap, type Entry } from '../../../core/raft/index.ts'

const root = mkdtempSync(join(tmpdir(), 'o3-raft-store-'))
let dirs = 0

const entry = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(`e${index}`) })

/** A new store holding the bootstrap snapshot (index 1) and entries 2-4 of term 1, committed to 2. */
async function storeWithEntries(): Promise<{ dir: string; store: RaftLmdbStore }> {
  const dir = join(root, `s${++dirs}`)
  const store = RaftLmdbStore.open(dir)
  const start = bootstrap({ voters: [1, 2, 3], learners: [] })
  await store.save({ snapshot: start.snapshot, hardState: start.hardState, entries: [] })
  await store.save({ entries: [entry(2, 1), entry(3, 1), entry(4, 1)], hardState: { term: 1, vote: 1, commit: 2 } })
  return { dir, store }
}

async function reopened(dir: string, store: RaftLmdbStore) {
  await store.close()
  const again = RaftLmdbStore.open(dir)
  const restored = again.restore()
  await again.close()
  assert.ok(restored !== undefined)
  return restored
}

test('a hard state that moved only its commit index is not written by itself', async () => {
  const { dir, store } = await storeWithEntries()
  await store.save({ entries: [], hardState: { term: 1, vote: 1, commit: 4 } })
  const restored = await reopened(dir, store)
  assert.equal(restored.hardState, { term: 1, vote: 1, commit: 2 })
  assert.equal(restored.entries.map((e) => e.index), [2, 3, 4])
})

test('the commit index held back is written with the next entries, even when their Ready has no hard state', async () => {
  const { dir, store } = await storeWithEntries()
  await store.save({ entries: [], hardState: { term: 1, vote: 1, commit: 4 } })
  await store.save({ entries: [entry(5, 1)] })
  const restored = await reopened(dir, store)
  assert.equal(restored.hardState, { term: 1, vote: 1, commit: 4 })
  assert.equal(restored.entries.map((e) => e.index), [2, 3, 4, 5])
})

test('a new term or vote is written at once, without entries', async () => {
  const { dir, store } = await storeWithEntries()
  await store.save({ entries: [], hardState: { term: 2, vote: 3, commit: 3 } })
  const restored = await reopened(dir, store)
  assert.equal(restored.hardState, { term: 2, vote: 3, commit: 3 })
})

test('a clean stop writes the commit index held back', async () => {
  const { dir, store } = await storeWithEntries()
  await store.save({ entries: [], hardState: { term: 1, vote: 1, commit: 3 } })
  await store.markCleanStop()
  const restored = await reopened(dir, store)
  assert.equal(restored.hardState, { term: 1, vote: 1, commit: 3 })
})

test.after(() => rmSync(root, { recursive: true, force: true }))

test.run()
