/** @module
 * A bounded pool of SharedArrayBuffer slabs, made on first use and reused: payload bytes land in a slab once
 * (from the socket) and are then hashed, written and forwarded by reference by the main
 * thread and the workers alike. acquire() waits when all are out: that is the back-pressure.
 */
import { assert } from '../../core/assert.ts'

export class SlabPool {
  private readonly free: SharedArrayBuffer[] = []
  private readonly waiters: ((slab: SharedArrayBuffer) => void)[] = []
  /** Slabs made so far: they are made when first needed, never more than `count`. */
  private made = 0

  constructor(readonly slabBytes: number, readonly count: number) {
    assert(slabBytes > 0, 'slab size must be positive')
    assert(count > 0, 'slab count must be positive')
  }

  acquire(): Promise<SharedArrayBuffer> {
    const slab = this.free.pop()
    if (slab !== undefined) return Promise.resolve(slab)
    if (this.made < this.count) {
      this.made++
      return Promise.resolve(new SharedArrayBuffer(this.slabBytes))
    }
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  release(slab: SharedArrayBuffer): void {
    assert(slab.byteLength === this.slabBytes, 'foreign slab released')
    const waiter = this.waiters.shift()
    if (waiter !== undefined) waiter(slab)
    else {
      assert(this.free.length < this.made, 'slab released twice')
      this.free.push(slab)
    }
  }

}
