/**
 * Goal: replicas are real and the data survives a restart; no path comes from user input.
 * Method: a real in-process cluster in a temp dir; read block files and LMDB state from disk,
 * stop everything, start on the same directory, read back; write hostile key names and list
 * every file under the data directory.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { KiB } from '../../core/limits.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import { randomBytes, startMiniCluster } from './mini-cluster.ts'

const dataDir = mkdtempSync(join(tmpdir(), 'o3-durable-'))
const overrides = { 'scm.block.sizeBytes': 256 * KiB, 'client.chunkSizeBytes': 64 * KiB, 'datanode.smallBlockBytes': 8 * KiB }

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? walk(p) : [p]
  })
}

test('every block of a RATIS/THREE key is on three datanodes\' disks', async () => {
  const cluster = await startMiniCluster({ dataDir, overrides })
  try {
    const client = cluster.client({ chunkSizeBytes: 64 * KiB })
    await client.createVolume('vol')
    await client.createBucket('vol', 'three', { replication: 'RATIS/THREE' })
    const data = randomBytes(600 * KiB, 5)
    const key = await client.putKey('vol', 'three', 'k', data)
    assert.is(key.locations.length, 3)
    for (const loc of key.locations) {
      let copies = 0
      for (const dn of cluster.datanodes) {
        const path = blockFile(join(dataDir, `datanode-${cluster.datanodes.indexOf(dn) + 1}`), dn!.clusterId, loc.blockId.containerId, loc.blockId.localId)
        if (!existsSync(path)) continue
        const bytes = readFileSync(path)
        assert.ok(bytes.equals(data.subarray(loc.offset, loc.offset + loc.length)), `replica on ${dn!.address} differs`)
        copies++
      }
      assert.is(copies, 3, `block ${loc.blockId.containerId}:${loc.blockId.localId}`)
    }
    // A small key is packed: no block file, yet three datanodes serve it.
    const small = await client.putKey('vol', 'three', 'small', randomBytes(100, 9))
    for (let i = 0; i < 3; i++) {
      const dn = cluster.datanodes[i]!
      assert.not.ok(existsSync(blockFile(join(dataDir, `datanode-${i + 1}`), dn.clusterId, small.locations[0].blockId.containerId, small.locations[0].blockId.localId)))
    }
    await client.putKey('vol', 'three', 'survivor', randomBytes(300 * KiB, 77))
  } finally {
    await cluster.stop()
  }
})

test('a stopped and restarted cluster reads every key back', async () => {
  const cluster = await startMiniCluster({ dataDir, overrides })
  try {
    const client = cluster.client({ chunkSizeBytes: 64 * KiB })
    assert.ok((await client.getKey('vol', 'three', 'k')).equals(randomBytes(600 * KiB, 5)))
    assert.ok((await client.getKey('vol', 'three', 'small')).equals(randomBytes(100, 9)))
    assert.ok((await client.getKey('vol', 'three', 'survivor')).equals(randomBytes(300 * KiB, 77)))
    // New writes after a restart get fresh ids: nothing collides with the old blocks.
    await client.putKey('vol', 'three', 'after', randomBytes(300 * KiB, 78))
    assert.ok((await client.getKey('vol', 'three', 'k')).equals(randomBytes(600 * KiB, 5)))
    assert.ok((await client.getKey('vol', 'three', 'after')).equals(randomBytes(300 * KiB, 78)))
  } finally {
    await cluster.stop()
  }
})

test('hostile key names store and read back, and nothing lands outside the data layout', async () => {
  const cluster = await startMiniCluster({ dataDir, overrides })
  try {
    const client = cluster.client({ chunkSizeBytes: 64 * KiB })
    const names = ['../../etc/x', 'a//b', '%2e%2e', '..', '/leading', 'emoji-\u{1F680}-\u{1F9EA}', 'x'.repeat(1024), 'é'.repeat(512), 'nul\u0000inside', 'back\\slash']
    for (const [i, name] of names.entries()) await client.putKey('vol', 'three', name, randomBytes(1000 + i, i))
    for (const [i, name] of names.entries()) assert.ok((await client.getKey('vol', 'three', name)).equals(randomBytes(1000 + i, i)), name)
    const listed = (await client.listKeys('vol', 'three')).keys.map((k) => k.name)
    for (const name of names) assert.ok(listed.includes(name), name)
    for (const file of walk(dataDir)) {
      const rel = relative(dataDir, file)
      const ok = /^(scm|om)\/ha\/raft\/(data|lock)\.mdb$/.test(rel)
        || /^(scm|om)\/ha\/state\/state\.mdb(-lock)?$/.test(rel)
        || /^(scm|om)\/ha\/state\/checkpoints\/checkpoint-\d+-\d+\.mdb$/.test(rel)
        || /^datanode-\d\/datanode\.id$/.test(rel)
        // Each service's hold on its directory while it runs (core/dir-lock.ts).
        || /^(scm|om|datanode-\d)\/in_use\.lock$/.test(rel)
        // A secure cluster's certificates and CA files (ServiceIdentity.obtain, the SCM's CA).
        || /^(om|s3g|datanode-\d)\/security\/(key|cert|ca)\.pem(\.next)?$/.test(rel)
        || /^scm\/ca\/(ca\.crt|bootstrap-token|admin-token)$/.test(rel)
        || /^datanode-\d\/o3\/CID-[0-9a-f-]+\/container\.db(-lock)?$/.test(rel)
        || /^datanode-\d\/o3\/CID-[0-9a-f-]+\/ratis\/[0-9a-f-]+\/(members\.json|diverged|log\/(data|lock)\.mdb)$/.test(rel)
        || /^datanode-\d\/o3\/CID-[0-9a-f-]+\/current\/containerDir\d+\/\d+\/(chunks\/\d+\.block|metadata\/\d+\.container)$/.test(rel)
      assert.ok(ok, `unexpected file ${rel}`)
    }
  } finally {
    await cluster.dispose()
  }
})

test('stopping the cluster under writes fails them cleanly, and what was committed stays', async () => {
  const cluster = await startMiniCluster({ dataDir, overrides })
  const client = cluster.client({ chunkSizeBytes: 64 * KiB })
  const writes = Array.from({ length: 24 }, (_, i) => client.putKey('vol', 'three', `busy-${i}`, randomBytes(200 * KiB, 300 + i)).then(() => true, () => false))
  await new Promise((r) => setTimeout(r, 30))
  await cluster.stop()
  const done = await Promise.all(writes)
  const again = await startMiniCluster({ dataDir, overrides })
  try {
    const c2 = again.client({ chunkSizeBytes: 64 * KiB })
    for (const [i, ok] of done.entries()) {
      if (ok) assert.ok((await c2.getKey('vol', 'three', `busy-${i}`)).equals(randomBytes(200 * KiB, 300 + i)), `busy-${i}`)
    }
    assert.ok((await c2.getKey('vol', 'three', 'k')).equals(randomBytes(600 * KiB, 5)))
  } finally {
    await again.stop()
  }
})

test.after(() => rmSync(dataDir, { recursive: true, force: true }))

test.run()
