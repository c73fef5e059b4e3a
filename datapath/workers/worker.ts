/** @module
 * The Piscina worker entry: exports the tasks by name (run(task, { name })). Each task notes
 * activity, so that an idle worker runs one GC of its own heap (idle.ts): under Deno an idle
 * worker is kept rather than ended (pool.ts), and its garbage would otherwise stay.
 */
import { workerTask } from './idle.ts'
import { checksum as checksumTask, writeChunk as writeChunkTask, readChunk as readChunkTask, readVerify as readVerifyTask, verifyChunk as verifyChunkTask, verifySlab as verifySlabTask } from './tasks.ts'
import { ecEncode as ecEncodeTask, ecReconstruct as ecReconstructTask } from './ec.ts'

export const checksum = workerTask(checksumTask)
export const writeChunk = workerTask(writeChunkTask)
export const readChunk = workerTask(readChunkTask)
export const readVerify = workerTask(readVerifyTask)
export const verifyChunk = workerTask(verifyChunkTask)
export const verifySlab = workerTask(verifySlabTask)
export const ecEncode = workerTask(ecEncodeTask)
export const ecReconstruct = workerTask(ecReconstructTask)
