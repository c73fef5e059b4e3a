/** @module
 * One full garbage collection when the datapath turns idle. Payload buffers are external
 * memory (ArrayBuffers, SharedArrayBuffers): a read's 4 MiB buffer or a dropped slab is
 * garbage, but V8 collects only when the JavaScript heap or new external allocations ask
 * for it, and an idle process asks for nothing. Measured on `o3 local` after a mixed S3
 * workload (bench/rss.ts): 418 MiB RSS idle for good, 178 MiB after one forced GC. So the
 * pool and the slabs note each task here, and IDLE_GC_MS after the last one, GC runs once.
 * Workers do the same for their own heap (worker.ts), sooner, so that the views of slabs they
 * held are gone when the main thread collects. Shortly after the GC, the C heap's free pages
 * go back to the OS where the runtime lets us (malloc-trim.ts: Deno on glibc), since glibc
 * keeps freed payload buffers resident.
 *
 * The GC function is V8's `gc`, exposed the way jest's leak detector does it
 * (v8.setFlagsFromString('--expose-gc'), then `gc` from a new vm context): both Node and Deno
 * support it, and without it (an embedder that refuses the flag) this does nothing.
 */
import { setTimeout } from 'node:timers'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { IDLE_GC_MS, MALLOC_TRIM_AFTER_GC_MS, WORKER_IDLE_GC_MS } from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import { trimMallocHeap } from './malloc-trim.ts'

let lastActivityMs = 0
let idleGcMs = IDLE_GC_MS
let timer: ReturnType<typeof setTimeout> | undefined
let gcFunction: (() => void) | null | undefined

/** Notes datapath work now: the idle GC comes `afterMs` (IDLE_GC_MS on the main thread,
 *  WORKER_IDLE_GC_MS in a worker) after the last call. Cheap. */
export function noteActivity(afterMs = IDLE_GC_MS): void {
  lastActivityMs = Date.now()
  idleGcMs = afterMs
  if (timer === undefined) arm(idleGcMs)
}

/** A worker thread's task that notes activity when it runs, so that the idle worker collects its own heap (worker.ts, digest-worker.ts). */
export function workerTask<T, R>(task: (t: T) => R): (t: T) => R {
  return (t) => { noteActivity(WORKER_IDLE_GC_MS); return task(t) }
}

function arm(delayMs: number): void {
  timer = setTimeout(check, delayMs)
  // Unref'd: waiting to collect never keeps the process alive.
  timer.unref()
}

function check(): void {
  timer = undefined
  const idleMs = Date.now() - lastActivityMs
  if (idleMs < idleGcMs) return arm(idleGcMs - idleMs)
  collectGarbage()
  const gcAtMs = Date.now()
  // Unref'd like the GC timer; skipped when work came back meanwhile (the next idle GC trims).
  setTimeout(() => { if (lastActivityMs < gcAtMs) trimMallocHeap() }, MALLOC_TRIM_AFTER_GC_MS).unref()
}

/** Runs one full GC; false when the runtime does not expose one. */
export function collectGarbage(): boolean {
  if (gcFunction === undefined) {
    try {
      setFlagsFromString('--expose-gc')
      gcFunction = runInNewContext('gc') as () => void
      if (typeof gcFunction !== 'function') gcFunction = null
    } catch (err) {
      log.debug('idle GC unavailable', { error: (err as Error).message })
      gcFunction = null
    }
  }
  if (gcFunction === null) return false
  gcFunction()
  return true
}
