/** @module
 * `npm run bench [-- --quick]`: O3's write and read paths measured against bare baselines in
 * the same run on the same machine (a plain node:http server writing files), plus the
 * checksum and small-block packing measurements behind two datapath defaults. Prints figures
 * and ratios on stdout, progress on stderr, and writes a JSON copy to bench/results/.
 * Steps: checksums, packing, bare HTTP, then `o3 local` with three datanodes (the native
 * client and S3 in turns, then S3 over HTTPS beside plain HTTP: what TLS at the edge costs). Every server
 * runs in a child process, never beside the load generator; with --profile each writes CPU profiles and the run ends with where the time went per figure.
 * Each server figure also carries the CPU time the server used per MiB or per operation.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { randomFillSync } from 'node:crypto'
import { availableParallelism, cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_CONFIG } from '../core/config.ts'
import { BareClient } from './bare-http.ts'
import { moduleCommand, startChild, stopChild } from './child.ts'
import { measureChecksums } from './checksums.ts'
import { expectLength, measureOps, measureThroughput, warmUpWithPairs, type OpsResult, type ThroughputResult } from './measure.ts'
import { setPageWarming, warmPagesForPuts } from './page-pool.ts'
import { UsageError } from '../cli/args.ts'
import { cpuMs } from './proc-cpu.ts'
import { BenchCluster, TOPOLOGIES, type Topology } from './o3-cluster.ts'
import { measurePacking } from './packing.ts'
import { Progress } from './progress.ts'
import { FigureWindows, formatProfiles, profileThisProcess, summarizeProfiles, type FigureProfile } from './profile.ts'
import { cpuRatio, formatOps, formatThroughput, formatWarmUp, ratio } from './report.ts'
import { EC_BENCH_DATANODES, measureS3Ec, s3EcStepCount, type EcFigures } from './s3-ec.ts'
import { measureS3Tls, s3TlsStepCount, TLS_SCHEMES, type S3TlsSettings, type TlsFigures } from './s3-tls.ts'
import { measureS3, s3StepCount, type Failure, type S3Figures, type S3Results, type S3Settings, type Served, type WarmUps } from './s3.ts'
import { resultsPath, writeResults } from './results.ts'
import type { ServerKind } from './server-process.ts'

const KiB = 1024
const MiB = 1024 * KiB
const REPLICATIONS = ['RATIS/ONE', 'RATIS/THREE'] as const
const CONCURRENCY = 32

interface Settings {
  /** The bare node:http baseline's 64 MiB transfers (the native client's and S3's counts are in `s3`). */
  largeIterations: number
  /** The bare node:http baseline's 4 KiB operations. */
  smallCount: number
  /** Blocks stored one after another per packing method: each waits for an LMDB commit (fsync), a few ms here. */
  packSequentialCount: number
  packConcurrentCount: number
  checksumMs: number
  /** Untimed rounds until a server's rate settles (measure.ts warmUntilSettled) before the bare server's 4 KiB figures and before every target's 4 KiB and 1 MiB figures in bench/s3.ts. */
  warmUp: WarmUps
  s3: S3Settings
  /** The TLS cost at the edge: an http and an https gateway on the same cluster (bench/s3-tls.ts). */
  s3Tls: S3TlsSettings
}

const QUICK: Settings = {
  largeIterations: 2, smallCount: 500, packSequentialCount: 2000, packConcurrentCount: 2000, checksumMs: 600,
  warmUp: { small: { roundOps: 200, roundsMax: 6 }, medium: { roundOps: 4, roundsMax: 4 } },
  s3: { smallCount: 200, mediumIterations: 6, largeIterations: 1, rounds: 2, concurrency: CONCURRENCY },
  s3Tls: { smallCount: 200, largeIterations: 1, concurrency: CONCURRENCY, rounds: 2, pipeBytes: 128 * MiB, handshakes: 200 },
}
const FULL: Settings = {
  largeIterations: 6, smallCount: 3000, packSequentialCount: 2000, packConcurrentCount: 10_000, checksumMs: 3000,
  warmUp: { small: { roundOps: 500, roundsMax: 12 }, medium: { roundOps: 32, roundsMax: 8 } },
  s3: { smallCount: 2000, mediumIterations: 32, largeIterations: 4, rounds: 4, concurrency: CONCURRENCY },
  s3Tls: { smallCount: 1000, largeIterations: 2, concurrency: CONCURRENCY, rounds: 3, pipeBytes: 512 * MiB, handshakes: 1000 },
}

function usage(): never {
  console.log(`Usage: npm run bench [-- --quick] [--profile] [--cold-pages] [--topology ${Object.keys(TOPOLOGIES).join('|')}]
  --quick     about a minute and a half: fewer iterations and rounds
  --profile   CPU profiles of every server process and its worker threads in
              bench/results/<time>-profile/, and where the time went per figure
  --topology  how o3 local runs its services (default: as o3 local does by default)
  --ec-only   only the erasure-coding figures (S3 on EC buckets beside RATIS/THREE)
  --tls-only  only the TLS-at-the-edge figures (S3 over HTTPS beside plain HTTP)
  --cold-pages  no warm pages before each PUT figure (bench/page-pool.ts; for an A/B of it)`)
  process.exit(0)
}

interface Options { quick: boolean; profile: boolean; topology: Topology; ecOnly: boolean; tlsOnly: boolean; coldPages: boolean }

function parseOptions(args: string[]): Options {
  const o: Options = { quick: false, profile: false, topology: 'default', ecOnly: false, tlsOnly: false, coldPages: false }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a === '--help' || a === '-h') usage()
    else if (a === '--quick') o.quick = true
    else if (a === '--profile') o.profile = true
    else if (a === '--ec-only') o.ecOnly = true
    else if (a === '--tls-only') o.tlsOnly = true
    else if (a === '--cold-pages') o.coldPages = true
    else if (a === '--topology') {
      const t = args[++i]
      if (t === undefined || !(t in TOPOLOGIES)) throw new UsageError(`--topology must be one of ${Object.keys(TOPOLOGIES).join(', ')}`)
      o.topology = t as Topology
    } else throw new UsageError(`Unknown option ${a} (try --help)`)
  }
  return o
}


async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2))
  setPageWarming(!options.coldPages)
  const quick = options.quick
  const s = quick ? QUICK : FULL
  process.env.O3_LOG ??= 'warn'

  const dir = mkdtempSync(join(tmpdir(), 'o3-bench-'))
  const large = randomFillSync(Buffer.allocUnsafe(64 * MiB))
  if (options.ecOnly) return ecOnly(dir, large, s, options.profile)
  if (options.tlsOnly) return tlsOnly(dir, large, s, options.topology)
  const small = large.subarray(0, 4 * KiB)
  const progress = new Progress(1 + 6 + 6 + 1 + s3StepCount(REPLICATIONS, s.s3) + s3TlsStepCount(s.s3Tls) + s3EcStepCount(s.s3.largeIterations))
  const startedAt = new Date()
  const profileDir = options.profile ? makeProfileDir(startedAt) : undefined
  const stopSelfProfile = profileDir === undefined ? undefined : await profileThisProcess(profileDir)
  const windows = new FigureWindows()
  const step = (name: string) => { progress.step(name); windows.mark(name) }
  // Every server the run starts, by PID: the processes whose profiles are summarized.
  const processNames = new Map<number, string>([[process.pid, 'bench']])
  const running = new Set<Served>()
  const serve = async (kind: ServerKind): Promise<Served> => {
    const child = await startChild<{ endpoint: string }>(moduleCommand('bench/server-process', { profileDir }), [kind, join(dir, kind)])
    processNames.set(child.pid, kind)
    const served: Served = { endpoint: child.ready.endpoint, pid: child.pid, stop: async () => { running.delete(served); await stopChild(child.process) } }
    running.add(served)
    return served
  }
  const bench = new BenchCluster(dir, { topology: options.topology, profileDir })
  try {
    step('checksums over 16 KiB windows of 4 MiB')
    const checksums = await measureChecksums(large.subarray(0, 4 * MiB), s.checksumMs)

    const packing = await measurePacking({ dir: join(dir, 'packing'), block: small, sequentialCount: s.packSequentialCount, concurrentCount: s.packConcurrentCount, concurrency: CONCURRENCY, onStep: step })

    const bareServer = await serve('bare')
    const bare = new BareClient(bareServer.endpoint)
    const bareCpu = () => cpuMs([bareServer.pid])
    step('bare: PUT 64 MiB into 1 file')
    const barePut1 = await measureThroughput({ iterations: s.largeIterations, bytes: large.length, op: () => bare.put('/large?files=1', large), cpu: bareCpu, beforeTimed: warmPagesForPuts })
    step('bare: PUT 64 MiB into 3 files')
    const barePut3 = await measureThroughput({ iterations: s.largeIterations, bytes: large.length, op: () => bare.put('/large?files=3', large), cpu: bareCpu, beforeTimed: warmPagesForPuts })
    step('bare: GET 64 MiB')
    const bareGet = await measureThroughput({ iterations: s.largeIterations, bytes: large.length, op: async () => expectLength(await bare.getLength('/large'), large.length), cpu: bareCpu })
    step('bare: 4 KiB warm-up (untimed, until settled)')
    const bareWarmUp = await warmUpWithPairs(s.warmUp.small, CONCURRENCY, bare, '/small/warm-', small)
    step(`bare: PUT 4 KiB into new files, ${CONCURRENCY} concurrent`)
    const barePutSmall = await measureOps({ count: s.smallCount, concurrency: CONCURRENCY, op: (i) => bare.put(`/small/${i}`, small), cpu: bareCpu })
    step(`bare: GET 4 KiB files, ${CONCURRENCY} concurrent`)
    const bareGetSmall = await measureOps({ count: s.smallCount, concurrency: CONCURRENCY, op: async (i) => expectLength(await bare.getLength(`/small/${i}`), small.length), cpu: bareCpu })
    await bare.close()
    await bareServer.stop()

    step(`O3: start o3 local, 3 datanodes (topology ${options.topology})`)
    await bench.start(REPLICATIONS)
    // The native client's figures are taken in the S3 figures' turns (bench/s3.ts).
    const { servers: s3, native: o3 } = await measureS3({ serve, bench, replications: REPLICATIONS, settings: s.s3, warmUp: s.warmUp, large, onStep: step })
    const tls = await measureS3Tls({ bench, dir: join(dir, 'tls'), profileDir, settings: s.s3Tls, large, onStep: step, onProcess: (pid, name) => processNames.set(pid, name) })
    for (const [pid, name] of bench.processNames()) processNames.set(pid, name)
    // Profiles are written when the processes exit.
    await bench.stop()
    const ec = await measureS3Ec({ dir: join(dir, 'ec'), profileDir, large, iterations: s.s3.largeIterations, onStep: step, onProcess: (pid, name) => processNames.set(pid, name) })
    progress.stop()
    windows.end()
    await stopSelfProfile?.()
    const profile = profileDir === undefined ? undefined : summarizeProfiles(profileDir, windows.windows, processNames)

    const results = {
      startedAt: startedAt.toISOString(), quick, settings: s, warmPages: !options.coldPages,
      machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model, node: process.version, platform: process.platform },
      topology: options.topology, checksums, packing,
      bare: { put64MiB1File: barePut1, put64MiB3Files: barePut3, get64MiB: bareGet, put4KiB: barePutSmall, get4KiB: bareGetSmall, warmUp4KiB: bareWarmUp },
      o3, s3, tls, ec, profile,
    }
    printReport(results)
    if (profile !== undefined) printProfile(profile, profileDir!)
    const file = writeResults('', results, startedAt)
    console.log(`\nJSON: ${file}`)
  } finally {
    progress.stop()
    for (const served of [...running]) await served.stop().catch(() => {})
    await bench.stop().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}

/** bench/results/<start time>-profile/, made: where `--profile` has the CPU profiles written. */
function makeProfileDir(startedAt: Date): string {
  const dir = resultsPath(`${startedAt.toISOString().replace(/[:.]/g, '-')}-profile`)
  mkdirSync(dir, { recursive: true })
  return dir
}

/** `--ec-only`: the erasure-coding figures alone. */
async function ecOnly(dir: string, large: Buffer, s: Settings, profile: boolean): Promise<void> {
  const progress = new Progress(s3EcStepCount(s.s3.largeIterations))
  const startedAt = new Date()
  const profileDir = profile ? makeProfileDir(startedAt) : undefined
  const windows = new FigureWindows()
  const processNames = new Map<number, string>()
  try {
    const ec = await measureS3Ec({
      dir: join(dir, 'ec'), profileDir, large, iterations: s.s3.largeIterations,
      onStep: (name) => { progress.step(name); windows.mark(name) }, onProcess: (pid, name) => processNames.set(pid, name),
    })
    progress.stop()
    windows.end()
    console.log(`O3 benchmark, EC figures only: ${availableParallelism()} CPUs, Node ${process.version}; MB = 10^6 bytes`)
    printEc(ec)
    if (profileDir !== undefined) printProfile(summarizeProfiles(profileDir, windows.windows, processNames), profileDir)
    console.log(`\nJSON: ${writeResults('ec-', { startedAt: startedAt.toISOString(), settings: s, ec }, startedAt)}`)
  } finally {
    progress.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** `--tls-only`: the TLS-at-the-edge figures alone. */
async function tlsOnly(dir: string, large: Buffer, s: Settings, topology: Topology): Promise<void> {
  const progress = new Progress(1 + s3TlsStepCount(s.s3Tls))
  const startedAt = new Date()
  const bench = new BenchCluster(dir, { topology })
  try {
    progress.step(`O3: start o3 local, 3 datanodes (topology ${topology})`)
    await bench.start([])
    const tls = await measureS3Tls({ bench, dir: join(dir, 'tls'), settings: s.s3Tls, large, onStep: (name) => progress.step(name) })
    progress.stop()
    console.log(`O3 benchmark, TLS figures only: ${availableParallelism()} CPUs, Node ${process.version}; MB = 10^6 bytes`)
    printTls(tls)
    console.log(`\nJSON: ${writeResults('tls-', { startedAt: startedAt.toISOString(), settings: s, tls }, startedAt)}`)
  } finally {
    progress.stop()
    await bench.stop().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}

function printProfile(profile: FigureProfile[], dir: string): void {
  console.log(`\nWhere the time went (CPU profiles in ${dir}; busy = share of the figure's wall time; per figure the 4 busiest of: each main thread, the datanode thread, each process's pool workers summed; at 10% or more):`)
  for (const line of formatProfiles(profile)) console.log(line)
}

function printReport(r: {
  quick: boolean
  topology: Topology
  checksums: Awaited<ReturnType<typeof measureChecksums>>
  packing: Awaited<ReturnType<typeof measurePacking>>
  bare: { put64MiB1File: ThroughputResult; put64MiB3Files: ThroughputResult; get64MiB: ThroughputResult; put4KiB: OpsResult; get4KiB: OpsResult; warmUp4KiB: number[] }
  o3: Record<string, S3Figures>
  s3: S3Results
  tls: TlsFigures
  ec: Record<string, EcFigures>
  warmPages: boolean
}): void {
  const out = (line = '') => console.log(line)
  out(`O3 benchmark${r.quick ? ' (--quick)' : ''}: ${availableParallelism()} CPUs, Node ${process.version}; MB = 10^6 bytes; PUT figures on ${r.warmPages ? 'warm pages' : 'cold pages (--cold-pages)'}`)
  out('\nChecksums (16 KiB windows of a 4 MiB buffer, one thread):')
  const fastest = [...r.checksums].sort((a, b) => b.mbPerSec - a.mbPerSec)[0]
  for (const c of r.checksums) out(`  ${c.type.padEnd(7)} ${c.mbPerSec.toFixed(0).padStart(6)} MB/s = ${ratio(c.mbPerSec, fastest.mbPerSec)} x ${fastest.type}`)
  const dflt = DEFAULT_CONFIG['client.checksumType']
  out(`  fastest: ${fastest.type}; default client.checksumType is ${dflt}${fastest.type === dflt ? ' (confirmed)' : ' (NOT the fastest here)'}`)

  out(`\nSmall-block packing (4 KiB blocks + LMDB metadata; sequential and ${CONCURRENCY} concurrent):`)
  for (const p of r.packing) out(`  ${p.method.padEnd(15)} sequential ${formatOps(p.sequential)}; concurrent ${formatOps(p.concurrent)}`)
  for (const mode of ['sequential', 'concurrent'] as const) {
    const best = [...r.packing].sort((a, b) => b[mode].opsPerSec - a[mode].opsPerSec)[0]
    out(`  fastest ${mode}: ${best.method} (datanode packs inline in LMDB)`)
  }

  const b = r.bare
  out('\nBare node:http baseline (its own process, loopback):')
  out(`  PUT 64 MiB into 1 file:  ${formatThroughput(b.put64MiB1File)}`)
  out(`  PUT 64 MiB into 3 files: ${formatThroughput(b.put64MiB3Files)}`)
  out(`  GET 64 MiB:              ${formatThroughput(b.get64MiB)}`)
  out(`  PUT 4 KiB new files:     ${formatOps(b.put4KiB)}`)
  out(`  GET 4 KiB files:         ${formatOps(b.get4KiB)}`)
  out(`  untimed warm-up, PUT+GET pairs/s by round: 4 KiB ${formatWarmUp(b.warmUp4KiB)}`)

  for (const [rep, f] of Object.entries(r.o3)) {
    const putBase = rep === 'RATIS/THREE' ? { t: b.put64MiB3Files, name: 'bare 3 files' } : { t: b.put64MiB1File, name: 'bare 1 file' }
    out(`\nO3 ${rep} (native client in this process, in turns with the S3 figures; o3 local with 3 datanodes, topology ${r.topology}):`)
    out(`  put 64 MiB: ${formatVersus(f.put64MiB, putBase.t, putBase.name)}`)
    out(`  get 64 MiB: ${formatVersus(f.get64MiB, b.get64MiB, 'bare GET')}`)
    out(`  put 1 MiB:  ${formatVersus(f.put1MiB)}`)
    out(`  get 1 MiB:  ${formatVersus(f.get1MiB)}`)
    out(`  put 4 KiB:  ${formatVersus(f.put4KiB, b.put4KiB, 'bare')}`)
    out(`  get 4 KiB:  ${formatVersus(f.get4KiB, b.get4KiB, 'bare')}`)
    out(`  untimed warm-up, PUT+GET pairs/s by round: 4 KiB ${formatWarmUp(f.warmUp.small)}; 1 MiB ${formatWarmUp(f.warmUp.medium)}; 64 MiB ${formatWarmUp(f.warmUp.large)}`)
  }
  printS3(r.s3, b, r.o3)
  printTls(r.tls)
  printEc(r.ec)
}

/** The TLS cost at the edge (issue 16): each figure over HTTPS beside the same over plain HTTP, same cluster, same run. */
function printTls(tls: TlsFigures): void {
  const out = (line = '') => console.log(line)
  out('\nTLS at the edge (two S3 gateways in their own processes on the same o3 local, plain HTTP and HTTPS, TLS 1.3 with an ECDSA P-256 certificate; one RATIS/ONE bucket; taking turns; CPU = the gateway process):')
  for (const op of ['put4KiB', 'get4KiB', 'put64MiB', 'get64MiB'] as const) {
    const http = tls.http[op]
    for (const scheme of TLS_SCHEMES) {
      const f = tls[scheme][op]
      const versus = scheme === 'https' && !('error' in http) ? http : undefined
      out(`  ${op.padEnd(9)} ${scheme.padEnd(5)} ${formatVersus(f, versus, 'http')}`)
    }
  }
  const p = tls.pipe
  if ('error' in p) out(`  TLS alone: FAILED ${p.error}`)
  else {
    out(`  TLS alone, one loopback connection, both ends in one process (${p.tls.cipher}; best of 3 rounds each):`)
    out(`    plain TCP ${p.plain.mbPerSec.toFixed(0)} MB/s, CPU ${p.plain.cpuMsPerMiB.toFixed(2)} ms/MiB; TLS ${p.tls.mbPerSec.toFixed(0)} MB/s, CPU ${p.tls.cpuMsPerMiB.toFixed(2)} ms/MiB: TLS adds ${(p.tls.cpuMsPerMiB - p.plain.cpuMsPerMiB).toFixed(2)} ms/MiB for both ends`)
    out(`    a full handshake (new connection): ${p.handshakeCpuUs.toFixed(0)} µs CPU for both ends`)
  }
}

/** The EC figures (issue 14): each EC bucket beside RATIS/THREE of the same cluster and run. */
function printEc(ec: Record<string, EcFigures>): void {
  const out = (line = '') => console.log(line)
  const three = ec['RATIS/THREE']
  out(`\nS3 on erasure-coded buckets (o3 local --processes with ${EC_BENCH_DATANODES} datanodes; one bucket per replication; goals: EC PUT and GET >= RATIS/THREE, degraded GET >= 0.5 x healthy, bytes on disk 1.67 / 1.5 per byte):`)
  for (const [rep, f] of Object.entries(ec)) {
    const versus = rep === 'RATIS/THREE' || three === undefined
    out(`  ${rep}:`)
    out(`    PUT 64 MiB: ${formatVersus(f.put64MiB, versus || 'error' in three.put64MiB ? undefined : three.put64MiB, 'RATIS/THREE')}`)
    out(`    GET 64 MiB: ${formatVersus(f.get64MiB, versus || 'error' in three.get64MiB ? undefined : three.get64MiB, 'RATIS/THREE')}`)
    if (f.degradedGet64MiB !== undefined) out(`    GET 64 MiB, m nodes down: ${formatVersus(f.degradedGet64MiB, 'error' in f.get64MiB ? undefined : f.get64MiB, 'healthy GET')}`)
    if (f.diskBytesPerByte !== undefined) out(`    bytes on disk per byte written: ${f.diskBytesPerByte.toFixed(2)}`)
  }
}

/**
 * The S3 figures: each server beside the sink (the generator's ceiling), O3 beside s3rver and
 * beside the bare node:http baseline, all from this run.
 */
function printS3(s3: S3Results, b: { put64MiB1File: ThroughputResult; put64MiB3Files: ThroughputResult; get64MiB: ThroughputResult; put4KiB: OpsResult; get4KiB: OpsResult }, native: Record<string, S3Figures>): void {
  const out = (line = '') => console.log(line)
  const sink = s3.sink
  const ok = <T extends object>(f: T | Failure | undefined): T | undefined => f === undefined || 'error' in f ? undefined : f
  const serverFigures = Object.entries(s3)
  out('\nS3, one load generator (undici + SigV4, UNSIGNED-PAYLOAD; 4 KiB at 32 concurrent, 1 MiB and 64 MiB one at a time; s3rver, O3 and the native client in turns):')
  const ops: S3Op[] = ['put4KiB', 'get4KiB', 'put1MiB', 'get1MiB', 'put64MiB', 'get64MiB']
  // The generator is not the bottleneck when the sink, served by the same generator, is well
  // above every server on every operation.
  for (const [servers, which] of [['O3', (t: string) => t.startsWith('O3')], ['any server', (t: string) => t !== 'sink']] as const) {
    const headroom = ops.flatMap((op) => {
      const best = Math.max(0, ...serverFigures.filter(([t]) => which(t)).map(([, f]) => ok(f[op]) === undefined ? 0 : value(f[op] as Measured)))
      return ok(sink?.[op]) === undefined || best === 0 ? [] : [{ op, times: value(sink[op] as Measured) / best }]
    }).sort((x, y) => x.times - y.times)[0]
    if (headroom !== undefined) out(`  load generator ceiling (sink) over ${servers}: at least ${headroom.times.toFixed(1)} x (closest on ${headroom.op})`)
  }
  for (const [target, f] of serverFigures) {
    out(`  ${target}:`)
    out(`    untimed warm-up, PUT+GET pairs/s by round: 4 KiB ${formatWarmUp(f.warmUp.small)}; 1 MiB ${formatWarmUp(f.warmUp.medium)}; 64 MiB ${formatWarmUp(f.warmUp.large)}`)
    for (const op of ops) {
      const parts = [formatVersus(f[op])]
      if (target !== 'sink' && ok(sink?.[op]) !== undefined && ok(f[op]) !== undefined) parts.push(`${ratio(value(f[op] as Measured), value(sink[op] as Measured))} x sink`)
      if (target.startsWith('O3') && ok(s3.s3rver?.[op]) !== undefined && ok(f[op]) !== undefined) parts.push(`${ratio(value(f[op] as Measured), value(s3.s3rver[op] as Measured))} x s3rver${cpuVersus(f[op] as Measured, s3.s3rver[op] as Measured)}`)
      const bare = target.startsWith('O3') ? bareFor(op, target.includes('THREE'), b) : undefined
      if (bare !== undefined && ok(f[op]) !== undefined) parts.push(`${ratio(value(f[op] as Measured), value(bare.t))} x ${bare.name}${cpuVersus(f[op] as Measured, bare.t)}`)
      // The same operation through the native client, same replication (goal: S3 >= 0.8 x).
      const same = target.startsWith('O3 ') ? ok(native[target.slice(3)]?.[op]) : undefined
      if (same !== undefined && ok(f[op]) !== undefined) parts.push(`${ratio(value(f[op] as Measured), value(same))} x native`)
      out(`    ${op.padEnd(9)} ${parts.join(' = ')}`)
    }
  }
}

/** The bare node:http figure an S3 operation is compared with (none for 1 MiB: the bare run has none). */
function bareFor(op: S3Op, three: boolean, b: { put64MiB1File: ThroughputResult; put64MiB3Files: ThroughputResult; get64MiB: ThroughputResult; put4KiB: OpsResult; get4KiB: OpsResult }): { t: Measured; name: string } | undefined {
  switch (op) {
    case 'put4KiB': return { t: b.put4KiB, name: 'bare PUT 4 KiB' }
    case 'get4KiB': return { t: b.get4KiB, name: 'bare GET 4 KiB' }
    case 'put64MiB': return three ? { t: b.put64MiB3Files, name: 'bare 3 files' } : { t: b.put64MiB1File, name: 'bare 1 file' }
    case 'get64MiB': return { t: b.get64MiB, name: 'bare GET' }
    default: return undefined
  }
}

type Measured = ThroughputResult | OpsResult
/** The timed S3 figures (S3Figures without its warm-up rounds). */
type S3Op = Exclude<keyof S3Figures, 'warmUp'>

function value(x: Measured): number {
  return 'mbPerSec' in x ? x.mbPerSec : x.opsPerSec
}

/** The server CPU per unit beside a base's, when both were measured (Linux): lower is cheaper. */
function cpuVersus(f: Measured, base: Measured): string {
  const r = cpuRatio(f, base)
  return r === undefined ? '' : ` (CPU per unit ${r} x)`
}

/** A figure, its ratio to a bare one when given, or the step's failure. */
function formatVersus(f: ThroughputResult | OpsResult | Failure | undefined, base?: ThroughputResult | OpsResult, baseName?: string): string {
  if (f === undefined) return 'not run'
  if ('error' in f) return `FAILED ${f.error}`
  const text = 'mbPerSec' in f ? formatThroughput(f) : formatOps(f)
  return base === undefined ? text : `${text} = ${ratio(value(f), value(base))} x ${baseName}${cpuVersus(f, base)}`
}

main().catch((err: Error) => {
  // A command line the bench does not take: one line, exit code 2, as the o3 CLI says it.
  if (err instanceof UsageError) {
    console.error(`bench: ${err.message}`)
    process.exitCode = 2
    return
  }
  console.error(`bench failed: ${err.stack ?? err.message}`)
  process.exitCode = 1
})
