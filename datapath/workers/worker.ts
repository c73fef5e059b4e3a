/** @module
 * The Piscina worker entry: exports the tasks by name (run(task, { name })). Each task notes
 * activity, so that an idle worker runs one GC of its own heap (idle.ts): under Deno an idle
 * worker is kept rather than ended (pool.ts), and its garbage would otherwise stay.
 */
import { WORKER_IDLE_GC_MS } from '../../core/limits.ts'
import { noteActivity } from './idle.ts'
import { checksum as checksumTask, writeChunk as writeChunkTask, readChunk as readChunkTask, readVerify as readVerifyTask, verifyChunk as verifyChunkTask, verifySlab as verifySlabTask } from './tasks.ts'
import { ecEncode as ecEncodeTask, ecReconstruct as ecReconstructTask } from './ec.ts'

function noted<T, R>(task: (t: T) => R): (t: T) => R {
  return (t) => { noteActivity(WORKER_IDLE_GC_MS); return task(t) }
}

export const checksum = noted(checksumTask)
export const writeChunk = noted(writeChunkTask)
export const readChunk = noted(readChunkTask)
export const readVerify = noted(readVerifyTask)
export const verifyChunk = noted(verifyChunkTask)
export const verifySlab = noted(verifySlabTask)
export const ecEncode = noted(ecEncodeTask)
export const ecReconstruct = noted(ecReconstructTask)
