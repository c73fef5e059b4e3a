/** @module
 * The waiting side of a bounded pool (SlabPool, BufferPool): callers wait in order for an
 * item someone gives back, each at most `timeoutMs`, after which it fails UNAVAILABLE
 * (retryable). Owns no items: the pool hands them over with handOff().
 */
import { setTimeout } from 'node:timers'
import { O3Error } from '../../core/errors.ts'

interface Waiter<T> {
  resolve: (item: T) => void
  timer: ReturnType<typeof setTimeout> | undefined
}

export class WaitQueue<T> {
  private readonly waiters: Waiter<T>[] = []

  get length(): number {
    return this.waiters.length
  }

  /** Waits for the next item handed off; with `timeoutMs`, rejects with `what` in its message. */
  wait(timeoutMs: number | undefined, what: () => string): Promise<T> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter<T> = { resolve, timer: undefined }
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1)
          reject(new O3Error('UNAVAILABLE', `Cannot get ${what()} within ${timeoutMs} ms`))
        }, timeoutMs)
      }
      this.waiters.push(waiter)
    })
  }

  /** Gives `item()` to the longest waiter; false (and `item` not called) when none waits. */
  handOff(item: () => T): boolean {
    const waiter = this.waiters.shift()
    if (waiter === undefined) return false
    clearTimeout(waiter.timer)
    waiter.resolve(item())
    return true
  }
}
