/** @module
 * The leader's view of one follower (etcd tracker.Progress): how far its log matches,
 * what to send next, and flow control (probe one message at a time, replicate with a
 * bounded window of in-flight appends, or wait for a snapshot).
 * Pure: no I/O, no clock, no `Math.random`.
 */
import { assert } from '../assert.ts'

export type ProgressState = 'probe' | 'replicate' | 'snapshot'

export class Progress {
  state: ProgressState = 'probe'
  match = 0
  next: number
  /** Probe: an append was sent since the last heartbeat response, so wait. */
  probeSent = false
  /** Last index of each append in flight, oldest first (etcd Inflights). */
  inflights: number[] = []
  /** Snapshot state: index of the snapshot sent, and ticks spent waiting for it. */
  pendingSnapshot = 0
  snapshotTicks = 0
  /** Heard from in the current check-quorum period. */
  recentActive = false
  /** Leader ticks since this member last answered (0: in the last tick): whether it is there at all. */
  quietTicks = 0
  isLearner: boolean
  /** The follower's incarnation its answers carry; a greater one means it restarted (Raft.recovery). */
  incarnation = 0

  constructor(next: number, isLearner: boolean) {
    this.next = next
    this.isLearner = isLearner
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot
      this.reset('probe')
      this.next = Math.max(this.match + 1, pending + 1)
    } else {
      this.reset('probe')
      this.next = this.match + 1
    }
  }

  becomeReplicate(): void {
    this.reset('replicate')
    this.next = this.match + 1
  }

  becomeSnapshot(index: number): void {
    this.reset('snapshot')
    this.pendingSnapshot = index
  }

  private reset(state: ProgressState): void {
    this.state = state
    this.probeSent = false
    this.pendingSnapshot = 0
    this.snapshotTicks = 0
    this.inflights = []
  }

  /**
   * The follower restarted after a crash and may have lost entries it acknowledged: the one
   * time match moves backwards. Probe again from `next`; its rejections walk back from there.
   */
  restarted(incarnation: number, next: number): void {
    assert(incarnation > this.incarnation, 'incarnations grow')
    this.incarnation = incarnation
    this.match = 0
    this.reset('probe')
    this.next = next
  }

  /** Records a successful append up to `index`; false when the response is stale. */
  maybeUpdate(index: number): boolean {
    let updated = false
    if (this.match < index) {
      this.match = index
      updated = true
      this.probeSent = false
    }
    this.next = Math.max(this.next, index + 1)
    return updated
  }

  /** Handles a rejected append at `rejected`, with the follower's last index `hint`; false when stale. */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1)
    this.probeSent = false
    return true
  }

  /** Notes an append of entries up to `last` was sent. */
  sentEntries(last: number, count: number): void {
    switch (this.state) {
      case 'replicate':
        if (count > 0) {
          this.next = last + 1
          this.inflights.push(last)
        }
        break
      case 'probe':
        this.probeSent = true
        break
      case 'snapshot':
        assert(false, 'no appends are sent while a snapshot is pending')
    }
  }

  /** Frees in-flight slots of appends acknowledged up to `index`. */
  freeLE(index: number): void {
    let n = 0
    while (n < this.inflights.length && this.inflights[n] <= index) n++
    if (n > 0) this.inflights.splice(0, n)
  }

  isPaused(inflightCountMax: number): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent
      case 'replicate':
        return this.inflights.length >= inflightCountMax
      case 'snapshot':
        return true
    }
  }
}
