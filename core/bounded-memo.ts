/** @module
 * A bounded memo: a value made once per key and kept, up to `sizeMax` keys, the one made
 * longest ago dropped first (a Map keeps insertion order). No clock, no I/O.
 */
import { assert } from './assert.ts'

export class BoundedMemo<K, V> {
  private readonly values = new Map<K, V>()

  constructor(private readonly sizeMax: number) {
    assert(sizeMax > 0, 'size limit must be positive')
  }

  /** The value kept for `key`, or `make()`'s, then kept (a `make` that throws keeps nothing). */
  get(key: K, make: () => V): V {
    const kept = this.values.get(key)
    if (kept !== undefined) return kept
    const value = make()
    if (this.values.size >= this.sizeMax) this.values.delete(this.values.keys().next().value!)
    this.values.set(key, value)
    return value
  }
}
