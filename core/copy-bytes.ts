/** @module
 * Copies of payload bytes into or out of a shared slab, at memcpy speed. V8's TypedArray set
 * (and so Buffer copy) copies to or from a SharedArrayBuffer with relaxed atomic stores, byte
 * by byte at an unaligned offset: 12 x slower than Node's Buffer fill with a buffer value as
 * long as the range, one native memcpy (bench/copy-bytes.ts). Pure.
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
  // Between ArrayBuffers set is as fast, and needs no detour; shared memory on either side
  // makes it the relaxed copy.
  // Within one buffer the ranges may overlap, which memcpy does not allow: set copies as memmove.
  const shared = target.buffer instanceof SharedArrayBuffer || source.buffer instanceof SharedArrayBuffer
  if (nativeFill === undefined || !shared || target.buffer === source.buffer) target.set(source, offset)
  else nativeFill.call(target, source, offset, offset + n)
}
