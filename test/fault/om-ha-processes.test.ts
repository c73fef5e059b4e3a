/**
 * Goal: three OMs as real processes (`o3 local --ha --processes`) lose nothing when the
 * leader is killed -9: under 8 S3 clients writing, overwriting, deleting and renaming keys,
 * a new leader serves within 3 s, every acknowledged operation stays visible and the whole
 * history is linearizable; the killed OM, restarted from its config file, catches up and
 * rejoins as a follower; after a random workload of every OM request type with a leader
 * kill in the middle, the three state databases are identical. Method: `o3 local --ha
 * --processes --ports free` as a child process, kill -9 by PID file, S3 over real HTTP
 * (@aws-sdk/client-s3), renames through the native client (S3 has none), the register
 * checker of test/sim, and each member's stateDigest RPC compared at one applied index.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3'
import { O3Client } from '../../datapath/client/index.ts'
import { checkLinearizable, type Operation } from '../sim/linearizability.ts'
import {
  ackedPutsSince, convergedTables, servedAfter, kill9, leaderOf, lostWrites, pidOf, restartFromConf, rng, roleOf, runS3Load, startHaLocal, stopHaLocal, untilAsync,
  type HaEndpoints, type Member,
} from './ha-cluster.ts'

const dataDir = mkdtempSync(join(tmpdir(), 'o3-om-ha-'))
const env = { ...process.env }
let local: ChildProcess
let endpoints: HaEndpoints
let client: O3Client
let s3: S3Client
/** OMs this test started again (its own to stop), by name. */
const restarted = new Map<string, ChildProcess>()
const CLIENTS = 8

function killOm(name: string): void {
  const mine = restarted.get(name)
  if (mine !== undefined) {
    mine.kill('SIGKILL')
    restarted.delete(name)
  } else kill9(dataDir, name)
}

function restartOm(name: string): void {
  restarted.set(name, restartFromConf(dataDir, 'om', name, env))
}

const others = (m: Member) => endpoints.oms.filter((o) => o.name !== m.name)

/** Waits until `m` answers FOLLOWER and has applied what the leader had committed when asked. */
async function rejoined(m: Member): Promise<void> {
  const leader = await leaderOf('OM', others(m))
  const target = (await roleOf('OM', leader.address))!.commit
  const r = await untilAsync(`${m.name} to catch up to index ${target}`, async () => {
    const role = await roleOf('OM', m.address)
    return role !== undefined && role.role === 'FOLLOWER' && role.applied >= target ? role : undefined
  }, 20_000)
  assert.is(r.leader, (await roleOf('OM', leader.address))!.id)
  assert.equal([...r.members].sort(), [1, 2, 3])
}

test.before(async () => {
  ({ local, endpoints } = await startHaLocal(dataDir, env))
  client = new O3Client({ om: endpoints.om, scm: endpoints.scm })
  s3 = new S3Client({
    endpoint: endpoints.s3, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: endpoints.s3Key.awsAccessKey, secretAccessKey: endpoints.s3Key.awsSecret },
  })
  await s3.send(new CreateBucketCommand({ Bucket: 'load' }))
})

test.after(async () => {
  s3?.destroy()
  for (const c of restarted.values()) c.kill('SIGKILL')
  if (local !== undefined) await stopHaLocal(local)
  rmSync(dataDir, { recursive: true, force: true })
})

let killed: Member

test('o3 local --ha --processes: three OMs, three SCMs, a PID file each, one OM leader', async () => {
  assert.is(endpoints.oms.length, 3)
  assert.is(endpoints.scms.length, 3)
  assert.is(endpoints.om, endpoints.oms.map((o) => o.address).join(','))
  for (const name of ['om1', 'om2', 'om3', 'scm1', 'scm2', 'scm3', 's3g', 'datanode-1']) {
    assert.is(pidOf(dataDir, name), endpoints.pids[name], name)
    process.kill(endpoints.pids[name], 0)
  }
  const roles = await Promise.all(endpoints.oms.map((o) => roleOf('OM', o.address)))
  assert.is(roles.filter((r) => r?.role === 'LEADER').length, 1)
})

test('kill -9 of the OM leader under 8 S3 clients: a new leader within 3 s, nothing acknowledged lost, the history linearizable', async () => {
  const leader = await leaderOf('OM', endpoints.oms)
  const history: Operation[] = []
  const acked: Record<string, number> = {}
  let stop!: () => void
  const stopped = new Promise<void>((r) => { stop = r })
  const load = runS3Load({ endpoints, bucket: 'load', clients: CLIENTS, objectBytes: 64, seed: 1, history, acked }, stopped)
  await untilAsync('the load to run', async () => (acked.put ?? 0) >= 16 && (acked.rename ?? 0) >= 2, 20_000)
  const killedAt = performance.now()
  kill9(dataDir, leader.name)
  killed = leader
  // Served by the leader alone (a linearizable read (ReadIndex)), asked of each survivor directly.
  const servedMs = await servedAfter('OM', others(leader), 'listVolumes', killedAt)
  const next = await leaderOf('OM', others(leader))
  assert.is.not(next.name, leader.name)
  const renamesBefore = acked.rename ?? 0
  await untilAsync('writes after the failover', async () => ackedPutsSince(history, killedAt + servedMs) >= 16 && (acked.rename ?? 0) >= renamesBefore + 2, 20_000)
  stop()
  const r = await load
  console.log(`OM failover: served after ${servedMs.toFixed(0)} ms; answered ${JSON.stringify(acked)}; ${history.length} operations, ${r.errors.length} without an answer${r.errors.length > 0 ? ` (first: ${r.errors[0]})` : ''}`)
  assert.ok(servedMs < 3000, `a new leader served after ${servedMs.toFixed(0)} ms`)
  assert.equal(r.anomalies, [])
  assert.equal(lostWrites(history, CLIENTS), [])
  assert.equal(checkLinearizable(history), [], 'the history is linearizable')
  // The checker is not vacuous here: every kind of operation got answers.
  for (const kind of ['put', 'delete', 'get', 'rename']) assert.ok((acked[kind] ?? 0) > 0, kind)
})

test('the killed OM, restarted from its config file, catches up and rejoins as a follower', async () => {
  restartOm(killed.name)
  await rejoined(killed)
  // It replicates what comes next too.
  await client.createVolume('after-restart')
  const leader = await leaderOf('OM', endpoints.oms)
  const commit = (await roleOf('OM', leader.address))!.commit
  await untilAsync('the rejoined OM to apply the next entry', async () => ((await roleOf('OM', killed.address))?.applied ?? 0) >= commit)
})

test('replicas converge: a random workload of every OM request type, a leader kill in the middle, identical tables', async () => {
  const random = rng(7)
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]
  const volumes = ['cv1', 'cv2'], buckets = ['bk1', 'bk2'], keys = ['k1', 'k2', 'k3', 'k4']
  for (const v of volumes) await client.createVolume(v)
  for (const v of volumes) for (const b of buckets) await client.createBucket(v, b)
  const data = Buffer.from('converge')
  const ops: (() => Promise<unknown>)[] = [
    () => client.createVolume(pick(['cv3', 'cv4'])),
    () => client.deleteVolume(pick(['cv3', 'cv4'])),
    () => client.createBucket(pick(volumes), pick(['bk3', 'bk4'])),
    () => client.deleteBucket(pick(volumes), pick(['bk3', 'bk4'])),
    () => client.putKey(pick(volumes), pick(buckets), pick(keys), data),
    () => client.putKey(pick(volumes), pick(buckets), pick(keys), data),
    () => client.deleteKey(pick(volumes), pick(buckets), pick(keys)),
    () => client.renameKey(pick(volumes), pick(buckets), pick(keys), pick(keys)),
    async () => { const w = await client.openKeyWriter(pick(volumes), pick(buckets), pick(keys)); await w.abort() },
    () => client.getS3Secret(pick(['alice', 'bob'])),
    () => client.revokeS3Secret(pick(['alice', 'bob'])),
    async () => {
      const key = pick(keys)
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'load', Key: `mpu-${key}` }))
      const part = await s3.send(new UploadPartCommand({ Bucket: 'load', Key: `mpu-${key}`, UploadId, PartNumber: 1, Body: data }))
      await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'load', Key: `mpu-${key}`, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }))
    },
  ]
  let done = 0, failed = 0
  const worker = async (n: number) => {
    for (let i = 0; i < n; i++) await pick(ops)().then(() => done++, () => failed++)
  }
  await Promise.all([worker(15), worker(15), worker(15)])
  const leader = await leaderOf('OM', endpoints.oms)
  killOm(leader.name)
  await Promise.all([worker(15), worker(15), worker(15)])
  console.log(`OM convergence workload: ${done} requests succeeded, ${failed} refused`)
  assert.ok(done > 40, `${done} requests succeeded, ${failed} were refused`)
  restartOm(leader.name)
  await rejoined(leader)
  const { differing, applied, tables } = await convergedTables('OM', endpoints.oms)
  assert.equal(differing, [], `tables differ at applied index ${applied}`)
  assert.ok(tables >= 9, `${tables} tables compared`)
})

test.run()
