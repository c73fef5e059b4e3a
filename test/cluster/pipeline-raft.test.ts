/**
 * Goal: a RATIS/THREE pipeline is a Raft group that survives one datanode (issue 12): with a
 * follower stopped, keys keep being written on the same pipeline and read back; the follower,
 * started again, catches up from the leader's log and its block files match the others' byte
 * for byte; with the leader stopped, the others elect a new one and writes go on.
 * Method: a real in-process cluster of three datanodes (real HTTP, LMDB, files); the
 * pipeline's leader and followers from each datanode's listPipelines; block files compared
 * by SHA-256 across the three data directories.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KiB, MiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { KeyInfo } from '../../core/om-wire.ts'
import type { PipelineReport } from '../../core/wire.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import { adminFetch, adminRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'

/** A liveness bound for catching up and electing, far above an honest wait. */
const WAIT_MS = 30_000

type Described = PipelineReport & { replication: string; members: { id: string; address: string }[]; leader: boolean }
type Cluster = Awaited<ReturnType<typeof startMiniCluster>>

async function groupsOn(cluster: Cluster, address: string): Promise<Described[]> {
  return await adminRpc(cluster, 'Datanode', address).call<Described[]>('listPipelines', {})
}

/** The RATIS/THREE group and the index in cluster.datanodes of its leader, once one leads. */
async function threeGroup(cluster: Cluster): Promise<{ id: string; leader: number; followers: number[] }> {
  const until = Date.now() + WAIT_MS
  for (;;) {
    for (const [i, dn] of cluster.datanodes.entries()) {
      if (dn === undefined) continue
      const g = (await groupsOn(cluster, dn.address).catch(() => [])).find((x) => x.replication === 'RATIS/THREE' && x.leader)
      if (g !== undefined) return { id: g.pipelineId, leader: i, followers: [0, 1, 2].filter((j) => j !== i) }
    }
    if (Date.now() > until) throw new Error('no RATIS/THREE group elected a leader')
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function waitCaughtUp(cluster: Cluster, pipelineId: string, node: number, leader: number): Promise<void> {
  const until = Date.now() + WAIT_MS
  for (;;) {
    const mine = (await groupsOn(cluster, cluster.datanodes[node]!.address)).find((g) => g.pipelineId === pipelineId)
    const lead = (await groupsOn(cluster, cluster.datanodes[leader]!.address)).find((g) => g.pipelineId === pipelineId)
    if (mine !== undefined && lead !== undefined && mine.applied >= lead.applied && !mine.diverged) return
    if (Date.now() > until) throw new Error(`datanode ${node} did not catch up: applied ${mine?.applied} of ${lead?.applied}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function fileHash(dataDir: string, cluster: Cluster, node: number, loc: KeyInfo['locations'][number]): string | undefined {
  const path = blockFile(join(dataDir, `datanode-${node + 1}`), cluster.datanodes[node]!.clusterId, loc.blockId.containerId, loc.blockId.localId)
  return existsSync(path) ? createHash('sha256').update(readFileSync(path)).digest('hex') : undefined
}

// Nodes go STALE (and their pipelines close) only well after the test's outages.
const overrides = { 'scm.heartbeat.staleMs': 60_000, 'scm.heartbeat.deadMs': 120_000, 'scm.block.sizeBytes': 4 * MiB, 'client.chunkSizeBytes': MiB, 'datanode.smallBlockBytes': 8 * KiB }
const sizes = [4 * KiB, 100 * KiB, 3 * MiB, 9 * MiB + 7]

test('with a follower stopped the pipeline takes writes; restarted, it catches up byte for byte', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'o3-pipeline-'))
  const cluster = await startMiniCluster({ dataDir, overrides })
  try {
    await cluster.waitOutOfSafeMode()
    const client = cluster.client({ chunkSizeBytes: MiB })
    await client.createVolume('vol')
    await client.createBucket('vol', 'three', { replication: 'RATIS/THREE' })
    const group = await threeGroup(cluster)
    const down = group.followers[0]
    await cluster.stopDatanode(down)
    const written = new Map<string, { data: Buffer; key: KeyInfo }>()
    for (const [i, size] of sizes.entries()) {
      const data = randomBytes(size, i + 1)
      const key = await client.putKey('vol', 'three', `k${i}`, data)
      assert.ok(key.locations.every((l) => l.pipeline.id === group.id), 'the key went to the same pipeline')
      written.set(`k${i}`, { data, key })
    }
    for (const [name, w] of written) assert.ok(Buffer.compare(await client.getKey('vol', 'three', name), w.data) === 0, `${name} reads back`)
    await cluster.startDatanode(down)
    await waitCaughtUp(cluster, group.id, down, group.leader)
    for (const [name, w] of written) {
      for (const loc of w.key.locations) {
        if (loc.length <= 8 * KiB) continue // packed in LMDB, no block file
        const hashes = [0, 1, 2].map((n) => fileHash(dataDir, cluster, n, loc))
        assert.ok(hashes[0] !== undefined, `${name}: block file on datanode 1`)
        assert.equal(hashes, [hashes[0], hashes[0], hashes[0]], `${name}: block ${loc.blockId.containerId}:${loc.blockId.localId} is the same on every replica`)
      }
    }
  } finally {
    await cluster.dispose()
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test('with the leader stopped the others elect a new one and writes go on', async () => {
  const cluster = await startMiniCluster({ overrides })
  try {
    await cluster.waitOutOfSafeMode()
    const client = cluster.client({ chunkSizeBytes: MiB })
    await client.createVolume('vol')
    await client.createBucket('vol', 'three', { replication: 'RATIS/THREE' })
    const before = randomBytes(2 * MiB, 9)
    await client.putKey('vol', 'three', 'before', before)
    const group = await threeGroup(cluster)
    await cluster.stopDatanode(group.leader)
    const after = randomBytes(5 * MiB, 10)
    await client.putKey('vol', 'three', 'after', after)
    const next = await threeGroup(cluster)
    assert.is(next.id, group.id, 'the same pipeline')
    assert.is.not(next.leader, group.leader, 'a new leader')
    assert.ok(Buffer.compare(await client.getKey('vol', 'three', 'before'), before) === 0)
    assert.ok(Buffer.compare(await client.getKey('vol', 'three', 'after'), after) === 0)
  } finally {
    await cluster.dispose()
  }
})

test.run()
