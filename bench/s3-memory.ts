/** @module
 * `npm run bench:s3-memory [-- --gib N]`: issue 3's memory target. A 5 GiB PutObject and
 * GetObject through O3's S3 gateway must run in bounded memory: peak RSS of the cluster
 * under 512 MiB.
 *
 * The cluster (SCM, OM, one datanode, RATIS/ONE) and the gateway run in a child process, so
 * that its RSS is measured alone: /proc/<pid>/status VmRSS sampled while the transfer runs,
 * and VmHWM (the kernel's high-water mark) at the end. This process generates the body (a
 * generator of fresh 1 MiB pieces: neither held in memory nor read from a file), sends it as
 * UNSIGNED-PAYLOAD, then GETs the object back, counting and hashing the bytes (MD5 both ways,
 * compared with each other and with the ETag). Data goes to a temp dir, removed at the end.
 * Linux only (procfs). Not part of npm test.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LocalCluster } from '../cli/cluster.ts'
import { S3Gateway, S3_VOLUME } from '../datapath/s3/index.ts'
import { SERVER_V8_FLAGS } from '../cli/v8-flags.ts'
import { S3Load } from './s3-load.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const RSS_LIMIT_BYTES = 512 * MiB
const PIECE_BYTES = MiB
const SAMPLE_INTERVAL_MS = 200
const PROGRESS_EVERY_BYTES = 512 * MiB
const BUCKET = 'memory'
const KEY = 'big'
const USER = 'bench'

interface Ready { endpoint: string; accessKeyId: string; secretAccessKey: string }

/** Child: the cluster and gateway; prints one JSON line when ready, stops when stdin closes. */
async function serve(dir: string): Promise<void> {
  process.env.O3_LOG ??= 'warn'
  const cluster = new LocalCluster({ dataDir: dir, datanodes: 1, freePorts: true, overrides: { 'datanode.heartbeatIntervalMs': 250 }, env: true })
  await cluster.start()
  const gateway = new S3Gateway({ config: cluster.config, omAddress: cluster.omAddress, scmAddress: cluster.scmAddress, port: 0 })
  await gateway.start()
  const client = cluster.client()
  const secret = await client.getS3Secret(USER)
  await client.createVolume(S3_VOLUME)
  await client.createBucket(S3_VOLUME, BUCKET, { replication: 'RATIS/ONE', owner: USER })
  const ready: Ready = { endpoint: gateway.endpoint, accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret }
  process.stdout.write(JSON.stringify(ready) + '\n')
  process.stdin.resume()
  await once(process.stdin, 'end')
  await gateway.stop()
  await cluster.stop()
}

/** VmRSS and VmHWM of a process, in bytes. */
function memoryOf(pid: number): { rssBytes: number; hwmBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rssBytes: kib('VmRSS'), hwmBytes: kib('VmHWM') }
}

/** Fresh pseudo-random pieces, hashed as they are handed out. */
async function* generate(lengthBytes: number, md5: ReturnType<typeof createHash>, onBytes: (n: number) => void): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < lengthBytes; at += PIECE_BYTES) {
    const piece = randomFillSync(Buffer.allocUnsafe(Math.min(PIECE_BYTES, lengthBytes - at)))
    md5.update(piece)
    onBytes(at + piece.length)
    yield piece
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  if (args[0] === '--serve') return serve(args[1])
  if (args.includes('--help')) {
    console.log('Usage: npm run bench:s3-memory [-- --gib N]  (default 5: a 5 GiB PutObject and GetObject)')
    return
  }
  const gibAt = args.indexOf('--gib')
  const lengthBytes = Math.round(Number(gibAt < 0 ? 5 : args[gibAt + 1]) * GiB)
  if (!Number.isSafeInteger(lengthBytes) || lengthBytes <= 0 || lengthBytes > 5 * GiB) throw new RangeError('--gib must be in (0, 5]')

  const dir = mkdtempSync(join(tmpdir(), 'o3-s3-memory-'))
  const fs = statfsSync(dir)
  const freeBytes = fs.bavail * fs.bsize
  console.log(`temp dir ${dir}: ${(freeBytes / GiB).toFixed(1)} GiB free, object ${(lengthBytes / GiB).toFixed(2)} GiB`)
  if (freeBytes < lengthBytes + 2 * GiB) throw new Error(`Cannot run: ${dir} has ${(freeBytes / GiB).toFixed(1)} GiB free, needs ${(lengthBytes / GiB + 2).toFixed(1)}`)

  const self = fileURLToPath(import.meta.url)
  // The server runs with the flags O3's servers run with (bin/o3.js), whatever this process got.
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, ...SERVER_V8_FLAGS, self, '--serve', join(dir, 'o3')], { stdio: ['pipe', 'pipe', 'inherit'] })
  let load: S3Load | undefined
  let peakSampledBytes = 0
  const sampler = setInterval(() => {
    try { peakSampledBytes = Math.max(peakSampledBytes, memoryOf(child.pid!).rssBytes) } catch { /* exited */ }
  }, SAMPLE_INTERVAL_MS)
  try {
    const [line] = await Promise.race([
      once(createInterface({ input: child.stdout! }), 'line') as Promise<string[]>,
      once(child, 'exit').then(([code]) => { throw new Error(`Cluster process exited with ${code} before it was ready`) }),
    ])
    const ready = JSON.parse(line) as Ready
    const idle = memoryOf(child.pid!)
    console.log(`cluster + gateway ready in child ${child.pid} at ${ready.endpoint}: RSS ${mib(idle.rssBytes)}`)
    load = new S3Load(ready.endpoint, ready)
    const started = performance.now()
    let nextReport = PROGRESS_EVERY_BYTES
    const progress = (what: string) => (n: number) => {
      if (n < nextReport && n < lengthBytes) return
      nextReport += PROGRESS_EVERY_BYTES
      const seconds = (performance.now() - started) / 1000
      console.log(`  ${what} ${mib(n)} of ${mib(lengthBytes)}, ${seconds.toFixed(0)} s, child RSS ${mib(memoryOf(child.pid!).rssBytes)}`)
    }

    console.log('PutObject (UNSIGNED-PAYLOAD, body from a generator):')
    const sent = createHash('md5')
    const putStarted = performance.now()
    await load.put(BUCKET, KEY, { stream: generate(lengthBytes, sent, progress('sent')), lengthBytes })
    const putSeconds = (performance.now() - putStarted) / 1000
    const sentMd5 = sent.digest('hex')
    const afterPut = memoryOf(child.pid!)
    console.log(`  done in ${putSeconds.toFixed(0)} s (${(lengthBytes / 1e6 / putSeconds).toFixed(0)} MB/s); child peak RSS so far (VmHWM) ${mib(afterPut.hwmBytes)}`)

    console.log('GetObject (bytes counted and hashed as they stream in):')
    nextReport = PROGRESS_EVERY_BYTES
    const received = createHash('md5')
    let got = 0
    const onGot = progress('received')
    const getStarted = performance.now()
    const n = await load.get(BUCKET, KEY, (part) => { received.update(part); got += part.length; onGot(got) })
    const getSeconds = (performance.now() - getStarted) / 1000
    const receivedMd5 = received.digest('hex')
    const end = memoryOf(child.pid!)
    peakSampledBytes = Math.max(peakSampledBytes, end.rssBytes)
    console.log(`  done in ${getSeconds.toFixed(0)} s (${(n / 1e6 / getSeconds).toFixed(0)} MB/s)`)

    const intact = n === lengthBytes && receivedMd5 === sentMd5
    console.log(`\nbytes: sent ${lengthBytes}, received ${n}; MD5 sent ${sentMd5}, received ${receivedMd5}: ${intact ? 'identical' : 'DIFFERENT'}`)
    console.log(`cluster + gateway RSS: idle ${mib(idle.rssBytes)}, peak sampled every ${SAMPLE_INTERVAL_MS} ms ${mib(peakSampledBytes)}, peak (VmHWM) ${mib(end.hwmBytes)}; after PUT ${mib(afterPut.hwmBytes)}`)
    const met = end.hwmBytes < RSS_LIMIT_BYTES
    console.log(`target: peak RSS under ${mib(RSS_LIMIT_BYTES)}: ${met ? 'met' : 'NOT met'}`)
    if (!intact || !met) process.exitCode = 1
  } finally {
    clearInterval(sampler)
    await load?.close()
    child.stdin!.end()
    if (child.exitCode === null) await once(child, 'exit')
    rmSync(dir, { recursive: true, force: true })
  }
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(0)} MiB`
}

main().catch((err: Error) => {
  console.error(`bench:s3-memory failed: ${err.stack ?? err.message}`)
  process.exitCode = 1
})
