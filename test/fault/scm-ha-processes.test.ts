/**
 * Goal: three SCMs as real processes (`o3 local --ha --processes`) survive a kill -9 of their
 * leader: under 8 S3 clients writing, overwriting, deleting and renaming keys that need fresh
 * blocks all the time, a new leader serves within 3 s, writes keep allocating blocks at it
 * (never an id twice), every acknowledged operation stays visible and the history is
 * linearizable; the killed SCM, restarted from its config file, catches up and rejoins; after
 * a workload of every SCM request type (blocks and containers, container closes, block
 * deletions, a corrupt replica, a dead datanode's pipelines) with a leader kill in the middle,
 * the three state databases are identical. Method: as om-ha-processes.test.ts, with 64 KiB
 * blocks (each object needs four) and small containers (they fill and close).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { KiB, MiB, OM_BLOCK_BATCH_COUNT } from '../../core/limits.ts'
import type { AllocatedBlock } from '../../core/wire.ts'
import { O3Client } from '../../datapath/client/index.ts'
import { checkLinearizable, type Operation } from '../sim/linearizability.ts'
import {
  ackedPutsSince, convergedTables, servedAfter, kill9, leaderOf, lostWrites, restartFromConf, roleOf, runS3Load, startHaLocal, stopHaLocal, untilAsync,
  type HaEndpoints, type Member,
} from './ha-cluster.ts'

const BLOCK = 64 * KiB
const OBJECT = 4 * BLOCK - 100
const CLIENTS = 8
const dataDir = mkdtempSync(join(tmpdir(), 'o3-scm-ha-'))
const env = {
  ...process.env, O3_SCM_BLOCK_SIZEBYTES: String(BLOCK), O3_SCM_CONTAINER_SIZEBYTES: String(2 * MiB),
  O3_DATANODE_HEARTBEATINTERVALMS: '300', O3_SCM_HEARTBEAT_STALEMS: '2000', O3_SCM_HEARTBEAT_DEADMS: '4000',
}
let local: ChildProcess
let endpoints: HaEndpoints
let client: O3Client
let s3: S3Client
const restarted = new Map<string, ChildProcess>()

function killScm(name: string): void {
  const mine = restarted.get(name)
  if (mine !== undefined) {
    mine.kill('SIGKILL')
    restarted.delete(name)
  } else kill9(dataDir, name)
}

const others = (m: Member) => endpoints.scms.filter((o) => o.name !== m.name)

async function rejoined(m: Member): Promise<void> {
  const leader = await leaderOf('SCM', others(m))
  const target = (await roleOf('SCM', leader.address))!.commit
  const r = await untilAsync(`${m.name} to catch up to index ${target}`, async () => {
    const role = await roleOf('SCM', m.address)
    return role !== undefined && role.role === 'FOLLOWER' && role.applied >= target ? role : undefined
  }, 20_000)
  assert.is(r.leader, (await roleOf('SCM', leader.address))!.id)
  assert.equal([...r.members].sort(), [1, 2, 3])
}

/** The block ids (local ids, unique in the cluster) of every key in S3 bucket `bucket`. */
async function blockIdsOf(bucket: string): Promise<number[]> {
  const ids: number[] = []
  for (const k of (await client.listKeys('s3v', bucket, { maxKeys: 1000 })).keys) {
    for (const l of (await client.headKey('s3v', bucket, k.name).catch(() => ({ locations: [] }))).locations) ids.push(l.blockId.localId)
  }
  return ids
}

test.before(async () => {
  ({ local, endpoints } = await startHaLocal(dataDir, env, 4))
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

test('kill -9 of the SCM leader under 8 S3 clients: a new leader within 3 s, blocks still allocated, nothing acknowledged lost, the history linearizable', async () => {
  const leader = await leaderOf('SCM', endpoints.scms)
  const history: Operation[] = []
  const acked: Record<string, number> = {}
  let stop!: () => void
  const stopped = new Promise<void>((r) => { stop = r })
  const load = runS3Load({ endpoints, bucket: 'load', clients: CLIENTS, objectBytes: OBJECT, seed: 2, history, acked }, stopped)
  await untilAsync('the load to run', async () => (acked.put ?? 0) >= 16 && (acked.rename ?? 0) >= 2, 30_000)
  const killedAt = performance.now()
  kill9(dataDir, leader.name)
  killed = leader
  // Served by the leader alone (followers answer NOT_LEADER), asked of each survivor directly.
  const servedMs = await servedAfter('SCM', others(leader), 'safemodeStatus', killedAt)
  const next = await leaderOf('SCM', others(leader))
  assert.is.not(next.name, leader.name)
  // Block ids only grow, across leaders too (each leader reserves its batch in the log): a
  // block the new leader hands out now marks every id allocated after the failover.
  const [marker] = await client.admin<AllocatedBlock[]>('allocateBlock', { replication: 'RATIS/THREE', count: 1, sizeBytes: BLOCK })
  // The writes use blocks the OM asked the new leader for (its batch cache runs dry).
  const fresh = await untilAsync('a committed write on a block allocated after the failover', async () => {
    const ids = await blockIdsOf('load').catch(() => [])
    return ids.some((id) => id > marker.blockId.localId) && (acked.rename ?? 0) >= 4 ? ids : undefined
  }, 30_000, 200)
  stop()
  const r = await load
  console.log(`SCM failover: served after ${servedMs.toFixed(0)} ms; answered ${JSON.stringify(acked)}; ${history.length} operations, ${r.errors.length} without an answer${r.errors.length > 0 ? ` (first: ${r.errors[0]})` : ''}`)
  assert.ok(servedMs < 3000, `a new leader served after ${servedMs.toFixed(0)} ms`)
  assert.equal(r.anomalies, [])
  assert.equal(lostWrites(history, CLIENTS), [])
  assert.equal(checkLinearizable(history), [], 'the history is linearizable')
  for (const kind of ['put', 'delete', 'get', 'rename']) assert.ok((acked[kind] ?? 0) > 0, kind)
  assert.ok(ackedPutsSince(history, killedAt + servedMs) > 0)
  const ids = await blockIdsOf('load')
  assert.ok(fresh.length >= 4 && ids.length >= 4, `${ids.length} blocks in the bucket`)
  assert.is(new Set(ids).size, ids.length, 'no block id handed out twice')
  assert.not.ok(ids.includes(marker.blockId.localId), 'the marker block went to no key')
})

test('the killed SCM, restarted from its config file, catches up and rejoins as a follower', async () => {
  restarted.set(killed.name, restartFromConf(dataDir, 'scm', killed.name, env))
  await rejoined(killed)
  await client.admin('allocateBlock', { replication: 'RATIS/THREE', count: OM_BLOCK_BATCH_COUNT, sizeBytes: BLOCK })
  const leader = await leaderOf('SCM', endpoints.scms)
  const commit = (await roleOf('SCM', leader.address))!.commit
  await untilAsync('the rejoined SCM to apply the next entries', async () => ((await roleOf('SCM', killed.address))?.applied ?? 0) >= commit)
})

test('replicas converge: every SCM request type, a leader kill in the middle, identical tables', async () => {
  const history: Operation[] = []
  const acked: Record<string, number> = {}
  let stop!: () => void
  const stopped = new Promise<void>((r) => { stop = r })
  await s3.send(new CreateBucketCommand({ Bucket: 'converge' }))
  // Blocks and containers (reserveIds, createContainer, setContainerState as they fill), block deletions (addDeleteTxs, ackDeletes).
  const load = runS3Load({ endpoints, bucket: 'converge', clients: 4, objectBytes: OBJECT, seed: 3, history, acked }, stopped)
  await untilAsync('the load to run', async () => (acked.put ?? 0) >= 20, 30_000)
  type Container = { id: number; state: string; replicas?: { datanodeId: string }[] }
  const containers = await client.admin<Container[]>('listContainers', {})
  // An admin close (setContainerState) and a corrupt replica (markReplicaUnhealthy).
  const open = containers.filter((c) => c.state === 'OPEN')
  assert.ok(open.length > 0)
  await client.admin('closeContainer', { containerId: open[0].id })
  const dns = await client.admin<{ id: string; address: string }[]>('listDatanodes')
  await client.admin('reportCorruptReplica', { containerId: containers[0].id, datanodeId: dns[0].id, localId: 1 })
  const leader = await leaderOf('SCM', endpoints.scms)
  const killedAt = performance.now()
  killScm(leader.name)
  // A dead datanode: its pipelines close (closePipeline) and the rest get one (addPipeline).
  const victim = `datanode-${endpoints.datanodes.indexOf(dns[dns.length - 1].address) + 1}`
  kill9(dataDir, victim)
  await untilAsync(`${victim} to be declared dead`, async () => {
    const list = await client.admin<{ id: string; state: string }[]>('listDatanodes').catch(() => [])
    return list.some((d) => d.id === dns[dns.length - 1].id && d.state === 'DEAD')
  }, 30_000, 200)
  await untilAsync('writes after the failover', async () => ackedPutsSince(history, killedAt) >= 20, 30_000)
  stop()
  const r = await load
  assert.equal(r.anomalies, [])
  assert.equal(checkLinearizable(history), [])
  restarted.set(leader.name, restartFromConf(dataDir, 'scm', leader.name, env))
  await rejoined(leader)
  const { differing, applied, tables } = await convergedTables('SCM', endpoints.scms)
  assert.equal(differing, [], `tables differ at applied index ${applied}`)
  assert.ok(tables >= 7, `${tables} tables compared`)
})

test.run()
