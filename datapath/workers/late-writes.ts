/** @module
 * Shared buffers a worker may still be writing into after their reader stopped waiting (a
 * short-circuit read abandoned on abort or timeout: a worker's file read cannot be stopped).
 * BufferPool and SlabPool hand such a buffer out again only once that write is over.
 */

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
