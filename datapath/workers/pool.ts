/** @module
 * The process-wide Piscina pool that runs datapath tasks (checksums, chunk writes and reads)
 * off the main thread. One pool per process, however many services it hosts. Under Node its
 * threads start on demand and exit after WORKER_IDLE_MS idle: each has its own heap, and
 * holds views of slabs its pools have dropped until it collects them, so an idle process
 * keeps none. Under Deno they stay (see workerPool) and run their own idle GC (worker.ts),
 * so there they wait for tasks on their event loop, not blocked in Atomics.wait.
 */
import { Piscina } from 'piscina'
import { availableParallelism } from 'node:os'
import { O3Error } from '../../core/errors.ts'
import { WORKER_IDLE_MS } from '../../core/limits.ts'
import { noteActivity } from './idle.ts'
import type { ChecksumTask, ReadChunkTask, ReadVerifyTask, TaskResult, VerifyChunkTask, VerifySlabTask, WriteChunkTask } from './tasks.ts'
import type { EcEncodeTask, EcReconstructTask } from './ec.ts'

let pool: Piscina | undefined

/** A worker entry beside this file: `worker` (this pool's tasks) or `digest-worker` (a digest lane's). */
export function workerFile(name: 'worker' | 'digest-worker' = 'worker'): string {
  // Under Node the compiled .js sits beside this file; Deno runs the TypeScript source.
  return new URL(`./${name}.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url).href
}

export function workerPool(threads?: number): Piscina {
  if (pool === undefined) {
    const n = Math.max(1, threads ?? Math.min(4, availableParallelism()))
    // Under Deno 2.9 a worker that ends keeps its memory and thread (about 12 MB each, measured
    // over 12 idle exits), so there the threads stay and collect their own garbage instead.
    // That needs their event loop to run between tasks: Piscina's default ('sync' atomics)
    // blocks an idle worker in Atomics.wait, so its idle GC timer never fired, and the slabs
    // and read buffers of its last tasks stayed alive for good (measured: 8 slabs of 17 MiB
    // sent to 2 workers stayed resident; with 'disabled' they are freed 1 s after the GC).
    const exitFreesMemory = !('Deno' in globalThis)
    pool = new Piscina({
      filename: workerFile(), minThreads: exitFreesMemory ? 0 : n, maxThreads: n, idleTimeout: WORKER_IDLE_MS,
      atomics: exitFreesMemory ? 'sync' : 'disabled',
    })
  }
  return pool
}

/** Closes the shared pool (closeWorkerPool in index.ts also closes the digest lanes). */
export async function closeSharedPool(): Promise<void> {
  const p = pool
  pool = undefined
  await p?.destroy()
}

/** Runs a task on the pool, noted as datapath activity (see idle.ts). */
function run(task: object, options: { name: string; transferList?: ArrayBuffer[] }): Promise<unknown> {
  noteActivity()
  return workerPool().run(task, options)
}

function unwrap<T extends object>(r: TaskResult<T>): T {
  if (!r.ok) throw new O3Error(r.code, r.message)
  return r
}

export async function runChecksum(task: ChecksumTask): Promise<number> {
  return unwrap(await run(task, { name: 'checksum' }) as TaskResult<{ length: number }>).length
}

export async function runWriteChunk(task: WriteChunkTask): Promise<void> {
  unwrap(await run(task, { name: 'writeChunk' }) as TaskResult)
}

/** Reads into `task.into`: an ArrayBuffer is transferred to the worker and back, a
 *  SharedArrayBuffer filled in place (never copied either way). */
export async function runReadChunk(task: ReadChunkTask): Promise<Uint8Array> {
  const shared = task.into instanceof SharedArrayBuffer
  const r = unwrap(await run(task, { name: 'readChunk', transferList: shared ? [] : [task.into as ArrayBuffer] }) as TaskResult<{ into: ArrayBuffer | SharedArrayBuffer; length: number }>)
  // A shared buffer was filled in place: the worker's handle on it is not this one.
  return new Uint8Array(shared ? task.into : r.into, 0, r.length)
}

/** Reads a range of a block file into a reader's shared slab and verifies it, in one task:
 *  the bytes read and the first window that does not match (-1 when none). */
export async function runReadVerify(task: ReadVerifyTask): Promise<{ length: number; badWindow: number }> {
  const r = unwrap(await run(task, { name: 'readVerify' }) as TaskResult<{ length: number; badWindow: number }>)
  return { length: r.length, badWindow: r.badWindow }
}

/**
 * Verifies a read chunk's data against its checksums in a worker: `task.body` is transferred
 * there (detached here) and comes back as `body`, a new ArrayBuffer over the same memory.
 * `badWindow` is the first window that does not match, or -1.
 */
export async function runVerifyChunk(task: VerifyChunkTask): Promise<{ badWindow: number; body: ArrayBuffer }> {
  const r = unwrap(await run(task, { name: 'verifyChunk', transferList: [task.body] }) as TaskResult<{ badWindow: number; body: ArrayBuffer }>)
  return { badWindow: r.badWindow, body: r.body }
}

/** Verifies a read's data against its checksums in a worker, in place in a shared slab
 *  (borrowed until this settles): the first window that does not match, or -1. */
export async function runVerifySlab(task: VerifySlabTask): Promise<number> {
  return unwrap(await run(task, { name: 'verifySlab' }) as TaskResult<{ badWindow: number }>).badWindow
}

/** Computes a stripe's m parity cells from its k data cells in a worker, in place in their slabs. */
export async function runEcEncode(task: EcEncodeTask): Promise<void> {
  unwrap(await run(task, { name: 'ecEncode' }) as TaskResult)
}

/** Rebuilds the `missing` cells of a stripe from the others in a worker, in place in their slabs. */
export async function runEcReconstruct(task: EcReconstructTask): Promise<void> {
  unwrap(await run(task, { name: 'ecReconstruct' }) as TaskResult)
}
