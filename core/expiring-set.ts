/** @module
 * A bounded set whose members expire: each is kept until a time set when it is added, and
 * past `sizeMax` the one added longest ago is dropped. No clock: times come in as `nowMs`.
 */
import { assert } from './assert.ts'

export class ExpiringSet<K> {
  /** Member -> when it expires; in the order added, the oldest first. */
  private readonly until = new Map<K, number>()

  constructor(private readonly keepMs: number, private readonly sizeMax: number) {
    assert(keepMs >= 0, 'expiry must not be negative')
    assert(sizeMax > 0, 'size limit must be positive')
  }

  /** Adds `key` (again) at `nowMs`: kept until `keepMs` (the set's, unless given) later. */
  add(key: K, nowMs: number, keepMs = this.keepMs): void {
    assert(keepMs >= 0, 'expiry must not be negative')
    this.until.delete(key)
    this.until.set(key, nowMs + keepMs)
    if (this.until.size > this.sizeMax) this.until.delete(this.until.keys().next().value!)
  }

  delete(key: K): void {
    this.until.delete(key)
  }

  /** Whether `key` is a member at `nowMs` (an expired one is dropped). */
  has(key: K, nowMs: number): boolean {
    const until = this.until.get(key)
    if (until === undefined) return false
    if (until > nowMs) return true
    this.until.delete(key)
    return false
  }

  /** The members at `nowMs` (expired ones are dropped). */
  list(nowMs: number): K[] {
    const out: K[] = []
    for (const [key, until] of this.until) {
      if (until <= nowMs) this.until.delete(key)
      else out.push(key)
    }
    return out
  }
}
