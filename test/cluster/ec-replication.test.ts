/**
 * Goal: an EC key survives a lost datanode on a real cluster with nothing but the SCM's own
 * machinery (issue 14): a member of the EC pipeline stops while its container is OPEN; the
 * SCM closes the pipeline and sends closeContainer to each member, whose replicas close at
 * once (no Raft group); once the member is DEAD the container is CLOSED, the replication
 * manager sends reconstructECContainer to a datanode holding no replica, whose coordinator
 * rebuilds the lost index there; every index 1..5 is then CLOSED on a live datanode, the
 * rebuilt replica holds the lost one's bytes exactly, lookupKey names it for its index, and
 * the container is HEALTHY. A member
 * then decommissioned has its index copied (replicateContainer keeps the index) to the last
 * datanode without a replica, and is DECOMMISSIONED once that copy is CLOSED. A replica a
 * reader reports corrupt is checked by its datanode: one found corrupt is rebuilt elsewhere,
 * then deleted; one found intact stays.
 * Method: SCM, OM and eight datanodes in-process on loopback (mini-cluster.ts: STALE after
 * 3 s, DEAD after 6 s), the replication manager every 300 ms; the key written by the EC writer
 * (O3Client.putKey into an EC/rs-3-2-64k bucket); replicas read with readChunk, checksums
 * verified, before and after.
 */
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { replicaLengthBytes, type EcScheme } from '../../core/ec-layout.ts'
import { KiB } from '../../core/limits.ts'
import type { KeyInfo } from '../../core/om-wire.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { parseReplication, type ContainerLocation, type DatanodeId, type KeyLocation } from '../../core/wire.ts'
import { readChunk } from '../../datapath/client/datanode-io.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import { flipByte, until } from '../helpers.ts'
import { adminRpc, adminTransport, omRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'

const RS = 'EC/rs-3-2-64k'
const CELL = 64 * KiB
const SCHEME: EcScheme = parseReplication(RS).ec!
let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: ReturnType<typeof cluster.client>
let scm: RpcClient
/** The SCM called as the OM calls it (getContainerLocations). */
let scmAsOm: RpcClient
let om: RpcClient
let location: KeyLocation
/** Each index's bytes as written (index i at i - 1). */
const original: Uint8Array[] = []
let lost: { id: DatanodeId; index: number }
const data = randomBytes(2 * 3 * CELL + CELL + 100, 7)

async function replicaBytes(loc: KeyLocation, node: { id: DatanodeId; address: string }, index: number): Promise<Uint8Array> {
  const length = replicaLengthBytes(SCHEME, loc.length, index)
  const r = await readChunk(node, loc.blockId, 0, length, undefined, loc.token, adminTransport(cluster))
  return r.data.subarray(r.dataOffset, r.dataOffset + length)
}

const lookup = async () => (await om.call<KeyInfo>('lookupKey', { volume: 'vol', bucket: 'ecb', key: 'k' })).locations[0].pipeline
const located = async (id: number) => (await scmAsOm.call<Record<string, ContainerLocation>>('getContainerLocations', { containerIds: [id] }))[id]

test.before(async () => {
  cluster = await startMiniCluster({
    datanodes: 8,
    overrides: { 'scm.safemode.minDatanodes': 8, 'scm.block.sizeBytes': 4 * CELL, 'scm.replication.intervalMs': 300, 'scm.replication.commandTimeoutMs': 30_000 },
  })
  client = cluster.client()
  scm = adminRpc(cluster, 'SCM', cluster.scmAddress)
  scmAsOm = await omRpc(cluster, 'SCM', cluster.scmAddress)
  om = adminRpc(cluster, 'OM', cluster.omAddress)
  await client.createVolume('vol')
  await client.createBucket('vol', 'ecb', { replication: RS })
})

test.after(async () => {
  await cluster.dispose()
})

test('an EC key is written to one block group on 5 of the 8 datanodes, each replica reported with its index', async () => {
  // Two full stripes and a partial one: every index holds bytes.
  const key = await client.putKey('vol', 'ecb', 'k', data)
  assert.is(key.locations.length, 1)
  location = key.locations[0]
  for (let i = 1; i <= 5; i++) original.push(await replicaBytes(location, location.pipeline.nodes[i - 1], i))
  await until('every index reported', async () => (await located(location.blockId.containerId))?.replicas.length === 5)
  const l = await located(location.blockId.containerId)
  assert.equal(location.pipeline.nodes.map((n) => l.replicas.find((r) => r.id === n.id)?.replicaIndex), [1, 2, 3, 4, 5])
})

test('a member stopped while the container is OPEN: the pipeline closes, each live member closes its replica, the container is CLOSED once the member is DEAD', async () => {
  lost = { id: location.pipeline.nodes[1].id, index: 2 }
  await cluster.stopDatanode(cluster.datanodes.findIndex((d) => d?.id === lost.id))
  const id = location.blockId.containerId
  await until('the live replicas CLOSED', async () => {
    const l = await located(id)
    return l.replicas.filter((r) => r.id !== lost.id).length === 4 && l.replicas.filter((r) => r.id !== lost.id).every((r) => r.state === 'CLOSED')
  }, 30_000)
  await until('the container CLOSED', async () => (await scm.call<{ state: string }>('getContainer', { containerId: id })).state === 'CLOSED', 30_000)
})

test('the replication manager rebuilds the lost index on a datanode that held none: every index CLOSED on a live node, the bytes the lost one had', async () => {
  const id = location.blockId.containerId
  const l = await until('index 2 CLOSED on a new datanode', async () => {
    const now = await located(id)
    const rebuilt = now.replicas.find((r) => r.replicaIndex === lost.index && r.id !== lost.id && r.state === 'CLOSED')
    return rebuilt !== undefined ? now : undefined
  }, 60_000)
  const rebuilt = l.replicas.find((r) => r.replicaIndex === lost.index && r.id !== lost.id)!
  assert.ok(!location.pipeline.nodes.some((n) => n.id === rebuilt.id), 'a datanode that held no replica of it')
  const live = l.replicas.filter((r) => r.id !== lost.id && r.state === 'CLOSED')
  assert.equal(live.map((r) => r.replicaIndex).sort(), [1, 2, 3, 4, 5])
  assert.equal(new Set(live.map((r) => r.id)).size, 5)
  assert.ok(Buffer.from(await replicaBytes(location, rebuilt, lost.index)).equals(original[lost.index - 1]), 'the rebuilt replica holds the lost bytes')
  // A reader's lookup now names the rebuilt replica for index 2, not the dead node (the OM caches locations 2 s).
  await until('lookupKey lists the rebuilt replica as index 2', async () => (await lookup()).nodes[1].id === rebuilt.id)
  await until('HEALTHY, nothing in flight', async () => {
    const c = await scm.call<{ health: string[] }>('getContainer', { containerId: id })
    const s = await scm.call<{ inflight: unknown[] }>('replicationStatus', {})
    return c.health.join() === 'HEALTHY' && s.inflight.length === 0
  }, 20_000)
})

test('a decommissioned member\'s index is copied to the datanode without a replica, keeping its index; then it is DECOMMISSIONED', async () => {
  const id = location.blockId.containerId
  const leaving = { id: location.pipeline.nodes[2].id, index: 3 }
  await scm.call('datanodeAdmin', { action: 'decommission', datanodes: [leaving.id] })
  const state = async () => (await scm.call<{ id: DatanodeId; operationalState: string }[]>('listDatanodes', {})).find((n) => n.id === leaving.id)?.operationalState
  await until('DECOMMISSIONED', async () => (await state()) === 'DECOMMISSIONED', 60_000)
  const l = await located(id)
  const copy = l.replicas.find((r) => r.replicaIndex === leaving.index && r.id !== leaving.id)
  assert.ok(copy !== undefined && copy.state === 'CLOSED', JSON.stringify(l.replicas))
  assert.ok(Buffer.from(await replicaBytes(location, copy, leaving.index)).equals(original[leaving.index - 1]), 'the copy holds index 3\'s bytes')
  await until('lookupKey lists the in-service copy as index 3', async () => (await lookup()).nodes[2].id === copy.id)
  const inService = l.replicas.filter((r) => r.id !== lost.id && r.id !== leaving.id && r.state === 'CLOSED')
  assert.equal(inService.map((r) => r.replicaIndex).sort(), [1, 2, 3, 4, 5], 'every index on an in-service datanode')
})

// Catches: a report taken on the reader's word (a false one cost a forced delete and a
// rebuild of an intact replica), and a corrupt replica a reader found left in place.
test('a replica reported corrupt is checked by its datanode: a false report changes nothing; a corrupt one has its index rebuilt elsewhere, then is deleted', async () => {
  const id = location.blockId.containerId
  const { localId } = location.blockId
  const corrupt = { id: location.pipeline.nodes[3].id, index: 4 }
  const intact = { id: location.pipeline.nodes[4].id, index: 5 }
  const i = cluster.datanodes.findIndex((d) => d?.id === corrupt.id)
  flipByte(blockFile(join(cluster.options.dataDir, `datanode-${i + 1}`), cluster.datanodes[i]!.clusterId, id, localId), 1000)
  const dn = (n: { id: DatanodeId }) => adminRpc(cluster, 'Datanode', location.pipeline.nodes.find((x) => x.id === n.id)!.address)
  const checked = await dn(intact).call<{ result: string }>('checkBlock', { containerId: id, localId })
  assert.is(checked.result, 'HEALTHY', 'the intact replica\'s block checks out')
  // The false report first: its check (one small block) ends long before the rebuild below.
  assert.equal(await scm.call('reportCorruptReplica', { containerId: id, datanodeId: intact.id, localId }), { checking: true })
  await scm.call('reportCorruptReplica', { containerId: id, datanodeId: corrupt.id, localId })
  const l = await until('index 4 CLOSED elsewhere and the corrupt replica gone', async () => {
    const now = await located(id)
    const rebuilt = now.replicas.find((r) => r.replicaIndex === corrupt.index && r.id !== corrupt.id && r.state === 'CLOSED')
    return rebuilt !== undefined && !now.replicas.some((r) => r.id === corrupt.id) ? now : undefined
  }, 60_000)
  const rebuilt = l.replicas.find((r) => r.replicaIndex === corrupt.index)!
  assert.ok(Buffer.from(await replicaBytes(location, rebuilt, corrupt.index)).equals(original[corrupt.index - 1]))
  assert.equal(l.replicas.find((r) => r.id === intact.id)?.state, 'CLOSED', 'the falsely reported replica is kept, not marked')
})

test('the key reads back byte for byte through the rebuilt and copied replicas', async () => {
  assert.ok(Buffer.from(await client.getKey('vol', 'ecb', 'k')).equals(data))
})

test.run()
