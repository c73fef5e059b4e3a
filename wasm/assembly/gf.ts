/** @module
 * GF(2^8) arithmetic (polynomial 0x11d, generator 2) and the coding matrices of the codec:
 * ISA-L's `gf_gen_cauchy1_matrix` for encoding, and its inverse over the surviving rows for
 * decoding, both turned into the split-nibble tables the kernels read.
 * Owns static memory only (log/exp tables, inversion scratch); allocates nothing.
 */

/** The field's reduction polynomial x^8 + x^4 + x^3 + x^2 + 1, as ISA-L and Hadoop use. */
const POLY: u32 = 0x11d
/** exp[i] = 2^i, doubled so that exp[log a + log b] needs no modulo. */
const EXP: usize = memory.data(512)
const LOG: usize = memory.data(256)
/** Shards per stripe at most (k + m); the matrices below are sized for it. */
export const SHARDS_MAX: i32 = 32
/** One k x k matrix being inverted and its inverse, row-major, SHARDS_MAX wide. */
const MAT: usize = memory.data(SHARDS_MAX * SHARDS_MAX)
const INV: usize = memory.data(SHARDS_MAX * SHARDS_MAX)
/** The coefficient rows of the outputs of one call, before they become tables. */
const ROWS: usize = memory.data(SHARDS_MAX * SHARDS_MAX)

function init(): void {
  let x: u32 = 1
  for (let i: u32 = 0; i < 255; i++) {
    store<u8>(EXP + i, x)
    store<u8>(EXP + i + 255, x)
    store<u8>(LOG + x, i)
    x <<= 1
    if (x & 0x100) x ^= POLY
  }
}
init()

// @ts-ignore: decorator
@inline export function gfMul(a: u32, b: u32): u32 {
  if (a == 0 || b == 0) return 0
  return load<u8>(EXP + <usize>load<u8>(LOG + a) + <usize>load<u8>(LOG + b))
}

/** The multiplicative inverse; `a` must not be 0. */
// @ts-ignore: decorator
@inline export function gfInv(a: u32): u32 {
  return load<u8>(EXP + 255 - <usize>load<u8>(LOG + a))
}

/** Row `i` (k <= i < k + m) of the Cauchy part of the coding matrix: a[i][j] = 1 / (i ^ j). */
// @ts-ignore: decorator
@inline function cauchy(i: i32, j: i32): u32 {
  return gfInv(<u32>(i ^ j))
}

/** Writes the split-nibble tables of `rows` coefficient rows of width k, held in ROWS, to
 *  `out`: for row r and input j, 32 bytes at out + (r * k + j) * 32, the products of the
 *  coefficient with 0..15 then with 0x00, 0x10, .., 0xf0. */
function writeTables(rows: i32, k: i32, out: usize): void {
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) writeTable(load<u8>(ROWS + r * SHARDS_MAX + j), out + <usize>((r * k + j) * 32))
  }
}

/** The 32-byte split-nibble table of coefficient c at t. */
function writeTable(c: u32, t: usize): void {
  for (let n: u32 = 0; n < 16; n++) {
    store<u8>(t + n, gfMul(c, n))
    store<u8>(t + 16 + n, gfMul(c, n << 4))
  }
}

/** Fills `out` (m * k * 32 bytes) with the tables of the parity rows of RS(k, m). */
export function encodeTables(k: i32, m: i32, out: usize): void {
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < k; j++) store<u8>(ROWS + r * SHARDS_MAX + j, <u8>cauchy(k + r, j))
  }
  writeTables(m, k, out)
}

/** Fills `out` with the tables of the paired encode kernels (kernels.ts encodePaired) for
 *  RS(k, m), k even. Rows k + 2p and k + 2p + 1 of ISA-L's Cauchy matrix are a dyadic pair,
 *  a(k + 2p + 1, j) = a(k + 2p, j ^ 1). With x = input 2q, y = input 2q + 1, s = x ^ y and
 *  a, b row k + 2p's coefficients of x and y, that row gains a x + b y = a s + (a + b) y and
 *  row k + 2p + 1 gains b x + a y = that + (a + b) s: 3 products per column pair for the two
 *  rows instead of 4. Per column pair, for each row computed directly (k + 2p for p < m / 2,
 *  then k + m - 1 when m is odd), the tables of its coefficient of s, a, and of y, a + b.
 *  Returns the bytes written, 64 per row computed directly and column pair. */
export function encodeTablesPaired(k: i32, m: i32, out: usize): i32 {
  const pairs = m >> 1
  let t = out
  for (let x = 0; x < k; x += 2) {
    for (let i = 0; i < pairs + (m & 1); i++) {
      const r = i < pairs ? k + 2 * i : k + m - 1
      const a = cauchy(r, x)
      writeTable(a, t)
      writeTable(a ^ cauchy(r, x + 1), t + 32)
      t += 64
    }
  }
  return <i32>(t - out)
}

/** Inverts the k x k matrix in MAT into INV by Gauss-Jordan elimination; MAT is destroyed.
 *  Returns false when it is singular (never for a Cauchy code's square sub-matrix). */
function invert(k: i32): bool {
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) store<u8>(INV + i * SHARDS_MAX + j, i == j ? 1 : 0)
  }
  for (let col = 0; col < k; col++) {
    let pivot = col
    while (pivot < k && load<u8>(MAT + pivot * SHARDS_MAX + col) == 0) pivot++
    if (pivot == k) return false
    if (pivot != col) {
      for (let j = 0; j < k; j++) {
        const a = MAT + col * SHARDS_MAX + j, b = MAT + pivot * SHARDS_MAX + j
        const t = load<u8>(a); store<u8>(a, load<u8>(b)); store<u8>(b, t)
        const c = INV + col * SHARDS_MAX + j, d = INV + pivot * SHARDS_MAX + j
        const u = load<u8>(c); store<u8>(c, load<u8>(d)); store<u8>(d, u)
      }
    }
    const scale = gfInv(load<u8>(MAT + col * SHARDS_MAX + col))
    for (let j = 0; j < k; j++) {
      store<u8>(MAT + col * SHARDS_MAX + j, <u8>gfMul(load<u8>(MAT + col * SHARDS_MAX + j), scale))
      store<u8>(INV + col * SHARDS_MAX + j, <u8>gfMul(load<u8>(INV + col * SHARDS_MAX + j), scale))
    }
    for (let i = 0; i < k; i++) {
      if (i == col) continue
      const f = <u32>load<u8>(MAT + i * SHARDS_MAX + col)
      if (f == 0) continue
      for (let j = 0; j < k; j++) {
        const a = MAT + i * SHARDS_MAX + j
        store<u8>(a, load<u8>(a) ^ <u8>gfMul(f, load<u8>(MAT + col * SHARDS_MAX + j)))
        const b = INV + i * SHARDS_MAX + j
        store<u8>(b, load<u8>(b) ^ <u8>gfMul(f, load<u8>(INV + col * SHARDS_MAX + j)))
      }
    }
  }
  return true
}

/** Prepares the rebuild of every shard whose bit is set in `missing` (bit i = shard i, data
 *  first) from the first k shards that are not missing. Writes those k source indexes as
 *  bytes to `sources` and the tables of one output row per missing shard, in index order,
 *  to `out` (popcount(missing) * k * 32 bytes). Returns the number of rows, or -1 when the
 *  surviving rows are singular. */
export function decodeTables(k: i32, m: i32, missing: u32, sources: usize, out: usize): i32 {
  let s = 0
  for (let i = 0; i < k + m && s < k; i++) {
    if (missing & (1 << i)) continue
    store<u8>(sources + s, i)
    for (let j = 0; j < k; j++) {
      store<u8>(MAT + s * SHARDS_MAX + j, i < k ? (i == j ? 1 : 0) : <u8>cauchy(i, j))
    }
    s++
  }
  if (s < k) return -1
  if (!invert(k)) return -1
  // INV maps the k sources to the k data shards. A lost data shard is its row of INV; a lost
  // parity shard is its Cauchy row applied to the data, i.e. that row times INV.
  let rows = 0
  for (let e = 0; e < k + m; e++) {
    if (!(missing & (1 << e))) continue
    for (let j = 0; j < k; j++) {
      let c: u32 = 0
      if (e < k) {
        c = load<u8>(INV + e * SHARDS_MAX + j)
      } else {
        for (let d = 0; d < k; d++) c ^= gfMul(cauchy(e, d), load<u8>(INV + d * SHARDS_MAX + j))
      }
      store<u8>(ROWS + rows * SHARDS_MAX + j, <u8>c)
    }
    rows++
  }
  writeTables(rows, k, out)
  return rows
}
