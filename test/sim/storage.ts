/** @module
 * A simulated disk for one Raft node: writes land in a page cache and become durable only
 * when synced; a crash keeps a random prefix of the unsynced writes (they reach the disk in
 * order) and loses the rest. Pure: no real I/O.
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
  private unsynced: Write[] = []
  /** Sync calls made (a crash test can count how much was at risk). */
  syncCount = 0

  constructor(initial: Restored) {
    this.durable = { hardState: initial.hardState, snapshot: initial.snapshot, entries: [...initial.entries] }
  }

  write(w: Write): void {
    this.unsynced.push(w)
  }

  sync(): void {
    for (const w of this.unsynced) applyWrite(this.durable, w)
    this.unsynced = []
    this.syncCount++
  }

  /** The OS wrote back some cached pages on its own. */
  flushSome(prng: Prng): void {
    const n = prng.int(this.unsynced.length + 1)
    for (const w of this.unsynced.splice(0, n)) applyWrite(this.durable, w)
  }

  /** Power loss: a random prefix of the unsynced writes survives. */
  crash(prng: Prng): void {
    this.flushSome(prng)
    this.unsynced = []
  }

  restore(): Restored {
    assert(this.unsynced.length === 0, 'restore after a crash')
    const d = this.durable
    return { hardState: d.hardState, snapshot: d.snapshot, entries: [...d.entries] }
  }
}
