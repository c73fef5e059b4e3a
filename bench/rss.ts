/** @module
 * `npm run bench:rss [-- --runtime node|deno|both] [-- --settle-s N]`: the steady-state memory
 * of `o3 local` (SCM, OM, 3 datanodes and the S3 gateway in one process) after a fixed mixed
 * S3 workload, under Node and under Deno. Goal: steady-state RSS under 300 MiB.
 *
 * `o3 local --ports free --fresh --json` runs in a child process (node bin/o3.js, or deno run
 * cli/main.ts), so that its RSS is measured alone from /proc/<pid>/status: VmRSS sampled every
 * 200 ms during the workload, VmHWM (the kernel's high-water mark) as the peak. This process
 * drives the workload through @aws-sdk/client-s3, the same for both runtimes:
 *   1. 2000 small PUTs (1-8 KiB, 16 at a time), each read back (GET, compared), 40 LISTs of
 *      100 keys, then 1000 DELETEs;
 *   2. 12 objects of 1-16 MiB, PUT and GET once each;
 *   3. one 150 MB multipart upload (10 parts of 15 MB, 3 at a time), read back once.
 * Then it waits for quiescence (45 s by default: past the slab, worker and GC idle times of
 * core/limits.ts; only heartbeats run then) and reports the steady-state RSS: the median of
 * VmRSS over the last 5 s of the settle time. Linux only (procfs). Not part of npm test or
 * `npm run bench -- --quick` (it takes about 1.5 minutes per runtime here).
 */
import { spawn } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand,
  ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand,
} from '@aws-sdk/client-s3'
import { positiveOption, writeResults } from './results.ts'
import { readReadyJson } from './child.ts'
import { SERVER_V8_FLAGS } from '../cli/v8-flags.ts'

const KiB = 1024
const MiB = 1024 * KiB
const RSS_GOAL_BYTES = 300 * MiB
const SAMPLE_INTERVAL_MS = 200
/** The steady-state figure is the median VmRSS over this last part of the settle time. */
const STEADY_WINDOW_MS = 5_000
const BUCKET = 'rss'

const WORKLOAD = {
  smallCount: 2000, smallConcurrency: 16, listCount: 40, listPageKeys: 100, deleteCount: 1000,
  mediumSizesMiB: [1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 15, 16],
  multipartPartBytes: 15_000_000, multipartParts: 10, multipartConcurrency: 3,
} as const

type Runtime = 'node' | 'deno'

interface Endpoints { s3: string; s3Key: { awsAccessKey: string; awsSecret: string } }

interface RssResult {
  runtime: Runtime
  /** RSS once the cluster is ready, before any request. */
  idleBytes: number
  /** Highest VmRSS sampled and the kernel's VmHWM. */
  peakSampledBytes: number
  peakBytes: number
  /** Median VmRSS over the last STEADY_WINDOW_MS of the settle time. */
  steadyBytes: number
  /** What the RSS consisted of at the end of the settle time. */
  steadyBreakdown: RssBreakdown
  requests: number
  payloadBytes: number
  workloadSeconds: number
}

/** What a process's resident memory consists of, in bytes, from /proc/<pid>/status and
 *  /proc/<pid>/smaps: anonymous memory (heaps, stacks), file pages (the binary, LMDB maps),
 *  the part of the anonymous memory that is glibc's main heap (`[heap]`), and its thread count. */
interface RssBreakdown { anonBytes: number; fileBytes: number; mallocHeapBytes: number; threads: number }

function breakdownOf(pid: number): RssBreakdown {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN)
  let mallocHeapBytes = 0
  let inHeap = false
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inHeap = line.endsWith('[heap]')
    else if (inHeap && line.startsWith('Rss:')) mallocHeapBytes += Number(/(\d+) kB/.exec(line)![1]) * KiB
  }
  return { anonBytes: field('RssAnon') * KiB, fileBytes: field('RssFile') * KiB, mallocHeapBytes, threads: field('Threads') }
}

/** VmRSS and VmHWM of a process, in bytes. */
function memoryOf(pid: number): { rssBytes: number; hwmBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * KiB
  return { rssBytes: kib('VmRSS'), hwmBytes: kib('VmHWM') }
}

function repoRoot(): string {
  // dist/bench/rss.js under Node, bench/rss.ts under Deno.
  return fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url))
}

function command(runtime: Runtime, dataDir: string): { file: string; args: string[] } {
  const root = repoRoot()
  const local = ['local', '--ports', 'free', '--fresh', '--json', '--data', dataDir]
  if (runtime === 'node') return { file: process.execPath, args: [...SERVER_V8_FLAGS, join(root, 'bin/o3.js'), ...local] }
  const deno = join(root, 'node_modules/deno/deno')
  if (!existsSync(deno)) throw new Error(`Cannot run under Deno: ${deno} is missing (npm install)`)
  return { file: deno, args: ['run', '-A', `--v8-flags=${SERVER_V8_FLAGS.join(',')}`, join(root, 'cli/main.ts'), ...local] }
}

/** Runs `op(i)` for i in [0, count), `concurrency` at a time. */
async function inParallel(count: number, concurrency: number, op: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) await op(next++)
  }))
}

async function getBytes(s3: S3Client, key: string): Promise<Uint8Array> {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
  return res.Body!.transformToByteArray()
}

function md5(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex')
}

/** The fixed workload; returns the requests made and the payload bytes moved both ways. */
async function workload(s3: S3Client, log: (line: string) => void): Promise<{ requests: number; payloadBytes: number }> {
  const w = WORKLOAD
  let requests = 0
  let payloadBytes = 0
  const source = randomFillSync(Buffer.allocUnsafe(16 * MiB))
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }))
  requests++

  const smallBody = (i: number) => source.subarray(i * 7 % KiB, i * 7 % KiB + KiB + (i * 131) % (7 * KiB))
  await inParallel(w.smallCount, w.smallConcurrency, async (i) => {
    const body = smallBody(i)
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `small/${String(i).padStart(5, '0')}`, Body: body }))
    requests++
    payloadBytes += body.length
  })
  log(`${w.smallCount} small PUTs`)
  await inParallel(w.smallCount, w.smallConcurrency, async (i) => {
    const got = await getBytes(s3, `small/${String(i).padStart(5, '0')}`)
    if (!Buffer.from(got).equals(smallBody(i))) throw new Error(`small/${i} read back different bytes`)
    requests++
    payloadBytes += got.length
  })
  log(`${w.smallCount} small GETs`)
  for (let i = 0; i < w.listCount; i++) {
    const start = (i * 50) % w.smallCount
    const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'small/', MaxKeys: w.listPageKeys, StartAfter: `small/${String(start).padStart(5, '0')}` }))
    if ((res.Contents?.length ?? 0) === 0) throw new Error(`LIST after small/${start} returned no keys`)
    requests++
  }
  log(`${w.listCount} LISTs`)
  await inParallel(w.deleteCount, w.smallConcurrency, async (i) => {
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `small/${String(i * 2).padStart(5, '0')}` }))
    requests++
  })
  log(`${w.deleteCount} DELETEs`)

  for (const [i, sizeMiB] of w.mediumSizesMiB.entries()) {
    const body = source.subarray(0, sizeMiB * MiB)
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `medium/${i}`, Body: body }))
    const got = await getBytes(s3, `medium/${i}`)
    if (md5(got) !== md5(body)) throw new Error(`medium/${i} read back different bytes`)
    requests += 2
    payloadBytes += 2 * body.length
  }
  log(`${w.mediumSizesMiB.length} objects of 1-16 MiB, PUT and GET`)

  const key = 'large/multipart'
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }))
  const parts: { PartNumber: number; ETag: string }[] = []
  const whole = createHash('md5')
  const partBody = (n: number) => {
    // Each part differs (its first bytes carry its number), from the same source buffer.
    const body = Buffer.from(source.subarray(0, w.multipartPartBytes))
    body.writeUInt32BE(n, 0)
    return body
  }
  for (let n = 1; n <= w.multipartParts; n++) whole.update(partBody(n))
  await inParallel(w.multipartParts, w.multipartConcurrency, async (i) => {
    const n = i + 1
    const res = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: n, Body: partBody(n) }))
    parts.push({ PartNumber: n, ETag: res.ETag! })
    requests++
    payloadBytes += w.multipartPartBytes
  })
  parts.sort((a, b) => a.PartNumber - b.PartNumber)
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: parts } }))
  requests += 2
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
  const readBack = createHash('md5')
  let length = 0
  for await (const piece of res.Body as AsyncIterable<Uint8Array>) { readBack.update(piece); length += piece.length }
  if (length !== w.multipartParts * w.multipartPartBytes || readBack.digest('hex') !== whole.digest('hex')) throw new Error(`${key} read back different bytes`)
  requests++
  payloadBytes += 2 * length
  log(`multipart upload of ${(length / 1e6).toFixed(0)} MB in ${w.multipartParts} parts, read back`)
  return { requests, payloadBytes }
}

async function measure(runtime: Runtime, settleMs: number): Promise<RssResult> {
  const dir = mkdtempSync(join(tmpdir(), `o3-rss-${runtime}-`))
  const { file, args } = command(runtime, join(dir, 'data'))
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, O3_LOG: process.env.O3_LOG ?? 'warn', NO_COLOR: '1' } })
  const samples: { atMs: number; rssBytes: number }[] = []
  const sampler = setInterval(() => {
    try { samples.push({ atMs: performance.now(), rssBytes: memoryOf(child.pid!).rssBytes }) } catch { /* exited */ }
  }, SAMPLE_INTERVAL_MS)
  const log = (line: string) => process.stderr.write(`  ${runtime}: ${line}, RSS ${mib(memoryOf(child.pid!).rssBytes)}\n`)
  let s3: S3Client | undefined
  try {
    const endpoints = await readReadyJson<Endpoints>(child, 'o3 local')
    const idleBytes = memoryOf(child.pid!).rssBytes
    log(`ready at ${endpoints.s3}`)
    s3 = new S3Client({
      endpoint: endpoints.s3, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: endpoints.s3Key.awsAccessKey, secretAccessKey: endpoints.s3Key.awsSecret },
    })
    const started = performance.now()
    const { requests, payloadBytes } = await workload(s3, log)
    const workloadSeconds = (performance.now() - started) / 1000
    s3.destroy()
    s3 = undefined
    const settleStarted = performance.now()
    await new Promise((r) => setTimeout(r, settleMs))
    const window = samples.filter((s) => s.atMs >= settleStarted + settleMs - STEADY_WINDOW_MS).map((s) => s.rssBytes).sort((a, b) => a - b)
    const end = memoryOf(child.pid!)
    const steadyBreakdown = breakdownOf(child.pid!)
    const steadyBytes = window.length > 0 ? window[Math.floor(window.length / 2)] : end.rssBytes
    log(`settled for ${(settleMs / 1000).toFixed(0)} s`)
    return {
      runtime, idleBytes, steadyBytes, steadyBreakdown, peakBytes: end.hwmBytes, peakSampledBytes: Math.max(...samples.map((s) => s.rssBytes)),
      requests, payloadBytes, workloadSeconds,
    }
  } finally {
    clearInterval(sampler)
    s3?.destroy()
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await once(child, 'exit')
      clearTimeout(killer)
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(0)} MiB`
}

/** The report lines, one per runtime, with the goal. Pure. */
function formatRss(results: RssResult[]): string[] {
  const lines = [`o3 local (SCM, OM, 3 datanodes, S3 gateway in one process) after a fixed mixed S3 workload; goal: steady-state RSS under ${mib(RSS_GOAL_BYTES)}`]
  for (const r of results) {
    const met = r.steadyBytes < RSS_GOAL_BYTES ? 'met' : 'NOT met'
    lines.push(`  ${r.runtime.padEnd(4)}  idle ${mib(r.idleBytes).padStart(8)}, peak ${mib(r.peakBytes).padStart(8)}, steady ${mib(r.steadyBytes).padStart(8)} (${met}); ${r.requests} requests, ${(r.payloadBytes / 1e6).toFixed(0)} MB in ${r.workloadSeconds.toFixed(0)} s`)
    const b = r.steadyBreakdown
    lines.push(`        at rest: anonymous ${mib(b.anonBytes)} (malloc [heap] ${mib(b.mallocHeapBytes)}), file pages ${mib(b.fileBytes)}, ${b.threads} threads`)
  }
  return lines
}

function usage(): never {
  console.log('Usage: npm run bench:rss [-- --runtime node|deno|both] [--settle-s N]\n  --runtime  which runtime runs o3 local (default both)\n  --settle-s seconds to wait after the workload before the steady-state figure (default 45: past the slab and worker idle times)')
  process.exit(0)
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  if (argv.includes('--help') || argv.includes('-h')) usage()
  const at = argv.indexOf('--runtime')
  const which = at < 0 ? 'both' : argv[at + 1]
  if (which !== 'node' && which !== 'deno' && which !== 'both') throw new TypeError(`--runtime must be node, deno or both, got ${which}`)
  const settleMs = positiveOption('settle-s', 45) * 1000
  if (settleMs < STEADY_WINDOW_MS) throw new RangeError(`--settle-s must be at least ${STEADY_WINDOW_MS / 1000}`)
  const runtimes: Runtime[] = which === 'both' ? ['node', 'deno'] : [which]
  const startedAt = new Date()
  const results: RssResult[] = []
  for (const runtime of runtimes) results.push(await measure(runtime, settleMs))
  for (const line of formatRss(results)) console.log(line)
  const file = writeResults('rss-', { startedAt: startedAt.toISOString(), workload: WORKLOAD, settleMs, goalBytes: RSS_GOAL_BYTES, results }, startedAt)
  console.log(`\nJSON: ${file}`)
  if (results.some((r) => r.steadyBytes >= RSS_GOAL_BYTES)) process.exitCode = 1
}

main().catch((err: Error) => {
  console.error(`bench:rss failed: ${err.stack ?? err.message}`)
  process.exitCode = 1
})
