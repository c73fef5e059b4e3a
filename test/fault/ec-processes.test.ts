/**
 * Goal: an erasure-coded key survives the loss of a datanode during its write and the cluster
 * restores its redundancy by itself (issue 14): with six datanodes and an EC/rs-3-2-1024k
 * bucket, one member of the pipeline being written is killed with kill -9 in the middle of
 * a multi-group key; the write completes (the stripe in flight rewritten to a new group
 * without that node), the key reads back byte for byte, and once the SCM calls the node DEAD
 * its EC containers are reconstructed: every replica index 1..5 of every closed EC container
 * is on a live datanode again, and the keys still read back with any other node killed too.
 * Method: `o3 local --processes --datanodes 6 --ports free`, SIGKILL by PID file, the SCM's
 * admin RPCs over real HTTP, byte-for-byte reads through the native client.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { MiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { randomBytes, until } from '../helpers.ts'
import { PipelineCluster, REPLICATION_TEST_ENV } from './pipeline-cluster.ts'

interface Replica { datanodeId: string; state: string; nodeState: string; replicaIndex?: number }
interface Container { id: number; state: string; replication: string; replicas: Replica[]; pipeline: { nodes: { id: string }[] } | null }
interface PipelineView { id: string; replication: string; state: string; nodes: { id: string; address: string }[] }

const EC = 'EC/rs-3-2-1024k'
const ENV: NodeJS.ProcessEnv = {
  ...REPLICATION_TEST_ENV,
  // Each replica holds up to 2 cells: a group carries 6 MiB of key bytes.
  O3_SCM_BLOCK_SIZEBYTES: String(2 * MiB),
  O3_SCM_CONTAINER_SIZEBYTES: String(8 * MiB),
  O3_SCM_HEARTBEAT_STALEMS: '3000',
  O3_SCM_HEARTBEAT_DEADMS: '8000',
}
const BIG_KEY_BYTES = 40 * MiB + 12345

test('kill -9 of a member mid-write of an EC key: the write completes, the key reads back, and reconstruction restores every index', () => PipelineCluster.run('ec', async (c) => {
  const scm = new RpcClient('SCM', c.endpoints.scm)
  const ecContainers = async (): Promise<Container[]> => {
    const list = await scm.call<Container[]>('listContainers', {})
    return list.filter((x) => x.replication === EC)
  }
  await until('six HEALTHY datanodes', async () => (await scm.call<{ state: string }[]>('listDatanodes', {})).filter((d) => d.state === 'HEALTHY').length === 6, 60_000, 250)
  await c.client.createVolume('vol')
  await c.client.createBucket('vol', 'ecb', { replication: EC })

  c.step('write a few small EC keys first')
  const keys = new Map<string, Buffer>()
  for (const size of [1, MiB - 1, 3 * MiB + 1]) {
    const data = randomBytes(size)
    await c.client.putKey('vol', 'ecb', `small-${size}`, data)
    keys.set(`small-${size}`, data)
  }

  c.step(`write a ${BIG_KEY_BYTES} byte key, killing a member of its pipeline half way`)
  const big = randomBytes(BIG_KEY_BYTES)
  keys.set('big', big)
  const writer = await c.client.openKeyWriter('vol', 'ecb', 'big', { sizeBytes: big.length })
  const piece = 2 * MiB
  let victim: string | undefined
  for (let at = 0; at < big.length; at += piece) {
    await writer.write(big.subarray(at, Math.min(big.length, at + piece)))
    if (victim === undefined && at >= big.length / 2) {
      const pipelines = await scm.call<PipelineView[]>('listPipelines', {})
      const open = pipelines.find((p) => p.replication === EC && p.state === 'OPEN')
      assert.ok(open !== undefined, 'an open EC pipeline is being written')
      victim = open.nodes[1].id
      c.kill(c.dn(victim))
    }
  }
  const info = await writer.close()
  assert.is(info.size, big.length)
  assert.ok(victim !== undefined)
  const after = info.locations.slice(-1)[0]
  assert.not.ok(after.pipeline.nodes.some((n) => n.id === victim), 'the last group avoids the killed node')

  c.step('every key reads back byte for byte with the node down')
  for (const [key, data] of keys) assert.ok((await c.client.getKey('vol', 'ecb', key)).equals(data), `key ${key}`)

  c.step('wait for the SCM to reconstruct every EC container that had a replica on the killed node')
  await until('every index of every closed EC container on a live datanode', async () => {
    // The containers written on the killed node's pipeline: closed when the node went STALE.
    const hit = (await ecContainers()).filter((x) => x.pipeline?.nodes.some((n) => n.id === victim))
    if (hit.length === 0 || hit.some((x) => x.state !== 'CLOSED')) return false
    return hit.every((x) => {
      const live = x.replicas.filter((r) => r.nodeState === 'HEALTHY' && r.state === 'CLOSED' && r.datanodeId !== victim)
      const indexes = new Set(live.map((r) => r.replicaIndex))
      return [1, 2, 3, 4, 5].every((i) => indexes.has(i))
    })
  }, 120_000, 500)

  c.step('kill a second node: every key still reads back (the rebuilt indexes are real)')
  const containers = await ecContainers()
  const second = containers[0].replicas.find((r) => r.datanodeId !== victim && r.nodeState === 'HEALTHY')!.datanodeId
  c.kill(c.dn(second))
  for (const [key, data] of keys) assert.ok((await c.client.getKey('vol', 'ecb', key)).equals(data), `key ${key} with two nodes down`)
}, { datanodes: 6, env: ENV }))

test.run()
