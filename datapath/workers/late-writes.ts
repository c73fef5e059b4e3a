/** @module
 * Shared buffers a worker may still be writing into after their reader stopped waiting (a
 * short-circuit read abandoned on abort or timeout: a worker's file read cannot be stopped).
 * BufferPool and SlabPool hand such a buffer out again only once that write is over.
 */
import { log } from '../../core/log.ts'

const writes = new WeakMap<SharedArrayBuffer, Promise<void>>()

/** Notes that a worker may write into `buffer` until `write` settles (whatever its outcome). */
export function noteLateWrite(buffer: SharedArrayBuffer, write: Promise<unknown>): void {
  const over: Promise<void> = Promise.all([writes.get(buffer), write.then(() => undefined, () => undefined)]).then(() => {
    if (writes.get(buffer) === over) writes.delete(buffer)
  })
  writes.set(buffer, over)
}

/** When the writes still running into `buffer` are over (undefined: none are). */
export function lateWrites(buffer: ArrayBufferLike): Promise<void> | undefined {
  return buffer instanceof SharedArrayBuffer ? writes.get(buffer) : undefined
}

/**
 * For a pool's release: when writes still run into `buffer`, calls `release` once they are
 * over (a failure then is logged: no caller is left to throw to) and answers true, the
 * buffer not given back now; false when none run.
 */
export function releaseAfterLateWrites(buffer: ArrayBufferLike, release: () => void): boolean {
  const late = lateWrites(buffer)
  if (late === undefined) return false
  void late.then(() => {
    try {
      release()
    } catch (err) {
      log.error(`cannot give a buffer back after a late write: ${(err as Error).message}`, err)
    }
  })
  return true
}
