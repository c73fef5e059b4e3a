/** @module
 * The hot loops: multiply-accumulate of k input shards into several output shards with
 * split-nibble tables and `i8x16.swizzle` (a 16-entry table lookup per byte lane, which is
 * SSSE3's pshufb), and a plain XOR of n shards. Inputs and outputs are addressed through
 * arrays of u32 pointers so that shards can live anywhere in memory. Allocates nothing and
 * keeps no state between calls. Passes of up to `unrolledRows` rows (at most 3) over 2 to
 * UNROLLED_INPUTS_MAX inputs run the generated straight-line kernels of unrolled.ts instead
 * of pass(), and encodePaired() runs its generated paired kernels (scripts/gen-kernels.mjs
 * says why both exist).
 */
import { lookup } from './lookup'
import { hasPairedKernel, pairedPass, unrolledPass } from './unrolled'

/** Bytes of every shard processed before moving to the next group of output rows, so that
 *  the k input blocks are still in cache when a second or third group reads them. */
const BLOCK_BYTES: usize = 16384

/** The products of one coefficient (a 32-byte table at t) with the 16 bytes whose nibbles
 *  are lo and hi. */
// @ts-ignore: decorator
@inline function mul(t: usize, lo: v128, hi: v128): v128 {
  return v128.xor(lookup(v128.load(t), lo), lookup(v128.load(t, 16), hi))
}

/** One pass over the inputs for R (1..4, a compile-time constant after inlining) output
 *  rows: out_r[off] = sum_j c[r][j] * in_j[off] for off in [start, end), 32 bytes a step
 *  (two vectors, so that each table load and input address serves twice) and a last
 *  16-byte step when needed. The tables of row r and input j are at tbl + (r * k + j) * 32.
 *  Four rows is what fits the 16 vector registers of x86-64 beside the inputs, their
 *  nibbles and the tables being read. */
// @ts-ignore: decorator
@inline function pass(R: i32, k: i32, tbl: usize, ins: usize, outs: usize, start: usize, end: usize): void {
  const mask = i8x16.splat(0x0f)
  const stride = <usize>k << 5
  const o0 = <usize>load<u32>(outs)
  const o1 = R > 1 ? <usize>load<u32>(outs, 4) : 0
  const o2 = R > 2 ? <usize>load<u32>(outs, 8) : 0
  const o3 = R > 3 ? <usize>load<u32>(outs, 12) : 0
  const insEnd = ins + (<usize>k << 2)
  let off = start
  for (; off + 32 <= end; off += 32) {
    let a0 = i8x16.splat(0)
    let a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0
    let t = tbl
    for (let p = ins; p < insEnd; p += 4) {
      const src = <usize>load<u32>(p) + off
      const x = v128.load(src)
      const y = v128.load(src, 16)
      // A 16-bit shift then the same mask: i8x16.shr_u would rebuild its own mask each time.
      const xl = v128.and(x, mask), xh = v128.and(i16x8.shr_u(x, 4), mask)
      const yl = v128.and(y, mask), yh = v128.and(i16x8.shr_u(y, 4), mask)
      let tl = v128.load(t), th = v128.load(t, 16)
      a0 = v128.xor(a0, v128.xor(lookup(tl, xl), lookup(th, xh)))
      b0 = v128.xor(b0, v128.xor(lookup(tl, yl), lookup(th, yh)))
      if (R > 1) {
        tl = v128.load(t + stride); th = v128.load(t + stride, 16)
        a1 = v128.xor(a1, v128.xor(lookup(tl, xl), lookup(th, xh)))
        b1 = v128.xor(b1, v128.xor(lookup(tl, yl), lookup(th, yh)))
      }
      if (R > 2) {
        tl = v128.load(t + 2 * stride); th = v128.load(t + 2 * stride, 16)
        a2 = v128.xor(a2, v128.xor(lookup(tl, xl), lookup(th, xh)))
        b2 = v128.xor(b2, v128.xor(lookup(tl, yl), lookup(th, yh)))
      }
      if (R > 3) {
        tl = v128.load(t + 3 * stride); th = v128.load(t + 3 * stride, 16)
        a3 = v128.xor(a3, v128.xor(lookup(tl, xl), lookup(th, xh)))
        b3 = v128.xor(b3, v128.xor(lookup(tl, yl), lookup(th, yh)))
      }
      t += 32
    }
    v128.store(o0 + off, a0); v128.store(o0 + off, b0, 16)
    if (R > 1) { v128.store(o1 + off, a1); v128.store(o1 + off, b1, 16) }
    if (R > 2) { v128.store(o2 + off, a2); v128.store(o2 + off, b2, 16) }
    if (R > 3) { v128.store(o3 + off, a3); v128.store(o3 + off, b3, 16) }
  }
  if (off < end) {
    let a0 = i8x16.splat(0)
    let a1 = a0, a2 = a0, a3 = a0
    let t = tbl
    for (let p = ins; p < insEnd; p += 4) {
      const x = v128.load(<usize>load<u32>(p) + off)
      const lo = v128.and(x, mask), hi = v128.and(i16x8.shr_u(x, 4), mask)
      a0 = v128.xor(a0, mul(t, lo, hi))
      if (R > 1) a1 = v128.xor(a1, mul(t + stride, lo, hi))
      if (R > 2) a2 = v128.xor(a2, mul(t + 2 * stride, lo, hi))
      if (R > 3) a3 = v128.xor(a3, mul(t + 3 * stride, lo, hi))
      t += 32
    }
    v128.store(o0 + off, a0)
    if (R > 1) v128.store(o1 + off, a1)
    if (R > 2) v128.store(o2 + off, a2)
    if (R > 3) v128.store(o3 + off, a3)
  }
}

function pass1(k: i32, tbl: usize, ins: usize, outs: usize, start: usize, end: usize): void { pass(1, k, tbl, ins, outs, start, end) }
function pass2(k: i32, tbl: usize, ins: usize, outs: usize, start: usize, end: usize): void { pass(2, k, tbl, ins, outs, start, end) }
function pass3(k: i32, tbl: usize, ins: usize, outs: usize, start: usize, end: usize): void { pass(3, k, tbl, ins, outs, start, end) }
function pass4(k: i32, tbl: usize, ins: usize, outs: usize, start: usize, end: usize): void { pass(4, k, tbl, ins, outs, start, end) }

/** out_r = sum_j c[r][j] * in_j for `rows` outputs over `len` bytes. `ins` holds k u32
 *  pointers, `outs` holds `rows`; `tbl` the tables written by encodeTables/decodeTables.
 *  Passes of up to `unrolledRows` rows run the generated kernels where there is one for k;
 *  which is faster depends on the engine's compiler (wasm/loader.ts decides). Outputs must
 *  not overlap inputs. */
export function mulMatrix(rows: i32, k: i32, tbl: usize, ins: usize, outs: usize, len: usize, unrolledRows: i32): void {
  const vecEnd = len & ~(<usize>15)
  const rowBytes = <usize>k << 5
  for (let b: usize = 0; b < vecEnd; b += BLOCK_BYTES) {
    const e = min(b + BLOCK_BYTES, vecEnd)
    for (let r = 0; r < rows; r += 4) {
      const n = min(rows - r, 4)
      const t = tbl + <usize>r * rowBytes, o = outs + (<usize>r << 2)
      if (n <= unrolledRows && unrolledPass(n, k, t, ins, o, b, e)) continue
      if (n == 4) pass4(k, t, ins, o, b, e)
      else if (n == 3) pass3(k, t, ins, o, b, e)
      else if (n == 2) pass2(k, t, ins, o, b, e)
      else pass1(k, t, ins, o, b, e)
    }
  }
  // The last len % 16 bytes, one at a time through the same tables.
  for (let r = 0; r < rows; r++) {
    const out = <usize>load<u32>(outs + (<usize>r << 2))
    for (let off = vecEnd; off < len; off++) {
      let acc: u32 = 0
      let t = tbl + <usize>r * rowBytes
      for (let j = 0; j < k; j++) {
        acc ^= tableMul(t, load<u8>(<usize>load<u32>(ins + (<usize>j << 2)) + off))
        t += 32
      }
      store<u8>(out + off, acc)
    }
  }
}

/** Encodes RS(k, m) parity with the paired kernels and the tables of gf.ts
 *  encodeTablesPaired, when there is a kernel for (k, m) (even k up to UNROLLED_INPUTS_MAX, m
 *  as scripts/gen-kernels.mjs PAIRED_PARITY says), and returns whether it did. `outs` holds
 *  the m parity pointers in row order. */
export function encodePaired(k: i32, m: i32, tbl: usize, ins: usize, outs: usize, len: usize): bool {
  if (!hasPairedKernel(k, m)) return false
  const vecEnd = len & ~(<usize>15)
  for (let b: usize = 0; b < vecEnd; b += BLOCK_BYTES) pairedPass(k, m, tbl, ins, outs, b, min(b + BLOCK_BYTES, vecEnd))
  // The last len % 16 bytes, one output row at a time through the same tables and algebra.
  const pairs = m >> 1
  const pairBytes = <usize>(pairs + (m & 1)) * 64
  for (let r = 0; r < m; r++) {
    // Row r takes the tables of slot `slot` (its pair's first row, or the plain row); the
    // second row of a pair adds the pair's sum, e * s with the first row's y table e.
    const slot = r < 2 * pairs ? r >> 1 : pairs
    const second = r < 2 * pairs && (r & 1) != 0
    const out = <usize>load<u32>(outs + (<usize>r << 2))
    for (let off = vecEnd; off < len; off++) {
      let acc: u32 = 0
      let t = tbl + <usize>slot * 64
      for (let j = 0; j < k; j += 2) {
        const x = <u32>load<u8>(<usize>load<u32>(ins + (<usize>j << 2)) + off)
        const y = <u32>load<u8>(<usize>load<u32>(ins + (<usize>j << 2), 4) + off)
        acc ^= tableMul(t, x ^ y) ^ tableMul(t + 32, y)
        if (second) acc ^= tableMul(t + 32, x ^ y)
        t += pairBytes
      }
      store<u8>(out + off, acc)
    }
  }
  return true
}

/** c * x for one byte through c's split-nibble table at t. */
// @ts-ignore: decorator
@inline function tableMul(t: usize, x: u32): u32 {
  return <u32>load<u8>(t + (x & 15)) ^ <u32>load<u8>(t + 16 + (x >> 4))
}

/** out = in_0 ^ in_1 ^ .. ^ in_(n-1) over `len` bytes; `ins` holds n >= 1 u32 pointers. The
 *  XOR(k, 1) code's encode and its only possible rebuild. */
export function xorShards(n: i32, ins: usize, out: usize, len: usize): void {
  const insEnd = ins + (<usize>n << 2)
  const wideEnd = len & ~(<usize>63)
  let off: usize = 0
  for (; off < wideEnd; off += 64) {
    const p0 = <usize>load<u32>(ins) + off
    let a0 = v128.load(p0), a1 = v128.load(p0, 16), a2 = v128.load(p0, 32), a3 = v128.load(p0, 48)
    for (let p = ins + 4; p < insEnd; p += 4) {
      const q = <usize>load<u32>(p) + off
      a0 = v128.xor(a0, v128.load(q))
      a1 = v128.xor(a1, v128.load(q, 16))
      a2 = v128.xor(a2, v128.load(q, 32))
      a3 = v128.xor(a3, v128.load(q, 48))
    }
    v128.store(out + off, a0)
    v128.store(out + off, a1, 16)
    v128.store(out + off, a2, 32)
    v128.store(out + off, a3, 48)
  }
  for (; off < len; off++) {
    let acc = load<u8>(<usize>load<u32>(ins) + off)
    for (let p = ins + 4; p < insEnd; p += 4) acc ^= load<u8>(<usize>load<u32>(p) + off)
    store<u8>(out + off, acc)
  }
}
