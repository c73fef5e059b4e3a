/**
 * Goal: offline reconstruction end to end (issue 14): EC keys written by the EC writer, two of
 * their five datanodes stopped, the lost indexes rebuilt by reconstructECContainer on two
 * other datanodes, then a third original datanode stopped: every key still reads byte for
 * byte, which it can only through the rebuilt replicas (three of the five original are gone)
 * that the OM's lookup maps to their indexes from the SCM's reports.
 * Method: SCM, OM and 7 datanodes in-process (mini-cluster.ts); keys put through the native
 * client into an EC/rs-3-2-64k bucket; the container closed by the SCM; the command sent to
 * the coordinator through Datanode.command() (the heartbeat's path).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { KeyInfo } from '../../core/om-wire.ts'
import { KiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { DatanodeDetails, DatanodeId } from '../../core/wire.ts'
import { until } from '../helpers.ts'
import { randomBytes, startMiniCluster } from '../cluster/mini-cluster.ts'

const RS = 'EC/rs-3-2-64k'
const CELL = 64 * KiB
const SIZES = [1, CELL - 1, 3 * CELL, 3 * CELL + 1, 10 * 3 * CELL + CELL + 17]

const cluster = await startMiniCluster({ datanodes: 7, overrides: { 'scm.safemode.minDatanodes': 7 } })
await cluster.waitOutOfSafeMode()
const client = cluster.client()
const scm = new RpcClient('SCM', cluster.scmAddress)
type Located = { state: string; replicas: { id: DatanodeId; state: string; replicaIndex?: number }[] }
const index = (n: DatanodeDetails) => cluster.datanodes.findIndex((d) => d?.id === n.id)

test('EC keys read back through rebuilt replicas after three of their five datanodes are gone', async () => {
  await client.createVolume('vol')
  await client.createBucket('vol', 'ecb', { replication: RS })
  const keys = new Map(SIZES.map((size, n) => [`k${n}`, randomBytes(size, 500 + n)]))
  for (const [key, data] of keys) await client.putKey('vol', 'ecb', key, data)
  const infos = await Promise.all([...keys.keys()].map((k) => client.headKey('vol', 'ecb', k)))
  const locations = infos.flatMap((i: KeyInfo) => i.locations)
  const containerId = locations[0]!.blockId.containerId
  const pipeline = locations[0]!.pipeline
  assert.ok(locations.every((l) => l.blockId.containerId === containerId), 'one container')
  await scm.call('closeContainer', { containerId })
  await until('the container CLOSED', async () => (await scm.call<{ state: string }>('getContainer', { containerId })).state === 'CLOSED')

  const outside = cluster.datanodes.filter((d) => !pipeline.nodes.some((n) => n.id === d!.id)).map((d) => ({ id: d!.id, address: d!.address }) as DatanodeDetails)
  for (const n of [pipeline.nodes[1]!, pipeline.nodes[3]!]) await cluster.stopDatanode(index(n))
  const coordinator = cluster.datanodes[index(outside[0]!)]!
  await coordinator.command({
    type: 'reconstructECContainer', containerId, replication: RS,
    sources: [1, 3, 5].map((i) => ({ replicaIndex: i, datanode: pipeline.nodes[i - 1]! })),
    targets: [{ replicaIndex: 2, datanode: outside[0]! }, { replicaIndex: 4, datanode: outside[1]! }],
  })
  await coordinator.reconstruction.idle()
  await until('the SCM sees the rebuilt replicas', async () => {
    const r = (await scm.call<Record<string, Located>>('getContainerLocations', { containerIds: [containerId] }))[containerId]!.replicas
    return [[outside[0]!, 2], [outside[1]!, 4]].every(([n, i]) => r.some((x) => x.id === (n as DatanodeDetails).id && x.replicaIndex === i && x.state === 'CLOSED'))
  })
  await cluster.stopDatanode(index(pipeline.nodes[0]!))
  const gone = [0, 1, 3].map((i) => pipeline.nodes[i]!.id)
  await until('the stopped datanodes STALE', async () => (await scm.call<{ id: DatanodeId; state: string }[]>('listDatanodes', {})).filter((d) => gone.includes(d.id)).every((d) => d.state !== 'HEALTHY'), 20_000)
  for (const [key, data] of keys) {
    const got = await client.getKey('vol', 'ecb', key)
    assert.ok(Buffer.from(got).equals(data), `${key} (${data.length} bytes) reads back`)
  }
})

test.after(async () => { await cluster.dispose() })
test.run()
