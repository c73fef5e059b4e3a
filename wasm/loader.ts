/** @module
 * Loads wasm/build/codec.wasm (built by `npm run build:wasm`, never downloaded): compiled once
 * per thread, instantiated once per codec, so each Piscina worker compiles its own copy on
 * first use. The file sits in `./build/` beside this module both in the sources (Deno) and
 * in dist/ (Node; scripts/build-wasm.mjs copies it there). node:fs/promises reads a file URL
 * on Node and on Deno alike.
 */
import { readFile } from 'node:fs/promises'

/** The module's exports (wasm/assembly/index.ts). Pointers are byte offsets in `memory`. */
export interface CodecExports {
  readonly memory: WebAssembly.Memory
  heapBase(): number
  encodeTables(k: number, m: number, out: number): void
  decodeTables(k: number, m: number, missing: number, sources: number, out: number): number
  mulMatrix(rows: number, k: number, tables: number, ins: number, outs: number, lengthBytes: number): void
  xorShards(n: number, ins: number, out: number, lengthBytes: number): void
}

const WASM_URL = new URL('./build/codec.wasm', import.meta.url)
let compiled: Promise<WebAssembly.Module> | undefined

/** The compiled module of this thread; a failed load is retried on the next call. */
export function compileCodecModule(): Promise<WebAssembly.Module> {
  compiled ??= readFile(WASM_URL).then(
    (bytes) => WebAssembly.compile(bytes),
    (err: unknown) => {
      compiled = undefined
      throw new Error(`Cannot load ${WASM_URL.pathname}: run npm run build:wasm`, { cause: err })
    },
  )
  return compiled
}

/** A fresh instance, with its own memory, of this thread's compiled module. */
export async function instantiateCodec(): Promise<CodecExports> {
  const instance = await WebAssembly.instantiate(await compileCodecModule())
  return instance.exports as unknown as CodecExports
}
