/** @module
 * A fixed pool of SharedArrayBuffer slabs, allocated once: payload bytes land in a slab once
 * (from the socket) and are then hashed, written and forwarded by reference by the main
 * thread and the workers alike. acquire() waits when all are out: that is the back-pressure.
 */
import { assert } from '../../core/assert.ts'

export class SlabPool {
  private readonly free: SharedArrayBuffer[] = []
  private readonly waiters: ((slab: SharedArrayBuffer) => void)[] = []

  constructor(readonly slabBytes: number, readonly count: number) {
    assert(slabBytes > 0, 'slab size must be positive')
    assert(count > 0, 'slab count must be positive')
    for (let i = 0; i < count; i++) this.free.push(new SharedArrayBuffer(slabBytes))
  }

  acquire(): Promise<SharedArrayBuffer> {
    const slab = this.free.pop()
    if (slab !== undefined) return Promise.resolve(slab)
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  release(slab: SharedArrayBuffer): void {
    assert(slab.byteLength === this.slabBytes, 'foreign slab released')
    const waiter = this.waiters.shift()
    if (waiter !== undefined) waiter(slab)
    else {
      assert(this.free.length < this.count, 'slab released twice')
      this.free.push(slab)
    }
  }

  get available(): number {
    return this.free.length
  }
}
