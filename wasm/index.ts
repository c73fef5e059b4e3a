/** @module
 * The erasure codec of EC buckets (`EC/rs-3-2-1024k`, `EC/rs-6-3-1024k`, `EC/rs-10-4-1024k`,
 * `EC/xor-2-1-1024k`): Reed–Solomon over GF(2^8) (polynomial 0x11d) with the coding matrix
 * of ISA-L's `gf_gen_cauchy1_matrix` (identity over `a[i][j] = 1 / (i ^ j)`), which is the
 * matrix of Hadoop's and Ozone's `rs` codec, so the parity bytes are theirs; and XOR(k, 1).
 * The byte loops are AssemblyScript compiled to WebAssembly SIMD (wasm/assembly/), the same
 * bytes on Node, Deno and in Piscina workers. Imports nothing outside wasm/.
 *
 * A caller:
 * 1. `const codec = await createCodec('rs', 6, 3)` once per thread (the module is compiled
 *    once per thread; each codec is its own instance with its own memory);
 * 2. optionally `codec.allocateShards(k + m, cellBytes)` once, at startup: shards in the
 *    codec's memory are coded in place, any other Uint8Array is copied in and out;
 * 3. `codec.encode(data, parity)` per stripe; on a read with lost cells,
 *    `codec.reconstruct(shards, missing)` (the decode matrix of each erasure pattern is
 *    inverted once and cached).
 * Calls are synchronous and borrow the shards for the call only.
 *
 * How it is fast (bench/README.md has the figures): each GF multiply of 16 bytes is two
 * 16-entry table lookups, of the low and the high nibble products, with
 * `i8x16.relaxed_swizzle` (a bare pshufb on x86; wasm/loader.ts picks that build when the
 * runtime has relaxed SIMD, else plain `i8x16.swizzle`); up to four output rows accumulate
 * in registers per pass over the inputs, 32 bytes a step; more rows take more passes over
 * 16 KiB blocks that stay in cache; shards of one allocation are a cache line off a
 * power-of-two stride so that the k + m streams do not fight over L1 sets; calls allocate
 * no codec memory (a new erasure pattern's tables aside). Shards outside the codec's memory cost a copy in and out (64 KiB at a time, in
 * L2), roughly halving throughput: allocate stripes with allocateShards() on hot paths.
 */
import { WasmCodec } from './codec.ts'
import { SHARDS_MAX } from './limits.ts'
import { instantiateCodec } from './loader.ts'

export type ErasureScheme = 'rs' | 'xor'

export interface ErasureCodec {
  readonly k: number
  readonly m: number
  /** Fills parity[0..m) from data[0..k); all shards have the same length, and no parity
   *  shard may share bytes with a data shard (RangeError). */
  encode(data: readonly Uint8Array[], parity: Uint8Array[]): void
  /** Rebuilds shards[i] for every i in `missing` (data or parity, at most m of them)
   *  from the others, in place; shards are indexed 0..k+m, data first. A missing shard may
   *  not share bytes with one that is read (RangeError). */
  reconstruct(shards: Uint8Array[], missing: readonly number[]): void
}

/** Shards inside the codec's own WebAssembly memory, which encode and reconstruct read and
 *  write in place (no copy in or out). The memory is shared, so a later allocation that
 *  grows it leaves earlier views valid. */
export interface ShardMemory {
  /** Returns `count` (1..32) shards of `lengthBytes` each, 64-byte aligned, owned by the
   *  caller until freeShards(). Their contents are unspecified (reused memory is not
   *  cleared). */
  allocateShards(count: number, lengthBytes: number): Uint8Array[]
  /** Returns shards from one allocateShards() call (pass that array) to the codec. */
  freeShards(shards: readonly Uint8Array[]): void
}

/** Creates a codec for `scheme` with k data and m parity shards: 1 <= k, 1 <= m,
 *  k + m <= 32, and m = 1 for 'xor'. Throws TypeError or RangeError otherwise. */
export function createCodec(scheme: 'rs' | 'xor', k: number, m: number): Promise<ErasureCodec & ShardMemory> {
  const name = `${String(scheme)}(${k},${m})`
  if (scheme !== 'rs' && scheme !== 'xor') {
    return Promise.reject(new TypeError(`Cannot create codec ${name}: the scheme must be 'rs' or 'xor'`))
  }
  if (!Number.isInteger(k) || !Number.isInteger(m) || k < 1 || m < 1) {
    return Promise.reject(new RangeError(`Cannot create codec ${name}: k and m must be integers of at least 1`))
  }
  if (k + m > SHARDS_MAX) {
    return Promise.reject(new RangeError(`Cannot create codec ${name}: k + m must be at most ${SHARDS_MAX}`))
  }
  if (scheme === 'xor' && m !== 1) {
    return Promise.reject(new RangeError(`Cannot create codec ${name}: XOR has exactly one parity shard`))
  }
  return instantiateCodec().then((instance) => new WasmCodec({ scheme, k, m, ...instance }))
}
