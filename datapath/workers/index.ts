/** @module
 * Off-main-thread datapath work. Take a slab from a SlabPool, fill it once, then hand views of
 * it to runChecksum / runWriteChunk; runReadChunk fills a pooled shared buffer in place (or
 * a plain one it moves there and back); release the slab.
 * Bodies are hashed as they stream in a DigestSession, pinned to a digest lane's thread.
 */
import { closeSharedPool } from './pool.ts'
import { closeDigestLanes } from './digest-lanes.ts'

export { SlabPool, SizedSlabPools } from './slabs.ts'
export { BufferPool } from './buffers.ts'
export { lateWrites, noteLateWrite } from './late-writes.ts'
export { workerPool, runChecksum, runWriteChunk, runReadChunk, runReadVerify, runVerifyChunk, runVerifySlab, runEcEncode, runEcReconstruct } from './pool.ts'
export { DigestSession, digestLanes, digestLaneTasks } from './digest-lanes.ts'
export type { EcEncodeTask, EcReconstructTask } from './ec.ts'
export type { DigestName } from './hashers.ts'
export type { SlabRange } from './tasks.ts'

/** Closes the shared pool and the digest lanes: a process, or a test, that stops. */
export async function closeWorkerPool(): Promise<void> {
  await Promise.all([closeSharedPool(), closeDigestLanes()])
}
