/** @module
 * `npm run bench:put-cpu [-- --replication R] [--rounds N]`: what a 64 MiB PUT costs the whole
 * machine through the native client and through the S3 gateway, in turns on one `o3 local`:
 * MB/s, and CPU per MiB of the client (this process: the native client's checksums, or the
 * S3 load generator) and of the cluster (every thread of o3 local). Behind bench/README.md's
 * "why the 64 MiB S3 PUT stays under 0.8 x the native client" (the ETag's MD5).
 */
import { randomFillSync } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { S3_VOLUME } from '../datapath/s3/index.ts'
import { UsageError } from '../cli/args.ts'
import { BenchCluster } from './o3-cluster.ts'
import { turnOrder } from './measure.ts'
import { cpuMs } from './proc-cpu.ts'
import { S3Load } from './s3-load.ts'

const MiB = 1024 * 1024
const OBJECT_BYTES = 64 * MiB

interface PutCost { mbPerSec: number; clientMsPerMiB: number; clusterMsPerMiB: number }

function parse(argv: string[]): { replication: string; rounds: number } {
  const o = { replication: 'RATIS/ONE', rounds: 5 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--help' || a === '-h') {
      console.log('Usage: npm run bench:put-cpu [-- --replication RATIS/ONE|RATIS/THREE] [--rounds N]  (default RATIS/ONE, 5 timed PUTs per client after one untimed)')
      process.exit(0)
    } else if (a === '--replication') o.replication = argv[++i] ?? ''
    else if (a === '--rounds') o.rounds = Number(argv[++i])
    else throw new UsageError(`Unknown option ${a} (try --help)`)
  }
  if (!['RATIS/ONE', 'RATIS/THREE'].includes(o.replication)) throw new UsageError('--replication must be RATIS/ONE or RATIS/THREE')
  if (!Number.isSafeInteger(o.rounds) || o.rounds < 1 || o.rounds > 100) throw new UsageError('--rounds must be a whole number from 1 to 100')
  return o
}

async function main(): Promise<void> {
  const { replication, rounds } = parse(process.argv.slice(2))
  process.env.O3_LOG ??= 'warn'
  const dir = mkdtempSync(join(tmpdir(), 'o3-put-cpu-'))
  const bench = new BenchCluster(dir, { topology: 'default' })
  let load: S3Load | undefined
  try {
    await bench.start([replication])
    const secret = await bench.client.getS3Secret('bench')
    await bench.client.createVolume(S3_VOLUME)
    await bench.client.createBucket(S3_VOLUME, 'put-cpu', { replication, owner: 'bench' })
    const s3 = new S3Load(bench.endpoints.s3, { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret })
    load = s3
    const object = randomFillSync(Buffer.allocUnsafe(OBJECT_BYTES))
    const clients = [
      { name: 'native', put: (key: string) => bench.put(replication, key, object) },
      { name: 'S3', put: (key: string) => s3.put('put-cpu', key, object) },
    ]
    const totals = clients.map(() => ({ ms: 0, clientMs: 0, clusterMs: 0 }))
    const pids = bench.pids()
    // Round 0 is untimed (JIT, connections); then the clients take turns, who goes first alternating.
    for (let r = 0; r <= rounds; r++) {
      for (const k of turnOrder(clients.length, r)) {
        const cpu0 = process.cpuUsage()
        const cluster0 = cpuMs(pids)
        const t0 = performance.now()
        await clients[k].put(`${clients[k].name}-${r}`)
        if (r === 0) continue
        const used = process.cpuUsage(cpu0)
        totals[k].ms += performance.now() - t0
        totals[k].clientMs += (used.user + used.system) / 1000
        totals[k].clusterMs += cpuMs(pids) - cluster0
      }
      process.stderr.write(`bench:put-cpu: round ${r} of ${rounds}${r === 0 ? ' (untimed)' : ''}\n`)
    }
    const mib = (rounds * OBJECT_BYTES) / MiB
    const costs: Record<string, PutCost> = {}
    for (const [k, c] of clients.entries()) {
      const t = totals[k]
      costs[c.name] = { mbPerSec: (rounds * OBJECT_BYTES) / 1e6 / (t.ms / 1000), clientMsPerMiB: t.clientMs / mib, clusterMsPerMiB: t.clusterMs / mib }
    }
    console.log(`bench:put-cpu: 64 MiB PUTs into ${replication}, ${rounds} per client in turns after one untimed; CPU of this process (client) and of o3 local (cluster) per MiB`)
    for (const [name, c] of Object.entries(costs)) {
      console.log(`  ${name.padEnd(7)} ${c.mbPerSec.toFixed(0).padStart(5)} MB/s  client ${c.clientMsPerMiB.toFixed(2)} + cluster ${c.clusterMsPerMiB.toFixed(2)} = ${(c.clientMsPerMiB + c.clusterMsPerMiB).toFixed(2)} ms/MiB`)
    }
    const n = costs.native
    const s = costs.S3
    console.log(`  S3 / native: ${(s.mbPerSec / n.mbPerSec).toFixed(2)} x by MB/s; native's CPU per MiB over S3's: ${((n.clientMsPerMiB + n.clusterMsPerMiB) / (s.clientMsPerMiB + s.clusterMsPerMiB)).toFixed(2)} x`)
  } finally {
    await load?.close()
    await bench.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err: Error) => {
  if (err instanceof UsageError) {
    console.error(`bench:put-cpu: ${err.message}`)
    process.exitCode = 2
    return
  }
  console.error(`bench:put-cpu failed: ${err.stack ?? err.message}`)
  process.exitCode = 1
})
