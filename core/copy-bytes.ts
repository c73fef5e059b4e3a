/** @module
 * The one copy of payload bytes into a slab, at memcpy speed. V8's TypedArray set (and so
 * Buffer copy) writes into a SharedArrayBuffer with relaxed atomic stores, 3-4 x slower than
 * into an ArrayBuffer (bench/README.md, "copies into shared slabs"); Node's Buffer fill with a
 * buffer value as long as the range is one native memcpy. Pure.
 */
import { assert } from './assert.ts'

/** Node's Buffer fill (native), or undefined under another runtime (Deno's is not known to be a memcpy). */
const nativeFill: ((this: Uint8Array, value: Uint8Array, offset: number, end: number) => unknown) | undefined =
  !('Deno' in globalThis) && typeof Buffer === 'function' ? Buffer.prototype.fill as never : undefined

/** Copies all of `source` into `target` from `offset` (which must have room for it). */
export function copyBytes(target: Uint8Array, offset: number, source: Uint8Array): void {
  const n = source.length
  assert(offset >= 0 && offset + n <= target.length, 'the copy fits its target')
  if (n === 0) return
  // Into an ArrayBuffer set is as fast, and needs no detour.
  if (nativeFill === undefined || !(target.buffer instanceof SharedArrayBuffer)) target.set(source, offset)
  else nativeFill.call(target, source, offset, offset + n)
}
