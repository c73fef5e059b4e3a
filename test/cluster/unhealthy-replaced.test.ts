/**
 * Goal: a replica that fails a checksum is replaced and then removed (issue 13; needs the
 * datanode side of container copy and delete): once the scanner marks one replica of a
 * closed container UNHEALTHY, the replication manager copies the container to the datanode
 * that holds none, and only then, with three healthy replicas, deletes the corrupt one; the
 * SCM sees three CLOSED replicas, none on the corrupt node, the container HEALTHY, and the key
 * reads back.
 * Method: an in-process cluster of four datanodes, a scanner pass every 200 ms, a 300 ms
 * replication interval; one byte of the replica's block file is flipped on disk, as a disk
 * fault would. State is read through the SCM's admin RPCs.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { KiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import { flipByte, until } from '../helpers.ts'
import { adminFetch, adminRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'

interface Replica { datanodeId: string; state: string; nodeState: string; bcsid: number }
interface Container { id: number; state: string; health: string[]; replicas: Replica[] }

test('an UNHEALTHY replica is copied elsewhere first and deleted once three healthy replicas exist', async () => {
  const cluster = await startMiniCluster({
    datanodes: 4,
    overrides: {
      'client.chunkSizeBytes': 64 * KiB, 'scm.replication.intervalMs': 300, 'scm.replication.commandTimeoutMs': 10_000,
      'datanode.scanner.intervalMs': 200, 'datanode.scanner.bytesPerSec': 1024 * 1024 * 1024,
    },
  })
  try {
    const client = cluster.client()
    const scm = adminRpc(cluster, 'SCM', cluster.scm.address)
    const get = (id: number) => scm.call<Container>('getContainer', { containerId: id })
    await client.createVolume('vol')
    await client.createBucket('vol', 'bkt')
    const data = randomBytes(300 * KiB)
    const info = await client.putKey('vol', 'bkt', 'key', data)
    const { containerId: id, localId } = info.locations[0].blockId
    await scm.call('closeContainer', { containerId: id })
    const closed = await until('three CLOSED replicas', async () => {
      const c = await get(id)
      return c.state === 'CLOSED' && c.replicas.filter((r) => r.state === 'CLOSED').length === 3 ? c : undefined
    }, 30_000, 100)
    const corrupt = closed.replicas[0].datanodeId
    const i = cluster.datanodes.findIndex((d) => d?.id === corrupt)
    const spare = cluster.datanodes.find((d) => d !== undefined && !closed.replicas.some((r) => r.datanodeId === d.id))!.id
    flipByte(blockFile(join(cluster.options.dataDir, `datanode-${i + 1}`), cluster.datanodes[i]!.clusterId, id, localId), 100_000)

    await until('the corrupt replica UNHEALTHY at the SCM', async () => (await get(id)).replicas.find((r) => r.datanodeId === corrupt)?.state === 'UNHEALTHY', 30_000, 100)
    const repaired = await until('three CLOSED replicas without the corrupt one, which is gone', async () => {
      const c = await get(id)
      const good = c.replicas.filter((r) => r.state === 'CLOSED' && r.nodeState === 'HEALTHY')
      return good.length === 3 && !c.replicas.some((r) => r.datanodeId === corrupt) ? c : undefined
    }, 60_000, 100)
    assert.ok(repaired.replicas.some((r) => r.datanodeId === spare), `the copy is on the datanode that held none (${spare})`)
    assert.equal(repaired.health, ['HEALTHY'])
    const held = await adminRpc(cluster, 'Datanode', cluster.datanodes[i]!.address).call<{ id: number }[]>('listContainers', {})
    assert.not.ok(held.some((c) => c.id === id), 'the corrupt replica is deleted on its datanode')
    assert.ok((await client.getKey('vol', 'bkt', 'key')).equals(data))
  } finally {
    await cluster.dispose()
  }
})

// Catches: an open container whose every replica a reader found corrupt staying CLOSING for
// good and reported HEALTHY (no replica was left to settle it).
test('an open container whose every replica is corrupt closes to QUASI_CLOSED and is reported UNHEALTHY', async () => {
  const cluster = await startMiniCluster({ datanodes: 3, overrides: { 'client.chunkSizeBytes': 64 * KiB, 'scm.replication.intervalMs': 300 } })
  try {
    const client = cluster.client()
    const scm = adminRpc(cluster, 'SCM', cluster.scm.address)
    const get = (id: number) => scm.call<Container>('getContainer', { containerId: id })
    await client.createVolume('vol')
    await client.createBucket('vol', 'bkt')
    const info = await client.putKey('vol', 'bkt', 'key', randomBytes(300 * KiB))
    const { containerId: id, localId } = info.locations[0].blockId
    assert.is((await get(id)).state, 'OPEN')
    cluster.datanodes.forEach((d, i) => flipByte(blockFile(join(cluster.options.dataDir, `datanode-${i + 1}`), d!.clusterId, id, localId), 100_000))
    // The reader tries every replica, reports each corrupt one, and fails.
    const read = await client.getKey('vol', 'bkt', 'key').then(() => undefined, (err: Error) => err)
    assert.ok(read !== undefined, 'no replica can give the key back')
    const settled = await until('the container QUASI_CLOSED and reported UNHEALTHY', async () => {
      const c = await get(id)
      return c.state === 'QUASI_CLOSED' && c.health.includes('UNHEALTHY') ? c : undefined
    }, 30_000, 100)
    assert.equal(settled.replicas.map((r) => r.state), ['UNHEALTHY', 'UNHEALTHY', 'UNHEALTHY'])
    assert.not.ok(settled.health.includes('HEALTHY'))
    // The datanodes close their replicas too: none is left taking writes.
    await until('every replica closed on its datanode', async () => {
      const states = await Promise.all(cluster.datanodes.map(async (d) => (await adminRpc(cluster, 'Datanode', d!.address).call<{ id: number; state: string }[]>('listContainers', {})).find((c) => c.id === id)?.state))
      return states.every((st) => st !== undefined && st !== 'OPEN' && st !== 'CLOSING')
    }, 30_000, 100)
  } finally {
    await cluster.dispose()
  }
})

test.run()
