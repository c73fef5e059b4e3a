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
import { readdirSync } from 'node:fs'
import { join, sep } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CreateBucketCommand } from '@aws-sdk/client-s3'
import { KiB, MiB, OM_BLOCK_BATCH_COUNT } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { AllocatedBlock } from '../../core/wire.ts'
import { checkLinearizable } from '../sim/linearizability.ts'
import { flipByte, until } from '../helpers.ts'
import {
  ackedPutsSince, assertFailoverSafe, failedUnderLoad, convergedTables, HaCluster, servedAfter, kill9, leaderOf, roleOf, startS3Load, type Member,
} from './ha-cluster.ts'

const BLOCK = 64 * KiB
const OBJECT = 4 * BLOCK - 100
const CLIENTS = 8
const ha = new HaCluster('SCM', {
  ...process.env, O3_SCM_BLOCK_SIZEBYTES: String(BLOCK), O3_SCM_CONTAINER_SIZEBYTES: String(2 * MiB),
  O3_DATANODE_HEARTBEATINTERVALMS: '300', O3_SCM_HEARTBEAT_STALEMS: '2000', O3_SCM_HEARTBEAT_DEADMS: '4000',
}, 4)

/** The block ids (local ids, unique in the cluster) of every key in S3 bucket `bucket`. */
async function blockIdsOf(bucket: string): Promise<number[]> {
  const ids: number[] = []
  for (const k of (await ha.client.listKeys('s3v', bucket, { maxKeys: 1000 })).keys) {
    for (const l of (await ha.client.headKey('s3v', bucket, k.name).catch(() => ({ locations: [] }))).locations) ids.push(l.blockId.localId)
  }
  return ids
}

test.before(() => ha.start('load'))
test.after(() => ha.stop())

let killed: Member

test('kill -9 of the SCM leader under 8 S3 clients: a new leader within 3 s, blocks still allocated, nothing acknowledged lost, the history linearizable', async () => {
  const leader = await leaderOf('SCM', ha.endpoints.scms)
  const load = startS3Load({ endpoints: ha.endpoints, bucket: 'load', clients: CLIENTS, objectBytes: OBJECT, seed: 2 })
  const { history, acked } = load
  // A precondition, not a bound: under CI's load the clients may take a while to get going; a
  // failed wait stops them (else the file never ends) and says what they saw.
  const startedAt = performance.now()
  await until('the load to run', async () => (acked.put ?? 0) >= 16 && (acked.rename ?? 0) >= 2, 60_000)
    .catch(async (err: unknown) => { throw await failedUnderLoad(load, startedAt, err) })
  const killedAt = performance.now()
  kill9(ha.dataDir, leader.name)
  killed = leader
  // Served by the leader alone (followers answer NOT_LEADER), asked of each survivor directly.
  const servedMs = await servedAfter('SCM', ha.others(leader), 'safemodeStatus', killedAt)
  const next = await leaderOf('SCM', ha.others(leader))
  assert.is.not(next.name, leader.name)
  // Block ids only grow, across leaders too (each leader reserves its batch in the log): a
  // block the new leader hands out now marks every id allocated after the failover.
  const [marker] = await ha.client.admin<AllocatedBlock[]>('allocateBlock', { replication: 'RATIS/THREE', count: 1, sizeBytes: BLOCK })
  // The writes use blocks the OM asked the new leader for (its batch cache runs dry).
  const fresh = await until('a committed write on a block allocated after the failover', async () => {
    const ids = await blockIdsOf('load').catch(() => [])
    return ids.some((id) => id > marker.blockId.localId) && (acked.rename ?? 0) >= 4 ? ids : undefined
  }, 30_000, 200).catch(async (err: unknown) => { throw await failedUnderLoad(load, killedAt, err) }).finally(() => load.stop())
  assertFailoverSafe('SCM', servedMs, load, await load.done, CLIENTS)
  assert.ok(ackedPutsSince(history, killedAt + servedMs) > 0)
  const ids = await blockIdsOf('load')
  assert.ok(fresh.length >= 4 && ids.length >= 4, `${ids.length} blocks in the bucket`)
  assert.is(new Set(ids).size, ids.length, 'no block id handed out twice')
  assert.not.ok(ids.includes(marker.blockId.localId), 'the marker block went to no key')
})

test('the killed SCM, restarted from its config file, catches up and rejoins as a follower', async () => {
  ha.restart(killed.name)
  await ha.rejoined(killed)
  await ha.client.admin('allocateBlock', { replication: 'RATIS/THREE', count: OM_BLOCK_BATCH_COUNT, sizeBytes: BLOCK })
  const leader = await leaderOf('SCM', ha.endpoints.scms)
  const commit = (await roleOf('SCM', leader.address))!.commit
  await until('the rejoined SCM to apply the next entries', async () => ((await roleOf('SCM', killed.address))?.applied ?? 0) >= commit, 15_000, 50)
})

test('replicas converge: every SCM request type, a leader kill in the middle, identical tables', async () => {
  await ha.s3.send(new CreateBucketCommand({ Bucket: 'converge' }))
  // Blocks and containers (reserveIds, createContainer, setContainerState as they fill), block deletions (addDeleteTxs, ackDeletes).
  const load = startS3Load({ endpoints: ha.endpoints, bucket: 'converge', clients: 4, objectBytes: OBJECT, seed: 3 })
  const { history, acked } = load
  let killedAt = performance.now()
  let leader: Member
  try {
    await until('the load to run', async () => (acked.put ?? 0) >= 20, 60_000)
    type Container = { id: number; state: string; replicas?: { datanodeId: string; state: string }[] }
    const containers = await ha.client.admin<Container[]>('listContainers', {})
    // An admin close (setContainerState) and a corrupt replica (markReplicaUnhealthy).
    const open = containers.filter((c) => c.state === 'OPEN')
    assert.ok(open.length > 0)
    await ha.client.admin('closeContainer', { containerId: open[0].id })
    const dns = await ha.client.admin<{ id: string; address: string }[]>('listDatanodes')
    // The corrupt replica is a real one: a closed replica's container file damaged, found by a scan on its datanode.
    const closed = await until('a replica of the closed container on a datanode', async () => {
      const c = (await ha.client.admin<Container[]>('listContainers', {})).find((x) => x.id === open[0].id)
      const dn = dns.find((d) => c?.replicas?.some((r) => r.datanodeId === d.id))
      return dn === undefined ? undefined : dn
    }, 30_000, 200)
    const name = `datanode-${ha.endpoints.datanodes.indexOf(closed.address) + 1}`
    const file = readdirSync(join(ha.dataDir, name), { recursive: true, encoding: 'utf8' }).find((f) => f.endsWith(`${sep}${open[0].id}${sep}metadata${sep}${open[0].id}.container`))
    assert.ok(file !== undefined, `${name} holds container ${open[0].id}'s file`)
    const holder = new RpcClient('Datanode', closed.address)
    const scan = async () => (await holder.call<{ result: string }>('scanContainer', { containerId: open[0].id })).result
    // Closed there first: closing writes the file again.
    await until(`${name}'s replica closed and scanned`, async () => (await scan()) === 'HEALTHY', 30_000, 200)
    flipByte(join(ha.dataDir, name, file), 2)
    assert.is(await scan(), 'UNHEALTHY')
    await until('the SCM to mark it UNHEALTHY', async () => (await ha.client.admin<Container[]>('listContainers', {}))
      .find((x) => x.id === open[0].id)?.replicas?.some((r) => r.datanodeId === closed.id && r.state === 'UNHEALTHY') === true, 30_000, 200)
    leader = await leaderOf('SCM', ha.endpoints.scms)
    killedAt = performance.now()
    ha.kill(leader.name)
    // A dead datanode: its pipelines close (closePipeline) and the rest get one (addPipeline).
    const victim = `datanode-${ha.endpoints.datanodes.indexOf(dns[dns.length - 1].address) + 1}`
    kill9(ha.dataDir, victim)
    await until(`${victim} to be declared dead`, async () => {
      const list = await ha.client.admin<{ id: string; state: string }[]>('listDatanodes').catch(() => [])
      return list.some((d) => d.id === dns[dns.length - 1].id && d.state === 'DEAD')
    }, 30_000, 200)
    await until('writes after the failover', async () => ackedPutsSince(history, killedAt) >= 20, 30_000)
  } catch (err) {
    throw await failedUnderLoad(load, killedAt, err)
  } finally {
    // A failed wait must not leave the load running: the file would never end.
    load.stop()
  }
  const r = await load.done
  assert.equal(r.anomalies, [])
  assert.equal(checkLinearizable(history), [])
  ha.restart(leader.name)
  await ha.rejoined(leader)
  const { differing, applied, tables } = await convergedTables('SCM', ha.endpoints.scms)
  assert.equal(differing, [], `tables differ at applied index ${applied}`)
  assert.ok(tables >= 7, `${tables} tables compared`)
})

test.run()
