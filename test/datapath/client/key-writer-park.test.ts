/**
 * Goal: KeyWriter.park() gives back every payload slab of a writer whose source went quiet,
 * and the key still comes out byte for byte, whatever was pending when it parked (part of a
 * chunk, less than one checksum window, nothing), across block boundaries, on one and three
 * replicas; and SlabPool.acquire() with a timeout fails UNAVAILABLE instead of waiting forever.
 * Method: a real in-process cluster with small chunks and blocks; writes of uneven sizes with
 * parks between them, then the key read back and compared.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import { KiB } from '../../../core/limits.ts'
import { SlabPool } from '../../../datapath/workers/index.ts'
import { randomBytes, startMiniCluster } from '../../cluster/mini-cluster.ts'

const CHUNK = 64 * KiB
const BLOCK = 4 * CHUNK
let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: ReturnType<typeof cluster.client>

test.before(async () => {
  cluster = await startMiniCluster({ overrides: { 'scm.block.sizeBytes': BLOCK, 'client.chunkSizeBytes': CHUNK, 'client.bytesPerChecksum': 16 * KiB } })
  client = cluster.client({ chunkSizeBytes: CHUNK })
  await client.createVolume('vol1')
  await client.createBucket('vol1', 'three')
  await client.createBucket('vol1', 'one', { replication: 'RATIS/ONE' })
})

test.after(async () => {
  await cluster.dispose()
})

test('park() between uneven writes holds no slab, and the key reads back whole', async () => {
  // Pieces that leave the pending chunk at: a few windows and a tail, under one window,
  // exactly one window, a whole chunk (nothing pending), and across block ends.
  const sizes = [40 * KiB + 123, 5, 16 * KiB - 128, CHUNK, 3 * CHUNK + 777, 1, BLOCK + 4321]
  for (const bucket of ['one', 'three']) {
    const data = randomBytes(sizes.reduce((a, b) => a + b, 0), sizes.length)
    const writer = await client.openKeyWriter('vol1', bucket, 'parked', { sizeBytes: data.length })
    let at = 0
    for (const size of sizes) {
      await writer.write(data.subarray(at, at + size))
      at += size
      await writer.park()
      assert.is(client.slabs.inUse, 0, `${bucket}: slabs held after park() at ${at}`)
      await writer.park()
    }
    const info = await writer.close()
    assert.is(info.size, data.length)
    assert.ok((await client.getKey('vol1', bucket, 'parked')).equals(data), `${bucket}: bytes differ`)
    assert.is(client.slabs.inUse, 0)
  }
})

test('park() then close() with only a tail under one window pending', async () => {
  const data = randomBytes(100, 3)
  const writer = await client.openKeyWriter('vol1', 'one', 'tail-only', { sizeBytes: data.length })
  await writer.write(data)
  await writer.park()
  await writer.close()
  assert.ok((await client.getKey('vol1', 'one', 'tail-only')).equals(data))
})

test('SlabPool.acquire() with a timeout fails UNAVAILABLE when no slab comes back, and serves waiters in order', async () => {
  const pool = new SlabPool(1024, 1)
  const held = await pool.acquire(50)
  const err = await pool.acquire(20).then(() => undefined, (e: unknown) => e)
  assert.instance(err, O3Error)
  assert.is((err as O3Error).code, 'UNAVAILABLE')
  assert.is(pool.waiting, 0)
  const next = pool.acquire(1000)
  assert.is(pool.waiting, 1)
  pool.release(held)
  assert.is(await next, held)
  assert.is(pool.inUse, 1)
})

test.run()
