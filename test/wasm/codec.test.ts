/** Goal: the WASM erasure codec (wasm/index.ts) writes exactly the parity of ISA-L's
 * Cauchy Reed–Solomon and XOR, rebuilds every erasure pattern, and rejects bad arguments.
 * Method: compare it with the scalar reference of reference-rs.ts (which shares no code with
 * it) on seeded random data: every erasure pattern of RS(3,2), RS(6,3) and XOR(2,1), a sample
 * for RS(10,4) and for random (k, m) up to 32 shards, at shard lengths 0, 1, 15, 16, 17,
 * 64 KiB + 3 and 1 MiB; shards both outside and inside the codec's memory; known-answer
 * vectors written out below pin the bytes on disk. Big lengths are sampled to stay fast.
 * Runs under Node (dist/) and Deno (`deno task test:codec`, from source).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createCodec, type ErasureCodec, type ShardMemory } from '../../wasm/index.ts'
import { WasmCodec } from '../../wasm/codec.ts'
import { instantiateCodec, kernelChoiceFor, type CodecBuild } from '../../wasm/loader.ts'
import { ReferenceCodec, cauchyMatrix, gfInvSlow, gfMulSlow } from './reference-rs.ts'

const SEED = Number(process.env.O3_TEST_SEED ?? Date.now() % 2 ** 31)
console.log(`codec.test seed ${SEED} (O3_TEST_SEED=${SEED} replays it)`)
const rand = mulberry32(SEED)

const KiB = 1024
const MiB = 1024 * KiB
const SMALL_LENGTHS = [0, 1, 15, 16, 17]
const BIG_LENGTHS = [64 * KiB + 3, MiB]

type Codec = ErasureCodec & ShardMemory
type Scheme = 'rs' | 'xor'

/** A seeded PRNG (mulberry32): uniform u32. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}

function randomInt(n: number): number {
  return rand() % n
}

function randomShards(count: number, lengthBytes: number): Uint8Array[] {
  return Array.from({ length: count }, () => {
    const s = new Uint8Array(lengthBytes)
    for (let i = 0; i < lengthBytes; i++) s[i] = rand() & 0xff
    return s
  })
}

/** The index of the first byte where a and b differ, or -1. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length)
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i
  return -1
}

function assertShardsEqual(actual: readonly Uint8Array[], expected: readonly Uint8Array[], what: string): void {
  assert.is(actual.length, expected.length, `${what}: shard count`)
  for (let i = 0; i < expected.length; i++) {
    const at = firstDifference(actual[i], expected[i])
    if (at >= 0) assert.unreachable(`${what}: shard ${i} differs at byte ${at} of ${expected[i].length}`)
  }
}

/** Every subset of 0..n-1 with 1..m members. */
function allPatterns(n: number, m: number): number[][] {
  const out: number[][] = []
  const extend = (prefix: number[], from: number): void => {
    if (prefix.length > 0) out.push(prefix)
    if (prefix.length === m) return
    for (let i = from; i < n; i++) extend([...prefix, i], i + 1)
  }
  extend([], 0)
  return out
}

/** `count` random erasure patterns of 1..m shards out of n, missing indexes in random order. */
function samplePatterns(n: number, m: number, count: number): number[][] {
  return Array.from({ length: count }, () => {
    const size = 1 + randomInt(m)
    const chosen = new Set<number>()
    while (chosen.size < size) chosen.add(randomInt(n))
    return [...chosen]
  })
}

/** Shards of `lengthBytes` where the codec reads them from: plain arrays ('foreign'), its
 *  own memory ('own'), or alternating ('mixed'). Own shards are freed by `release`. */
function placeShards(codec: Codec, count: number, lengthBytes: number, mode: number): { shards: Uint8Array[]; release: () => void } {
  const own = codec.allocateShards(count, lengthBytes)
  const shards = own.map((s, i) => (mode === 0 || (mode === 2 && i % 2 === 0) ? new Uint8Array(lengthBytes) : s))
  return { shards, release: () => codec.freeShards(own) }
}

/** Encodes random data with the codec (shards placed by `mode`) and with the reference;
 *  asserts the parity agrees and returns the stripe, data first. */
function encodeBoth(codec: Codec, ref: ReferenceCodec, lengthBytes: number, mode: number): Uint8Array[] {
  const { k, m } = codec
  const data = randomShards(k, lengthBytes)
  const expected = Array.from({ length: m }, () => new Uint8Array(lengthBytes))
  ref.encode(data, expected)
  const placed = placeShards(codec, k + m, lengthBytes, mode)
  placed.shards.forEach((s, i) => (i < k ? s.set(data[i]) : s.fill(0x5a)))
  codec.encode(placed.shards.slice(0, k), placed.shards.slice(k))
  assertShardsEqual(placed.shards.slice(k), expected, `${ref.scheme}(${k},${m}) encode of ${lengthBytes} bytes, mode ${mode}`)
  assertShardsEqual(placed.shards.slice(0, k), data, 'encode left the data alone')
  placed.release()
  return [...data, ...expected]
}

/** Loses each pattern from a copy of `stripe` and rebuilds it with the codec (shards placed
 *  by pattern index: foreign, own, mixed) and, for patterns `checkReference` accepts, with
 *  the reference too; both must give back the stripe. */
function reconstructAll(codec: Codec, ref: ReferenceCodec, stripe: Uint8Array[], patterns: number[][], checkReference: (index: number) => boolean): void {
  const lengthBytes = stripe[0].length
  const placements = [0, 1, 2].map((mode) => placeShards(codec, stripe.length, lengthBytes, mode))
  patterns.forEach((missing, index) => {
    const what = `${ref.scheme}(${codec.k},${codec.m}) rebuild of [${missing}] at ${lengthBytes} bytes`
    const shards = placements[index % 3].shards
    shards.forEach((s, i) => s.set(stripe[i]))
    for (const i of missing) shards[i].fill(0xa5)
    codec.reconstruct(shards, missing)
    assertShardsEqual(shards, stripe, what)
    if (!checkReference(index)) return
    const refShards = stripe.map((s) => s.slice())
    for (const i of missing) refShards[i].fill(0xa5)
    ref.reconstruct(refShards, missing)
    assertShardsEqual(refShards, stripe, `reference ${what}`)
  })
  for (const p of placements) p.release()
}

type MakeCodec = (scheme: Scheme, k: number, m: number) => Promise<Codec>

/** A codec on one build of the module rather than the best this runtime runs, with the
 *  kernel choice given (straight-line rows, paired encode) instead of this engine's. */
function onBuild(build: CodecBuild, kernels?: { unrolledRows: number; pairedEncode: boolean }): MakeCodec {
  return async (scheme, k, m) => new WasmCodec({ scheme, k, m, ...(await instantiateCodec(build)), ...kernels })
}

/** Every kernel the module has, forced on, and the looping kernel alone. */
const ALL_KERNELS = { unrolledRows: 3, pairedEncode: true }
const LOOPING_KERNEL = { unrolledRows: 0, pairedEncode: false }

/** Encode at every length, then rebuild: `patternsFor(length)` per length, the reference
 *  checked on every pattern up to 17 bytes and on `bigReferenceCount` patterns above. */
async function roundTrip(scheme: Scheme, k: number, m: number, lengths: readonly number[], patternsFor: (lengthBytes: number) => number[][], bigReferenceCount = 3, make: MakeCodec = createCodec): Promise<void> {
  const codec = await make(scheme, k, m)
  const ref = new ReferenceCodec(scheme, k, m)
  lengths.forEach((lengthBytes, i) => {
    const stripe = encodeBoth(codec, ref, lengthBytes, i % 3)
    const patterns = patternsFor(lengthBytes)
    const every = Math.max(1, Math.floor(patterns.length / bigReferenceCount))
    reconstructAll(codec, ref, stripe, patterns, (index) => lengthBytes <= 17 || index % every === 0)
  })
}

const ALL_LENGTHS = [...SMALL_LENGTHS, ...BIG_LENGTHS]

test('reference: GF(2^8) mod 0x11d and the Cauchy rows agree with ISA-L', () => {
  // Worked by hand: 2 * 0x80 = 0x100, reduced by 0x11d to 0x1d; 0x8e * 2 = 0x11c -> 0x01.
  assert.is(gfMulSlow(2, 0x80), 0x1d)
  assert.is(gfMulSlow(0x8e, 2), 0x01)
  assert.is(gfInvSlow(2), 0x8e)
  // gf_gen_cauchy1_matrix(a, 5, 3): rows 3 and 4 are 1 / (i ^ j) for j = 0..2 (inverses as
  // printed by isal-known-answers.py).
  assert.equal(cauchyMatrix(3, 2).slice(3), [[gfInvSlow(3), gfInvSlow(2), gfInvSlow(1)], [gfInvSlow(4), gfInvSlow(5), gfInvSlow(6)]])
  assert.equal(cauchyMatrix(3, 2).slice(3), [[0xf4, 0x8e, 0x01], [0x47, 0xa7, 0x7a]])
})

/** Known answers: data shard j byte i = (31 i + 17 j + 7) mod 256, 17 bytes (one vector and
 *  a tail byte). The parity was computed from the ISA-L definition by an independent Python
 *  script, isal-known-answers.py beside this file (bit-serial multiply, a^254 inverse), and
 *  agrees with reference-rs.ts. */
const KNOWN_ANSWERS: Array<[Scheme, number, number, string[]]> = [
  ['rs', 3, 2, ['d33484e565863e5f7cd398f2f2112248bb', '4d32d89b2b05185bd538cab919ec0a79db']],
  ['rs', 6, 3, ['86a265731b75b0f7442f0f6020a5fb07ac', '3d31b6e019e630649899447c6b1b9ee0ad', '472755a6d712c6811a47ceabd6db4efa77']],
  ['rs', 10, 4, ['1e0e03b2a526dfcbb42a78ad416ab91ad3', 'a80494b8e82c19c1cb685e1863a2eece11', '4347e5b4a4af7958aa37b8f8896179e80c', '6082bb71726a239d9ee5abbf9715d93973']],
  ['xor', 2, 1, ['1f11131117111311ef317331f7317331ff']],
]

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

async function knownAnswers(make: MakeCodec): Promise<void> {
  for (const [scheme, k, m, parityHex] of KNOWN_ANSWERS) {
    const data = Array.from({ length: k }, (_, j) => Uint8Array.from({ length: 17 }, (_, i) => (31 * i + 17 * j + 7) & 0xff))
    const codec = await make(scheme, k, m)
    const parity = Array.from({ length: m }, () => new Uint8Array(17))
    codec.encode(data, parity)
    assert.equal(parity.map(hex), parityHex, `${scheme}(${k},${m}) wasm`)
    const refParity = Array.from({ length: m }, () => new Uint8Array(17))
    new ReferenceCodec(scheme, k, m).encode(data, refParity)
    assert.equal(refParity.map(hex), parityHex, `${scheme}(${k},${m}) reference`)
  }
}

test('encode() writes the known-answer parity of ISA-L gf_gen_cauchy1_matrix (the on-disk format)', async () => {
  const codec = await createCodec('rs', 3, 2)
  console.log(`codec.test runs the ${(codec as WasmCodec).build} build`)
  await knownAnswers(createCodec)
})

test('the plain SIMD build (for runtimes without relaxed SIMD) writes the same bytes', async () => {
  const make = onBuild('simd')
  await knownAnswers(make)
  await roundTrip('rs', 6, 3, [17, 64 * KiB + 3], () => allPatterns(9, 3), 3, make)
  await roundTrip('rs', 10, 4, [...SMALL_LENGTHS, MiB], (lengthBytes) => samplePatterns(14, 4, lengthBytes <= 17 ? 30 : 4), 1, make)
  await roundTrip('xor', 2, 1, [17, 64 * KiB + 3], () => allPatterns(3, 1), 1, make)
})

test('RS(3,2): encode() matches the reference and reconstruct() rebuilds every erasure pattern', async () => {
  await roundTrip('rs', 3, 2, ALL_LENGTHS, () => allPatterns(5, 2))
})

test('RS(6,3): encode() matches the reference and reconstruct() rebuilds every erasure pattern', async () => {
  await roundTrip('rs', 6, 3, ALL_LENGTHS, () => allPatterns(9, 3))
})

test('XOR(2,1): encode() matches the reference and reconstruct() rebuilds every erasure pattern', async () => {
  await roundTrip('xor', 2, 1, ALL_LENGTHS, () => allPatterns(3, 1))
})

test('XOR(k,1): encode() and reconstruct() for wide stripes', async () => {
  for (const k of [1, 5, 31]) await roundTrip('xor', k, 1, [...SMALL_LENGTHS, 64 * KiB + 3], () => allPatterns(k + 1, 1))
})

test('RS(10,4): encode() matches the reference and reconstruct() rebuilds a sample of patterns', async () => {
  await roundTrip('rs', 10, 4, ALL_LENGTHS, (lengthBytes) => samplePatterns(14, 4, lengthBytes <= 17 ? 60 : lengthBytes < MiB ? 20 : 8), 2)
})

test('RS(k,m) for random k + m <= 32: encode() and reconstruct() match the reference', async () => {
  const configs: Array<[number, number]> = [[1, 1], [1, 31], [31, 1], [16, 16], [2, 30], [30, 2]]
  while (configs.length < 14) {
    const n = 2 + randomInt(31)
    const m = 1 + randomInt(n - 1)
    configs.push([n - m, m])
  }
  for (const [k, m] of configs) {
    await roundTrip('rs', k, m, [...SMALL_LENGTHS, 64 * KiB + 3], (lengthBytes) => samplePatterns(k + m, m, lengthBytes <= 17 ? 12 : 4), 1)
  }
  const [k, m] = configs[6 + randomInt(configs.length - 6)]
  await roundTrip('rs', k, m, [MiB], () => samplePatterns(k + m, m, 3), 1)
})

test('every straight-line, paired and looping kernel shape (k = 2..13, 1..8 rows) matches the reference on both builds', async () => {
  // scripts/gen-kernels.mjs writes one kernel per (rows <= 3, k <= 12) and a paired encode
  // kernel per (even k <= 12, m of 3 or 4), in 32-byte steps with a 16-byte last step; the
  // rest run the looping kernel, which LOOPING_KERNEL forces everywhere. 16 * 9 + 7 bytes
  // reaches the 32-byte loop, the 16-byte step and the byte tail; m up to 8 makes passes of 4
  // rows and of the rest.
  for (const build of ['relaxed-simd', 'simd'] as const) {
    for (const kernels of [ALL_KERNELS, LOOPING_KERNEL]) {
      for (let k = 2; k <= 13; k++) {
        for (let m = 1; m <= Math.min(8, 32 - k); m++) {
          const paired = kernels.pairedEncode && k % 2 === 0 && k <= 12 && (m === 3 || m === 4)
          const codec = await onBuild(build, kernels)('rs', k, m)
          assert.is((codec as WasmCodec).encodeKernel, paired ? 'paired' : 'matrix', `RS(${k},${m}) encode kernel`)
          await roundTrip('rs', k, m, [16 * 9 + 7], () => samplePatterns(k + m, m, 4), 4, onBuild(build, kernels))
        }
      }
    }
  }
})

test('the paired encode kernels match the reference over many blocks, in place and copied', async () => {
  for (const [k, m] of [[6, 3], [10, 4], [2, 3], [12, 4]] as const) {
    await roundTrip('rs', k, m, [64 * KiB + 3, 3 * 16 * KiB + 17], () => samplePatterns(k + m, m, 2), 1, onBuild('relaxed-simd', ALL_KERNELS))
  }
})

test('the kernel choice follows the V8 version it was measured on', () => {
  assert.equal(kernelChoiceFor('11.3.244.8-node.33'), { unrolledRows: 3, pairedEncode: true }) // Node 20: TurboFan
  assert.equal(kernelChoiceFor('15.0.245.2-rusty'), { unrolledRows: 2, pairedEncode: false }) // Deno 2.9: Turboshaft
  assert.equal(kernelChoiceFor('12.4.254.21-node.33'), { unrolledRows: 2, pairedEncode: false })
  assert.equal(kernelChoiceFor(undefined), { unrolledRows: 2, pairedEncode: false })
})

test('reconstruct() stays right while the decode-table cache evicts patterns', async () => {
  // RS(10,4) has 1470 erasure patterns, far more than DECODE_PATTERN_CACHE_MAX (64).
  const patterns = allPatterns(14, 4).filter((_, i) => i % 7 === 0)
  await roundTrip('rs', 10, 4, [33], () => [...patterns, ...patterns.slice(0, 20)], 1)
})

test('reconstruct() with no missing shard or empty shards changes nothing', async () => {
  const codec = await createCodec('rs', 3, 2)
  const shards = randomShards(5, 40)
  const before = shards.map((s) => s.slice())
  codec.reconstruct(shards, [])
  assertShardsEqual(shards, before, 'nothing missing')
  codec.encode([new Uint8Array(0), new Uint8Array(0), new Uint8Array(0)], [new Uint8Array(0), new Uint8Array(0)])
})

test('allocateShards() views stay valid when a later allocation grows the memory', async () => {
  const codec = await createCodec('rs', 6, 3)
  const ref = new ReferenceCodec('rs', 6, 3)
  const first = codec.allocateShards(9, 1000)
  const data = randomShards(6, 1000)
  first.forEach((s, i) => i < 6 && s.set(data[i]))
  const big = codec.allocateShards(2, 8 * MiB) // grows the memory past its first buffer
  assert.is(first[0].length, 1000)
  codec.encode(first.slice(0, 6), first.slice(6))
  const expected = Array.from({ length: 3 }, () => new Uint8Array(1000))
  ref.encode(data, expected)
  assertShardsEqual(first.slice(6), expected, 'parity in views from before the growth')
  for (const s of [...first, ...big]) assert.is(s.byteOffset % 64, 0, 'shards start on a cache line')
  assert.ok(first[1].byteOffset - first[0].byteOffset >= 1000, 'shards do not overlap')
  // Shards a power of two long still start in different L1 sets (bits 6..11 of the address).
  assert.is.not((big[1].byteOffset - big[0].byteOffset) % 4096, 0)
  codec.freeShards(big)
  codec.freeShards(first)
  assert.throws(() => codec.freeShards(first), RangeError)
  assert.throws(() => codec.freeShards([new Uint8Array(4)]), RangeError)
})

test('createCodec() rejects bad schemes and shapes with TypeError or RangeError', async () => {
  const rejects = async (promise: Promise<unknown>, type: ErrorConstructor, what: string): Promise<void> => {
    try {
      await promise
    } catch (err) {
      assert.instance(err, type, what)
      return
    }
    assert.unreachable(`${what}: resolved`)
  }
  await rejects(createCodec('lrc' as Scheme, 3, 2), TypeError, 'unknown scheme')
  await rejects(createCodec('rs', 30, 3), RangeError, 'k + m = 33')
  await rejects(createCodec('rs', 0, 2), RangeError, 'k = 0')
  await rejects(createCodec('rs', 3, 0), RangeError, 'm = 0')
  await rejects(createCodec('rs', 2.5, 2), RangeError, 'fractional k')
  await rejects(createCodec('xor', 3, 2), RangeError, 'XOR with two parity shards')
  const codec = await createCodec('rs', 31, 1)
  assert.is(codec.k + codec.m, 32)
})

test('encode() and reconstruct() reject bad shard arrays and erasure lists', async () => {
  const codec = await createCodec('rs', 3, 2)
  const s = (n: number, len = 16): Uint8Array[] => Array.from({ length: n }, () => new Uint8Array(len))
  assert.throws(() => codec.encode(s(2), s(2)), RangeError, 'two data shards')
  assert.throws(() => codec.encode(s(3), s(3)), RangeError, 'three parity shards')
  assert.throws(() => codec.encode([...s(2), new Uint8Array(15)], s(2)), RangeError, 'unequal data')
  assert.throws(() => codec.encode(s(3), [new Uint8Array(16), new Uint8Array(17)]), RangeError, 'unequal parity')
  assert.throws(() => codec.encode([...s(2), [1, 2] as unknown as Uint8Array], s(2)), TypeError, 'not a Uint8Array')
  assert.throws(() => codec.encode('abc' as unknown as Uint8Array[], s(2)), TypeError, 'not an array')
  assert.throws(() => codec.reconstruct(s(5), [0, 1, 2]), RangeError, 'more than m missing')
  assert.throws(() => codec.reconstruct(s(5), [1, 1]), RangeError, 'listed twice')
  assert.throws(() => codec.reconstruct(s(5), [5]), RangeError, 'index past k + m')
  assert.throws(() => codec.reconstruct(s(5), [-1]), RangeError, 'negative index')
  assert.throws(() => codec.reconstruct(s(5), [0.5]), RangeError, 'fractional index')
  assert.throws(() => codec.reconstruct(s(4), [0]), RangeError, 'four shards')
  assert.throws(() => codec.reconstruct([...s(4), new Uint8Array(3)], [0]), RangeError, 'unequal shards')
  assert.throws(() => codec.allocateShards(33, 16), RangeError, '33 shards')
  assert.throws(() => codec.allocateShards(2, -1), RangeError, 'negative length')
  const own = codec.allocateShards(1, 16)[0]
  const table = new Uint8Array(own.buffer, 0, 16)
  assert.throws(() => codec.encode([table, ...s(2)], s(2)), RangeError, 'a view of the codec tables')
  // Outputs over inputs: the kernels write outputs while later inputs are still to be read.
  const data = s(3)
  assert.throws(() => codec.encode(data, [data[2], new Uint8Array(16)]), RangeError, 'parity is a data shard')
  const wide = new Uint8Array(64)
  const overlapping = [wide.subarray(0, 16), wide.subarray(16, 32), wide.subarray(32, 48)]
  assert.throws(() => codec.encode(overlapping, [wide.subarray(40, 56), new Uint8Array(16)]), RangeError, 'parity overlaps data')
  const stripe = codec.allocateShards(5, 16)
  assert.throws(() => codec.reconstruct([stripe[0], stripe[1], stripe[2], stripe[3], stripe[1]], [4]), RangeError, 'rebuilt shard is a source')
  codec.freeShards(stripe)
})

test('a Piscina worker instantiates its own codec and writes the same parity', async () => {
  const { Piscina } = await import('piscina')
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
  const pool = new Piscina({ filename: new URL(`./codec-worker.${ext}`, import.meta.url).href, maxThreads: 2, minThreads: 2 })
  try {
    const data = randomShards(6, 100_003)
    const expected = Array.from({ length: 3 }, () => new Uint8Array(100_003))
    new ReferenceCodec('rs', 6, 3).encode(data, expected)
    const results = await Promise.all([0, 1, 2, 3].map(() => pool.run({ k: 6, m: 3, data }) as Promise<Uint8Array[]>))
    for (const parity of results) assertShardsEqual(parity, expected, 'worker parity')
  } finally {
    await pool.destroy()
  }
})

test.run()
