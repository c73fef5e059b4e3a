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
import type { ContainerId, LocalId } from '../../core/wire.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import { flipByte, until } from '../helpers.ts'
import { adminFetch, adminRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'

interface Replica { datanodeId: string; state: string; nodeState: string; bcsid: number }
interface Container { id: number; state: string; health: string[]; replicas: Replica[] }

/** A mini cluster for one test, with its client, the SCM's admin RPC and /vol/bkt made; disposed after. */
async function withCluster(options: Parameters<typeof startMiniCluster>[0], body: (c: {
  cluster: Awaited<ReturnType<typeof startMiniCluster>>; client: ReturnType<Awaited<ReturnType<typeof startMiniCluster>>['client']>; scm: RpcClient; get: (id: number) => Promise<Container>
}) => Promise<void>): Promise<void> {
  const cluster = await startMiniCluster(options)
  try {
    const client = cluster.client()
    const scm = adminRpc(cluster, 'SCM', cluster.scm.address)
    await client.createVolume('vol')
    await client.createBucket('vol', 'bkt')
    await body({ cluster, client, scm, get: (id) => scm.call<Container>('getContainer', { containerId: id }) })
  } finally {
    await cluster.dispose()
  }
}

/** `datanodes` datanodes, replication rounds every 300 ms, a scanner pass every 200 ms over every byte. */
const scanned = (datanodes: number) => ({
  datanodes,
  overrides: {
    'client.chunkSizeBytes': 64 * KiB, 'scm.replication.intervalMs': 300, 'scm.replication.commandTimeoutMs': 10_000,
    'datanode.scanner.intervalMs': 200, 'datanode.scanner.bytesPerSec': 1024 * 1024 * 1024,
  },
})

/** A 300 KiB key in a container closed through the SCM, once its three replicas are CLOSED. */
async function closedKey({ client, scm, get }: Parameters<Parameters<typeof withCluster>[1]>[0]) {
  const data = randomBytes(300 * KiB)
  const info = await client.putKey('vol', 'bkt', 'key', data)
  const { containerId: id, localId } = info.locations[0].blockId
  await scm.call('closeContainer', { containerId: id })
  const closed = await until('three CLOSED replicas', async () => {
    const c = await get(id)
    return c.state === 'CLOSED' && c.replicas.filter((r) => r.state === 'CLOSED').length === 3 ? c : undefined
  }, 30_000, 100)
  return { data, id, localId, closed }
}

test('an UNHEALTHY replica is copied elsewhere first and deleted once three healthy replicas exist', async () => {
  await withCluster(scanned(4), async (c) => {
    const { cluster, client, get } = c
    const { data, id, localId, closed } = await closedKey(c)
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
  })
})

// Catches: with every datanode holding a replica, a corrupt one left in place for good (the
// copy had no target, and the corrupt replica went only once three healthy ones existed).
test('with no datanode free, the corrupt replica is deleted to make room and a healthy copy takes its place', async () => {
  await withCluster(scanned(3), async (c) => {
    const { cluster, client, get } = c
    const { data, id, localId } = await closedKey(c)
    const i = 1
    const corrupt = cluster.datanodes[i]!.id
    flipByte(blockFile(join(cluster.options.dataDir, `datanode-${i + 1}`), cluster.datanodes[i]!.clusterId, id, localId), 100_000)
    await until('the corrupt replica gone from its datanode', async () => !(await get(id)).replicas.some((r) => r.datanodeId === corrupt), 30_000, 100)
    const repaired = await until('three CLOSED replicas again', async () => {
      const c = await get(id)
      return c.replicas.filter((r) => r.state === 'CLOSED' && r.nodeState === 'HEALTHY').length === 3 ? c : undefined
    }, 60_000, 100)
    assert.ok(repaired.replicas.some((r) => r.datanodeId === corrupt), 'the copy is on the datanode that held the corrupt replica')
    assert.equal(repaired.health, ['HEALTHY'])
    const held = await adminRpc(cluster, 'Datanode', cluster.datanodes[i]!.address).call<{ id: number; state: string }[]>('listContainers', {})
    assert.equal(held.find((c) => c.id === id)?.state, 'CLOSED', 'the datanode holds a healthy copy')
    assert.ok((await client.getKey('vol', 'bkt', 'key')).equals(data))
  })
})

// Catches: an open container whose every replica a reader found corrupt staying CLOSING for
// good and reported HEALTHY (no replica was left to settle it).
test('an open container whose every replica is corrupt closes to QUASI_CLOSED and is reported UNHEALTHY', async () => {
  await withCluster({ datanodes: 3, overrides: { 'client.chunkSizeBytes': 64 * KiB, 'scm.replication.intervalMs': 300 } }, async ({ cluster, client, scm, get }) => {
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
  })
})

// Catches: a container whose every replica holds a corrupt block (each a different one) never
// copied again, "block N fails its checksums" at every import: one more lost replica and the
// blocks only it still held good were gone.
test('with every replica corrupt, a lost one is replaced by a copy of the others as they are; every key still reads', async () => {
  await withCluster({
    datanodes: 4,
    overrides: {
      'scm.block.sizeBytes': 128 * KiB, 'client.chunkSizeBytes': 64 * KiB, 'scm.replication.intervalMs': 300, 'scm.replication.commandTimeoutMs': 10_000,
      'datanode.scanner.intervalMs': 200, 'datanode.scanner.bytesPerSec': 1024 * 1024 * 1024,
    },
  }, async ({ cluster, client, scm, get }) => {
    // Keys of one block each (a file each: too large to pack) until three of them share a container.
    const keys = new Map<string, { data: Buffer; containerId: number; localId: number }>()
    let id: number | undefined
    for (let n = 0; id === undefined && n < 30; n++) {
      const data = randomBytes(100 * KiB, 500 + n)
      const { blockId } = (await client.putKey('vol', 'bkt', `k${n}`, data)).locations[0]
      keys.set(`k${n}`, { data, containerId: blockId.containerId, localId: blockId.localId })
      if ([...keys.values()].filter((k) => k.containerId === blockId.containerId).length === 3) id = blockId.containerId
    }
    assert.ok(id !== undefined, 'three keys in one container')
    const blocks = [...keys.values()].filter((k) => k.containerId === id).map((k) => k.localId)
    await scm.call('closeContainer', { containerId: id })
    const closed = await until('three CLOSED replicas', async () => {
      const c = await get(id!)
      return c.state === 'CLOSED' && c.replicas.filter((r) => r.state === 'CLOSED').length === 3 ? c : undefined
    }, 30_000, 100)
    // A different block flipped on each replica: every block keeps two good copies, no replica is whole.
    const holders = closed.replicas.map((r) => cluster.datanodes.findIndex((d) => d?.id === r.datanodeId))
    holders.forEach((i, n) => flipByte(blockFile(join(cluster.options.dataDir, `datanode-${i + 1}`), cluster.datanodes[i]!.clusterId, id! as ContainerId, blocks[n] as LocalId), 1000))
    await until('every replica UNHEALTHY at the SCM', async () => (await get(id!)).replicas.filter((r) => r.state === 'UNHEALTHY').length === 3, 30_000, 100)
    assert.equal((await get(id)).health, ['UNHEALTHY'])

    // One of them is lost: the SCM copies one of the two left, as it is, to a datanode without one.
    await adminRpc(cluster, 'Datanode', cluster.datanodes[holders[2]]!.address).call('deleteContainer', { containerId: id, force: true })
    const kept = [closed.replicas[0].datanodeId, closed.replicas[1].datanodeId]
    type Held = { id: number; state: string; unhealthyReason?: string; blockCount: number }
    const heldOn = async (i: number) => (await adminRpc(cluster, 'Datanode', cluster.datanodes[i]!.address).call<Held[]>('listContainers', {})).find((c) => c.id === id)
    const copy = await until('a third replica copied from the two corrupt ones left', async () => {
      for (const [i, d] of cluster.datanodes.entries()) {
        if (kept.includes(d!.id)) continue
        const held = await heldOn(i)
        if (held !== undefined) return { i, held }
      }
      return undefined
    }, 60_000, 100)
    assert.is(copy.held.state, 'UNHEALTHY', 'a copy of a corrupt replica is corrupt too')
    assert.match(copy.held.unhealthyReason ?? '', /^copied as is from .*: 1 blocks fail their checksums/)
    assert.is(copy.held.blockCount, (await heldOn(holders[0]))!.blockCount)
    await until('the SCM lists the copy UNHEALTHY beside the two', async () => {
      const c = await get(id!)
      return c.replicas.length === 3 && c.replicas.find((r) => r.datanodeId === cluster.datanodes[copy.i]!.id)?.state === 'UNHEALTHY'
    }, 30_000, 100)
    for (const [name, k] of keys) assert.ok((await client.getKey('vol', 'bkt', name)).equals(k.data), `${name} reads back`)
  })
})

test.run()
