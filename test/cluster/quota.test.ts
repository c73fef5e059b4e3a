/**
 * Goal: quotas hold exactly under concurrent writers (issue 11): on a real in-process cluster
 * (SCM, OM, three datanodes on loopback, LMDB and block files in a temp dir), writers racing
 * for a bucket's last bytes or last key names never overshoot it, whoever wins. Method: start
 * more writers than the quota has room for, all at once (every one opens before any commits,
 * so that the check that decides is commitKey's, in apply); count who won, who got
 * QUOTA_EXCEEDED, and compare the bucket's usage with the keys that exist and read back.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../core/errors.ts'
import { KiB } from '../../core/limits.ts'
import { randomBytes, startMiniCluster } from './mini-cluster.ts'
import { errorCode } from '../helpers.ts'

const CHUNK = 64 * KiB
const BLOCK = 4 * CHUNK
let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: ReturnType<typeof cluster.client>

test.before(async () => {
  cluster = await startMiniCluster({ overrides: { 'scm.block.sizeBytes': BLOCK, 'client.chunkSizeBytes': CHUNK } })
  client = cluster.client({ chunkSizeBytes: CHUNK })
  await client.createVolume('vol1')
})

test.after(async () => {
  await cluster.dispose()
})

/** Runs every writer at once; answers the names that committed and the codes of those that failed. */
async function race(writers: { key: string; data: Buffer }[], bucket: string): Promise<{ won: string[]; codes: string[] }> {
  // Opened first, all of them, without a declared size: nothing refuses a writer before its commit.
  const open = await Promise.all(writers.map(async (w) => ({ ...w, writer: await client.createKey('vol1', bucket, w.key) })))
  const settled = await Promise.allSettled(open.map(async (w) => {
    w.writer.end(w.data)
    return await w.writer.result
  }))
  const won = open.filter((_, i) => settled[i].status === 'fulfilled').map((w) => w.key)
  const codes = settled.flatMap((s) => (s.status === 'rejected' ? [(s.reason as O3Error).code] : []))
  return { won, codes }
}

test('of 12 writers racing for room for 5 keys (RATIS/THREE, replicated bytes), exactly 5 commit', async () => {
  const size = CHUNK + 1000
  // Room for five keys of `size` in three replicas, and not one byte more than 5.5 keys.
  const quotaBytes = Math.floor(5.5 * 3 * size)
  await client.createBucket('vol1', 'space', { replication: 'RATIS/THREE', quotaBytes })
  const writers = Array.from({ length: 12 }, (_, i) => ({ key: `k${i}`, data: randomBytes(size, i + 1) }))
  const { won, codes } = await race(writers, 'space')
  assert.is(won.length, 5, `winners: ${won.join(' ')}`)
  assert.equal(codes, Array(7).fill('QUOTA_EXCEEDED'))
  const b = await client.getBucket('vol1', 'space')
  assert.equal([b.usedBytes, b.usedNamespace], [5 * 3 * size, 5])
  const listed = await client.listKeys('vol1', 'space')
  assert.equal(listed.keys.map((k) => k.name).sort(), [...won].sort())
  for (const name of won) assert.ok((await client.getKey('vol1', 'space', name)).equals(writers.find((w) => w.key === name)!.data), `${name} reads back`)
  // Deleting one makes room for exactly one more.
  await client.deleteKey('vol1', 'space', won[0])
  await client.putKey('vol1', 'space', 'after-delete', randomBytes(size, 99))
  assert.is(await errorCode(client.putKey('vol1', 'space', 'one-too-many', randomBytes(size, 98))), 'QUOTA_EXCEEDED')
  assert.is((await client.getBucket('vol1', 'space')).usedBytes, 5 * 3 * size)
})

test('of 10 writers racing for a namespace quota of 4 keys, exactly 4 commit; overwrites still work', async () => {
  await client.createBucket('vol1', 'names', { replication: 'RATIS/ONE', quotaNamespace: 4 })
  const writers = Array.from({ length: 10 }, (_, i) => ({ key: `n${i}`, data: randomBytes(1000 + i, i + 50) }))
  const { won, codes } = await race(writers, 'names')
  assert.is(won.length, 4, `winners: ${won.join(' ')}`)
  assert.equal(codes, Array(6).fill('QUOTA_EXCEEDED'))
  const b = await client.getBucket('vol1', 'names')
  assert.is(b.usedNamespace, 4)
  assert.is(b.usedBytes, won.reduce((n, k) => n + writers.find((w) => w.key === k)!.data.length, 0))
  await client.putKey('vol1', 'names', won[0], randomBytes(10, 1))
  assert.is((await client.getBucket('vol1', 'names')).usedNamespace, 4)
})

test('setBucketQuota refuses a quota below usage; raising it lets the refused writers in', async () => {
  const used = (await client.getBucket('vol1', 'space')).usedBytes
  assert.is(await errorCode(client.setBucketQuota('vol1', 'space', { quotaBytes: used - 1 })), 'QUOTA_ERROR')
  await client.setBucketQuota('vol1', 'space', { quotaBytes: -1 })
  await client.putKey('vol1', 'space', 'unlimited', randomBytes(3 * BLOCK, 7))
  assert.is((await client.getBucket('vol1', 'space')).usedBytes, used + 3 * 3 * BLOCK)
  const v = await client.getVolume('vol1')
  assert.equal([v.usedNamespace, v.quotaNamespace], [2, -1])
  assert.is(await errorCode(client.setVolumeQuota('vol1', { quotaNamespace: 1 })), 'QUOTA_EXCEEDED')
})

test.run()
