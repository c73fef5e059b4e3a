/** @module
 * The ErasureCodec over one instance of the WebAssembly module: argument checks, the map
 * from shards to addresses in the module's memory, the staging of shards that live outside
 * it, and the per-erasure-pattern cache of decode tables. No byte loop runs here.
 */
import type { ErasureCodec, ErasureScheme, ShardMemory } from './index.ts'
import { Heap, alignUp } from './heap.ts'
import type { CodecBuild, CodecExports } from './loader.ts'
import { DECODE_PATTERN_CACHE_MAX, SHARD_SKEW_BYTES, SHARDS_MAX, STAGING_CHUNK_BYTES } from './limits.ts'

export interface WasmCodecOptions {
  readonly scheme: ErasureScheme
  readonly k: number
  readonly m: number
  /** A fresh instance of the module, and which build it is. */
  readonly exports: CodecExports
  readonly build: CodecBuild
  /** Passes of up to this many rows run the straight-line kernels (wasm/loader.ts
   *  kernelChoiceFor); 0 runs the looping kernel only. */
  readonly unrolledRows: number
  /** Whether encode() runs the paired kernels where the module has one for (k, m). */
  readonly pairedEncode: boolean
}

/** Distance between consecutive shards of one allocation, or staging chunks: aligned, then
 *  skewed by one cache line so that the k + m streams the kernel walks in step fall in
 *  different L1 sets (at a power-of-two distance 9 or more streams thrash an 8-way L1, and
 *  4 KiB aliasing stalls loads behind stores). */
function shardStrideBytes(lengthBytes: number): number {
  return alignUp(lengthBytes) + SHARD_SKEW_BYTES
}

/** The tables that rebuild the shards of one erasure pattern from k others. */
interface DecodePlan {
  /** The k surviving shards read, by index. */
  readonly sources: Uint8Array
  /** The missing shards written, by index, ascending: one table row each. */
  readonly targets: readonly number[]
  readonly tables: number
}

const STAGING_STRIDE_BYTES = shardStrideBytes(STAGING_CHUNK_BYTES)

/** Which kernel a call runs: XOR of all inputs, the table multiply of a coefficient matrix,
 *  or the paired encode of RS(k, m) for even k (wasm/assembly/kernels.ts encodePaired). */
export type Kernel = 'xor' | 'matrix' | 'paired'

/** An invariant of this module, not a caller's mistake. */
function invariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`wasm/codec: ${message}`)
}

export class WasmCodec implements ErasureCodec, ShardMemory {
  readonly scheme: ErasureScheme
  readonly k: number
  readonly m: number
  /** Which build of the module runs: 'relaxed-simd' is the faster. */
  readonly build: CodecBuild
  /** Passes of up to this many rows run the straight-line kernels (see WasmCodecOptions). */
  readonly unrolledRows: number
  /** The kernel encode() runs: 'paired' (RS(k, m), even k, m of 3 or 4, where the engine
   *  gains from it), 'matrix' for the other RS codes, 'xor'. */
  readonly encodeKernel: Kernel
  readonly #x: CodecExports
  readonly #heap: Heap
  /** SHARDS_MAX input addresses, then SHARDS_MAX output addresses, as u32. */
  readonly #addresses: number
  #addressView: Uint32Array
  /** The tables encode() passes its kernel: the paired kernel's (gf.ts encodeTablesPaired)
   *  when encodeKernel is 'paired', the parity rows' (gf.ts encodeTables) for other RS codes,
   *  0 for XOR. */
  readonly #encodeTables: number
  /** (k + m) chunks of STAGING_CHUNK_BYTES, allocated on the first foreign shard, one
   *  staging stride apart. */
  #staging = 0
  /** Decode plans by erasure bit mask, least recently used first. */
  readonly #plans = new Map<number, DecodePlan>()
  readonly #inputs: Uint8Array[] = []
  readonly #outputs: Uint8Array[] = []

  constructor({ scheme, k, m, exports, build, unrolledRows, pairedEncode }: WasmCodecOptions) {
    this.scheme = scheme
    this.k = k
    this.m = m
    this.build = build
    this.unrolledRows = unrolledRows
    this.#x = exports
    this.#heap = new Heap(exports.memory, exports.heapBase())
    this.#addresses = this.#heap.alloc(2 * SHARDS_MAX * 4)
    const paired = scheme === 'rs' && pairedEncode && exports.hasPairedKernel(k, m) !== 0
    this.encodeKernel = scheme === 'xor' ? 'xor' : paired ? 'paired' : 'matrix'
    if (paired) {
      // Per column pair: 2 tables for each row computed directly (one per pair, and the odd row).
      const pairedBytes = (k / 2) * Math.ceil(m / 2) * 64
      this.#encodeTables = this.#heap.alloc(pairedBytes)
      const written = exports.encodeTablesPaired(k, m, this.#encodeTables)
      invariant(written === pairedBytes, `encodeTablesPaired() wrote ${written} bytes, expected ${pairedBytes}`)
    } else if (scheme === 'rs') {
      this.#encodeTables = this.#heap.alloc(m * k * 32)
      exports.encodeTables(k, m, this.#encodeTables)
    } else {
      this.#encodeTables = 0
    }
    this.#addressView = new Uint32Array(this.#heap.buffer)
  }

  encode(data: readonly Uint8Array[], parity: Uint8Array[]): void {
    checkShardArray(data, this.k, 'data')
    checkShardArray(parity, this.m, 'parity')
    const lengthBytes = data[0].length
    checkLengths(data, lengthBytes, 'encode')
    checkLengths(parity, lengthBytes, 'encode')
    if (lengthBytes === 0) return
    this.#run(data, parity, lengthBytes, this.#encodeTables, this.encodeKernel)
  }

  reconstruct(shards: Uint8Array[], missing: readonly number[]): void {
    const n = this.k + this.m
    checkShardArray(shards, n, 'shards')
    const lengthBytes = shards[0].length
    checkLengths(shards, lengthBytes, 'reconstruct')
    const mask = erasureMask(missing, n, this.m)
    if (mask === 0 || lengthBytes === 0) return
    const inputs = this.#inputs, outputs = this.#outputs
    inputs.length = 0
    outputs.length = 0
    if (this.scheme === 'xor') {
      // XOR(k, 1): the one missing shard, data or parity, is the XOR of all the others.
      for (let i = 0; i < n; i++) (mask & (1 << i) ? outputs : inputs).push(shards[i])
      this.#run(inputs, outputs, lengthBytes, 0, 'xor')
      return
    }
    const plan = this.#plan(mask)
    for (const i of plan.sources) inputs.push(shards[i])
    for (const i of plan.targets) outputs.push(shards[i])
    this.#run(inputs, outputs, lengthBytes, plan.tables, 'matrix')
  }

  allocateShards(count: number, lengthBytes: number): Uint8Array[] {
    if (!Number.isInteger(count) || count < 1 || count > SHARDS_MAX) {
      throw new RangeError(`Cannot allocate ${count} shards: the count must be an integer from 1 to ${SHARDS_MAX}`)
    }
    if (!Number.isInteger(lengthBytes) || lengthBytes < 0) {
      throw new RangeError(`Cannot allocate shards of ${lengthBytes} bytes: the length must be a non-negative integer`)
    }
    // One block holds them all, each shard aligned and skewed (see shardStrideBytes).
    const strideBytes = shardStrideBytes(lengthBytes)
    const ptr = this.#heap.alloc(Math.max(1, count * strideBytes))
    const buffer = this.#heap.buffer
    return Array.from({ length: count }, (_, i) => new Uint8Array(buffer, ptr + i * strideBytes, lengthBytes))
  }

  freeShards(shards: readonly Uint8Array[]): void {
    const first = shards[0]
    if (first === undefined || !this.#heap.owns(first.buffer)) {
      throw new RangeError('Cannot free shards: they were not allocated by this codec')
    }
    this.#heap.free(first.byteOffset)
  }

  /** The plan of an erasure pattern: cached, else computed (the k x k inversion) and cached. */
  #plan(mask: number): DecodePlan {
    const cached = this.#plans.get(mask)
    if (cached !== undefined) {
      this.#plans.delete(mask)
      this.#plans.set(mask, cached)
      return cached
    }
    if (this.#plans.size >= DECODE_PATTERN_CACHE_MAX) {
      const [oldestMask, oldest] = this.#plans.entries().next().value!
      this.#plans.delete(oldestMask)
      this.#heap.free(oldest.tables)
    }
    const targets: number[] = []
    for (let i = 0; i < this.k + this.m; i++) if (mask & (1 << i)) targets.push(i)
    const tables = this.#heap.alloc(targets.length * this.k * 32)
    const sourcesPtr = this.#heap.alloc(SHARDS_MAX)
    const rows = this.#x.decodeTables(this.k, this.m, mask, sourcesPtr, tables)
    // Every k x k sub-matrix of [I; Cauchy] is invertible, so no pattern of at most m fails.
    invariant(rows === targets.length, `decodeTables() returned ${rows} for pattern ${mask >>> 0}`)
    const sources = new Uint8Array(this.#heap.buffer, sourcesPtr, this.k).slice()
    this.#heap.free(sourcesPtr)
    const plan = { sources, targets, tables }
    this.#plans.set(mask, plan)
    return plan
  }

  /** Writes the outputs from the inputs with `kernel` and its `tables`. Shards in this
   *  codec's memory are used in place; any other is copied through the staging area,
   *  STAGING_CHUNK_BYTES at a time. Borrows every shard for the call only. */
  #run(inputs: readonly Uint8Array[], outputs: readonly Uint8Array[], lengthBytes: number, tables: number, kernel: Kernel): void {
    checkNoOverlap(inputs, outputs)
    let foreign = false
    for (const s of inputs) foreign ||= !this.#isOwn(s)
    for (const s of outputs) foreign ||= !this.#isOwn(s)
    if (!foreign) {
      this.#setAddresses(inputs, outputs, 0)
      this.#kernel(kernel, inputs.length, outputs.length, lengthBytes, tables)
      return
    }
    if (this.#staging === 0) {
      this.#staging = this.#heap.alloc((this.k + this.m) * STAGING_STRIDE_BYTES)
    }
    const memory = new Uint8Array(this.#heap.buffer)
    for (let offset = 0; offset < lengthBytes; offset += STAGING_CHUNK_BYTES) {
      const chunkBytes = Math.min(STAGING_CHUNK_BYTES, lengthBytes - offset)
      this.#setAddresses(inputs, outputs, offset)
      for (let i = 0; i < inputs.length; i++) {
        const s = inputs[i]
        if (!this.#isOwn(s)) memory.set(s.subarray(offset, offset + chunkBytes), this.#staging + i * STAGING_STRIDE_BYTES)
      }
      this.#kernel(kernel, inputs.length, outputs.length, chunkBytes, tables)
      for (let i = 0; i < outputs.length; i++) {
        const s = outputs[i]
        const at = this.#staging + (inputs.length + i) * STAGING_STRIDE_BYTES
        if (!this.#isOwn(s)) s.set(memory.subarray(at, at + chunkBytes), offset)
      }
    }
  }

  #kernel(kernel: Kernel, inputCount: number, outputCount: number, lengthBytes: number, tables: number): void {
    const ins = this.#addresses, outs = this.#addresses + SHARDS_MAX * 4
    if (kernel === 'xor') {
      invariant(outputCount === 1, 'XOR writes one shard')
      this.#x.xorShards(inputCount, ins, this.#addressView[outs / 4], lengthBytes)
    } else if (kernel === 'paired') {
      const done = this.#x.encodePaired(inputCount, outputCount, tables, ins, outs, lengthBytes)
      invariant(done !== 0, `no paired kernel for RS(${inputCount},${outputCount})`)
    } else {
      this.#x.mulMatrix(outputCount, inputCount, tables, ins, outs, lengthBytes, this.unrolledRows)
    }
  }

  /** Fills the address table for the chunk at `offset`: own shards in place, foreign ones
   *  at their staging chunk (inputs from slot 0 on, outputs after them). */
  #setAddresses(inputs: readonly Uint8Array[], outputs: readonly Uint8Array[], offset: number): void {
    if (this.#addressView.buffer !== this.#heap.buffer) this.#addressView = new Uint32Array(this.#heap.buffer)
    const view = this.#addressView
    const base = this.#addresses / 4
    for (let i = 0; i < inputs.length; i++) {
      const s = inputs[i]
      view[base + i] = this.#isOwn(s) ? s.byteOffset + offset : this.#staging + i * STAGING_STRIDE_BYTES
    }
    for (let i = 0; i < outputs.length; i++) {
      const s = outputs[i]
      view[base + SHARDS_MAX + i] = this.#isOwn(s) ? s.byteOffset + offset : this.#staging + (inputs.length + i) * STAGING_STRIDE_BYTES
    }
  }

  /** Whether the kernels may address `shard` in place: it is a view of this codec's memory,
   *  above the module's static tables. */
  #isOwn(shard: Uint8Array): boolean {
    if (!this.#heap.owns(shard.buffer)) return false
    if (shard.byteOffset < this.#heap.start) {
      throw new RangeError(`Cannot use a shard at ${shard.byteOffset}: it overlaps the codec's own tables`)
    }
    return true
  }
}

function checkShardArray(shards: readonly Uint8Array[], count: number, what: string): void {
  if (!Array.isArray(shards)) throw new TypeError(`Cannot code ${what}: expected an array of Uint8Array`)
  if (shards.length !== count) throw new RangeError(`Cannot code ${what}: expected ${count} shards, got ${shards.length}`)
  for (let i = 0; i < count; i++) {
    if (!(shards[i] instanceof Uint8Array)) throw new TypeError(`Cannot code ${what}[${i}]: expected a Uint8Array`)
  }
}

function checkLengths(shards: readonly Uint8Array[], lengthBytes: number, op: string): void {
  for (let i = 0; i < shards.length; i++) {
    if (shards[i].length !== lengthBytes) {
      throw new RangeError(`Cannot ${op}: shard ${i} has ${shards[i].length} bytes, expected ${lengthBytes} like the first`)
    }
  }
}

/** Outputs must not share bytes with inputs: the kernels write each output step by step
 *  (wasm/assembly/kernels.ts pins partial sums after every input), so an output over an input
 *  read later would corrupt it. */
function checkNoOverlap(inputs: readonly Uint8Array[], outputs: readonly Uint8Array[]): void {
  for (let o = 0; o < outputs.length; o++) {
    const out = outputs[o]
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i]
      if (out.buffer !== input.buffer) continue
      if (out.byteOffset < input.byteOffset + input.byteLength && input.byteOffset < out.byteOffset + out.byteLength) {
        throw new RangeError(`Cannot code: output shard ${o} shares bytes with input shard ${i}`)
      }
    }
  }
}

/** The bit mask of `missing`: distinct integers in [0, n), at most `m` of them. */
function erasureMask(missing: readonly number[], n: number, m: number): number {
  if (!Array.isArray(missing)) throw new TypeError('Cannot reconstruct: missing must be an array of shard indexes')
  if (missing.length > m) {
    throw new RangeError(`Cannot reconstruct ${missing.length} missing shards: at most ${m} can be rebuilt`)
  }
  let mask = 0
  for (const i of missing) {
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new RangeError(`Cannot reconstruct shard ${i}: indexes run from 0 to ${n - 1}`)
    }
    if (mask & (1 << i)) throw new RangeError(`Cannot reconstruct shard ${i}: it is listed twice`)
    mask |= 1 << i
  }
  return mask
}
