/**
 * Goal: the datanode's container scanner (issue 13) finds what a disk does to a closed
 * replica within one pass: a flipped byte in a chunk (data scan), a deleted block file
 * (metadata scan), a flipped byte in a small block packed in LMDB; the replica turns
 * UNHEALTHY on its datanode (and stays so across a restart) and in the SCM's view (last in
 * getContainerLocations), refuses reads with CONTAINER_UNHEALTHY, and the key still reads
 * from the other replicas; healthy replicas stay CLOSED; the datanode's /prom counts it;
 * `o3 admin container scan ID` scans every replica on demand and prints each one's result.
 * Method: a real mini cluster (SCM, OM, three datanodes, loopback, LMDB in a temp dir) with
 * a 200 ms scan interval and no real throttle; RATIS/THREE keys whose container is closed
 * through the SCM; bytes changed in the datanodes' files on disk (the packed block through
 * its datanode's LMDB, as a disk fault would). "Within one pass": two passes complete after
 * the fault (the first may have started before it) and then the replica is UNHEALTHY.
 * The throttle's arithmetic is test/datapath/datanode/scan-throttle.test.ts.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Database, RootDatabase } from 'lmdb'
import { KiB } from '../../core/limits.ts'
import type { KeyInfo } from '../../core/om-wire.ts'
import { urlOf } from '../../core/rpc/transport.ts'
import type { ContainerState, DatanodeDetails } from '../../core/wire.ts'
import type { O3Client } from '../../datapath/client/index.ts'
import { blockFile, type ContainerData, type Datanode } from '../../datapath/datanode/index.ts'
import { errorCode, flipByte, until } from '../helpers.ts'
import { adminEnv, adminFetch, adminRpc, adminTransport, omRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'

const WINDOW = 16 * KiB
const CHUNK = 256 * KiB
const BLOCK = 1024 * KiB
const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))

let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: O3Client

interface ReplicaRow { datanodeId: string; address: string; state: ContainerState }
interface ContainerRow { id: number; state: ContainerState; replicas: ReplicaRow[] }

test.before(async () => {
  cluster = await startMiniCluster({
    datanodes: 3,
    overrides: {
      'scm.block.sizeBytes': BLOCK, 'client.chunkSizeBytes': CHUNK, 'client.bytesPerChecksum': WINDOW,
      'datanode.scanner.intervalMs': 200, 'datanode.scanner.bytesPerSec': 1024 * 1024 * 1024,
      // Copies here are the admin's: the replication manager (every 5 s in a local cluster)
      // would copy a container that lost a replica to the one datanode without it first.
      'scm.replication.intervalMs': 3_600_000,
    },
  })
  client = cluster.client({ chunkSizeBytes: CHUNK })
  await client.createVolume('vol')
  await client.createBucket('vol', 'three', { replication: 'RATIS/THREE' })
})

test.after(async () => {
  await cluster.dispose()
})

function dn(i: number): Datanode {
  const d = cluster.datanodes[i]
  assert.ok(d !== undefined, `datanode ${i} runs`)
  return d
}

function indexOf(id: string): number {
  return cluster.datanodes.findIndex((d) => d?.id === id)
}

/** The replica as its datanode holds it (its listContainers RPC). */
async function replicaOn(i: number, containerId: number): Promise<ContainerData | undefined> {
  const all = await adminRpc(cluster, 'Datanode', dn(i).address).call<ContainerData[]>('listContainers', {})
  return all.find((c) => c.id === containerId)
}

/** Writes a key and closes the container its (single) block landed in; waits until all three replicas are CLOSED. */
async function closedKey(name: string, data: Buffer): Promise<{ info: KeyInfo; containerId: number }> {
  await client.putKey('vol', 'three', name, data)
  const info = await client.headKey('vol', 'three', name)
  assert.is(info.locations.length, 1, `key ${name} is one block`)
  const containerId = info.locations[0].blockId.containerId
  await client.admin('closeContainer', { containerId })
  await until(`container ${containerId} CLOSED on three replicas`, async () => {
    const c = await client.admin<ContainerRow>('getContainer', { containerId })
    return c.state === 'CLOSED' && c.replicas.length === 3 && c.replicas.every((r) => r.state === 'CLOSED')
  }, 30_000)
  return { info, containerId }
}

function pathOn(i: number, info: KeyInfo): string {
  const { containerId, localId } = info.locations[0].blockId
  return blockFile(join(cluster.options.dataDir, `datanode-${i + 1}`), dn(i).clusterId, containerId, localId)
}

/** Waits for two full passes of datanode i's scanner after now: the one running may have gone past the fault. */
async function twoPasses(i: number): Promise<void> {
  const from = dn(i).scanner.passes
  await until(`two scanner passes on datanode ${i}`, () => dn(i).scanner.passes >= from + 2, 30_000)
}

async function scmState(containerId: number, datanodeId: string): Promise<ContainerState | undefined> {
  return (await client.admin<ContainerRow>('getContainer', { containerId })).replicas.find((r) => r.datanodeId === datanodeId)?.state
}

async function promValue(i: number, name: string): Promise<number> {
  const text = await (await adminFetch(cluster, dn(i).address, '/prom')).text()
  const m = new RegExp(`^${name}\\{service="datanode"\\} (\\d+)`, 'm').exec(text)
  assert.ok(m !== null, `/prom of datanode ${i} has ${name}`)
  return Number(m[1])
}

/** A raw /chunk/read on one datanode: the error code it answers, or 'OK'. */
async function readCode(address: string, info: KeyInfo): Promise<string> {
  const { containerId, localId } = info.locations[0].blockId
  const t = adminTransport(cluster)
  const res = await fetch(urlOf(t, address, '/chunk/read'), { dispatcher: t.dispatcher(), method: 'POST', headers: { 'content-type': 'application/json', ...(info.locations[0].token !== undefined ? { 'x-o3-block-token': info.locations[0].token } : {}) }, body: JSON.stringify({ containerId, localId, offset: 0, length: 100 }) } as RequestInit)
  if (res.status === 200) { await res.arrayBuffer(); return 'OK' }
  return ((await res.json()) as { code: string }).code
}

function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [o3, ...args, '--om', cluster.omAddress, '--scm', cluster.scmAddress], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...adminEnv(cluster, cluster.options.dataDir) } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

// Catches: a data scan that reads only block files and never the small blocks packed in LMDB.
// First: a small key is packed only when written whole, which a write that lands on a block of
// a container closed since (the OM fetches blocks ahead) and is rewritten is not.
test('a flipped byte in a small block packed in LMDB: UNHEALTHY within one pass', async () => {
  const data = randomBytes(10 * KiB, 15)
  const { info, containerId } = await closedKey('packed', data)
  const { localId } = info.locations[0].blockId
  const block = await adminRpc(cluster, 'Datanode', dn(2).address).call<{ packed: boolean }>('getBlock', { containerId, localId, token: info.locations[0].token })
  assert.ok(block.packed, 'the block is packed in LMDB')
  const replica = await replicaOn(2, containerId)
  // The datanode's own LMDB, written as a disk fault would change it.
  const volumes = (dn(2) as unknown as { volumes: { packed: Database<Buffer, [number, number]> }[] }).volumes
  const packed = volumes[replica!.volume].packed
  const bytes = Buffer.from(packed.getBinary([containerId, localId])!)
  bytes[5000] ^= 0xff
  packed.putSync([containerId, localId], bytes)
  await twoPasses(2)
  const after = await replicaOn(2, containerId)
  assert.is(after?.state, 'UNHEALTHY')
  assert.match(after!.unhealthyReason ?? '', 'Checksum mismatch')
  assert.ok((await client.getKey('vol', 'three', 'packed')).equals(data), 'the key reads back')
})

const flipped = { data: randomBytes(600 * KiB, 13), containerId: 0, info: undefined as unknown as KeyInfo, datanodeId: '' }

/** The flipped key read with its corrupt replica tried first, as a client holding the locations of before the fault would. */
async function readCorruptFirst(): Promise<Buffer> {
  const first = (nodes: DatanodeDetails[]) => [...nodes.filter((n) => n.id === flipped.datanodeId), ...nodes.filter((n) => n.id !== flipped.datanodeId)]
  const corruptFirst = { ...flipped.info, locations: flipped.info.locations.map((l) => ({ ...l, pipeline: { ...l.pipeline, nodes: first(l.pipeline.nodes) } })) }
  assert.is(corruptFirst.locations[0].pipeline.nodes[0].id, flipped.datanodeId)
  const parts: Buffer[] = []
  for await (const piece of client.readKeyInfo(corruptFirst)) parts.push(piece as Buffer)
  return Buffer.concat(parts)
}

// Catches: a scanner that skips data, verifies the wrong bytes, or marks nothing; an
// UNHEALTHY that the heartbeat does not carry or the SCM does not keep; healthy replicas
// marked too; a client that takes a corrupt window's bytes or stops at it.
test('a flipped byte in a chunk of a closed replica: UNHEALTHY within one pass, reads go to the others', async () => {
  const { info, containerId } = await closedKey('flipped', flipped.data)
  Object.assign(flipped, { info, containerId, datanodeId: dn(0).id })
  assert.is(await readCode(dn(0).address, info), 'OK', 'the replica serves reads before the fault')
  flipByte(pathOn(0, info), CHUNK + 3 * WINDOW + 7)
  await twoPasses(0)
  const replica = await replicaOn(0, containerId)
  assert.is(replica?.state, 'UNHEALTHY', 'the corrupt replica is UNHEALTHY on its datanode')
  assert.match(replica!.unhealthyReason ?? '', 'Checksum mismatch')
  await twoPasses(1)
  await twoPasses(2)
  assert.is((await replicaOn(1, containerId))?.state, 'CLOSED', 'a healthy replica stays CLOSED')
  assert.is((await replicaOn(2, containerId))?.state, 'CLOSED', 'a healthy replica stays CLOSED')

  await until('the SCM sees the replica UNHEALTHY', async () => (await scmState(containerId, dn(0).id)) === 'UNHEALTHY')
  // The OM's call (an om certificate when secure).
  const scmAsOm = await omRpc(cluster, 'SCM', cluster.scmAddress)
  const locations = await scmAsOm.call<Record<string, { replicas: (DatanodeDetails & { state: ContainerState })[] }>>('getContainerLocations', { containerIds: [containerId] })
  const replicas = locations[containerId].replicas
  assert.is(replicas.length, 3)
  assert.equal(replicas.map((r) => r.state), ['CLOSED', 'CLOSED', 'UNHEALTHY'], 'the UNHEALTHY replica comes last')

  // Still read, as Ozone's UNHEALTHY replicas are: its intact blocks may be the last copies
  // of them, and readers verify every window (the flipped one is past these first 100 bytes).
  assert.is(await readCode(dn(0).address, info), 'OK', 'the UNHEALTHY replica serves its intact windows')
  assert.is((await adminRpc(cluster, 'Datanode', dn(0).address).call<{ localId: number }>('getBlock', { ...info.locations[0].blockId, token: info.locations[0].token })).localId, info.locations[0].blockId.localId)
  assert.ok((await client.getKey('vol', 'three', 'flipped')).equals(flipped.data), 'the key reads back')
  assert.ok((await readCorruptFirst()).equals(flipped.data), 'a reader that tries the UNHEALTHY replica first gets the flipped window from another')

  assert.ok(await promValue(0, 'o3_datanode_scanner_failures_total') >= 1, 'the failure is counted')
  assert.ok(await promValue(0, 'o3_datanode_scanner_bytes_scanned_total') > 0, 'scanned bytes are counted')
  assert.ok(await promValue(0, 'o3_datanode_scanner_containers_scanned_total') > 0, 'scanned containers are counted')
  assert.is(await promValue(1, 'o3_datanode_scanner_failures_total'), 0, 'a healthy datanode counts no failure')
})

// Catches: records that cannot be decoded (a damaged container.db) taken as a scan that failed,
// only logged: the replica stayed CLOSED, counted by the SCM, its reads answering 500.
test('a block record that cannot be decoded: the metadata scan marks the replica UNHEALTHY', async () => {
  const data = randomBytes(300 * KiB, 16)
  const { info, containerId } = await closedKey('bad-record', data)
  const { localId } = info.locations[0].blockId
  const replica = await replicaOn(1, containerId)
  // The datanode's own LMDB, the record's bytes cut in half as a disk fault would leave them.
  const volumes = (dn(1) as unknown as { volumes: { db: RootDatabase }[] }).volumes
  const raw = volumes[replica!.volume].db.openDB<Buffer, [number, number]>({ name: 'blocks', encoding: 'binary' })
  const bytes = raw.getBinary([containerId, localId])!
  raw.putSync([containerId, localId], Buffer.from(bytes.subarray(0, Math.floor(bytes.length / 2))))
  await twoPasses(1)
  const after = await replicaOn(1, containerId)
  assert.is(after?.state, 'UNHEALTHY')
  assert.match(after!.unhealthyReason ?? '', 'cannot be read')
  await until('the SCM sees the replica UNHEALTHY', async () => (await scmState(containerId, dn(1).id)) === 'UNHEALTHY')
  assert.ok((await client.getKey('vol', 'three', 'bad-record')).equals(data), 'the key reads back')
})

// Catches: a metadata scan that trusts block records without looking at their files.
test('a deleted block file of a closed replica: the metadata scan marks it UNHEALTHY', async () => {
  const data = randomBytes(400 * KiB, 14)
  const { info, containerId } = await closedKey('deleted-file', data)
  assert.not.equal(containerId, flipped.containerId, 'a new container')
  rmSync(pathOn(1, info))
  await twoPasses(1)
  const replica = await replicaOn(1, containerId)
  assert.is(replica?.state, 'UNHEALTHY')
  // The pass running when the file went may have met it in its data scan instead (seen once in CI): both name it.
  assert.match(replica!.unhealthyReason ?? '', /ENOENT/)
  // The metadata scan finds it on its own: a scan now starts with it and stops at its finding.
  const scanned = await adminRpc(cluster, 'Datanode', dn(1).address).call<{ result: string; error?: string }>('scanContainer', { containerId })
  assert.is(scanned.result, 'UNHEALTHY')
  assert.match(scanned.error ?? '', /^Block file of .* cannot be read: ENOENT/, 'found by the metadata scan')
  await until('the SCM sees the replica UNHEALTHY', async () => (await scmState(containerId, dn(1).id)) === 'UNHEALTHY')
  assert.ok((await client.getKey('vol', 'three', 'deleted-file')).equals(data), 'the key reads back')
})

// Catches: an UNHEALTHY kept only in memory (a restart would report the replica healthy again).
test('a restarted datanode keeps its replica UNHEALTHY, and a reader trying it first still gets the key right', async () => {
  const { containerId, datanodeId } = flipped
  const i = indexOf(datanodeId)
  const restartedAtMs = Date.now()
  await cluster.stopDatanode(i)
  await cluster.startDatanode(i)
  assert.is((await replicaOn(i, containerId))?.state, 'UNHEALTHY')
  assert.ok((await readCorruptFirst()).equals(flipped.data))
  await until('the restarted datanode reports again', async () => {
    const c = await client.admin<{ replicas: (ReplicaRow & { reportedAtMs: number })[] }>('getContainer', { containerId })
    return c.replicas.find((r) => r.datanodeId === datanodeId && r.reportedAtMs > restartedAtMs)
  })
  assert.is(await scmState(containerId, datanodeId), 'UNHEALTHY')
  await twoPasses(i)
  assert.is((await replicaOn(i, containerId))?.state, 'UNHEALTHY', 'a later pass does not make it healthy')
})

// Catches: a scan command that reports without scanning, loses a replica's row, or takes bad input.
test('o3 admin container scan ID scans every replica and prints each result', async () => {
  const { containerId, datanodeId, data } = flipped
  const r = await run('admin', 'container', 'scan', String(containerId), '--json')
  assert.is(r.code, 0, r.stderr)
  const rows = JSON.parse(r.stdout) as { datanodeId: string; result: string; bytesScanned: number; blocksScanned: number; error?: string }[]
  assert.is(rows.length, 3)
  const bad = rows.find((x) => x.datanodeId === datanodeId)!
  assert.is(bad.result, 'UNHEALTHY')
  assert.match(bad.error ?? '', 'Checksum mismatch')
  const good = rows.filter((x) => x.datanodeId !== datanodeId)
  for (const g of good) {
    assert.is(g.result, 'HEALTHY')
    assert.is(g.bytesScanned, data.length, 'every chunk of the key was read')
    assert.is(g.blocksScanned, 1)
    assert.is(g.error, undefined)
  }
  const table = await run('admin', 'container', 'scan', String(containerId))
  assert.is(table.code, 0, table.stderr)
  assert.match(table.stdout, /first error/)
  assert.match(table.stdout, /UNHEALTHY .*Checksum mismatch/)
  assert.is(table.stdout.split('\n').filter((l) => / HEALTHY /.test(l)).length, 2, table.stdout)

  const malformed = await run('admin', 'container', 'scan', 'abc')
  assert.is(malformed.code, 2)
  assert.match(malformed.stderr, 'bad container ID')
  const unknown = await run('admin', 'container', 'scan', '987654')
  assert.is(unknown.code, 1)
  assert.match(unknown.stderr, 'CONTAINER_NOT_FOUND')
})

// Catches: an UNHEALTHY mark kept after its replica is gone: a later copy to that datanode was
// UNHEALTHY at once (and deleted as surplus), and the datanode barred as a target for good.
test('a replica gone from its datanode takes its UNHEALTHY mark with it: a copy made there later is CLOSED', async () => {
  const { containerId, datanodeId } = flipped
  const i = indexOf(datanodeId)
  assert.is(await scmState(containerId, datanodeId), 'UNHEALTHY')
  await adminRpc(cluster, 'Datanode', dn(i).address).call('deleteContainer', { containerId, force: true })
  await until('the SCM hears the replica is gone', async () => (await scmState(containerId, datanodeId)) === undefined || undefined, 30_000, 100)
  const r = await run('admin', 'container', 'replicate', String(containerId), '--target', dn(i).address)
  assert.is(r.code, 0, r.stderr)
  await until('the copy on the datanode reported CLOSED', async () => (await scmState(containerId, datanodeId)) === 'CLOSED' || undefined, 30_000, 100)
  assert.is((await replicaOn(i, containerId))?.state, 'CLOSED')
})

test.run()
