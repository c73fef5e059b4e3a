/** @module
 * Off-main-thread datapath work. Take a slab from a SlabPool, fill it once, then hand views of
 * it to runChecksum / runWriteChunk; runReadChunk fills a pooled shared buffer in place (or
 * a plain one it moves there and back); release the slab.
 */
export { SlabPool, SizedSlabPools } from './slabs.ts'
export { BufferPool } from './buffers.ts'
export { lateWrites, noteLateWrite } from './late-writes.ts'
export { workerPool, closeWorkerPool, runChecksum, runWriteChunk, runReadChunk, runReadVerify, runVerifyChunk, runVerifySlab, runDigest, runEcEncode, runEcReconstruct } from './pool.ts'
export type { EcEncodeTask, EcReconstructTask } from './ec.ts'
export type { DigestName } from './digest.ts'
export type { SlabRange } from './tasks.ts'
