/** @module
 * The WebAssembly module's exports, the whole of its ABI with wasm/codec.ts: pointers are
 * byte offsets into the module's own memory, which the host manages above heapBase().
 * Compiled with `asc --enable simd -O3 --runtime stub`: no managed objects, no allocation.
 */
export { encodeTables, encodeTablesPaired, decodeTables } from './gf'
export { encodePaired, mulMatrix, xorShards } from './kernels'
export { hasPairedKernel } from './unrolled'

/** The first byte the host may use: static data (GF and scratch tables) lies below it. */
export function heapBase(): usize {
  return __heap_base
}
