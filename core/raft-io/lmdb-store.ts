/** @module
 * The durable side of one Raft node on LMDB: entries keyed by index in `raftLog`, the hard
 * state and latest snapshot in `raftMeta`. Each Ready is written in one asynchronous transaction;
 * `sync()` resolves once it is on disk, and the loop awaits it before sending anything
 * that depends on it (the vote, the appended entries). Must not decide anything Raft does.
 */
import { open, type Database, type RootDatabase } from 'lmdb'
import { assert } from '../assert.ts'
import { LMDB_VALUE_ENCODING } from '../metadata-db.ts'
import { EMPTY_HARD_STATE, type Entry, type HardState, type Restored, type Snapshot } from '../raft/index.ts'

interface StoredEntry {
  term: number
  type: Entry['type']
  data: Uint8Array
}

export class RaftLmdbStore {
  private readonly root: RootDatabase
  private readonly log: Database<StoredEntry, number>
  private readonly meta: Database<unknown, string>
  /** The hard state last written, and a newer one that differs from it only in its commit index (not written yet: see save). */
  private savedHardState: HardState | undefined
  private unsavedHardState: HardState | undefined

  private constructor(path: string, sync: boolean) {
    // Without overlapping sync an LMDB commit is durable when it completes; commits run on
    // lmdb's write thread, so awaiting one never blocks the event loop. Without sync (the
    // service's db.sync 0) a commit reaches the OS: it survives a killed process, not a lost
    // machine, the same promise the service's own database makes.
    this.root = open({ path, overlappingSync: false, noSync: !sync, ...LMDB_VALUE_ENCODING })
    this.log = this.root.openDB<StoredEntry, number>({ name: 'raftLog' })
    this.meta = this.root.openDB<unknown, string>({ name: 'raftMeta' })
  }

  static open(path: string, options: { sync?: boolean } = {}): RaftLmdbStore {
    return new RaftLmdbStore(path, options.sync ?? true)
  }

  /** What the store holds, or undefined when it is new (the caller bootstraps). */
  restore(): Restored | undefined {
    const snapshot = this.meta.get('snapshot') as Snapshot | undefined
    if (snapshot === undefined) return undefined
    const hardState = (this.meta.get('hardState') as HardState | undefined) ?? EMPTY_HARD_STATE
    this.savedHardState = hardState
    const entries: Entry[] = []
    for (const { key, value } of this.log.getRange({ start: snapshot.meta.index + 1 })) {
      assert(key === snapshot.meta.index + 1 + entries.length, 'stored entries are contiguous')
      entries.push({ index: key, term: value.term, type: value.type, data: new Uint8Array(value.data) })
    }
    return { hardState, snapshot: { meta: snapshot.meta, data: new Uint8Array(snapshot.data) }, entries }
  }

  /**
   * Writes what one Ready asks to persist, in one transaction; resolves once it is committed
   * and on disk. Transactions commit in call order. Asynchronous on purpose: a synchronous
   * commit waited for the disk with the event loop blocked (half the wall time of a 3-node
   * bench in one process).
   */
  async save(ready: { readonly snapshot?: Snapshot; readonly entries: readonly Entry[]; readonly hardState?: HardState }): Promise<void> {
    const hardState = ready.hardState ?? this.unsavedHardState
    // Most Readies of an idle group carry only messages (heartbeats and their answers): an
    // empty transaction would still be a commit, ten a second per group. A leader's Ready after
    // each round of answers moves only the commit index: nothing needs it on disk (a restarted
    // node learns it again from the leader, or, alone, by committing a new entry; etcd does not
    // sync it either), so it waits for the next write instead of costing a commit of its own.
    if (ready.snapshot === undefined && ready.entries.length === 0) {
      if (hardState === undefined) return
      if (this.savedHardState !== undefined && hardState.term === this.savedHardState.term && hardState.vote === this.savedHardState.vote) {
        this.unsavedHardState = hardState
        return
      }
    }
    this.unsavedHardState = undefined
    if (hardState !== undefined) this.savedHardState = hardState
    await this.root.transaction(() => {
      if (ready.snapshot !== undefined) {
        this.meta.put('snapshot', ready.snapshot)
        for (const key of this.log.getKeys({})) this.log.remove(key)
      }
      if (ready.entries.length > 0) {
        const first = ready.entries[0].index
        for (const key of this.log.getKeys({ start: first })) this.log.remove(key)
        for (const e of ready.entries) this.log.put(e.index, { term: e.term, type: e.type, data: e.data })
      }
      if (hardState !== undefined) this.meta.put('hardState', hardState)
    })
  }

  /**
   * The entry at `index`, read back (an applied entry whose data the node dropped from
   * memory: RaftLog.evictData); undefined once a compaction dropped it (only persisted entries
   * are evicted, and compaction drops an entry from memory before it drops it here, so only
   * a message the core made before a compaction can ask for one that is gone).
   */
  entry(index: number, term: number): Entry | undefined {
    const value = this.log.get(index)
    if (value === undefined) return undefined
    assert(value.term === term, `the log on disk holds entry ${index} of term ${term}, not ${value.term}`)
    return { index, term, type: value.type, data: new Uint8Array(value.data) }
  }

  /** Records our own snapshot and drops the entries it covers. */
  async compact(snapshot: Snapshot): Promise<void> {
    await this.root.transaction(() => {
      this.meta.put('snapshot', snapshot)
      for (const key of this.log.getKeys({ end: snapshot.meta.index + 1 })) this.log.remove(key)
    })
  }

  /** Resolves once every write so far is durable. */
  async sync(): Promise<void> {
    await this.root.flushed
  }

  /** Records, durably, that the node stopped cleanly: everything before is on disk. */
  async markCleanStop(): Promise<void> {
    const unsaved = this.unsavedHardState
    this.unsavedHardState = undefined
    if (unsaved !== undefined) await this.meta.put('hardState', unsaved)
    await this.meta.put('cleanStop', true)
    await this.sync()
  }

  /** Whether the last run stopped cleanly; clears the mark, so that a crash from now on shows. */
  async takeCleanStop(): Promise<boolean> {
    const clean = this.meta.get('cleanStop') === true
    if (clean) {
      await this.meta.remove('cleanStop')
      await this.sync()
    }
    return clean
  }

  async close(): Promise<void> {
    await this.root.close()
  }
}
