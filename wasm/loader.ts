/** @module
 * Loads the codec module (built by `npm run build:wasm`, never downloaded): compiled once per
 * thread, instantiated once per codec, so each Piscina worker compiles its own copy on first
 * use. The files sit in `./build/` beside this module both in the sources (Deno) and in
 * dist/ (Node; scripts/build-wasm.mjs copies them); node:fs/promises reads a file URL on
 * Node and on Deno alike.
 *
 * Two builds: 'relaxed-simd' (the faster: its table lookup is a bare pshufb) when the runtime
 * accepts it, else 'simd'. V8 ships relaxed SIMD from 11.4 (Deno 2, Node 22); Node 20's V8
 * 11.3 has it complete behind --experimental-wasm-relaxed-simd, which this module turns on
 * (a process-wide V8 flag that only admits the new instructions) when the runtime does not
 * validate the relaxed build and O3_WASM_RELAXED_SIMD is not 0.
 */
import { readFile } from 'node:fs/promises'

/** The module's exports (wasm/assembly/index.ts). Pointers are byte offsets in `memory`. */
export interface CodecExports {
  readonly memory: WebAssembly.Memory
  heapBase(): number
  encodeTables(k: number, m: number, out: number): void
  encodeTablesPaired(k: number, m: number, out: number): number
  hasPairedKernel(k: number, m: number): number
  encodePaired(k: number, m: number, tables: number, ins: number, outs: number, lengthBytes: number): number
  decodeTables(k: number, m: number, missing: number, sources: number, out: number): number
  mulMatrix(rows: number, k: number, tables: number, ins: number, outs: number, lengthBytes: number, unrolledRows: number): void
  xorShards(n: number, ins: number, out: number, lengthBytes: number): void
}

export type CodecBuild = 'relaxed-simd' | 'simd'

const FILES: Record<CodecBuild, URL> = {
  'relaxed-simd': new URL('./build/codec-relaxed.wasm', import.meta.url),
  simd: new URL('./build/codec.wasm', import.meta.url),
}
const compiled = new Map<CodecBuild | 'best', Promise<{ build: CodecBuild; module: WebAssembly.Module }>>()

async function read(build: CodecBuild): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return await readFile(FILES[build])
  } catch (err) {
    throw new Error(`Cannot load ${FILES[build].pathname}: run npm run build:wasm`, { cause: err })
  }
}

/** Whether this runtime accepts the relaxed build, turning on Node 20's flag if it must. */
async function relaxedSupported(bytes: Uint8Array<ArrayBuffer>): Promise<boolean> {
  if (WebAssembly.validate(bytes)) return true
  if ('Deno' in globalThis || globalThis.process?.versions?.node === undefined) return false
  if (globalThis.process.env.O3_WASM_RELAXED_SIMD === '0') return false
  const v8 = await import('node:v8')
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd')
  return WebAssembly.validate(bytes)
}

async function compile(wanted: CodecBuild | 'best'): Promise<{ build: CodecBuild; module: WebAssembly.Module }> {
  if (wanted !== 'simd') {
    const bytes = await read('relaxed-simd')
    if (await relaxedSupported(bytes)) return { build: 'relaxed-simd', module: await WebAssembly.compile(bytes) }
    if (wanted === 'relaxed-simd') throw new Error('Cannot load the relaxed-simd codec: this runtime lacks relaxed SIMD')
  }
  return { build: 'simd', module: await WebAssembly.compile(await read('simd')) }
}

/** The compiled module of this thread ('best': relaxed SIMD when the runtime has it); a
 *  failed load is retried on the next call. */
function compileCodecModule(build: CodecBuild | 'best' = 'best'): Promise<{ build: CodecBuild; module: WebAssembly.Module }> {
  let promise = compiled.get(build)
  if (promise === undefined) {
    promise = compile(build)
    promise.catch(() => compiled.delete(build))
    compiled.set(build, promise)
  }
  return promise
}

/** Which kernels run on an engine (scripts/gen-kernels.mjs generates both kinds):
 *  `unrolledRows`, the passes of up to that many output rows that run the straight-line
 *  kernels rather than the looping one, and `pairedEncode`, whether encode() runs the paired
 *  kernels. Which is faster is up to the engine's optimizing compiler, measured in
 *  bench/README.md ("Erasure codec"): on V8 11 (TurboFan; Node 20) straight-line wins for 1
 *  to 3 rows and paired encode by 13-22%; on V8 15 (Turboshaft; Deno 2.9) straight-line wins
 *  for 1 and 2 rows only and paired encode loses 6-8%. Versions between take the newer rule,
 *  untested. */
export function kernelChoiceFor(v8Version: string | undefined): { unrolledRows: number; pairedEncode: boolean } {
  const major = Number.parseInt(v8Version ?? '', 10)
  const turbofan = major > 0 && major < 12
  return { unrolledRows: turbofan ? 3 : 2, pairedEncode: turbofan }
}

function v8Version(): string | undefined {
  const deno = (globalThis as { Deno?: { version?: { v8?: string } } }).Deno
  return deno?.version?.v8 ?? globalThis.process?.versions?.v8
}

/** A fresh instance, with its own memory, of this thread's compiled module, and the kernel
 *  choice for this runtime. */
export async function instantiateCodec(build: CodecBuild | 'best' = 'best'): Promise<{ build: CodecBuild; exports: CodecExports; unrolledRows: number; pairedEncode: boolean }> {
  const { build: chosen, module } = await compileCodecModule(build)
  const instance = await WebAssembly.instantiate(module)
  return { build: chosen, exports: instance.exports as unknown as CodecExports, ...kernelChoiceFor(v8Version()) }
}
