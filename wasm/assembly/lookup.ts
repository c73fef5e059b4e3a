/** @module
 * The one table lookup every kernel is built on, in its own file so that the hand-written
 * kernels (kernels.ts) and the generated ones (unrolled.ts) share it.
 */

/** table[index] for 16 byte lanes; every index here is a nibble (0..15). Plain swizzle must
 *  zero lanes whose index is 16 or more, which costs V8 a saturating add before each pshufb;
 *  relaxed_swizzle leaves that case to the hardware, so in the relaxed-simd build it is a
 *  single pshufb. For in-range indexes both give the same bytes. */
// @ts-ignore: decorator
@inline export function lookup(table: v128, index: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(table, index)
  return v128.swizzle(table, index)
}
