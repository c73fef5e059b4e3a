/**
 * Goal: a replica whose block lost bytes is known corrupt when a read or a copy meets it, not
 * when the scanner's next pass comes (7 days by default): the datanode checks that block at
 * once (ContainerScanner.checkBlock, Ozone's on-demand scan) and a closed replica it finds
 * corrupt turns UNHEALTHY on its datanode and at the SCM. The check (the datanode's
 * checkBlock RPC, which the SCM runs on a reader's report) answers HEALTHY for an intact
 * block, CORRUPT for a flipped byte, and leaves an OPEN replica open; the SCM marks what it
 * finds corrupt, never what it finds intact. A plain copy refused for a source block that fails
 * its checksums has the source check that block.
 * Method: a real mini cluster (SCM, OM, four datanodes, loopback, LMDB in a temp dir) with the
 * scanner at its default interval and the replication manager idle (copies here are the
 * admin's); RATIS/THREE keys of one block file each; files cut, deleted or changed on disk.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { rmSync, truncateSync } from 'node:fs'
import { join } from 'node:path'
import { KiB } from '../../core/limits.ts'
import type { KeyInfo } from '../../core/om-wire.ts'
import type { ContainerState } from '../../core/wire.ts'
import { readChunk } from '../../datapath/client/datanode-io.ts'
import type { O3Client } from '../../datapath/client/index.ts'
import { blockFile, type ContainerData } from '../../datapath/datanode/index.ts'
import { errorCode, flipByte, until } from '../helpers.ts'
import { adminFetch, adminRpc, adminTransport, randomBytes, startMiniCluster } from './mini-cluster.ts'

let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: O3Client

interface ContainerRow { id: number; state: ContainerState; replicas: { datanodeId: string; state: ContainerState }[] }

test.before(async () => {
  cluster = await startMiniCluster({
    datanodes: 4,
    overrides: { 'client.chunkSizeBytes': 64 * KiB, 'scm.replication.intervalMs': 3_600_000 },
  })
  client = cluster.client()
  await client.createVolume('vol')
  await client.createBucket('vol', 'three', { replication: 'RATIS/THREE' })
})

test.after(async () => {
  await cluster.dispose()
})

/** A key of one block file (too large to pack) alone in its container, which is closed on its three replicas unless `open`. */
async function keyAlone(name: string, open = false): Promise<{ info: KeyInfo; containerId: number; holders: number[] }> {
  const info = await client.putKey('vol', 'three', name, randomBytes(200 * KiB))
  assert.is(info.locations.length, 1)
  const containerId = info.locations[0].blockId.containerId
  if (!open) await client.admin('closeContainer', { containerId })
  const want = open ? 'OPEN' : 'CLOSED'
  await until(`container ${containerId} ${want} on three replicas at the SCM`, async () => {
    const c = await client.admin<ContainerRow>('getContainer', { containerId })
    return c.state === want && c.replicas.length === 3 && c.replicas.every((r) => r.state === want)
  }, 30_000)
  const holders = info.locations[0].pipeline.nodes.map((n) => cluster.datanodes.findIndex((d) => d?.id === n.id))
  return { info, containerId, holders }
}

function pathOn(i: number, info: KeyInfo): string {
  const { containerId, localId } = info.locations[0].blockId
  return blockFile(join(cluster.options.dataDir, `datanode-${i + 1}`), cluster.datanodes[i]!.clusterId, containerId, localId)
}

const dnRpc = (i: number) => adminRpc(cluster, 'Datanode', cluster.datanodes[i]!.address)

async function heldState(i: number, containerId: number): Promise<ContainerState | undefined> {
  return (await dnRpc(i).call<ContainerData[]>('listContainers', {})).find((c) => c.id === containerId)?.state
}

async function scmCounter(name: string): Promise<number> {
  const text = await (await adminFetch(cluster, cluster.scmAddress, '/prom')).text()
  const m = new RegExp(`^o3_scm_${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text)
  assert.ok(m !== null, `/prom of the SCM has ${name}`)
  return Number(m[1])
}

async function scmState(containerId: number, i: number): Promise<ContainerState | undefined> {
  return (await client.admin<ContainerRow>('getContainer', { containerId })).replicas.find((r) => r.datanodeId === cluster.datanodes[i]!.id)?.state
}

// Catches: a CLOSED replica cut short by a disk fault left CLOSED (and a source of plain copies
// that fail) until the scanner's next pass, days later, however many reads fail on it.
test('a read that finds a block file short: its datanode checks the block and the replica is UNHEALTHY in seconds', async () => {
  const { info, containerId, holders } = await keyAlone('short')
  const [i] = holders
  truncateSync(pathOn(i, info), 1000)
  const loc = info.locations[0]
  const read = await errorCode(readChunk(cluster.datanodes[i]!, loc.blockId, 0, 64 * KiB, undefined, loc.token, adminTransport(cluster)))
  assert.is(read, 'IO_ERROR')
  await until('the replica UNHEALTHY on its datanode', async () => (await heldState(i, containerId)) === 'UNHEALTHY', 10_000, 100)
  await until('and at the SCM', async () => (await scmState(containerId, i)) === 'UNHEALTHY', 10_000, 100)
  assert.equal(await Promise.all(holders.slice(1).map((j) => heldState(j, containerId))), ['CLOSED', 'CLOSED'], 'the others stay CLOSED')
  assert.ok((await client.getKey('vol', 'three', 'short')).length === 200 * KiB, 'the key still reads from the others')
})

/**
 * A plain copy whose one healthy-looking source is damaged by `damage` (given its block file):
 * the other two replicas are corrupt and known so (scans on demand), the copy goes to the
 * fourth datanode; the source's datanode must find its replica corrupt and the copy be refused.
 */
async function copyFromDamagedSource(name: string, damage: (blockFile: string) => void): Promise<void> {
  const { info, containerId, holders } = await keyAlone(name)
  const [a, b, c] = holders
  for (const j of [b, c]) {
    flipByte(pathOn(j, info), 5000)
    assert.is((await dnRpc(j).call<{ result: string }>('scanContainer', { containerId })).result, 'UNHEALTHY')
  }
  damage(pathOn(a, info))
  await until('the SCM to know b and c corrupt', async () => (await scmState(containerId, b)) === 'UNHEALTHY' && (await scmState(containerId, c)) === 'UNHEALTHY', 10_000, 100)
  const target = [0, 1, 2, 3].find((j) => !holders.includes(j))!
  const sent = await client.admin<{ sources: { id: string }[] }>('replicateContainer', { containerId, targetId: cluster.datanodes[target]!.id })
  assert.equal(sent.sources.map((s) => s.id), [cluster.datanodes[a]!.id], 'a plain copy from the one replica thought healthy')
  await until('the source UNHEALTHY on its datanode', async () => (await heldState(a, containerId)) === 'UNHEALTHY', 15_000, 100)
  await until('and at the SCM', async () => (await scmState(containerId, a)) === 'UNHEALTHY', 10_000, 100)
  assert.is(await heldState(target, containerId), undefined, 'no copy of a damaged replica was taken as healthy')
}

// Catches: a replica whose block file is gone still taken as the source of every plain copy,
// each failing, while its datanode thinks it fine.
test('a copy whose source lacks a block file: the source\'s datanode checks the block and marks its replica UNHEALTHY', async () => {
  await copyFromDamagedSource('missing', (path) => rmSync(path))
})

// Catches: a plain copy refused for a block that fails its checksums at the source, the source
// left CLOSED (and the copy planned from it again and again) until its scanner's next pass.
test('a copy that finds a source block failing its checksums has the source check it: the source is marked UNHEALTHY', async () => {
  await copyFromDamagedSource('flipped', (path) => flipByte(path, 100 * KiB))
})

// Catches: a check that marks what it only read about (a report taken on trust), one that
// closes an OPEN replica under its writers, or one that misses a flipped byte.
test('checkBlock: HEALTHY for an intact block, CORRUPT for a flipped byte; an OPEN replica stays OPEN', async () => {
  const { info, containerId, holders } = await keyAlone('open', true)
  const { localId } = info.locations[0].blockId
  const [i, j] = holders
  assert.is((await dnRpc(i).call<{ result: string }>('checkBlock', { containerId, localId })).result, 'HEALTHY')
  flipByte(pathOn(j, info), 70 * KiB)
  const r = await dnRpc(j).call<{ result: string; state: string; error?: string }>('checkBlock', { containerId, localId })
  assert.is(r.result, 'CORRUPT')
  assert.match(r.error ?? '', /Checksum mismatch/)
  assert.is(r.state, 'OPEN')
  assert.is(await heldState(j, containerId), 'OPEN', 'an OPEN replica is answered for, not marked')
  assert.is(await errorCode(dnRpc(j).call('checkBlock', { containerId, localId: localId + 1000 })), 'BLOCK_NOT_FOUND')
  // Readers' reports: the SCM has the datanode check, and marks only what it finds corrupt.
  const refuted = await scmCounter('corrupt_reports_refuted_total')
  assert.equal(await client.admin('reportCorruptReplica', { containerId, datanodeId: cluster.datanodes[i]!.id, localId }), { checking: true })
  await until('the false report refuted', async () => (await scmCounter('corrupt_reports_refuted_total')) === refuted + 1, 10_000, 50)
  assert.is(await scmState(containerId, i), 'OPEN', 'an intact replica reported corrupt is not marked')
  await client.admin('reportCorruptReplica', { containerId, datanodeId: cluster.datanodes[j]!.id, localId })
  await until('the reported OPEN replica UNHEALTHY at the SCM', async () => (await scmState(containerId, j)) === 'UNHEALTHY', 10_000, 100)
  assert.is(await scmCounter('corrupt_reports_refuted_total'), refuted + 1)
})

test.run()
