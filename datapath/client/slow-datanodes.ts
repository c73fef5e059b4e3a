/** @module
 * The datanodes a client's new blocks avoid for a while: those that lagged behind a
 * watchForCommit at the end of a key (Ozone's ExcludeList with its expiry). No I/O and no
 * clock: time comes in as `nowMs`.
 */
import { assert } from '../../core/assert.ts'
import { CLIENT_SLOW_DATANODE_MS, CLIENT_SLOW_DATANODES_MAX } from '../../core/limits.ts'
import type { DatanodeId } from '../../core/wire.ts'

export class SlowDatanodes {
  /** Datanode id -> when it stops being avoided; in insertion order, the oldest first. */
  private readonly until = new Map<DatanodeId, number>()
  /** Datanode id -> until when it is known to lag (avoided or not: a cluster may have no pipeline without it). */
  private readonly lagged = new Map<DatanodeId, number>()

  constructor(private readonly avoidMs = CLIENT_SLOW_DATANODE_MS, private readonly sizeMax = CLIENT_SLOW_DATANODES_MAX) {
    assert(avoidMs >= 0, 'slow datanode expiry must not be negative')
    assert(sizeMax > 0, 'slow datanode count must be positive')
  }

  /** `ids` lagged at `nowMs`: avoid them until `avoidMs` later. */
  add(ids: readonly DatanodeId[], nowMs: number): void {
    for (const id of ids) {
      this.until.delete(id)
      this.until.set(id, nowMs + this.avoidMs)
      if (this.until.size > this.sizeMax) this.until.delete(this.until.keys().next().value!)
      this.lagged.delete(id)
      this.lagged.set(id, nowMs + this.avoidMs)
      if (this.lagged.size > this.sizeMax) this.lagged.delete(this.lagged.keys().next().value!)
    }
  }

  /** Whether any of `ids` lagged lately (avoided or not): a watch of them need not wait long to learn it again. */
  anyLagging(ids: readonly DatanodeId[], nowMs: number): boolean {
    return ids.some((id) => (this.lagged.get(id) ?? 0) > nowMs)
  }

  /** Stops avoiding `ids` (they are still known to lag): the cluster has no pipeline without them. */
  forget(ids: readonly DatanodeId[]): void {
    for (const id of ids) this.until.delete(id)
  }

  /** The datanodes to avoid at `nowMs` (expired ones are dropped). */
  list(nowMs: number): DatanodeId[] {
    const out: DatanodeId[] = []
    for (const [id, until] of this.until) {
      if (until <= nowMs) this.until.delete(id)
      else out.push(id)
    }
    return out
  }
}
