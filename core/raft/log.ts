/** @module
 * The Raft log as one node sees it: the snapshot it starts from, the entries after it,
 * which of them are not yet persisted (unstable), and the commit and applied marks
 * (etcd's raftLog + unstable in one, since the core holds the whole tail in memory).
 * Pure: no I/O, no clock, no `Math.random`.
 */
import { assert } from '../assert.ts'
import type { Entry, Snapshot } from './types.ts'

/** The data of an entry whose bytes the host dropped (see RaftLog.evictData). */
const EVICTED_DATA = new Uint8Array(0)

export class RaftLog {
  /** The snapshot the log starts after; entries[i].index === snapshot.meta.index + 1 + i. */
  snapshot: Snapshot
  entries: Entry[]
  /** Lowest index whose entry is not yet persisted (lastIndex + 1 when all are). */
  unstableFrom: number
  /** A snapshot received from the leader and not yet handed to the host. */
  pendingSnapshot: Snapshot | undefined = undefined
  committed: number
  /** Highest index handed to the host to apply. */
  applied: number
  /** Entries up to this index have been looked at by evictData. */
  private dataEvictedTo = 0

  constructor(snapshot: Snapshot, entries: readonly Entry[], committed: number) {
    this.snapshot = snapshot
    this.entries = [...entries]
    for (let i = 0; i < this.entries.length; i++) {
      assert(this.entries[i].index === snapshot.meta.index + 1 + i, 'restored entries are contiguous after the snapshot')
    }
    this.unstableFrom = this.lastIndex() + 1
    this.committed = Math.max(committed, snapshot.meta.index)
    assert(this.committed <= this.lastIndex(), 'restored commit index is in the log')
    this.applied = snapshot.meta.index
  }

  offset(): number {
    return this.snapshot.meta.index
  }

  firstIndex(): number {
    return this.offset() + 1
  }

  lastIndex(): number {
    return this.offset() + this.entries.length
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0
  }

  /** The term of the entry at `index`, or undefined when it is compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.offset()) return this.snapshot.meta.term
    if (index < this.offset() || index > this.lastIndex()) return undefined
    return this.entries[index - this.offset() - 1].term
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term
  }

  /** The last entry on disk, as far as this node knows (a pending snapshot's entries are committed: it counts as written). */
  lastStable(): { index: number; term: number } {
    const index = Math.max(Math.min(this.unstableFrom - 1, this.lastIndex()), this.offset())
    const term = this.term(index)
    assert(term !== undefined, 'the last stable entry is in the log')
    return { index, term }
  }

  /** Raft §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    return atLeastAsUpToDate(lastIndex, lastTerm, this.lastIndex(), this.lastTerm())
  }

  /** Entries in [lo, hi), at most `countMax` of them and at most `bytesMax` bytes (at least one). */
  slice(lo: number, hi: number, countMax = Infinity, bytesMax = Infinity): Entry[] {
    assert(lo > this.offset(), 'slice starts after the snapshot')
    assert(hi <= this.lastIndex() + 1, 'slice ends inside the log')
    const out: Entry[] = []
    let bytes = 0
    for (let i = lo; i < hi && out.length < countMax; i++) {
      const e = this.entries[i - this.offset() - 1]
      bytes += e.evictedBytes ?? e.data.byteLength
      if (out.length > 0 && bytes > bytesMax) break
      out.push(e)
    }
    return out
  }

  /** Appends entries that follow `prevIndex`; returns the new last index, or undefined on a mismatch. */
  maybeAppend(prevIndex: number, prevTerm: number, committed: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined
    const lastNew = prevIndex + entries.length
    const conflict = this.findConflict(entries)
    if (conflict !== 0) {
      assert(conflict > this.committed, 'a leader never rewrites a committed entry')
      this.truncateAndAppend(entries.slice(conflict - entries[0].index))
    }
    this.commitTo(Math.min(committed, lastNew))
    return lastNew
  }

  /** The first entry whose term differs from ours (or that we lack), or 0 when all match. */
  private findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index
    }
    return 0
  }

  /** Replaces the log from `entries[0].index` on with `entries` (Raft §5.3: delete the conflicting suffix). */
  truncateAndAppend(entries: readonly Entry[]): void {
    if (entries.length === 0) return
    const first = entries[0].index
    assert(first > this.offset(), 'appended entries follow the snapshot')
    assert(first <= this.lastIndex() + 1, 'appended entries leave no gap')
    const start = first - this.offset() - 1
    this.entries.splice(start, Infinity, ...entries)
    this.unstableFrom = Math.min(this.unstableFrom, first)
  }

  commitTo(index: number): void {
    if (index <= this.committed) return
    assert(index <= this.lastIndex(), 'commit index is in the log')
    this.committed = index
  }

  unstableEntries(): Entry[] {
    if (this.unstableFrom > this.lastIndex()) return []
    return this.entries.slice(this.unstableFrom - this.offset() - 1)
  }

  /** Marks entries up to `index` (with term `term`) persisted, unless they were replaced meanwhile. */
  stableTo(index: number, term: number): void {
    if (this.matchTerm(index, term) && index >= this.unstableFrom) this.unstableFrom = index + 1
  }

  committedToApply(countMax: number): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex())
    if (lo > this.committed) return []
    return this.slice(lo, this.committed + 1, countMax)
  }

  appliedTo(index: number): void {
    assert(index <= this.committed, 'applied entries are committed')
    if (index > this.applied) this.applied = index
  }

  /** Installs a leader's snapshot: the whole log is replaced (etcd raftLog.restore). */
  restore(snapshot: Snapshot): void {
    assert(snapshot.meta.index > this.committed, 'a restored snapshot moves the log forward')
    this.snapshot = snapshot
    this.entries = []
    this.unstableFrom = snapshot.meta.index + 1
    this.committed = snapshot.meta.index
    this.applied = snapshot.meta.index
    this.pendingSnapshot = snapshot
  }

  /**
   * Drops the data of entries that are persisted and applied and hold at least `minBytes`:
   * such an entry stays in the log with its term, type and size (Entry.evictedBytes), and the
   * host, which has it on disk, loads it back only to send it to a member that lags. Raft needs
   * an applied entry's data for nothing else, and the log between snapshots holds the payload
   * of thousands of entries (a pipeline's small blocks) that would otherwise stay in memory.
   */
  evictData(minBytes: number): void {
    const upTo = Math.min(this.applied, this.unstableFrom - 1)
    for (let i = Math.max(this.dataEvictedTo, this.offset()) + 1; i <= upTo; i++) {
      const at = i - this.offset() - 1
      const e = this.entries[at]
      if (e.data.byteLength >= minBytes) {
        this.entries[at] = { term: e.term, index: e.index, type: e.type, data: EVICTED_DATA, evictedBytes: e.data.byteLength }
      } else if (e.data.byteLength < e.data.buffer.byteLength) {
        // A small entry kept whole gets bytes of its own: as a view of the batch it arrived in,
        // it would keep that whole batch alive, evicted payload and all.
        this.entries[at] = { term: e.term, index: e.index, type: e.type, data: new Uint8Array(e.data) }
      }
    }
    this.dataEvictedTo = Math.max(this.dataEvictedTo, upTo)
  }

  /** Drops entries up to the host's own snapshot (taken at `snapshot.meta.index` <= applied). */
  compact(snapshot: Snapshot): void {
    const index = snapshot.meta.index
    assert(index <= this.applied, 'a snapshot covers only applied entries')
    assert(index >= this.offset(), 'compaction moves forward')
    assert(this.term(index) === snapshot.meta.term, 'snapshot term matches the log')
    assert(index < this.unstableFrom, 'compacted entries are persisted')
    this.entries = this.entries.slice(index - this.offset())
    this.snapshot = snapshot
  }
}

/** Raft §5.4.1: a log ending at (index, term) is at least as up-to-date as one ending at (otherIndex, otherTerm). */
export function atLeastAsUpToDate(index: number, term: number, otherIndex: number, otherTerm: number): boolean {
  return term > otherTerm || (term === otherTerm && index >= otherIndex)
}
