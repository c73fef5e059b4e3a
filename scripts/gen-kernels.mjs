// Writes the source of wasm/assembly/unrolled.ts: one straight-line multiply kernel per
// (rows, inputs) pair, which scripts/build-wasm.mjs generates before compiling the codec.
//
// Why generated: the generic kernel (wasm/assembly/kernels.ts) loops over the k inputs, and
// V8 spends about 14 instructions per input and step on that loop (pointer load, stack-guard
// check, compares, a spilled bound). Unrolled by hand for a known k the loop is gone, but V8's
// TurboFan then schedules every load of the step first and the arithmetic last, so all inputs
// and tables are live at once and spill. Storing the accumulators after each input pins the
// arithmetic of that input before the next input's loads (a load may not move above a store),
// which keeps the live set to one input; the stores hit L1 lines the step writes anyway, and
// the last input's stores are the results. Measured in bench/README.md ("Erasure codec").

/** The unrolled kernels cover 1..ROWS_MAX output rows and 2..INPUTS_MAX inputs. */
export const UNROLLED_ROWS_MAX = 3
export const UNROLLED_INPUTS_MAX = 12

/** Bytes per loop step: two vectors, while the accumulators, the nibbles of one input, the
 *  mask and a table pair fit x86-64's 15 usable vector registers (3 rows: 6 + 4 + 1 + 2).
 *  For 4 rows (8 accumulators) no form measured faster than the looping kernel. */
const STEP_BYTES = 32

/** The source of one kernel function `name`(tbl, ins, outs, start, end): the pointers of
 *  `inputs` inputs and `outputs` outputs, the vector locals, two vectors for each accumulator
 *  in `accs`, then a loop of 32-byte steps and a last 16-byte step over [start, end), each
 *  written by `step(ops)` with the vectors of that step (see stepOps). */
function kernelSource(name, inputs, outputs, accs, step) {
  const lines = []
  const emit = (s) => lines.push(s)
  emit(`function ${name}(tbl: usize, ins: usize, outs: usize, start: usize, end: usize): void {`)
  emit(`  const mask = i8x16.splat(0x0f)`)
  for (let j = 0; j < inputs; j++) emit(`  const i${j} = <usize>load<u32>(ins, ${4 * j})`)
  for (let r = 0; r < outputs; r++) emit(`  const o${r} = <usize>load<u32>(outs, ${4 * r})`)
  emit(`  let tl: v128, th: v128, x0: v128, x1: v128, l0: v128, h0: v128, l1: v128, h1: v128`)
  emit(`  let ${accs.map((acc) => `${acc}_0: v128, ${acc}_1: v128`).join(', ')}`)
  emit(`  let off = start`)
  emit(`  for (; off + ${STEP_BYTES} <= end; off += ${STEP_BYTES}) {`)
  step(stepOps(emit, STEP_BYTES / 16))
  emit(`  }`)
  emit(`  if (off < end) {`)
  step(stepOps(emit, 1))
  emit(`  }`)
  emit(`}`)
  return lines.join('\n')
}

/** What a step is written with, for `n` vectors (16 bytes each) at `off`. */
function stepOps(emit, n) {
  const vs = Array.from({ length: n }, (_, v) => v)
  return {
    vs,
    /** x = load(16 v) for each vector, split into its low (l) and high (h) nibbles. */
    split(load) {
      for (const v of vs) emit(`    x${v} = ${load(16 * v)}; l${v} = v128.and(x${v}, mask); h${v} = v128.and(i16x8.shr_u(x${v}, 4), mask)`)
    },
    /** acc (= on the first product, else ^=) the product of the table at tbl + t and x. */
    product(acc, t, first) {
      emit(`    tl = v128.load(tbl, ${t}); th = v128.load(tbl, ${t + 16})`)
      for (const v of vs) {
        const product = `v128.xor(lookup(tl, l${v}), lookup(th, h${v}))`
        emit(first ? `    ${acc}_${v} = ${product}` : `    ${acc}_${v} = v128.xor(${acc}_${v}, ${product})`)
      }
    },
    /** Stores `value(v)` (by default acc) at output `out`: a pin, or the result. */
    store(out, acc, value = (v) => `${acc}_${v}`) {
      for (const v of vs) emit(`    v128.store(${out} + off, ${value(v)}, ${16 * v})`)
    },
  }
}

/** out_r = sum_j c[r][j] * in_j for `rows` rows of `inputs` inputs, pinned after each input. */
function kernel(rows, inputs) {
  const accs = Array.from({ length: rows }, (_, r) => `a${r}`)
  return kernelSource(`mul${rows}x${inputs}`, inputs, rows, accs, (ops) => {
    for (let j = 0; j < inputs; j++) {
      ops.split((o) => `v128.load(i${j} + off, ${o})`)
      accs.forEach((acc, r) => ops.product(acc, (r * inputs + j) * 32, j === 0))
      accs.forEach((acc, r) => ops.store(`o${r}`, acc))
    }
  })
}

/** The paired encode kernels (see encodeTablesPaired in gf.ts) cover RS(k, m) for even k up
 *  to UNROLLED_INPUTS_MAX and these m: against the plain kernels RS(6,3) 11 550 -> 13 000 and
 *  RS(10,4) 8 600 -> 10 450 MB per CPU-second. For m = 2 (one pair, no plain row) they
 *  measured no faster (RS(4,2), RS(6,2), RS(10,2): +0 to 2%); from m = 5 (two pairs and a
 *  plain row) the accumulators no longer fit the registers. */
export const PAIRED_PARITY = [3, 4]

/** RS(k, m) encode with parity rows k + 2p and k + 2p + 1 as dyadic pairs (p < m / 2) and,
 *  for odd m, row k + m - 1 plain. Each column pair (x, y) is read as y and s = x ^ y, which
 *  is exact: a row's a x + b y = a s + (a + b) y, and a pair's sum of rows is (a + b) s, with
 *  the same table as the first row's y term. Per step: split y, multiply it into the pairs'
 *  first rows and the plain row, pin; split s, multiply it into the same rows and into each
 *  pair's sum D, pin. The second row of a pair, P ^ D, is stored at the end. Pinned after
 *  each half, like the plain kernels: fewer pins let TurboFan hoist the next loads and spill. */
function pairedKernel(m, inputs) {
  const pairs = Math.floor(m / 2)
  // Rows computed directly: each pair's first row, then the plain row; their outputs.
  const direct = Array.from({ length: pairs }, (_, p) => ({ acc: `p${p}`, out: `o${2 * p}` }))
  if (m % 2 === 1) direct.push({ acc: 'q', out: `o${m - 1}` })
  // Each pair's sum of its two rows, multiplied by its first row's y table.
  const sums = Array.from({ length: pairs }, (_, p) => ({ acc: `d${p}`, out: `o${2 * p + 1}`, lead: `p${p}`, table: 64 * p + 32 }))
  const pairBytes = 64 * direct.length
  const accs = [...direct, ...sums].map((r) => r.acc)
  return kernelSource(`pair${m}x${inputs}`, inputs, m, accs, (ops) => {
    const pin = (rows) => rows.forEach((r) => ops.store(r.out, r.acc))
    for (let q = 0; q < inputs / 2; q++) {
      const T = q * pairBytes, first = q === 0
      const x = `i${2 * q}`, y = `i${2 * q + 1}`
      ops.split((o) => `v128.load(${y} + off, ${o})`)
      direct.forEach((r, i) => ops.product(r.acc, T + 64 * i + 32, first))
      pin(direct)
      ops.split((o) => `v128.xor(v128.load(${x} + off, ${o}), v128.load(${y} + off, ${o}))`)
      direct.forEach((r, i) => ops.product(r.acc, T + 64 * i, false))
      sums.forEach((r) => ops.product(r.acc, T + r.table, first))
      pin(q < inputs / 2 - 1 ? [...direct, ...sums] : direct)
    }
    for (const r of sums) ops.store(r.out, r.acc, (v) => `v128.xor(${r.lead}_${v}, ${r.acc}_${v})`)
  })
}

/** An exported function that runs the kernel named by `cases` for its (shape) key. */
function dispatcher(name, shape, key, cases, doc) {
  return [
    doc,
    `export function ${name}(${shape}, tbl: usize, ins: usize, outs: usize, start: usize, end: usize): bool {`,
    `  switch (${key}) {`,
    ...cases,
    `  }`,
    `  return false`,
    `}`,
  ].join('\n')
}

export function unrolledKernelsSource() {
  const parts = [
    `/** @module`,
    ` * GENERATED by scripts/gen-kernels.mjs at build time; do not edit. Straight-line`,
    ` * multiply kernels for ${UNROLLED_ROWS_MAX} rows at most and 2..${UNROLLED_INPUTS_MAX} inputs, with the`,
    ` * contract of pass() in kernels.ts; why they are generated is in the generator.`,
    ` */`,
    `import { lookup } from './lookup'`,
    ``,
  ]
  const cases = []
  for (let inputs = 2; inputs <= UNROLLED_INPUTS_MAX; inputs++) {
    for (let rows = 1; rows <= UNROLLED_ROWS_MAX; rows++) {
      parts.push('', kernel(rows, inputs))
      cases.push(`    case ${(rows << 6) | inputs}: mul${rows}x${inputs}(tbl, ins, outs, start, end); return true`)
    }
  }
  const pairedCases = []
  for (let inputs = 2; inputs <= UNROLLED_INPUTS_MAX; inputs += 2) {
    for (const m of PAIRED_PARITY) {
      parts.push('', pairedKernel(m, inputs))
      pairedCases.push(`    case ${(m << 6) | inputs}: pair${m}x${inputs}(tbl, ins, outs, start, end); return true`)
    }
  }
  parts.push(
    '',
    dispatcher('pairedPass', 'k: i32, m: i32', '(m << 6) | k', pairedCases,
      `/** Runs the paired encode kernel of RS(k, m) over [start, end), a multiple of 16 bytes, and
 *  returns true; false when there is none. outs: the m parity rows in order. */`),
    '',
    `/** Whether pairedPass() has a kernel for RS(k, m). */`,
    `export function hasPairedKernel(k: i32, m: i32): bool {`,
    `  return (k & 1) == 0 && k >= 2 && k <= ${UNROLLED_INPUTS_MAX} && (${PAIRED_PARITY.map((m) => `m == ${m}`).join(' || ')})`,
    `}`,
    '',
    dispatcher('unrolledPass', 'rows: i32, k: i32', '(rows << 6) | k', cases,
      `/** Runs the unrolled kernel for (rows, k) over [start, end), a multiple of 16 bytes, and
 *  returns true; false when there is none (rows above ${UNROLLED_ROWS_MAX}, k outside 2..${UNROLLED_INPUTS_MAX}). */`),
    '',
  )
  return parts.join('\n')
}
