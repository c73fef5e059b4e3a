/** @module
 * Gives the C heap's free pages back to the OS (glibc's `malloc_trim(0)`), under Deno on Linux:
 * the one place O3 calls native code, through Deno's FFI. It must never be needed for
 * correctness: where it cannot run (Node, no FFI permission, not glibc) it does nothing.
 *
 * Why: Deno allocates payload buffers (ArrayBuffers, its HTTP bodies) with glibc malloc, and
 * glibc raises its mmap threshold to the size of the largest buffer freed (up to 32 MiB), so
 * 4-17 MiB buffers come from the main heap, where freed memory stays resident unless it lies
 * at the top. Measured on `o3 local` under Deno 2.9 after bench/rss.ts's workload, at rest:
 * glibc's main arena 300 MB, 93 MB of it in use; RSS 425 MiB, 269 MiB after one
 * malloc_trim(0), which releases free pages anywhere in every arena (madvise), not only the
 * top. Node has no FFI: its main heap fragments the same way in some runs (bench/README.md),
 * and there it stays.
 */
import { log } from '../../core/log.ts'

interface DenoFfi {
  build: { os: string }
  permissions: { querySync(d: { name: 'ffi' }): { state: string } }
  dlopen(path: string, symbols: { malloc_trim: { parameters: ['usize']; result: 'i32' } }): { symbols: { malloc_trim(pad: number): number } }
}

let mallocTrim: ((padBytes: number) => number) | null | undefined

function load(): ((padBytes: number) => number) | null {
  const deno = (globalThis as { Deno?: DenoFfi }).Deno
  if (deno === undefined || deno.build.os !== 'linux') return null
  // Asked without a prompt: an interactive `deno run` without --allow-ffi would otherwise stop
  // and ask at the first idle moment.
  if (deno.permissions.querySync({ name: 'ffi' }).state !== 'granted') return null
  try {
    return deno.dlopen('libc.so.6', { malloc_trim: { parameters: ['usize'], result: 'i32' } }).symbols.malloc_trim
  } catch (err) {
    // Not glibc (musl has no malloc_trim, and no libc.so.6).
    log.debug('malloc_trim unavailable', { error: (err as Error).message })
    return null
  }
}

/** Returns free C heap pages to the OS; false where the runtime cannot (see above). */
export function trimMallocHeap(): boolean {
  if (mallocTrim === undefined) mallocTrim = load()
  if (mallocTrim === null) return false
  mallocTrim(0)
  return true
}
