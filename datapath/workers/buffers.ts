/** @module
 * A bounded pool of buffers of one size, reused: the datanode reads chunk data into one and
 * gives it back once the response that carries it has been sent; the client receives chunks
 * into one and its consumer gives it back. A fresh 4 MiB buffer per read made the large GET
 * path spend about half its CPU in GC. acquire() waits when all are out (the back-pressure),
 * bounded by a timeout that fails UNAVAILABLE (retryable); take() never waits: past the count
 * it makes a buffer that is dropped when given back (a reader's next piece, which must not
 * wait on other readers' consumers). Both pools hold SharedArrayBuffers
 * (BufferPool.shared()), which workers fill or verify in place: a buffer moved to a worker
 * and back is a new ArrayBuffer to V8 on every read, counted as fresh external memory, which
 * kept `o3 local` and the S3 gateway in back-to-back full GCs. A pool of plain ArrayBuffers
 * (the default) still supports the moving kind: the pool counts buffers, not identities, and
 * a holder that moves one tells it with adopt() so that releaseIfMine() still knows it. A
 * buffer whose fate cannot be known (discard(): lost with a worker, or its sending cannot be
 * seen) is dropped, and the pool makes another when needed. The client's EC reader hands out
 * several pieces of one buffer (share()): the buffer comes back with the last of their
 * releases.
 */
import { setTimeout } from 'node:timers'
import { assert } from '../../core/assert.ts'
import { SLAB_IDLE_MS } from '../../core/limits.ts'
import { noteActivity } from './idle.ts'
import { releaseAfterLateWrites } from './late-writes.ts'
import { WaitQueue } from './wait-queue.ts'

export class BufferPool<B extends ArrayBuffer | SharedArrayBuffer = ArrayBuffer> {
  private readonly free: B[] = []
  private readonly waiters = new WaitQueue<B>()
  private out = 0
  /** The buffers made here, to tell them from others (a buffer moved to a worker and back is
   *  a new object, so the datanode's are given back with release() itself). */
  private readonly mine = new WeakSet<B>()
  private trimTimer: ReturnType<typeof setTimeout> | undefined
  /** Releases a shared buffer waits for, past the one that gives it back. */
  private readonly extra = new Map<B, number>()

  /** A pool of plain ArrayBuffers; `allocate` is for shared(). */
  constructor(readonly bufferBytes: number, readonly count: number, private readonly allocate: (bytes: number) => B = (bytes) => new ArrayBuffer(bytes) as B) {
    assert(bufferBytes > 0, 'buffer size must be positive')
    assert(count > 0, 'buffer count must be positive')
  }

  /** A pool of SharedArrayBuffers: lent to readers whose workers verify them in place. */
  static shared(bufferBytes: number, count: number): BufferPool<SharedArrayBuffer> {
    return new BufferPool(bufferBytes, count, (bytes) => new SharedArrayBuffer(bytes))
  }

  /** Buffers handed out and not yet given back. */
  get inUse(): number { return this.out }
  /** Buffers that exist now, out or free (past `count` while take() has made extra). */
  get madeCount(): number { return this.out + this.free.length }
  /** Buffers that can be taken now without going past `count`. */
  get available(): number { return Math.max(0, this.count - this.out) }

  acquire(timeoutMs?: number): Promise<B> {
    assert(timeoutMs === undefined || timeoutMs > 0, 'buffer wait timeout must be positive')
    const now = this.tryAcquire()
    if (now !== undefined) return Promise.resolve(now)
    return this.waiters.wait(timeoutMs, () => `a read buffer (all ${this.count} are in use)`)
  }

  /** A buffer at once, or undefined when all are out: for a holder that must not wait. */
  tryAcquire(): B | undefined {
    if (this.out >= this.count) return undefined
    this.out++
    return this.free.pop() ?? this.make()
  }

  /**
   * A buffer at once, for a holder that must make progress without waiting on the others (a
   * reader's next piece: when every buffer is held by readers whose clients stopped reading,
   * waiting would stall every other read): a free one, or one made past `count`, dropped when
   * given back.
   */
  take(): B {
    const free = this.tryAcquire()
    if (free !== undefined) return free
    this.out++
    return this.make()
  }

  /** Gives a buffer back (the one acquired, or what a worker moved back in its place); one an
   *  abandoned read still writes into comes back once that write is over. */
  release(buffer: B): void {
    if (releaseAfterLateWrites(buffer, () => this.release(buffer))) return
    assert(buffer.byteLength === this.bufferBytes, 'foreign or detached buffer released')
    assert(this.out > 0, 'buffer released twice')
    const more = this.extra.get(buffer)
    if (more !== undefined) {
      if (more > 1) this.extra.set(buffer, more - 1)
      else this.extra.delete(buffer)
      return
    }
    noteActivity()
    if (this.waiters.handOff(() => buffer)) return
    this.out--
    // One made past the count by take() is dropped.
    if (this.out + this.free.length < this.count) this.free.push(buffer)
    this.scheduleTrim()
  }

  /** Whether this pool made `buffer` (as it is now, for one moved to a worker and back). */
  owns(buffer: ArrayBufferLike): boolean {
    return this.mine.has(buffer as B)
  }

  /** Gives `buffer` back if this pool made it (a view of a buffer of its own is left alone). */
  releaseIfMine(buffer: ArrayBufferLike): void {
    if (this.owns(buffer)) this.release(buffer as B)
  }

  /** Notes that `holders` views of `buffer` (out, not to move again) are each released once:
   *  the buffer is given back with the last release. */
  share(buffer: B, holders: number): void {
    assert(this.mine.has(buffer) && !this.extra.has(buffer), 'sharing a foreign or shared buffer')
    if (holders > 1) this.extra.set(buffer, holders - 1)
  }

  /**
   * Notes that `moved` is `buffer` come back from a worker (the same memory under a new
   * ArrayBuffer object; `buffer` is detached): releaseIfMine() knows it from now on.
   */
  adopt(buffer: B, moved: B): void {
    if (moved === buffer) return
    assert(this.mine.has(buffer), 'adopting for a foreign buffer')
    assert(moved.byteLength === this.bufferBytes, 'adopted buffer of another size')
    this.mine.delete(buffer)
    this.mine.add(moved)
  }

  private make(): B {
    const b = this.allocate(this.bufferBytes)
    this.mine.add(b)
    return b
  }

  /** Drops a buffer that was out (lost to a failed task, or its sending cannot be seen). */
  discard(): void {
    assert(this.out > 0, 'buffer discarded twice')
    if (this.waiters.handOff(() => this.make())) return
    this.out--
  }

  /** Drops the free buffers (an idle process keeps none). */
  trim(): number {
    const n = this.free.length
    this.free.length = 0
    return n
  }

  /** Trims once no buffer has been out for SLAB_IDLE_MS (as SlabPool); unref'd. */
  private scheduleTrim(): void {
    if (this.trimTimer !== undefined) return
    this.trimTimer = setTimeout(() => {
      this.trimTimer = undefined
      if (this.out === 0) this.trim()
      else this.scheduleTrim()
    }, SLAB_IDLE_MS)
    this.trimTimer.unref()
  }
}
