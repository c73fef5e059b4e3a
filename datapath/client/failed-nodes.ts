/** @module
 * The datanodes a client's reads could not reach lately, shared by all its reads (HDFS's
 * DeadNodeDetector): a replicated read asks them last, an EC read plans around them from its
 * first stripe, instead of every new read finding out again (and an EC read rebuilding the
 * stripes it had planned as plain reads, one piece at a time). Forgotten after
 * CLIENT_FAILED_NODE_MS, or as soon as a read from one succeeds. Bounded; no I/O.
 */
import { assert } from '../../core/assert.ts'
import { O3Error } from '../../core/errors.ts'
import { CLIENT_FAILED_NODE_MS, CLIENT_FAILED_NODES_MAX } from '../../core/limits.ts'

export class FailedNodes {
  /** Address -> when it is forgotten (ms); in the order noted, oldest first. */
  private readonly until = new Map<string, number>()

  constructor(private readonly forgetAfterMs = CLIENT_FAILED_NODE_MS, private readonly now: () => number = Date.now) {
    assert(forgetAfterMs > 0, 'a failed node is remembered for a positive time')
  }

  /**
   * Whether a read failed with `err` because its node could not be reached: a connection
   * that failed or timed out (transportError wraps the network error), not an answer the
   * node sent (a busy datanode's UNAVAILABLE, a missing block: O3Errors all the way down).
   */
  static unreachable(err: O3Error): boolean {
    let e: O3Error = err
    for (;;) {
      if (e.code !== 'UNAVAILABLE' && e.code !== 'TIMEOUT') return false
      if (!(e.cause instanceof O3Error)) return e.cause !== undefined
      e = e.cause
    }
  }

  note(address: string): void {
    this.until.delete(address)
    this.until.set(address, this.now() + this.forgetAfterMs)
    if (this.until.size > CLIENT_FAILED_NODES_MAX) this.until.delete(this.until.keys().next().value!)
  }

  /** A read from `address` succeeded: it is not failed any more. */
  forget(address: string): void {
    this.until.delete(address)
  }

  has(address: string): boolean {
    const until = this.until.get(address)
    if (until === undefined) return false
    if (until > this.now()) return true
    this.until.delete(address)
    return false
  }
}
