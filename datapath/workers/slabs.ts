/** @module
 * A bounded pool of SharedArrayBuffer slabs, made on first use and reused: payload bytes land in a slab once
 * (from the socket) and are then hashed, written and forwarded by reference by the main
 * thread and the workers alike. acquire() waits when all are out: that is the back-pressure.
 * The wait is bounded: a caller that gets no slab in time gets UNAVAILABLE (retryable), so
 * that holders that never give theirs back slow others down but cannot stop them.
 */
import { assert } from '../../core/assert.ts'
import { O3Error } from '../../core/errors.ts'

interface Waiter {
  resolve: (slab: SharedArrayBuffer) => void
  timer: ReturnType<typeof setTimeout> | undefined
}

export class SlabPool {
  private readonly free: SharedArrayBuffer[] = []
  private readonly waiters: Waiter[] = []
  /** Slabs made so far: they are made when first needed, never more than `count`. */
  private made = 0

  constructor(readonly slabBytes: number, readonly count: number) {
    assert(slabBytes > 0, 'slab size must be positive')
    assert(count > 0, 'slab count must be positive')
  }

  /** Slabs handed out and not yet released. */
  get inUse(): number {
    return this.made - this.free.length
  }

  /** Callers waiting for a slab: holders that are idle should give theirs back. */
  get waiting(): number {
    return this.waiters.length
  }

  /**
   * A slab, at once or when one is released, in the order asked. With `timeoutMs`, rejects
   * with O3Error UNAVAILABLE when none comes within it.
   */
  acquire(timeoutMs?: number): Promise<SharedArrayBuffer> {
    assert(timeoutMs === undefined || timeoutMs > 0, 'slab wait timeout must be positive')
    const slab = this.free.pop()
    if (slab !== undefined) return Promise.resolve(slab)
    if (this.made < this.count) {
      this.made++
      return Promise.resolve(new SharedArrayBuffer(this.slabBytes))
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, timer: undefined }
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1)
          reject(new O3Error('UNAVAILABLE', `Cannot get a payload buffer within ${timeoutMs} ms: all ${this.count} are in use`))
        }, timeoutMs)
      }
      this.waiters.push(waiter)
    })
  }

  release(slab: SharedArrayBuffer): void {
    assert(slab.byteLength === this.slabBytes, 'foreign slab released')
    const waiter = this.waiters.shift()
    if (waiter !== undefined) {
      clearTimeout(waiter.timer)
      waiter.resolve(slab)
    } else {
      assert(this.free.length < this.made, 'slab released twice')
      this.free.push(slab)
    }
  }

}
