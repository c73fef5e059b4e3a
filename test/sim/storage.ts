/** @module
 * A simulated disk for one Raft node, laid out as a write-ahead log of checksummed records:
 * writes land in a page cache and become durable when synced, and the OS writes some back
 * on its own. Recovery replays records in order and stops at the first one missing or torn
 * (its checksum fails), as a real WAL does. Without storage faults, cached writes reach the
 * disk in order and a crash keeps a prefix of them. With storage faults (a fault class with
 * its own seeds): cached writes reach the disk in any order, a crash may tear the write in
 * progress, and an fsync may report success without making the writes durable (a disk
 * cache that lies): either they are dropped, a hole that recovery's check finds once later
 * records land after it, or they stay in the volatile cache, where a crash before the next
 * honest sync loses them without a trace. Either way the next restart may lack what the
 * node was told is durable. Pure: no real I/O.
 */
import { assert } from '../../core/assert.ts'
import type { Entry, HardState, Restored, Snapshot } from '../../core/raft/index.ts'
import type { Prng } from './prng.ts'
type Write =
  | { readonly kind: 'hardState'; readonly hardState: HardState }
  | { readonly kind: 'entries'; readonly entries: readonly Entry[] }
  /** A snapshot from the leader: it replaces the whole log. */
  | { readonly kind: 'install'; readonly snapshot: Snapshot }
  /** Our own snapshot: the log before it is dropped. */
  | { readonly kind: 'compact'; readonly snapshot: Snapshot }

interface Disk {
  hardState: HardState
  snapshot: Snapshot
  entries: Entry[]
}

function applyWrite(disk: Disk, w: Write): void {
  switch (w.kind) {
    case 'hardState':
      disk.hardState = w.hardState
      break
    case 'entries': {
      if (w.entries.length === 0) return
      const first = w.entries[0].index
      const offset = disk.snapshot.meta.index
      assert(first > offset, 'stored entries follow the snapshot')
      assert(first <= offset + disk.entries.length + 1, 'stored entries leave no gap')
      disk.entries.splice(first - offset - 1, Infinity, ...w.entries)
      break
    }
    case 'install':
      disk.snapshot = w.snapshot
      disk.entries = []
      break
    case 'compact': {
      const drop = w.snapshot.meta.index - disk.snapshot.meta.index
      if (drop <= 0) return
      disk.entries = disk.entries.slice(drop)
      disk.snapshot = w.snapshot
      break
    }
  }
}

export class SimStorage {
  private durable: Disk
  /** Sequence number of the last record applied to `durable` (the WAL's valid prefix). */
  private durableSeq = 0
  /** Records on disk after a hole: recovery drops them unless the hole fills first. */
  private readonly stranded = new Map<number, Write>()
  private unsynced: { seq: number; w: Write }[] = []
  private nextSeq = 1
  /** Sync calls made (a crash test can count how much was at risk). */
  syncCount = 0
  /** Storage faults injected so far: torn records, fsyncs that dropped their writes, fsyncs that left them cached. */
  tornCount = 0
  lostSyncCount = 0
  cachedSyncCount = 0
  private readonly lieP: number
  /** A synced record lies beyond a hole: the disk lost data it had acknowledged. */
  private lostAcknowledged = false

  /** `faults`, when given, turns on the storage fault class and draws its faults; `lostFsync` adds fsyncs that lie. */
  constructor(initial: Restored, private readonly faults?: Prng, lostFsync = false) {
    this.durable = { hardState: initial.hardState, snapshot: initial.snapshot, entries: [...initial.entries] }
    this.lieP = faults === undefined || !lostFsync ? 0 : faults.pick([0.001, 0.005, 0.02])
  }

  write(w: Write): void {
    this.unsynced.push({ seq: this.nextSeq++, w })
  }

  sync(): void {
    this.syncCount++
    if (this.faults !== undefined && this.unsynced.length > 0 && this.faults.chance(this.lieP)) {
      if (this.faults.chance(0.5)) {
        // fsync returns success and the writes stay in the disk's volatile cache: the next
        // honest sync lands them, a crash before it loses them, and nothing shows it.
        this.cachedSyncCount++
        return
      }
      // fsync returns success and the writes never reach the disk: a hole in the WAL, so
      // recovery will also drop every later record.
      this.lostSyncCount++
      this.unsynced = []
      return
    }
    const last = this.unsynced.at(-1)?.seq ?? this.durableSeq
    for (const r of this.unsynced) this.land(r.seq, r.w)
    this.unsynced = []
    // The sync's records sit on disk after a hole that an earlier (lying) sync left: the WAL
    // shows acknowledged data missing, and recovery refuses to start from it.
    if (this.durableSeq < last) this.lostAcknowledged = true
  }

  private land(seq: number, w: Write): void {
    if (seq !== this.durableSeq + 1) {
      this.stranded.set(seq, w)
      return
    }
    applyWrite(this.durable, w)
    this.durableSeq = seq
    for (let next = this.stranded.get(seq + 1); next !== undefined; next = this.stranded.get(this.durableSeq + 1)) {
      this.stranded.delete(this.durableSeq + 1)
      applyWrite(this.durable, next)
      this.durableSeq++
    }
  }

  /** The OS wrote back some cached pages on its own: a prefix, or with storage faults any of them. */
  flushSome(prng: Prng): void {
    if (this.faults === undefined) {
      const n = prng.int(this.unsynced.length + 1)
      for (const r of this.unsynced.splice(0, n)) this.land(r.seq, r.w)
      return
    }
    const keep: { seq: number; w: Write }[] = []
    for (const r of this.unsynced) {
      if (this.faults.chance(0.5)) this.land(r.seq, r.w)
      else keep.push(r)
    }
    this.unsynced = keep
  }

  /** Power loss: some unsynced writes survive (a prefix, or any of them), one may be torn. */
  crash(prng: Prng): void {
    if (this.faults !== undefined && this.unsynced.length > 0 && this.faults.chance(0.5)) {
      // The write in progress is torn: its record fails its checksum, a hole in the WAL.
      const torn = this.faults.int(this.unsynced.length)
      this.unsynced.splice(torn, 1)
      this.tornCount++
    }
    this.flushSome(prng)
    this.unsynced = []
  }

  restore(): Restored {
    assert(this.unsynced.length === 0, 'restore after a crash')
    assert(!this.lostAcknowledged, `Cannot recover the log: record ${this.durableSeq + 1} is missing before synced records (the disk lost acknowledged writes)`)
    // Recovery stops at the first hole: records after it are truncated away.
    this.stranded.clear()
    this.nextSeq = this.durableSeq + 1
    const d = this.durable
    return { hardState: d.hardState, snapshot: d.snapshot, entries: [...d.entries] }
  }
}
