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
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { until } from '../helpers.ts'
import {
  ackedPutsSince, assertFailoverSafe, failedUnderLoad, convergedTables, HaCluster, servedAfter, kill9, leaderOf, pidOf, rng, roleOf, startS3Load, type Member,
} from './ha-cluster.ts'

const ha = new HaCluster('OM', { ...process.env })
const CLIENTS = 8

test.before(() => ha.start('load'))
test.after(() => ha.stop())

let killed: Member

test('o3 local --ha --processes: three OMs, three SCMs, a PID file each, one OM leader', async () => {
  assert.is(ha.endpoints.oms.length, 3)
  assert.is(ha.endpoints.scms.length, 3)
  assert.is(ha.endpoints.om, ha.endpoints.oms.map((o) => o.address).join(','))
  for (const name of ['om1', 'om2', 'om3', 'scm1', 'scm2', 'scm3', 's3g', 'datanode-1']) {
    assert.is(pidOf(ha.dataDir, name), ha.endpoints.pids[name], name)
    process.kill(ha.endpoints.pids[name], 0)
  }
  const roles = await Promise.all(ha.endpoints.oms.map((o) => roleOf('OM', o.address)))
  assert.is(roles.filter((r) => r?.role === 'LEADER').length, 1)
})

test('kill -9 of the OM leader under 8 S3 clients: a new leader within 3 s, nothing acknowledged lost, the history linearizable', async () => {
  const leader = await leaderOf('OM', ha.endpoints.oms)
  const load = startS3Load({ endpoints: ha.endpoints, bucket: 'load', clients: CLIENTS, objectBytes: 64, seed: 1 })
  const { history, acked } = load
  await until('the load to run', async () => (acked.put ?? 0) >= 16 && (acked.rename ?? 0) >= 2, 20_000)
  const killedAt = performance.now()
  kill9(ha.dataDir, leader.name)
  killed = leader
  // Served by the leader alone (a linearizable read (ReadIndex)), asked of each survivor directly.
  const servedMs = await servedAfter('OM', ha.others(leader), 'listVolumes', killedAt)
  const next = await leaderOf('OM', ha.others(leader))
  assert.is.not(next.name, leader.name)
  // The failover is in the new leader's log, with its term, for whoever looks into it later.
  await until('the new leader to log its election', () => new RegExp(`INFO OM ${next.name}: leader at term \\d+`).test(readFileSync(join(ha.dataDir, 'logs', `${next.name}.log`), 'utf8')), 5000, 50)
  const renamesBefore = acked.rename ?? 0
  await until('writes after the failover', async () => ackedPutsSince(history, killedAt + servedMs) >= 16 && (acked.rename ?? 0) >= renamesBefore + 2, 20_000)
    .catch(async (err: unknown) => { throw await failedUnderLoad(load, killedAt, err) })
    .finally(() => load.stop())
  assertFailoverSafe('OM', servedMs, load, await load.done, CLIENTS)
})

test('the killed OM, restarted from its config file, catches up and rejoins as a follower', async () => {
  ha.restart(killed.name)
  await ha.rejoined(killed)
  // It replicates what comes next too.
  await ha.client.createVolume('after-restart')
  const leader = await leaderOf('OM', ha.endpoints.oms)
  const commit = (await roleOf('OM', leader.address))!.commit
  await until('the rejoined OM to apply the next entry', async () => ((await roleOf('OM', killed.address))?.applied ?? 0) >= commit, 15_000, 50)
})

test('replicas converge: a random workload of every OM request type, a leader kill in the middle, identical tables', async () => {
  const random = rng(7)
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]
  const volumes = ['cv1', 'cv2'], buckets = ['bk1', 'bk2'], keys = ['k1', 'k2', 'k3', 'k4']
  for (const v of volumes) await ha.client.createVolume(v)
  for (const v of volumes) for (const b of buckets) await ha.client.createBucket(v, b)
  const data = Buffer.from('converge')
  const ops: (() => Promise<unknown>)[] = [
    () => ha.client.createVolume(pick(['cv3', 'cv4'])),
    () => ha.client.deleteVolume(pick(['cv3', 'cv4'])),
    () => ha.client.createBucket(pick(volumes), pick(['bk3', 'bk4'])),
    () => ha.client.deleteBucket(pick(volumes), pick(['bk3', 'bk4'])),
    () => ha.client.putKey(pick(volumes), pick(buckets), pick(keys), data),
    () => ha.client.putKey(pick(volumes), pick(buckets), pick(keys), data),
    () => ha.client.deleteKey(pick(volumes), pick(buckets), pick(keys)),
    () => ha.client.renameKey(pick(volumes), pick(buckets), pick(keys), pick(keys)),
    async () => { const w = await ha.client.openKeyWriter(pick(volumes), pick(buckets), pick(keys)); await w.abort() },
    () => ha.client.getS3Secret(pick(['alice', 'bob'])),
    () => ha.client.revokeS3Secret(pick(['alice', 'bob'])),
    async () => {
      const key = pick(keys)
      const { UploadId } = await ha.s3.send(new CreateMultipartUploadCommand({ Bucket: 'load', Key: `mpu-${key}` }))
      const part = await ha.s3.send(new UploadPartCommand({ Bucket: 'load', Key: `mpu-${key}`, UploadId, PartNumber: 1, Body: data }))
      await ha.s3.send(new CompleteMultipartUploadCommand({ Bucket: 'load', Key: `mpu-${key}`, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }))
    },
  ]
  let done = 0, failed = 0
  const worker = async (n: number) => {
    for (let i = 0; i < n; i++) await pick(ops)().then(() => done++, () => failed++)
  }
  await Promise.all([worker(15), worker(15), worker(15)])
  const leader = await leaderOf('OM', ha.endpoints.oms)
  ha.kill(leader.name)
  await Promise.all([worker(15), worker(15), worker(15)])
  console.log(`OM convergence workload: ${done} requests succeeded, ${failed} refused`)
  assert.ok(done > 40, `${done} requests succeeded, ${failed} were refused`)
  ha.restart(leader.name)
  await ha.rejoined(leader)
  const { differing, applied, tables } = await convergedTables('OM', ha.endpoints.oms)
  assert.equal(differing, [], `tables differ at applied index ${applied}`)
  assert.ok(tables >= 9, `${tables} tables compared`)
})

test.run()
