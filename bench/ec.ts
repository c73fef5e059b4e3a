/** @module
 * `npm run bench:ec`: encode and reconstruct throughput of the erasure codec (wasm/) for
 * RS(3,2), RS(6,3) and RS(10,4) with 1 MiB shards, single-threaded, beside baselines run in
 * the same process: @ronomon/reed-solomon (native C addon), @digitaldefiance/
 * reed-solomon-erasure.wasm (Rust in WASM, when it loads), the scalar reference of the tests,
 * and a memory copy as the ceiling. Throughput is MB/s (10^6 bytes) of data shards; a rebuild
 * loses the first m data shards, the costliest pattern. The contenders of one config and op
 * run in turn, round after round (see race()). Prints progress and ratios, writes JSON to
 * bench/results/.
 * Usage: node dist/bench/ec.js [--round-ms N] [--rounds N]
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus } from 'node:os'
import { createCodec } from '../wasm/index.ts'
import type { WasmCodec } from '../wasm/codec.ts'
import { ReferenceCodec } from '../test/wasm/reference-rs.ts'
import { positiveOption, writeResults } from './results.ts'

const SHARD_BYTES = 1024 * 1024
const CONFIGS: ReadonlyArray<readonly [number, number]> = [[3, 2], [6, 3], [10, 4]]
/** The issue's goal: o3 over the native addon, per config. */
const GOAL_VS_ADDON: Record<string, number> = { 'RS(3,2)': 1.0, 'RS(6,3)': 1.5, 'RS(10,4)': 1.5 }
/** The goals judge the codec as designed, stripes in its own memory; the plain-array run shows
 *  what copying in and out costs and is printed beside it, not judged. */
const IN_PLACE = 'o3 wasm (shards in codec memory)'
const COPIED = 'o3 wasm (plain Uint8Arrays)'
const COPY_BYTES = 16 * 1024 * 1024

const ROUND_MS = positiveOption('round-ms', 100)
const ROUNDS = positiveOption('rounds', 15)
/** Which build of the codec module ran ('relaxed-simd' or 'simd'). */
let build = ''

type Op = 'encode' | 'reconstruct'
interface Result {
  config: string
  op: Op
  impl: string
  /** The best round, wall clock. */
  mbPerSec: number
  medianMbPerSec: number
  /** The best round, per second of the process's CPU time. */
  cpuMbPerSec: number
}

/** One coder under test: prepares a stripe for (k, m), then returns the operation to time. */
interface Contender {
  readonly name: string
  prepare(k: number, m: number, op: Op, data: readonly Uint8Array[]): Promise<() => void | Promise<void>>
}

function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = seed >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

interface Rate {
  /** MB per second of wall-clock time, the best round. */
  readonly best: number
  readonly median: number
  /** MB per second of CPU time used by the whole process (all threads), the best round:
   *  blind to time spent descheduled, so steadier on a shared machine. */
  readonly cpuBest: number
}

/** Times the runs of one config and op in turn, ROUNDS times ROUND_MS each after a warm-up,
 *  so that load from other processes falls on all of them alike. Other load only slows a
 *  round down, so the best round is the least noisy estimate. */
async function race(runs: ReadonlyArray<() => void | Promise<void>>, bytesPerOp: number): Promise<Rate[]> {
  const wall = runs.map((): number[] => [])
  const cpu = runs.map((): number[] => [])
  for (const run of runs) {
    const warmEnd = performance.now() + ROUND_MS
    while (performance.now() < warmEnd) await run()
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < runs.length; i++) {
      let ops = 0
      const cpuStart = process.cpuUsage()
      const start = performance.now()
      let now = start
      while (now - start < ROUND_MS) {
        const p = runs[i]()
        if (p !== undefined) await p
        ops++
        now = performance.now()
      }
      const used = process.cpuUsage(cpuStart)
      wall[i].push((ops * bytesPerOp) / ((now - start) / 1000) / 1e6)
      cpu[i].push((ops * bytesPerOp) / ((used.user + used.system) / 1e6) / 1e6)
    }
    process.stdout.write(`\r  round ${r + 1}/${ROUNDS}`)
  }
  process.stdout.write('\r')
  return runs.map((_, i) => {
    const sorted = [...wall[i]].sort((a, b) => a - b)
    return { best: sorted[sorted.length - 1], median: sorted[Math.floor(sorted.length / 2)], cpuBest: Math.max(...cpu[i]) }
  })
}

/** Our codec. `inPlace`: shards from allocateShards(), else plain Uint8Arrays (copied). */
function o3(inPlace: boolean): Contender {
  return {
    name: inPlace ? IN_PLACE : COPIED,
    async prepare(k, m, op, data) {
      const codec = await createCodec('rs', k, m)
      build = (codec as WasmCodec).build
      const shards = inPlace ? codec.allocateShards(k + m, SHARD_BYTES) : Array.from({ length: k + m }, () => new Uint8Array(SHARD_BYTES))
      data.forEach((d, i) => shards[i].set(d))
      const dataShards = shards.slice(0, k), parity = shards.slice(k)
      codec.encode(dataShards, parity)
      if (op === 'encode') return () => codec.encode(dataShards, parity)
      const missing = Array.from({ length: m }, (_, i) => i)
      codec.reconstruct(shards, missing)
      data.forEach((d, i) => { if (Buffer.compare(d, shards[i]) !== 0) throw new Error(`o3 rebuilt shard ${i} wrong`) })
      return () => codec.reconstruct(shards, missing)
    },
  }
}

interface Ronomon {
  create(k: number, m: number): unknown
  encode(context: unknown, sources: number, targets: number, buffer: Buffer, bufferOffset: number, bufferSize: number,
    parity: Buffer, parityOffset: number, paritySize: number, callback: (error?: Error) => void): void
}

/** @ronomon/reed-solomon: asynchronous on libuv's pool, one call at a time here. */
function ronomon(addon: Ronomon): Contender {
  return {
    name: '@ronomon/reed-solomon (native)',
    async prepare(k, m, op, data) {
      const context = addon.create(k, m)
      const buffer = Buffer.concat(data as Uint8Array[])
      const parity = Buffer.alloc(m * SHARD_BYTES)
      const all = (1 << (k + m)) - 1
      const targets = op === 'encode' ? all & ~((1 << k) - 1) : (1 << m) - 1
      const sources = all & ~targets
      return () => new Promise<void>((resolve, reject) => {
        addon.encode(context, sources, targets, buffer, 0, buffer.length, parity, 0, parity.length, (error) => (error ? reject(error) : resolve()))
      })
    },
  }
}

interface RustWasm {
  encode(shards: Uint8Array, dataShards: number, parityShards: number): number
  reconstruct(shards: Uint8Array, dataShards: number, parityShards: number, available: boolean[]): number
}

/** @digitaldefiance/reed-solomon-erasure.wasm: copies the stripe into its memory per call. */
function rustWasm(rs: RustWasm): Contender {
  return {
    name: 'reed-solomon-erasure.wasm (Rust)',
    async prepare(k, m, op, data) {
      const stripe = new Uint8Array((k + m) * SHARD_BYTES)
      data.forEach((d, i) => stripe.set(d, i * SHARD_BYTES))
      const check = (code: number): void => { if (code !== 0) throw new Error(`reed-solomon-erasure.wasm returned ${code}`) }
      check(rs.encode(stripe, k, m))
      if (op === 'encode') return () => check(rs.encode(stripe, k, m))
      const available = Array.from({ length: k + m }, (_, i) => i >= m)
      return () => check(rs.reconstruct(stripe, k, m, available))
    },
  }
}

/** The scalar oracle of test/wasm/reference-rs.ts, for scale. */
const reference: Contender = {
  name: 'scalar reference (TypeScript)',
  async prepare(k, m, op, data) {
    const ref = new ReferenceCodec('rs', k, m)
    const shards = [...data.map((d) => d.slice()), ...Array.from({ length: m }, () => new Uint8Array(SHARD_BYTES))]
    ref.encode(shards.slice(0, k), shards.slice(k))
    if (op === 'encode') return () => ref.encode(shards.slice(0, k), shards.slice(k))
    const missing = Array.from({ length: m }, (_, i) => i)
    return () => ref.reconstruct(shards, missing)
  },
}

async function loadContenders(): Promise<{ contenders: Contender[]; skipped: string[] }> {
  const contenders = [o3(true), o3(false)]
  const skipped: string[] = []
  const require = createRequire(import.meta.url)
  try {
    contenders.push(ronomon(require('@ronomon/reed-solomon') as Ronomon))
  } catch (err) {
    skipped.push(`@ronomon/reed-solomon: ${(err as Error).message}`)
  }
  try {
    // Its fromCurrentDirectory() looks in the working directory under ESM; give it the bytes.
    const { ReedSolomonErasure } = await import('@digitaldefiance/reed-solomon-erasure.wasm')
    const wasm = readFileSync(require.resolve('@digitaldefiance/reed-solomon-erasure.wasm/wasm'))
    contenders.push(rustWasm(ReedSolomonErasure.fromBytes(wasm)))
  } catch (err) {
    skipped.push(`@digitaldefiance/reed-solomon-erasure.wasm: ${(err as Error).message}`)
  }
  contenders.push(reference)
  return { contenders, skipped }
}

function fmt(mbPerSec: number): string {
  return mbPerSec >= 100 ? mbPerSec.toFixed(0) : mbPerSec.toFixed(1)
}

async function main(): Promise<void> {
  const { contenders, skipped } = await loadContenders()
  for (const s of skipped) console.log(`skipped ${s}`)
  const total = 1 + CONFIGS.length * 2
  let done = 0
  const progress = (what: string): void => console.log(`[${++done}/${total}] ${what}`)

  const src = randomBytes(COPY_BYTES, 1), dst = new Uint8Array(COPY_BYTES)
  progress(`memory copy of ${COPY_BYTES / 1024 / 1024} MiB`)
  const [copy] = await race([() => dst.set(src)], COPY_BYTES)
  const copyMbPerSec = copy.best
  console.log(`  ${fmt(copyMbPerSec)} MB/s`)

  const results: Result[] = []
  for (const [k, m] of CONFIGS) {
    const config = `RS(${k},${m})`
    const data = Array.from({ length: k }, (_, i) => randomBytes(SHARD_BYTES, i + 7))
    for (const op of ['encode', 'reconstruct'] as const) {
      progress(`${config} ${op}: ${contenders.length} implementations in turn, ${ROUNDS} rounds of ${ROUND_MS} ms`)
      const runs = []
      for (const c of contenders) runs.push(await c.prepare(k, m, op, data))
      const rates = await race(runs, k * SHARD_BYTES)
      contenders.forEach((c, i) => {
        results.push({ config, op, impl: c.name, mbPerSec: rates[i].best, medianMbPerSec: rates[i].median, cpuMbPerSec: rates[i].cpuBest })
        console.log(`  ${c.name.padEnd(34)} ${fmt(rates[i].best).padStart(6)} MB/s (median ${fmt(rates[i].median)}, per CPU-second ${fmt(rates[i].cpuBest)})`)
      })
    }
  }

  const addon = contenders.find((c) => c.name.startsWith('@ronomon'))?.name
  const find = (config: string, op: Op, impl: string): Result | undefined =>
    results.find((r) => r.config === config && r.op === op && r.impl === impl)
  console.log(`\n1 MiB shards, MB/s of data shards, single-threaded, best of ${ROUNDS} rounds of ${ROUND_MS} ms; o3 build ${build}`)
  console.log(`memory copy ${fmt(copyMbPerSec)} MB/s. "wall": per second; "cpu": per second of process CPU time`)
  console.log(`${'config / op'.padEnd(22)} ${'implementation'.padEnd(34)} ${'wall'.padStart(7)} ${'cpu'.padStart(7)}  ${'vs addon wall/cpu'.padStart(17)}  of copy`)
  const goals: string[] = []
  for (const r of results) {
    const base = addon === undefined ? undefined : find(r.config, r.op, addon)
    const vs = base === undefined ? '' : `${(r.mbPerSec / base.mbPerSec).toFixed(2)}x / ${(r.cpuMbPerSec / base.cpuMbPerSec).toFixed(2)}x`
    console.log(`${`${r.config} ${r.op}`.padEnd(22)} ${r.impl.padEnd(34)} ${fmt(r.mbPerSec).padStart(7)} ${fmt(r.cpuMbPerSec).padStart(7)}  ${vs.padStart(17)}  ${(r.mbPerSec / copyMbPerSec).toFixed(2).padStart(7)}`)
    if (base !== undefined && r.impl === IN_PLACE) {
      const goal = GOAL_VS_ADDON[r.config]
      const wallRatio = r.mbPerSec / base.mbPerSec, cpuRatio = r.cpuMbPerSec / base.cpuMbPerSec
      const met = wallRatio >= goal && cpuRatio >= goal ? 'met   ' : wallRatio >= goal || cpuRatio >= goal ? 'partly' : 'MISSED'
      goals.push(`${met} ${r.config} ${r.op} ${r.impl}: ${wallRatio.toFixed(2)}x (wall) ${cpuRatio.toFixed(2)}x (cpu) the addon, goal ${goal}x`)
    }
  }
  if (goals.length > 0) console.log(`\ngoals:\n${goals.join('\n')}`)

  const file = writeResults('ec-', {
    date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cores: cpus().length,
    shardBytes: SHARD_BYTES, roundMs: ROUND_MS, rounds: ROUNDS, build, copyMbPerSec, results, skipped,
  })
  console.log(`\nwrote ${file}`)
}

await main()
