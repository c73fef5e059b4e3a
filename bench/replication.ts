/** @module
 * `npm run bench:replication [-- --quick] [--mib N] [--json] [--keep]`: how long O3 takes to
 * restore full replication after losing a datanode (issue 13), beside how fast this machine's
 * disk copies the same bytes in the same run. `o3 local --processes --datanodes 4` in a temp
 * dir; the native client in this process writes N MiB of RATIS/THREE keys, the pipelines are
 * closed (so their containers close), one datanode holding replicas gets kill -9, and the
 * SCM's container report is polled until every container is healthy again. Reported: the
 * time until the SCM declared the node DEAD (its settings, not O3's speed), the time from
 * then until full replication, the bytes the lost node held, their MB/s, that over the disk's
 * stream copy, and the cluster's CPU per MiB re-replicated.
 */
import { once } from 'node:events'
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs'
import { randomFillSync } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { RpcClient } from '../core/rpc/client.ts'
import { O3Client } from '../datapath/client/index.ts'
import { closeWorkerPool } from '../datapath/workers/index.ts'
import { moduleCommand, startChild, stopChild, type Child } from './child.ts'
import { MB } from './measure.ts'
import { cpuMs } from './proc-cpu.ts'
import { Progress } from './progress.ts'
import { positiveOption, writeResults } from './results.ts'

const MiB = 1024 * 1024
const quick = process.argv.includes('--quick')
const json = process.argv.includes('--json')
const keep = process.argv.includes('--keep')
const dataMiB = positiveOption('mib', quick ? 256 : 1024)
/** Keys of this size: several blocks per container, several containers per pipeline. */
const KEY_BYTES = 16 * MiB
const DATANODES = 4
/** Small containers, so that the lost node's data is many containers copied in parallel, as a real node's would be. */
const CONTAINER_BYTES = 64 * MiB
const POLL_MS = 250
const DEAD_TIMEOUT_MS = 60_000
const HEAL_TIMEOUT_MS = 15 * 60_000

/** o3 local's settings for the run: fast failure detection and replication rounds. */
const CLUSTER_ENV: Record<string, string> = {
  O3_DATANODE_HEARTBEATINTERVALMS: '500',
  O3_SCM_HEARTBEAT_STALEMS: '3000',
  O3_SCM_HEARTBEAT_DEADMS: '6000',
  O3_SCM_REPLICATION_INTERVALMS: '1000',
  O3_SCM_CONTAINER_SIZEBYTES: String(CONTAINER_BYTES),
  O3_SCM_BLOCK_SIZEBYTES: String(KEY_BYTES),
}

interface LocalEndpoints { scm: string; om: string; datanodes: string[]; pids: Record<string, number> }
interface DatanodeRow { id: string; address: string; state: string; containers: number }
interface ContainerRow { id: number; state: string; replication: string; replicas: { datanodeId: string; state: string; usedBytes: number }[] }
interface ContainerReport { lifecycle: Record<string, number>; health: Record<string, number>; inflight: { replicate: number; delete: number } }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const v = await probe().catch(() => undefined)
    if (v !== undefined) return v
    if (performance.now() > deadline) throw new Error(`Gave up waiting for ${what} after ${timeoutMs} ms`)
    await sleep(POLL_MS)
  }
}

/** The disk's stream copy of `bytes` (read one file, write another, no fsync, as O3 writes): MB/s. */
async function diskCopyMbPerSec(dir: string, bytes: number): Promise<number> {
  const src = join(dir, 'copy-src'), dst = join(dir, 'copy-dst')
  const piece = randomFillSync(Buffer.alloc(4 * MiB))
  const out = createWriteStream(src)
  for (let n = 0; n < bytes; n += piece.length) if (!out.write(piece)) await once(out, 'drain')
  out.end()
  await once(out, 'finish')
  const started = performance.now()
  await pipeline(createReadStream(src, { highWaterMark: 4 * MiB }), createWriteStream(dst))
  const seconds = (performance.now() - started) / 1000
  const copied = statSync(dst).size
  rmSync(src); rmSync(dst)
  return copied / MB / seconds
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'o3-bench-replication-'))
  const progress = new Progress(7)
  let child: Child<LocalEndpoints> | undefined
  try {
    progress.step(`disk: stream copy of ${dataMiB} MiB`)
    const diskMbPerSec = await diskCopyMbPerSec(dir, dataMiB * MiB)

    progress.step(`start o3 local --processes --datanodes ${DATANODES}`)
    child = await startChild<LocalEndpoints>(moduleCommand('cli/main'), ['local', '--processes', '--ports', 'free', '--fresh', '--json', '--datanodes', String(DATANODES), '--data', join(dir, 'o3')], CLUSTER_ENV)
    const endpoints = child.ready
    const scm = new RpcClient('SCM', endpoints.scm)
    const admin = <T>(method: string, args: Record<string, unknown> = {}) => scm.call<T>(method, args)
    const client = new O3Client({ om: endpoints.om, scm: endpoints.scm })
    await client.createVolume('bench')
    await client.createBucket('bench', 'heal', { replication: 'RATIS/THREE' })

    progress.step(`write ${dataMiB} MiB of RATIS/THREE keys`)
    const key = randomFillSync(Buffer.alloc(KEY_BYTES))
    for (let i = 0; i < Math.ceil((dataMiB * MiB) / KEY_BYTES); i++) await client.putKey('bench', 'heal', `k${i}`, key)

    progress.step('close the pipelines (their containers close)')
    for (const p of await admin<{ id: string; replication?: string }[]>('listPipelines')) await admin('closePipeline', { pipelineId: p.id }).catch(() => undefined)
    await until('every container CLOSED', HEAL_TIMEOUT_MS, async () => {
      const cs = await admin<ContainerRow[]>('listContainers')
      return cs.length > 0 && cs.every((c) => c.state === 'CLOSED') ? cs : undefined
    })

    // The datanode holding the most replica bytes is the one to lose.
    const containers = await admin<ContainerRow[]>('listContainers')
    const held = new Map<string, number>()
    for (const c of containers) for (const r of c.replicas) held.set(r.datanodeId, (held.get(r.datanodeId) ?? 0) + r.usedBytes)
    const [victimId, lostBytes] = [...held].sort((a, b) => b[1] - a[1])[0]!
    const datanodes = await admin<DatanodeRow[]>('listDatanodes')
    const victim = datanodes.find((d) => d.id === victimId)!
    const index = endpoints.datanodes.indexOf(victim.address)
    const pid = endpoints.pids[`datanode-${index + 1}`]
    if (index < 0 || pid === undefined) throw new Error(`Cannot find the process of datanode ${victimId} at ${victim.address}`)
    const survivors = Object.entries(endpoints.pids).filter(([name]) => name !== `datanode-${index + 1}`).map(([, p]) => p)

    progress.step(`kill -9 datanode-${index + 1} (${(lostBytes / MiB).toFixed(0)} MiB of replicas), wait until it is DEAD`)
    const killedAt = performance.now()
    process.kill(pid, 'SIGKILL')
    await until(`datanode ${victimId} DEAD`, DEAD_TIMEOUT_MS, async () => (await admin<DatanodeRow[]>('listDatanodes')).find((d) => d.id === victimId)?.state === 'DEAD' || undefined)
    const deadAt = performance.now()
    const cpuAtDead = cpuMs([child.pid, ...survivors])

    progress.step('wait until every container has three healthy replicas again')
    const report = await until('full replication', HEAL_TIMEOUT_MS, async () => {
      const r = await admin<ContainerReport>('containerReport')
      const unhealthy = Object.entries(r.health).some(([state, n]) => state !== 'HEALTHY' && n > 0)
      return !unhealthy && r.inflight.replicate === 0 ? r : undefined
    })
    const healedAt = performance.now()
    const cpuSpentMs = cpuMs([child.pid, ...survivors]) - cpuAtDead

    progress.step('read every key back')
    for (let i = 0; i < Math.ceil((dataMiB * MiB) / KEY_BYTES); i++) {
      if (!(await client.getKey('bench', 'heal', `k${i}`)).equals(key)) throw new Error(`key k${i} read back different bytes after re-replication`)
    }
    progress.stop()

    const healSeconds = (healedAt - deadAt) / 1000
    const mbPerSec = lostBytes / MB / healSeconds
    const record = {
      dataMiB, datanodes: DATANODES, containerBytes: CONTAINER_BYTES, lostBytes, containers: containers.length,
      diskCopyMbPerSec: diskMbPerSec, detectSeconds: (deadAt - killedAt) / 1000, healSeconds, healMbPerSec: mbPerSec,
      healOverDiskCopy: mbPerSec / diskMbPerSec, cpuMsPerMiB: cpuSpentMs / (lostBytes / MiB), report,
    }
    const file = writeResults('replication-', record)
    if (json) console.log(JSON.stringify(record, null, 2))
    else {
      console.log(`Re-replication after losing 1 of ${DATANODES} datanodes (${containers.length} closed RATIS/THREE containers of up to ${CONTAINER_BYTES / MiB} MiB, ${dataMiB} MiB of keys):`)
      console.log(`  disk stream copy of ${dataMiB} MiB:       ${diskMbPerSec.toFixed(0)} MB/s`)
      console.log(`  kill -9 to DEAD (SCM settings):   ${record.detectSeconds.toFixed(1)} s`)
      console.log(`  DEAD to full replication:         ${healSeconds.toFixed(1)} s for ${(lostBytes / MiB).toFixed(0)} MiB = ${mbPerSec.toFixed(0)} MB/s = ${record.healOverDiskCopy.toFixed(2)} x the disk copy`)
      console.log(`  cluster CPU while healing:        ${record.cpuMsPerMiB.toFixed(1)} ms per MiB re-replicated`)
      console.log(`  every key read back byte for byte. JSON: ${file}`)
    }
  } finally {
    progress.stop()
    if (child !== undefined) await stopChild(child.process)
    await closeWorkerPool()
    if (keep) console.error(`kept ${dir}`)
    else rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err: Error) => {
  console.error(`bench:replication failed: ${err.stack ?? err.message}`)
  process.exitCode = 1
})
