/** @module
 * A scalar Reed–Solomon and XOR codec written straight from the definitions, the oracle the
 * WASM codec is tested against. It shares no code with wasm/: products come from shift-and-
 * add (carry-less) multiplication reduced by 0x11d rather than log/exp tables, inverses from
 * a search, the decode matrix from Gaussian elimination of [B | I] over the *last* k
 * surviving shards (the WASM codec takes the first k). Slow on purpose; test use only.
 */

/** a * b in GF(2^8) with polynomial x^8 + x^4 + x^3 + x^2 + 1, bit by bit. */
export function gfMulSlow(a: number, b: number): number {
  let product = 0
  for (let bit = 0; bit < 8; bit++) {
    if (b & (1 << bit)) product ^= a << bit
  }
  for (let bit = 14; bit >= 8; bit--) {
    if (product & (1 << bit)) product ^= 0x11d << (bit - 8)
  }
  return product
}

/** MUL[a * 256 + b] = a * b. */
const MUL = new Uint8Array(256 * 256)
for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) MUL[a * 256 + b] = gfMulSlow(a, b)

/** The b with a * b = 1, found by trying all 255; a must not be 0. */
export function gfInvSlow(a: number): number {
  for (let b = 1; b < 256; b++) if (MUL[a * 256 + b] === 1) return b
  throw new Error(`0 has no inverse (asked for ${a})`)
}

/** The (k + m) x k generator of ISA-L's gf_gen_cauchy1_matrix: identity, then 1 / (i ^ j). */
export function cauchyMatrix(k: number, m: number): number[][] {
  const rows: number[][] = []
  for (let i = 0; i < k + m; i++) {
    rows.push(Array.from({ length: k }, (_, j) => (i < k ? (i === j ? 1 : 0) : gfInvSlow(i ^ j))))
  }
  return rows
}

/** Inverse of a square matrix by Gaussian elimination on [A | I]. */
export function invertMatrix(a: readonly number[][]): number[][] {
  const n = a.length
  const aug = a.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))])
  for (let col = 0; col < n; col++) {
    const pivot = aug.findIndex((row, r) => r >= col && row[col] !== 0)
    if (pivot < 0) throw new Error('singular matrix')
    ;[aug[col], aug[pivot]] = [aug[pivot], aug[col]]
    const inv = gfInvSlow(aug[col][col])
    aug[col] = aug[col].map((x) => MUL[x * 256 + inv])
    for (let r = 0; r < n; r++) {
      const f = aug[r][col]
      if (r === col || f === 0) continue
      aug[r] = aug[r].map((x, c) => x ^ MUL[f * 256 + aug[col][c]])
    }
  }
  return aug.map((row) => row.slice(n))
}

/** out = sum_j coefficients[j] * inputs[j], byte by byte. */
function combine(coefficients: readonly number[], inputs: readonly Uint8Array[], out: Uint8Array): void {
  out.fill(0)
  for (let j = 0; j < inputs.length; j++) {
    const table = MUL.subarray(coefficients[j] * 256, coefficients[j] * 256 + 256)
    const input = inputs[j]
    for (let i = 0; i < out.length; i++) out[i] ^= table[input[i]]
  }
}

export class ReferenceCodec {
  readonly scheme: 'rs' | 'xor'
  readonly k: number
  readonly m: number
  readonly #matrix: number[][]

  constructor(scheme: 'rs' | 'xor', k: number, m: number) {
    this.scheme = scheme
    this.k = k
    this.m = m
    this.#matrix = scheme === 'rs' ? cauchyMatrix(k, m) : [...cauchyMatrix(k, 0), Array(k).fill(1)]
  }

  encode(data: readonly Uint8Array[], parity: Uint8Array[]): void {
    for (let r = 0; r < this.m; r++) combine(this.#matrix[this.k + r], data, parity[r])
  }

  reconstruct(shards: Uint8Array[], missing: readonly number[]): void {
    const lost = new Set(missing)
    const survivors = shards.map((_, i) => i).filter((i) => !lost.has(i)).slice(-this.k)
    const decode = invertMatrix(survivors.map((i) => this.#matrix[i]))
    const inputs = survivors.map((i) => shards[i])
    for (const e of missing) {
      // Row e of the generator times the inverse maps the survivors to shard e.
      const row = Array.from({ length: this.k }, (_, c) =>
        this.#matrix[e].reduce((acc, g, d) => acc ^ MUL[g * 256 + decode[d][c]], 0))
      combine(row, inputs, shards[e])
    }
  }
}
