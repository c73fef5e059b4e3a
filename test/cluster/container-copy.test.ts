/**
 * Goal: a closed container copies from one datanode to another whole and verified (Ozone's
 * container replication): the new replica keeps the source's state and BCSID, serves every
 * block byte for byte (small packed blocks, single-chunk and multi-chunk block files), outlives
 * a restart and reaches the SCM in a heartbeat; a corrupt or cut archive is refused and leaves
 * nothing; an import of a container held is refused; deleteContainer removes a replica (never
 * an open one without force); force close turns a QUASI_CLOSED replica CLOSED; what a crash
 * leaves in the copy temp folder is cleaned at start.
 * Method: a real in-process cluster of four datanodes in a temp dir (RATIS/THREE containers
 * live on three, so one is free to copy to). Copies are started through Datanode.command, the
 * handler heartbeat answers go through, and checked through the datanodes' RPCs, their data
 * folders and LMDB after a restart. Corrupt archives are real exports with one byte flipped.
 */
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { KiB } from '../../core/limits.ts'
import type { KeyInfo } from '../../core/om-wire.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { urlOf, type Transport } from '../../core/rpc/transport.ts'
import type { ContainerId, DatanodeDetails, DatanodeId } from '../../core/wire.ts'
import { readChunk } from '../../datapath/client/datanode-io.ts'
import { containerDir, type Datanode } from '../../datapath/datanode/index.ts'
import { copyTmpDir } from '../../datapath/datanode/layout.ts'
import { TAR_END, tarHeader, tarPadding } from '../../datapath/datanode/container-archive.ts'
import { crc32c } from '@node-rs/crc32'
import { errorCode, until } from '../helpers.ts'
import type { O3Error } from '../../core/errors.ts'
import { adminFetch, adminTransport, randomBytes, startMiniCluster } from './mini-cluster.ts'

const CHUNK = 64 * KiB
/** The copies here are made by hand: the SCM's replication manager must not delete the fourth replica they make. */
const overrides = { 'scm.block.sizeBytes': 256 * KiB, 'client.chunkSizeBytes': CHUNK, 'datanode.smallBlockBytes': 8 * KiB, 'scm.replication.intervalMs': 3_600_000 }
/** Packed (<= 8 KiB), one chunk, several chunks, several blocks of several chunks. */
const SIZES = [100, 3 * KiB, 8 * KiB, 40 * KiB, 200 * KiB + 7, 700 * KiB + 3, 5 * KiB + 1]

const test = suite('container copy')
let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: ReturnType<typeof cluster.client>
const data = new Map<string, Buffer>()
const infos = new Map<string, KeyInfo>()
let containerId: ContainerId
let holders: Datanode[]
let target: Datanode
/**
 * How this suite calls the datanodes' own routes (listContainers, listBlock, the export a copy
 * reads): as a fellow datanode does, with a datanode certificate when the cluster is secure.
 */
let peer: Transport

const details = (dn: Datanode): DatanodeDetails => ({ id: dn.id, address: dn.address })
const rpc = (dn: Datanode) => new RpcClient('Datanode', dn.address, { transport: peer })
const peerFetch = (address: string, path: string) => fetch(urlOf(peer, address, path), { dispatcher: peer.dispatcher() } as RequestInit)
const replicaOf = async (dn: Datanode, id: number) => (await rpc(dn).call<{ id: number; state: string; bcsid?: number; blockCount: number; usedBytes: number }[]>('listContainers', {})).find((c) => c.id === id)
/** Whether `dn` recorded its replica of `id` deleted (Volume.deletedContainers: what a replay of its pipeline's log checks). */
const deletionRecorded = (dn: Datanode, id: number) => (dn as unknown as { volumes: { deletedContainers: { get(id: number): unknown } }[] }).volumes.some((v) => v.deletedContainers.get(id) !== undefined)
/** Bytes as a socket would give them, piece by piece. */
async function* stream(pieces: Uint8Array[]): AsyncGenerator<Uint8Array> { yield* pieces }
const live = () => cluster.datanodes.filter((d): d is Datanode => d !== undefined)

/** Every block of every key in `containerId`, read from `dn`, equals the key's bytes. */
async function readsBack(dn: Datanode): Promise<number> {
  let blocks = 0
  for (const [key, info] of infos) {
    for (const l of info.locations) {
      if (l.blockId.containerId !== containerId) continue
      const got = await readChunk(details(dn), l.blockId, 0, l.length, undefined, l.token, adminTransport(cluster))
      assert.is(got.dataOffset, 0)
      assert.ok(Buffer.from(got.data.subarray(0, l.length)).equals(data.get(key)!.subarray(l.offset, l.offset + l.length)), `${key} block ${l.blockId.localId} from ${dn.address}`)
      blocks++
    }
  }
  return blocks
}

/** Nothing of container `id` on `dn`: no replica, no folder on any volume, an empty copy temp folder. */
function leavesNothing(dn: Datanode, id: number): void {
  for (const dir of dn.dirs) {
    assert.not.ok(existsSync(containerDir(dir, dn.clusterId, id as ContainerId)), `folder of container ${id} on ${dir}`)
    const tmp = copyTmpDir(dir, dn.clusterId)
    assert.equal(existsSync(tmp) ? readdirSync(tmp) : [], [], 'copy temp folder')
  }
}

async function exportBytes(dn: Datanode, id: number, query = ''): Promise<Buffer> {
  const res = await peerFetch(dn.address, `/container/${id}/export${query}`)
  assert.is(res.status, 200)
  return Buffer.from(await res.arrayBuffer())
}

/** The offset of the first data byte of tar entry `prefix*` in an archive. */
function entryData(archive: Buffer, prefix: string): number {
  for (let at = 0; at + 512 <= archive.length; at += 512) {
    if (archive.subarray(at, at + prefix.length).toString('latin1') === prefix && archive[at + 257] === 0x75) return at + 512
  }
  throw new Error(`no entry ${prefix}`)
}

/** The archive with its manifest made again from the entries it holds, as a source that read bad bytes would send it. */
function withManifestOf(archive: Buffer, more: { zeroFilled?: { localId: number; heldBytes: number }[] } = {}): Buffer {
  const files: { name: string; length: number; crc32c: number }[] = []
  let at = 0
  for (;;) {
    const name = archive.subarray(at, at + 100).toString('latin1').replace(/\0.*$/s, '')
    const size = parseInt(archive.subarray(at + 124, at + 135).toString('latin1'), 8)
    if (name === 'manifest.json') break
    files.push({ name, length: size, crc32c: crc32c(archive.subarray(at + 512, at + 512 + size)) })
    at += 512 + Math.ceil(size / 512) * 512
  }
  const manifest = Buffer.from(JSON.stringify({ version: 1, containerId, files, ...more }))
  return Buffer.concat([archive.subarray(0, at), tarHeader('manifest.json', manifest.length, Date.now()), manifest, tarPadding(manifest.length), TAR_END])
}

test.before(async () => {
  cluster = await startMiniCluster({ datanodes: 4, overrides })
  client = cluster.client({ chunkSizeBytes: CHUNK })
  peer = cluster.secure ? (await cluster.issueIdentity('datanode', 'copy-test-peer')).transport() : adminTransport(cluster)
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt')
  // Each size three times in a row: the SCM hands out its RATIS/THREE pipelines in turn, so each kind lands in each.
  for (const [i, size] of [...SIZES, ...SIZES, ...SIZES].map((_, j) => [j, SIZES[Math.floor(j / 3)]] as const)) {
    const key = `k${i}`
    data.set(key, randomBytes(size, 100 + i))
    infos.set(key, await client.putKey('vol', 'bkt', key, data.get(key)!))
  }
  // A container with packed blocks and blocks of several chunks (the one with most blocks), closed through the SCM.
  const blocks = new Map<number, number[]>()
  for (const info of infos.values()) for (const l of info.locations) blocks.set(l.blockId.containerId, [...(blocks.get(l.blockId.containerId) ?? []), l.length])
  const both = [...blocks].filter(([, ls]) => ls.some((n) => n <= 8 * KiB) && ls.some((n) => n > CHUNK))
  assert.ok(both.length > 0, `a container with packed and multi-chunk blocks: ${JSON.stringify([...blocks])}`)
  containerId = both.sort((a, b) => b[1].length - a[1].length)[0][0] as ContainerId
  const pipeline = [...infos.values()].flatMap((i) => i.locations).find((l) => l.blockId.containerId === containerId)!.pipeline
  holders = live().filter((d) => pipeline.nodes.some((n) => n.id === d.id))
  target = live().find((d) => !holders.includes(d))!
  assert.is(holders.length, 3)
  const lengths = [...infos.values()].flatMap((i) => i.locations).filter((l) => l.blockId.containerId === containerId).map((l) => l.length)
  assert.ok(lengths.some((n) => n <= 8 * KiB), 'the container holds a packed block')
  assert.ok(lengths.some((n) => n > CHUNK), 'the container holds a block of several chunks')
  await client.admin('closeContainer', { containerId })
  await until(`container ${containerId} CLOSED on its three datanodes`, async () => (await Promise.all(holders.map((d) => replicaOf(d, containerId)))).every((r) => r?.state === 'CLOSED'), 30_000, 50)
})

test.after(async () => {
  await cluster?.dispose()
})

test('the export route refuses an OPEN container and one not held', async () => {
  await client.putKey('vol', 'bkt', 'open-one', randomBytes(1000, 7))
  const info = await client.headKey('vol', 'bkt', 'open-one')
  const open = info.locations[0].blockId.containerId
  const holder = live().find((d) => info.locations[0].pipeline.nodes.some((n) => n.id === d.id))!
  const res = await peerFetch(holder.address, `/container/${open}/export`)
  assert.is(res.status, 409)
  assert.is((await res.json() as { code: string }).code, 'INVALID_CONTAINER_STATE')
  const missing = await peerFetch(target.address, `/container/${containerId}/export`)
  assert.is(missing.status, 404)
  await missing.body?.cancel()
})

test('importContainer() refuses a corrupt or cut archive and leaves nothing', async () => {
  const archive = await exportBytes(holders[0], containerId)
  const cases: [string, Buffer, string][] = []
  const flipped = (at: number) => { const b = Buffer.from(archive); b[at] ^= 0x40; return b }
  cases.push(['a flipped byte in a block file', flipped(entryData(archive, 'chunks/') + 1000), 'CHECKSUM_MISMATCH'])
  cases.push(['a flipped byte in a packed block', flipped(entryData(archive, 'metadata/packed-') + 10), 'CHECKSUM_MISMATCH'])
  // The seal is hex: another hex digit keeps it well-formed (a flipped bit could make it malformed, INVALID_ARGUMENT).
  const otherDigit = (at: number) => { const b = Buffer.from(archive); b[at] = b[at] === 0x30 ? 0x31 : 0x30; return b }
  cases.push(['a changed digit in the container file\'s seal', otherDigit(entryData(archive, `metadata/${containerId}.container`) + archive.subarray(entryData(archive, `metadata/${containerId}.container`)).indexOf('"checksum"') + 15), 'CHECKSUM_MISMATCH'])
  // Bytes a source read wrong (its disk rotted) go out under a manifest that agrees with them: only the chunk checksums tell.
  cases.push(['a block file bad at its source', withManifestOf(flipped(entryData(archive, 'chunks/') + 1000)), 'CHECKSUM_MISMATCH'])
  cases.push(['a packed block bad at its source', withManifestOf(flipped(entryData(archive, 'metadata/packed-') + 10)), 'CHECKSUM_MISMATCH'])
  cases.push(['an archive cut in a block file', archive.subarray(0, entryData(archive, 'chunks/') + 3000), 'INVALID_ARGUMENT'])
  cases.push(['an archive without its manifest', archive.subarray(0, entryData(archive, 'manifest.json') - 512), 'INVALID_ARGUMENT'])
  for (const [what, bytes, code] of cases) {
    // Pieces as a socket would give them.
    const pieces = Array.from({ length: Math.ceil(bytes.length / 10_000) }, (_, i) => bytes.subarray(i * 10_000, (i + 1) * 10_000))
    assert.is(await errorCode(target.copies.importContainer(containerId, stream(pieces))), code, what)
    assert.is(await replicaOf(target, containerId), undefined, what)
    leavesNothing(target, containerId)
  }
  // Copied as is (the SCM's asIs, when only corrupt replicas are left): the bad bytes of a
  // source are kept and the copy is UNHEALTHY; what is wrong with the archive itself is not taken.
  for (const [what, bytes] of [['block file', withManifestOf(flipped(entryData(archive, 'chunks/') + 1000))], ['packed block', withManifestOf(flipped(entryData(archive, 'metadata/packed-') + 10))]] as const) {
    const copy = await target.copies.importContainer(containerId, stream([bytes]), { asIs: true, from: 'the test' })
    assert.is(copy.state, 'UNHEALTHY', what)
    assert.match(copy.unhealthyReason ?? '', /^copied as is from the test: 1 blocks fail their checksums \(first \d+\)$/, what)
    assert.is((await replicaOf(target, containerId))?.state, 'UNHEALTHY', what)
    assert.ok(await target.copies.deleteContainer(containerId, false))
    leavesNothing(target, containerId)
  }
  assert.is(await errorCode(target.copies.importContainer(containerId, stream([flipped(entryData(archive, 'chunks/') + 1000)]), { asIs: true })), 'CHECKSUM_MISMATCH', 'as is, the manifest still holds')
  leavesNothing(target, containerId)
  // The same archive unharmed imports (then goes again, for the copy test below).
  const pieces = [archive.subarray(0, 777), archive.subarray(777)]
  await target.copies.importContainer(containerId, stream(pieces))
  assert.ok(await target.copies.deleteContainer(containerId, false))
  leavesNothing(target, containerId)
})

// Catches: a corrupt replica whose block file is missing or cut short never exported, so the
// copies made as is of the last replicas failed (and were planned again) for good; and zeros
// standing in for lost bytes taken as a healthy copy (a NONE checksum cannot tell them).
test('a replica with a block file missing and one cut short exports what it holds only as is; the copy is UNHEALTHY', async () => {
  const healthy = await exportBytes(holders[0], containerId)
  const copy = await target.copies.importContainer(containerId, stream([healthy]))
  const chunks = join(containerDir(target.dirs[copy.volume], target.clusterId, containerId), 'chunks')
  const files = readdirSync(chunks).sort()
  assert.ok(files.length >= 2, `two block files: ${files.join(', ')}`)
  const cut = join(chunks, files[0])
  const heldBytes = Math.floor(statSync(cut).size / 2)
  truncateSync(cut, heldBytes)
  rmSync(join(chunks, files[1]))
  // The archive's row says CLOSED: it goes before any block is read (and found lacking).
  const archive = await exportBytes(target, containerId, '?asIs=1')
  const plain = await peerFetch(target.address, `/container/${containerId}/export`)
  const read = await plain.arrayBuffer().then(() => 'whole', (err: Error) => err.message)
  assert.is.not(read, 'whole', 'without asIs the export fails')
  await until('the replica UNHEALTHY: its datanode checked the blocks the exports found lacking', async () => (await replicaOf(target, containerId))?.state === 'UNHEALTHY', 10_000, 50)
  assert.ok(await target.copies.deleteContainer(containerId, true))
  leavesNothing(target, containerId)
  assert.is(await errorCode(target.copies.importContainer(containerId, stream([archive]))), 'CHECKSUM_MISMATCH', 'zeros are taken only as is')
  leavesNothing(target, containerId)
  // A replicate as is tries first for a source that holds every byte.
  assert.is(await errorCode(target.copies.importContainer(containerId, stream([archive]), { asIs: true, refuseZeroFilled: true })), 'CHUNK_NOT_FOUND')
  leavesNothing(target, containerId)
  const asIs = await target.copies.importContainer(containerId, stream([archive]), { asIs: true })
  assert.is(asIs.state, 'UNHEALTHY')
  assert.match(asIs.unhealthyReason ?? '', /: 2 blocks fail their checksums/)
  assert.is(asIs.blockCount, copy.blockCount)
  // The zeros are not kept as data: the copy's files are as short as the source's.
  const copied = join(containerDir(target.dirs[asIs.volume], target.clusterId, containerId), 'chunks')
  assert.is(statSync(join(copied, files[0])).size, heldBytes, 'a block file cut short at the source is as short in the copy')
  assert.not.ok(existsSync(join(copied, files[1])), 'a block file missing at the source is missing in the copy')
  assert.ok(await target.copies.deleteContainer(containerId, false))
  leavesNothing(target, containerId)
  // A block listed zero-filled is corrupt even where its checksums pass (NONE, or bytes that were zeros).
  const zeroFilled = withManifestOf(healthy, { zeroFilled: [{ localId: Number(files[0].split('.')[0]), heldBytes: 1000 }] })
  assert.is(await errorCode(target.copies.importContainer(containerId, stream([zeroFilled]))), 'INVALID_ARGUMENT')
  leavesNothing(target, containerId)
  const listed = await target.copies.importContainer(containerId, stream([zeroFilled]), { asIs: true })
  assert.is(listed.state, 'UNHEALTHY')
  assert.match(listed.unhealthyReason ?? '', /: 1 blocks fail their checksums/)
  assert.is(statSync(join(containerDir(target.dirs[listed.volume], target.clusterId, containerId), 'chunks', files[0])).size, 1000)
  assert.ok(await target.copies.deleteContainer(containerId, false))
  // A packed block listed zero-filled keeps no bytes in the copy: a read of it fails there, as on its source.
  const small = [...infos.values()].flatMap((i) => i.locations).find((l) => l.blockId.containerId === containerId && l.length <= 8 * KiB)!
  await target.copies.importContainer(containerId, stream([withManifestOf(healthy, { zeroFilled: [{ localId: small.blockId.localId, heldBytes: 0 }] })]), { asIs: true })
  assert.ok(await errorCode(readChunk(details(target), small.blockId, 0, small.length, undefined, small.token, adminTransport(cluster))) !== 'OK', 'a read of the packed block fails')
  assert.ok(await target.copies.deleteContainer(containerId, false))
  leavesNothing(target, containerId)
})

test('replicateContainer copies a CLOSED container whole: state, bcsid, every block byte for byte, after a restart too', async () => {
  const source = await replicaOf(holders[0], containerId)
  // The first source is down: the copy goes on from the next.
  const gone: DatanodeDetails = { id: 'ffffffff-0000-0000-0000-000000000000' as DatanodeId, address: '127.0.0.1:1' }
  await target.command({ type: 'replicateContainer', containerId, sources: [gone, details(holders[0]), details(holders[1])] })
  await target.replication.idle()
  const copy = await replicaOf(target, containerId)
  assert.ok(copy !== undefined, 'the target holds the container')
  assert.is(copy.state, 'CLOSED')
  assert.is(copy.bcsid, source!.bcsid)
  assert.ok((copy.bcsid ?? 0) > 0)
  assert.is(copy.blockCount, source!.blockCount)
  assert.is(copy.usedBytes, source!.usedBytes)
  const blocks = await readsBack(target)
  assert.ok(blocks >= 5, `${blocks} blocks read`)
  const prom = await (await adminFetch(cluster, target.address, '/prom')).text()
  assert.match(prom, /^o3_datanode_container_imports_total\{service="datanode"\} 1$/m)
  assert.match(prom, new RegExp(`^o3_datanode_container_import_bytes_total\\{service="datanode"\\} ${copy.usedBytes}$`, 'm'))
  assert.match(prom, /^o3_datanode_container_import_failures_total\{service="datanode"\} 0$/m)
  // The SCM hears of it in a heartbeat.
  await until('the SCM lists the new replica', async () => (await client.admin<{ replicas: { datanodeId: string }[] }>('getContainer', { containerId })).replicas.some((r) => r.datanodeId === target.id), 15_000, 50)
  const i = cluster.datanodes.indexOf(target)
  await cluster.stopDatanode(i)
  target = await cluster.startDatanode(i)
  assert.is((await replicaOf(target, containerId))?.bcsid, source!.bcsid)
  assert.is(await readsBack(target), blocks)
})

test('importContainer() refuses a container held; a second replicate of it is dropped', async () => {
  const archive = await exportBytes(holders[1], containerId)
  assert.is(await errorCode(target.copies.importContainer(containerId, stream([archive]))), 'CONTAINER_EXISTS')
  assert.is(await errorCode(holders[2].copies.importContainer(containerId, stream([archive]))), 'CONTAINER_EXISTS')
  assert.not.ok(target.replication.add({ containerId, sources: [details(holders[0])] }))
  assert.is(await readsBack(target), await readsBack(holders[1]))
})

test('deleteContainer removes a replica, never an open one without force', async () => {
  const info = await client.headKey('vol', 'bkt', 'open-one')
  const open = info.locations[0].blockId.containerId
  const holder = live().find((d) => info.locations[0].pipeline.nodes.some((n) => n.id === d.id))!
  assert.is(await errorCode(holder.copies.deleteContainer(open as ContainerId, false)), 'INVALID_CONTAINER_STATE')
  assert.is(await errorCode(holder.command({ type: 'deleteContainer', containerId: open, force: false })), 'INVALID_CONTAINER_STATE')
  assert.is((await replicaOf(holder, open))?.state, 'OPEN')

  await target.command({ type: 'deleteContainer', containerId, force: false })
  assert.is(await replicaOf(target, containerId), undefined)
  assert.not.ok(deletionRecorded(target, containerId), 'an imported copy\'s pipeline log is not kept here: no deletion record')
  assert.is(await errorCode(rpc(target).call('listBlock', { containerId })), 'CONTAINER_NOT_FOUND')
  leavesNothing(target, containerId)
  const i = cluster.datanodes.indexOf(target)
  await cluster.stopDatanode(i)
  target = await cluster.startDatanode(i)
  assert.is(await replicaOf(target, containerId), undefined, 'gone after a restart')
  // Deleting what is not held is nothing.
  await target.command({ type: 'deleteContainer', containerId, force: true })
})

test('closeContainer with force turns a QUASI_CLOSED replica CLOSED', async () => {
  await client.createBucket('vol', 'one-bucket', { replication: 'RATIS/ONE' })
  const info = await client.putKey('vol', 'one-bucket', 'k', randomBytes(20 * KiB, 9))
  const l = info.locations[0]
  const dn = live().find((d) => d.id === l.pipeline.nodes[0].id)!
  // Its pipeline gone here, the open replica cannot close in step: QUASI_CLOSED.
  await dn.command({ type: 'closePipeline', pipelineId: l.pipeline.id })
  assert.is((await replicaOf(dn, l.blockId.containerId))?.state, 'QUASI_CLOSED')
  await dn.command({ type: 'closeContainer', containerId: l.blockId.containerId })
  assert.is((await replicaOf(dn, l.blockId.containerId))?.state, 'QUASI_CLOSED', 'a plain close leaves it')
  await dn.command({ type: 'closeContainer', containerId: l.blockId.containerId, force: true })
  assert.is((await replicaOf(dn, l.blockId.containerId))?.state, 'CLOSED')
  const file = JSON.parse(readFileSync(join(containerDir(dn.dirs[0], dn.clusterId, l.blockId.containerId), 'metadata', `${l.blockId.containerId}.container`), 'utf8')) as { state: string }
  assert.is(file.state, 'CLOSED')
})

test('start() rolls back an import a crash left and finishes a deletion', async () => {
  const i = cluster.datanodes.indexOf(target)
  const dir = target.dirs[0]
  const clusterId = target.clusterId
  await cluster.stopDatanode(i)
  // An import renamed into place but never recorded, and its temp folder.
  const stray = 987_654 as ContainerId
  mkdirSync(join(containerDir(dir, clusterId, stray), 'chunks'), { recursive: true })
  writeFileSync(join(containerDir(dir, clusterId, stray), 'chunks', '1.block'), 'x')
  mkdirSync(join(copyTmpDir(dir, clusterId), `import-${stray}-0badc0de`, 'rows'), { recursive: true })
  mkdirSync(join(copyTmpDir(dir, clusterId), 'unknown-leftover'), { recursive: true })
  target = await cluster.startDatanode(i)
  leavesNothing(target, stray)
})

test('importContainer() must leave the volume its reserve: refused DISK_FULL, nothing left', async () => {
  const archive = await exportBytes(holders[0], containerId)
  const i = cluster.datanodes.indexOf(target)
  await cluster.stopDatanode(i)
  target = await cluster.startDatanode(i, { 'datanode.volume.minFreeBytes': 2 ** 50 })
  let failure: O3Error | undefined
  await target.copies.importContainer(containerId, stream([archive])).catch((err: unknown) => { failure = err as O3Error })
  assert.is(failure?.code, 'DISK_FULL', failure?.message)
  assert.match(failure!.message, /free beyond its reserve \(datanode\.volume\.minFreeBytes\)/)
  assert.is(await replicaOf(target, containerId), undefined)
  leavesNothing(target, containerId)
})

// Catches: a deleted RATIS replica made again, empty and OPEN, by its pipeline's log (replayed
// at a restart): the SCM heard of a replica with nothing in it, and no copy could go there.
test('a replica deleted from a pipeline member stays deleted when its log replays; a copy made there later is kept', async () => {
  const member = holders[2]
  const i = cluster.datanodes.indexOf(member)
  const pipelineId = (await replicaOf(member, containerId) as { pipelineId?: string } | undefined)?.pipelineId
  assert.ok(pipelineId !== undefined && pipelineId !== '', 'the replica names its pipeline')
  await member.command({ type: 'deleteContainer', containerId, force: false })
  assert.is(await replicaOf(member, containerId), undefined)
  assert.ok(deletionRecorded(member, containerId), 'a member keeps the log: the deletion is recorded')
  type Group = { pipelineId: string; applied: number }
  const applied = async (dn: Datanode) => (await rpc(dn).call<Group[]>('listPipelines', {})).find((g) => g.pipelineId === pipelineId)?.applied ?? -1
  const before = Math.max(...await Promise.all(holders.slice(0, 2).map(applied)))
  assert.ok(before > 0, `the pipeline applied ${before} entries`)
  await cluster.stopDatanode(i)
  let restarted = await cluster.startDatanode(i)
  await until('the restarted member replayed its pipeline log', async () => await applied(restarted) >= before, 30_000, 50)
  assert.is(await replicaOf(restarted, containerId), undefined, 'not made again by the replay')
  leavesNothing(restarted, containerId)
  // A copy is what brings it back, and the log's entries leave that copy alone.
  await restarted.command({ type: 'replicateContainer', containerId, sources: [details(holders[0])] })
  await restarted.replication.idle()
  assert.is((await replicaOf(restarted, containerId))?.state, 'CLOSED')
  const blocks = await readsBack(holders[0])
  assert.is(await readsBack(restarted), blocks)
  await cluster.stopDatanode(i)
  restarted = await cluster.startDatanode(i)
  await until('the restarted member replayed its pipeline log', async () => await applied(restarted) >= before, 30_000, 50)
  assert.is((await replicaOf(restarted, containerId))?.state, 'CLOSED')
  assert.is(await readsBack(restarted), blocks)
  holders[2] = restarted
})

test.run()
