/** @module
 * A bounded pool of SharedArrayBuffer slabs, made on first use and reused: payload bytes land in a slab once
 * (from the socket) and are then hashed, written and forwarded by reference by the main
 * thread and the workers alike. acquire() waits when all are out: that is the back-pressure.
 * The wait is bounded: a caller that gets no slab in time gets UNAVAILABLE (retryable), so
 * that holders that never give theirs back slow others down but cannot stop them.
 * A slab left free for `idleMs` is dropped (trim()), so that a process that was busy once does
 * not keep its peak of slabs for good: an `o3 local` holds the gateway client's pool (up to
 * 64 x 4 MiB) and each datanode's two (8 x 4.3 MiB and 2 x 17 MiB: SizedSlabPools).
 */
import { setTimeout } from 'node:timers'
import { assert } from '../../core/assert.ts'
import { SLAB_IDLE_MS } from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import { noteActivity } from './idle.ts'
import { releaseAfterLateWrites } from './late-writes.ts'
import { WaitQueue } from './wait-queue.ts'

export class SlabPool {
  private readonly free: SharedArrayBuffer[] = []
  private readonly waiters = new WaitQueue<SharedArrayBuffer>()
  /** Slabs made so far: they are made when first needed, never more than `count`. */
  private made = 0
  /** When each free slab was released, for trim(). */
  private readonly releasedAtMs = new WeakMap<SharedArrayBuffer, number>()
  private trimTimer: ReturnType<typeof setTimeout> | undefined

  constructor(readonly slabBytes: number, readonly count: number, readonly idleMs = SLAB_IDLE_MS) {
    assert(slabBytes > 0, 'slab size must be positive')
    assert(count > 0, 'slab count must be positive')
    assert(idleMs > 0, 'slab idle time must be positive')
  }

  /** Slabs that exist now, out or free. */
  get madeCount(): number { return this.made }
  /** Slabs free in the pool now. */
  get freeCount(): number { return this.free.length }

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
    return this.waiters.wait(timeoutMs, () => `a payload buffer (all ${this.count} are in use)`)
  }

  /** A slab at once (free, or made while under `count`), else undefined: for a holder that
   *  must not wait on others. */
  tryAcquire(): SharedArrayBuffer | undefined {
    const slab = this.free.pop()
    if (slab !== undefined) return slab
    if (this.made >= this.count) return undefined
    this.made++
    return new SharedArrayBuffer(this.slabBytes)
  }

  /** Gives a slab back; one an abandoned read still writes into comes back once that write is over. */
  release(slab: SharedArrayBuffer): void {
    if (releaseAfterLateWrites(slab, () => this.release(slab))) return
    assert(slab.byteLength === this.slabBytes, 'foreign slab released')
    noteActivity()
    if (!this.waiters.handOff(() => slab)) {
      assert(this.free.length < this.made, 'slab released twice')
      this.free.push(slab)
      this.releasedAtMs.set(slab, Date.now())
      this.scheduleTrim()
    }
  }

  /**
   * Gives `slabs` back once `reader` settles (a worker task still reading them, whatever its
   * outcome), or now without one. A release that fails its checks then is logged: there is
   * no caller left to throw to.
   */
  releaseAfter(reader: Promise<unknown> | undefined, slabs: readonly SharedArrayBuffer[]): void {
    if (reader === undefined) {
      for (const slab of slabs) this.release(slab)
      return
    }
    const give = () => {
      try {
        for (const slab of slabs) this.release(slab)
      } catch (err) {
        log.error(`cannot give slabs back after their reader: ${(err as Error).message}`, err)
      }
    }
    void reader.then(give, give)
  }

  /**
   * Drops the free slabs released `idleMs` or more before `nowMs`; returns how many. The free
   * list is a stack (acquire() takes the newest), so the idle ones are at its bottom. A dropped
   * slab is garbage once no worker holds a view of it; acquire() makes a new one when needed.
   */
  trim(nowMs = Date.now()): number {
    let dropped = 0
    while (this.free.length > 0 && nowMs - this.releasedAtMs.get(this.free[0])! >= this.idleMs) {
      this.free.shift()
      this.made--
      dropped++
    }
    assert(this.free.length <= this.made, 'more free slabs than made')
    return dropped
  }

  /** Trims when the oldest free slab has been idle long enough, and again while any is free.
   *  The timer is unref'd: an idle pool never keeps the process alive. */
  private scheduleTrim(): void {
    if (this.trimTimer !== undefined || this.free.length === 0) return
    const oldestMs = this.releasedAtMs.get(this.free[0])!
    this.trimTimer = setTimeout(() => {
      this.trimTimer = undefined
      this.trim()
      this.scheduleTrim()
    }, Math.max(0, oldestMs + this.idleMs - Date.now()))
    this.trimTimer.unref()
  }

}

/**
 * Slabs in two sizes, for a receiver whose chunks are mostly small but may be large (a
 * datanode): a chunk of at most `smallBytes` takes a small slab, a larger one a large slab.
 * One size for all (the largest) made every 256 KiB chunk in flight hold 17 MiB.
 */
export class SizedSlabPools {
  readonly small: SlabPool
  readonly large: SlabPool

  constructor(smallBytes: number, smallCount: number, largeBytes: number, largeCount: number) {
    assert(smallBytes < largeBytes, 'small slabs must be smaller than large ones')
    this.small = new SlabPool(smallBytes, smallCount)
    this.large = new SlabPool(largeBytes, largeCount)
  }

  /** A slab of at least `bytes`, waiting as SlabPool.acquire does. */
  acquire(bytes: number, timeoutMs?: number): Promise<SharedArrayBuffer> {
    assert(bytes <= this.large.slabBytes, 'no slab is that large')
    return (bytes <= this.small.slabBytes ? this.small : this.large).acquire(timeoutMs)
  }

  release(slab: SharedArrayBuffer): void {
    (slab.byteLength === this.small.slabBytes ? this.small : this.large).release(slab)
  }
}
