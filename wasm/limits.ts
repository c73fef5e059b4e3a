/** @module
 * The codec's named maxima and the relations between them, checked when the module loads.
 * wasm/ imports nothing, so these live here rather than in core/limits.ts.
 */

/** k + m at most: the erasure pattern is a u32 bit mask, and ISA-L's Cauchy construction
 *  stays invertible only while every i ^ j is a distinct non-zero field element. */
export const SHARDS_MAX = 32
/** Shard views handed out by allocateShards() start on this boundary (a cache line). */
export const SHARD_ALIGN_BYTES = 64
/** Extra distance between consecutive shards of one allocation (see wasm/codec.ts). */
export const SHARD_SKEW_BYTES = 64
/** Bytes of each shard copied in or out of the codec's memory per kernel call, when a shard
 *  lives outside it: (k + m) such chunks stay in L2 between the copy and the kernel. */
export const STAGING_CHUNK_BYTES = 64 * 1024
/** Erasure patterns whose decode tables are kept; the least recently used is dropped. */
export const DECODE_PATTERN_CACHE_MAX = 64
/** WebAssembly pages (64 KiB) of one codec's memory at most: the wasm32 limit, 4 GiB. It is
 *  also the module's declared maximum (scripts/build-wasm.mjs, --maximumMemory). */
export const MEMORY_PAGES_MAX = 65536
export const PAGE_BYTES = 65536

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`wasm/limits: ${message}`)
}
check(SHARDS_MAX <= 32, 'an erasure pattern must fit a u32 bit mask')
check(STAGING_CHUNK_BYTES % 64 === 0, 'staging chunks must keep the kernels on whole vectors')
check(STAGING_CHUNK_BYTES % SHARD_ALIGN_BYTES === 0, 'staging chunks must stay aligned')
check(SHARD_SKEW_BYTES % SHARD_ALIGN_BYTES === 0, 'the skew must keep shards aligned')
check(SHARDS_MAX * STAGING_CHUNK_BYTES < MEMORY_PAGES_MAX * PAGE_BYTES, 'the staging area must fit the memory')
