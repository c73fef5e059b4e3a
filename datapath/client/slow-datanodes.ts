/** @module
 * The datanodes a client's new blocks avoid for a while: those that lagged behind a
 * watchForCommit at the end of a key (Ozone's ExcludeList with its expiry). No I/O and no
 * clock: time comes in as `nowMs`.
 */
import { assert } from '../../core/assert.ts'
import { ExpiringSet } from '../../core/expiring-set.ts'
import { CLIENT_SLOW_DATANODE_MS, CLIENT_SLOW_DATANODES_MAX } from '../../core/limits.ts'
import type { DatanodeId } from '../../core/wire.ts'

export class SlowDatanodes {
  /** The datanodes avoided, each until its time is up. */
  private readonly avoided: ExpiringSet<DatanodeId>
  /** The datanodes known to lag, avoided or not (a cluster may have no pipeline without them). */
  private readonly lagged: ExpiringSet<DatanodeId>

  constructor(avoidMs = CLIENT_SLOW_DATANODE_MS, sizeMax = CLIENT_SLOW_DATANODES_MAX) {
    assert(avoidMs >= 0, 'slow datanode expiry must not be negative')
    assert(sizeMax > 0, 'slow datanode count must be positive')
    this.avoided = new ExpiringSet(avoidMs, sizeMax)
    this.lagged = new ExpiringSet(avoidMs, sizeMax)
  }

  /** `ids` lagged at `nowMs`: avoid them until `avoidMs` later. */
  add(ids: readonly DatanodeId[], nowMs: number): void {
    for (const id of ids) {
      this.avoided.add(id, nowMs)
      this.lagged.add(id, nowMs)
    }
  }

  /** Whether any of `ids` lagged lately (avoided or not): a watch of them need not wait long to learn it again. */
  anyLagging(ids: readonly DatanodeId[], nowMs: number): boolean {
    return ids.some((id) => this.lagged.has(id, nowMs))
  }

  /** Stops avoiding `ids` (they are still known to lag): the cluster has no pipeline without them. */
  forget(ids: readonly DatanodeId[]): void {
    for (const id of ids) this.avoided.delete(id)
  }

  /** The datanodes to avoid at `nowMs` (expired ones are dropped). */
  list(nowMs: number): DatanodeId[] {
    return this.avoided.list(nowMs)
  }
}
