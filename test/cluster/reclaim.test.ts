/**
 * Goal: a datanode's container counters are exact across a restart, and failed writes leave
 * nothing on the datanodes: blocks of aborted and expired open keys, and the block a writer
 * abandons when a datanode fails under it, lose their chunk files and block records; a
 * deletion outlives an SCM restart; old block files without a record go at a datanode's
 * start; and every committed key stays readable byte for byte.
 * Method: a real in-process cluster in a temp dir. Restart one datanode on its directories
 * and compare the container reports the SCM gets with the blocks of the committed keys.
 * Leave writes half done (abort, a silent writer, a datanode stopped mid-write), restart the
 * SCM while a datanode is down, plant a stray block file, and wait, bounded, until no
 * `.block` file on any data volume and no block record on any datanode is left that a
 * committed key does not reference. The expiry case runs on a second cluster with a short
 * `om.openKey.expireMs`, so that the other writes cannot expire under it.
 */
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KiB } from '../../core/limits.ts'
import type { KeyInfo } from '../../core/om-wire.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { blockIdString, type ContainerId, type LocalId } from '../../core/wire.ts'
import { StorageContainerManager } from '../../control/scm/index.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import type { O3Client } from '../../datapath/client/index.ts'
import { errorCode, until } from '../helpers.ts'
import { adminFetch, adminRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'

const CHUNK = 64 * KiB
const overrides = {
  'scm.block.sizeBytes': 256 * KiB, 'client.chunkSizeBytes': CHUNK, 'datanode.smallBlockBytes': 8 * KiB,
  'om.openKey.checkIntervalMs': 200, 'om.deletedBlocks.graceMs': 0,
}

type Cluster = Awaited<ReturnType<typeof startMiniCluster>>

/** Files under `dir`; deletion runs beside the walk, so what vanishes meanwhile is skipped. */
function walk(dir: string): string[] {
  if (!existsSync(dir)) return []
  let names: string[]
  try { names = readdirSync(dir) } catch { return [] }
  return names.flatMap((n) => {
    const p = join(dir, n)
    const s = statSync(p, { throwIfNoEntry: false })
    return s === undefined ? [] : s.isDirectory() ? walk(p) : [p]
  })
}

const sizeOf = (file: string) => statSync(file, { throwIfNoEntry: false })?.size ?? 0

/** Every committed key of the given buckets of volume `vol` (each holds fewer than a listing page). */
async function committedKeys(client: O3Client, buckets: string[]): Promise<KeyInfo[]> {
  const out: KeyInfo[] = []
  for (const bucket of buckets) out.push(...(await client.om.call<{ keys: KeyInfo[] }>('listKeys', { volume: 'vol', bucket })).keys)
  return out
}

/**
 * What the datanodes hold that no committed key references: `.block` files on every data
 * volume (running datanodes or not) and block records on the running datanodes.
 */
async function leftovers(cluster: Cluster, dataDir: string, client: O3Client, buckets: string[]): Promise<string[]> {
  const referenced = new Set<string>()
  for (const k of await committedKeys(client, buckets)) for (const l of k.locations) referenced.add(blockIdString(l.blockId))
  const out: string[] = []
  const clusterId = cluster.datanodes.find((dn) => dn !== undefined)!.clusterId
  for (let i = 0; i < cluster.datanodes.length; i++) {
    const dir = join(dataDir, `datanode-${i + 1}`)
    for (const file of walk(dir).filter((f) => f.endsWith('.block'))) {
      const m = /containerDir\d+\/(\d+)\/chunks\/(\d+)\.block$/.exec(file)
      assert.ok(m !== null, file)
      const id = `${m[1]}:${m[2]}`
      assert.is(file, blockFile(dir, clusterId, Number(m[1]) as ContainerId, Number(m[2]) as LocalId))
      if (!referenced.has(id)) out.push(`file ${id} on datanode-${i + 1}`)
    }
    const dn = cluster.datanodes[i]
    if (dn === undefined) continue
    const rpc = adminRpc(cluster, 'Datanode', dn.address)
    for (const c of await rpc.call<{ id: number }[]>('listContainers', {})) {
      for (const b of await rpc.call<{ localId: number }[]>('listBlock', { containerId: c.id })) {
        const id = `${c.id}:${b.localId}`
        if (!referenced.has(id)) out.push(`record ${id} on datanode-${i + 1}`)
      }
    }
  }
  return out
}

/** Polls `leftovers` until it is empty; fails naming what is still there. */
async function untilReclaimed(cluster: Cluster, dataDir: string, client: O3Client, buckets: string[]): Promise<void> {
  let last: string[] = []
  const end = Date.now() + 30_000
  for (;;) {
    last = await leftovers(cluster, dataDir, client, buckets)
    if (last.length === 0) return
    if (Date.now() > end) assert.unreachable(`still on the datanodes after 30 s: ${last.join(', ')}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Waits until `n` more unreferenced `.block` files than `before` are on disk, each at least `bytes` long. */
async function untilWritten(dataDir: string, before: Set<string>, n: number, bytes: number): Promise<string[]> {
  return until(`${n} new block files of ${bytes} bytes`, async () => {
    const fresh = walk(dataDir).filter((f) => f.endsWith('.block') && !before.has(f) && sizeOf(f) >= bytes)
    return fresh.length >= n ? fresh : undefined
  }, 20_000, 50)
}

const blockFiles = (dataDir: string) => new Set(walk(dataDir).filter((f) => f.endsWith('.block')))

const dataDir = mkdtempSync(join(tmpdir(), 'o3-reclaim-'))
let cluster: Cluster
let client: O3Client
const written = new Map<string, Buffer>()

const test = suite('counters and failed writes')

test.before(async () => {
  cluster = await startMiniCluster({ dataDir, overrides })
  client = cluster.client({ chunkSizeBytes: CHUNK })
  await client.createVolume('vol')
  await client.createBucket('vol', 'three', { replication: 'RATIS/THREE' })
  await client.createBucket('vol', 'one', { replication: 'RATIS/ONE' })
})

test.after(async () => {
  await cluster?.dispose()
  rmSync(dataDir, { recursive: true, force: true })
})

async function put(bucket: string, key: string, data: Buffer): Promise<KeyInfo> {
  written.set(`${bucket}/${key}`, data)
  return client.putKey('vol', bucket, key, data)
}

async function assertReadable(): Promise<void> {
  for (const [path, data] of written) {
    const [bucket, key] = path.split('/')
    assert.ok((await client.getKey('vol', bucket, key)).equals(data), `${path} reads back`)
  }
}

interface ReplicaRow { datanodeId: string; blockCount: number; usedBytes: number; reportedAtMs: number }

test('a restarted datanode reports the blockCount and usedBytes its containers hold', async () => {
  // A deleted key's blocks must leave the counters too. The deletion runs first, so that the
  // writes after it are the last change the datanodes see before the restart.
  const gone = await client.putKey('vol', 'three', 'gone', randomBytes(200 * KiB, 4))
  await client.deleteKey('vol', 'three', 'gone')
  await until('the deleted key\'s blocks gone from every datanode', async () => {
    for (const dn of cluster.datanodes) {
      const rpc = adminRpc(cluster, 'Datanode', dn!.address)
      for (const l of gone.locations) {
        const listed = await rpc.call<{ localId: number }[]>('listBlock', { containerId: l.blockId.containerId })
        if (listed.some((b) => b.localId === l.blockId.localId)) return undefined
      }
    }
    return true
  }, 20_000, 50)
  const keys = [
    await put('three', 'big', randomBytes(600 * KiB, 1)), // three blocks: 256 + 256 + 88 KiB
    await put('three', 'small', randomBytes(100, 2)), // packed inline in LMDB
    await put('three', 'mid', randomBytes(300 * KiB, 3)),
  ]
  const expected = new Map<number, { blockCount: number; usedBytes: number }>()
  for (const k of keys) {
    for (const l of k.locations) {
      const e = expected.get(l.blockId.containerId) ?? { blockCount: 0, usedBytes: 0 }
      expected.set(l.blockId.containerId, { blockCount: e.blockCount + 1, usedBytes: e.usedBytes + l.length })
    }
  }
  const scm = adminRpc(cluster, 'SCM', cluster.scmAddress)
  const replicas = async (id: number) => (await scm.call<{ replicas: ReplicaRow[] }>('getContainer', { containerId: id })).replicas
  const counts = (r: ReplicaRow) => ({ blockCount: r.blockCount, usedBytes: r.usedBytes })
  // Before the restart: every replica reports what the keys hold (the deletion has run).
  for (const [id, want] of expected) {
    await until(`container ${id} reported with ${want.blockCount} blocks, ${want.usedBytes} bytes`, async () => {
      const rs = await replicas(id)
      return rs.length === 3 && rs.every((r) => r.blockCount === want.blockCount && r.usedBytes === want.usedBytes) ? true : undefined
    }, 20_000, 50)
  }

  const dn = cluster.datanodes[0]!
  await cluster.stopDatanode(0)
  const restartedAtMs = Date.now()
  await cluster.startDatanode(0)
  for (const [id, want] of expected) {
    const r = await until(`a report of container ${id} from the restarted datanode`, async () => {
      const mine = (await replicas(id)).find((x) => x.datanodeId === dn.id)
      return mine !== undefined && mine.reportedAtMs > restartedAtMs ? mine : undefined
    }, 20_000, 50)
    assert.equal(counts(r), want, `container ${id} as the SCM sees it after the restart`)
  }
  // The datanode's own view agrees.
  const listed = await adminRpc(cluster, 'Datanode', cluster.datanodes[0]!.address).call<{ id: number; blockCount: number; usedBytes: number }[]>('listContainers', {})
  for (const [id, want] of expected) {
    const c = listed.find((x) => x.id === id)
    assert.ok(c !== undefined)
    assert.equal({ blockCount: c.blockCount, usedBytes: c.usedBytes }, want)
  }
  await assertReadable()
})

test('an aborted writer leaves no block file and no block record behind', async () => {
  const before = blockFiles(dataDir)
  const writer = await client.openKeyWriter('vol', 'three', 'aborted')
  // Five chunks: the first block (four) gets a putBlock when the writer moves on, the second
  // holds one chunk that never gets one.
  await writer.write(randomBytes(5 * CHUNK, 10))
  // Three replicas of each of the two blocks are on disk before the writer gives up.
  await untilWritten(dataDir, before, 6, CHUNK)
  await writer.abort()
  await untilReclaimed(cluster, dataDir, client, ['three', 'one'])
  await assertReadable()
})

test('the block a writer abandons after a datanode failure is deleted once the key commits', async () => {
  const before = blockFiles(dataDir)
  const writer = await client.openKeyWriter('vol', 'one', 'rewritten')
  const data = randomBytes(4 * CHUNK, 20)
  // Two chunks, fewer than a putBlock waits for: the block has chunk files and no record.
  await writer.write(data.subarray(0, 2 * CHUNK))
  const [file] = await untilWritten(dataDir, before, 1, 2 * CHUNK)
  const index = cluster.datanodes.findIndex((_, i) => file.startsWith(join(dataDir, `datanode-${i + 1}`) + '/'))
  assert.ok(index >= 0)
  // The datanode goes away under the writer: it excludes it and rewrites to a new block.
  await cluster.stopDatanode(index)
  await writer.write(data.subarray(2 * CHUNK))
  const key = await writer.close()
  written.set('one/rewritten', data)
  assert.ok(!key.locations.some((l) => file.endsWith(`/${l.blockId.localId}.block`)), 'the abandoned block is not in the key')
  // Back on its directories, the datanode gets the deletion the SCM kept for it.
  await cluster.startDatanode(index)
  await untilReclaimed(cluster, dataDir, client, ['three', 'one'])
  await assertReadable()
})

test('a deletion outlives an SCM restart and reaches a datanode that was down', async () => {
  const key = await client.putKey('vol', 'one', 'late', randomBytes(100 * KiB, 40))
  const holder = key.locations[0].pipeline.nodes[0].id
  const index = cluster.datanodes.findIndex((dn) => dn?.id === holder)
  assert.ok(index >= 0)
  const file = blockFile(join(dataDir, `datanode-${index + 1}`), cluster.datanodes[index]!.clusterId, key.locations[0].blockId.containerId, key.locations[0].blockId.localId)
  assert.ok(existsSync(file))
  await cluster.stopDatanode(index)
  await client.deleteKey('vol', 'one', 'late')
  // The OM has handed the blocks to the SCM (its deleted table is empty)...
  await until('the OM to hand the deleted blocks to the SCM', async () => {
    const prom = await (await adminFetch(cluster, cluster.omAddress, '/prom')).text()
    return /^o3_om_deleted_pending\{[^}]*\} 0$/m.test(prom) ? true : undefined
  }, 20_000, 50)
  // ...and the SCM restarts on the same port and directory before the datanode is back.
  const port = cluster.scm.port
  await cluster.scm.stop()
  cluster.scm = new StorageContainerManager({ config: cluster.config, port })
  await cluster.scm.start()
  await cluster.startDatanode(index)
  await cluster.waitOutOfSafeMode()
  await until(`block file ${file} deleted`, async () => (existsSync(file) ? undefined : true), 20_000, 50)
  await untilReclaimed(cluster, dataDir, client, ['three', 'one'])
  await assertReadable()
})

test('a restarted datanode removes old block files that have no block record', async () => {
  const key = await client.headKey('vol', 'three', 'big')
  const { containerId, localId } = key.locations[0].blockId
  const dn = cluster.datanodes[1]!
  const dir = join(dataDir, 'datanode-2')
  const committed = blockFile(dir, dn.clusterId, containerId, localId)
  // What a lost deletion, or a write from before deletions reached uncommitted blocks, left.
  const orphan = blockFile(dir, dn.clusterId, containerId, 999_999 as LocalId)
  // Only a closed container's files are swept (an open one's may belong to entries its
  // pipeline's log replays): closed here, not left to what earlier tests' outages did.
  const scm = adminRpc(cluster, 'SCM', cluster.scmAddress)
  await scm.call('closeContainer', { containerId })
  await until(`container ${containerId} CLOSED on datanode-2`, async () => {
    const rs = (await scm.call<{ replicas: { datanodeId: string; state: string }[] }>('getContainer', { containerId })).replicas
    return rs.some((r) => r.datanodeId === dn.id && r.state === 'CLOSED') ? true : undefined
  }, 20_000, 50)
  await cluster.stopDatanode(1)
  copyFileSync(committed, orphan)
  const past = new Date(Date.now() - 60_000)
  utimesSync(orphan, past, past)
  await cluster.startDatanode(1)
  assert.not.ok(existsSync(orphan), 'the file without a record is gone')
  assert.ok(existsSync(committed), 'the committed block stays')
  await untilReclaimed(cluster, dataDir, client, ['three', 'one'])
  await assertReadable()
})

test.run()

// A second cluster: here open keys expire after five seconds, too short for the writer the
// datanode restart above holds open. The silent writers' chunks are on disk well before that.
const expiry = suite('expiry')

expiry('open keys that expire leave no block file and no block record behind', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'o3-reclaim-expiry-'))
  const short = await startMiniCluster({ dataDir: dir, overrides: { ...overrides, 'om.openKey.expireMs': 5000 } })
  try {
    const c = short.client({ chunkSizeBytes: CHUNK })
    await c.createVolume('vol')
    await c.createBucket('vol', 'three', { replication: 'RATIS/THREE' })
    const kept = randomBytes(300 * KiB, 30)
    await c.putKey('vol', 'three', 'kept', kept)
    const before = blockFiles(dir)
    // Writers that go silent (a crashed client): one with a committed block, one without.
    const silent = [await c.openKeyWriter('vol', 'three', 'silent-1'), await c.openKeyWriter('vol', 'three', 'silent-2')]
    await silent[0].write(randomBytes(5 * CHUNK, 31))
    await silent[1].write(randomBytes(2 * CHUNK, 32))
    await untilWritten(dir, before, 9, CHUNK)
    await untilReclaimed(short, dir, c, ['three'])
    // The writers wake up and go on. Their blocks are deleted: the datanodes refuse the
    // chunks and putBlocks rather than bring them back, and the commits fail.
    for (const [i, w] of silent.entries()) {
      const code = await errorCode((async () => { await w.write(randomBytes(2 * CHUNK, 33 + i)); await w.close() })())
      assert.is.not(code, 'OK', `late writer ${i + 1}`)
      await w.abort()
    }
    assert.equal(await leftovers(short, dir, c, ['three']), [])
    assert.is((await c.om.call<{ keys: KeyInfo[] }>('listKeys', { volume: 'vol', bucket: 'three' })).keys.length, 1)
    assert.ok((await c.getKey('vol', 'three', 'kept')).equals(kept))
  } finally {
    await short.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

expiry.run()
