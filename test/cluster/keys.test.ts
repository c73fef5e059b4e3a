/**
 * Goal: the seed's write and read paths on a real in-process cluster (SCM, OM, three
 * datanodes on loopback, LMDB and block files in a temp dir). Method: put keys of edge sizes,
 * read them back byte for byte and by range; overwrite, delete, rename, list; bad names.
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
  await client.createBucket('vol1', 'bkt')
  await client.createBucket('vol1', 'one', { replication: 'RATIS/ONE' })
})

test.after(async () => {
  await cluster.dispose()
})


for (const [name, size] of [['0 B', 0], ['1 B', 1], ['one chunk', CHUNK], ['one chunk + 1', CHUNK + 1], ['several blocks', 3 * BLOCK + 12345]] as const) {
  test(`putKey()/getKey() round-trips ${name} (RATIS/THREE and RATIS/ONE)`, async () => {
    const data = randomBytes(size, size + 7)
    for (const bucket of ['bkt', 'one']) {
      const info = await client.putKey('vol1', bucket, `k-${size}`, data)
      assert.is(info.size, size)
      const back = await client.getKey('vol1', bucket, `k-${size}`)
      assert.ok(back.equals(data), `${bucket}: bytes differ`)
    }
  })
}

test('createKey() streams a key of several blocks in odd-sized writes', async () => {
  const data = randomBytes(2 * BLOCK + 999, 3)
  const w = await client.createKey('vol1', 'bkt', 'streamed')
  for (let at = 0; at < data.length; at += 7777) w.write(data.subarray(at, at + 7777))
  w.end()
  const info = await w.result
  assert.is(info.size, data.length)
  assert.ok((await client.getKey('vol1', 'bkt', 'streamed')).equals(data))
  assert.is(info.locations.length, 3)
})

test('putKey() with many chunks per block commits blocks while later chunks are in flight', async () => {
  // 16 chunks of 16 KiB per 256 KiB block: putBlock runs for the first chunks while the
  // next ones are already on the datanodes, which must keep them for the next putBlock.
  const small = cluster.client({ chunkSizeBytes: 16 * KiB })
  const data = randomBytes(3 * BLOCK + 5 * 16 * KiB + 1, 21)
  for (const bucket of ['bkt', 'one']) {
    const info = await small.putKey('vol1', bucket, 'many-chunks', data)
    assert.is(info.locations.length, 4)
    assert.ok((await small.getKey('vol1', bucket, 'many-chunks')).equals(data), bucket)
  }
  const w = await small.createKey('vol1', 'bkt', 'many-chunks-streamed')
  for (let at = 0; at < data.length; at += 5000) w.write(data.subarray(at, at + 5000))
  w.end()
  await w.result
  assert.ok((await small.getKey('vol1', 'bkt', 'many-chunks-streamed')).equals(data))
})

test('readKey() serves ranges inside, across and at the ends of blocks', async () => {
  const data = randomBytes(3 * BLOCK + 5, 11)
  await client.putKey('vol1', 'bkt', 'ranged', data)
  for (const [offset, length] of [[0, 1], [CHUNK - 1, 2], [BLOCK - 3, 10], [BLOCK, BLOCK], [data.length - 1, 1], [100, 3 * BLOCK], [17, 0]]) {
    const back = await client.getKey('vol1', 'bkt', 'ranged', { offset, length })
    assert.ok(back.equals(data.subarray(offset, offset + length)), `range ${offset}+${length}`)
  }
  assert.is(await errorCode(client.getKey('vol1', 'bkt', 'ranged', { offset: data.length + 1 })), 'INVALID_ARGUMENT')
})

test('putKey() over an existing key replaces it; the old blocks go to the deleted table', async () => {
  await client.putKey('vol1', 'bkt', 'over', randomBytes(5000, 1))
  const second = randomBytes(7000, 2)
  await client.putKey('vol1', 'bkt', 'over', second)
  assert.ok((await client.getKey('vol1', 'bkt', 'over')).equals(second))
})

test('putKey() with ifNotExists: of two racing creates of one key exactly one commits, the other gets KEY_ALREADY_EXISTS', async () => {
  for (let round = 0; round < 3; round++) {
    const datas = [randomBytes(BLOCK + 1, 100 + round), randomBytes(BLOCK + 1, 200 + round)]
    const outcomes = await Promise.allSettled(datas.map((d) => client.putKey('vol1', 'bkt', `once-${round}`, d, { ifNotExists: true })))
    const won = outcomes.findIndex((o) => o.status === 'fulfilled')
    assert.is(outcomes.filter((o) => o.status === 'fulfilled').length, 1)
    const lost = outcomes[1 - won]
    assert.is(lost.status === 'rejected' && (lost.reason as O3Error).code, 'KEY_ALREADY_EXISTS')
    assert.ok((await client.getKey('vol1', 'bkt', `once-${round}`)).equals(datas[won]))
  }
  assert.is(await errorCode(client.putKey('vol1', 'bkt', 'once-0', randomBytes(10, 1), { ifNotExists: true })), 'KEY_ALREADY_EXISTS')
  await client.putKey('vol1', 'bkt', 'once-0', randomBytes(10, 1))
})

test('deleteKey() and renameKey() change the namespace', async () => {
  await client.putKey('vol1', 'bkt', 'del', randomBytes(10, 1))
  await client.deleteKey('vol1', 'bkt', 'del')
  assert.is(await errorCode(client.headKey('vol1', 'bkt', 'del')), 'KEY_NOT_FOUND')
  await client.putKey('vol1', 'bkt', 'from', randomBytes(10, 2))
  await client.putKey('vol1', 'bkt', 'taken', randomBytes(10, 3))
  assert.is(await errorCode(client.renameKey('vol1', 'bkt', 'from', 'taken')), 'KEY_ALREADY_EXISTS')
  await client.renameKey('vol1', 'bkt', 'from', 'to')
  assert.ok((await client.getKey('vol1', 'bkt', 'to')).equals(randomBytes(10, 2)))
  assert.is(await errorCode(client.headKey('vol1', 'bkt', 'from')), 'KEY_NOT_FOUND')
})

test('listKeys() filters by prefix and pages in UTF-8 byte order', async () => {
  await client.createBucket('vol1', 'list')
  const names = ['a/1', 'a/2', 'a/3', 'b', 'é', 'z', '\u{1F600}']
  for (const n of names) await client.putKey('vol1', 'list', n, randomBytes(3, 1))
  const all = await client.listKeys('vol1', 'list')
  assert.equal(all.keys.map((k) => k.name), [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))))
  assert.equal((await client.listKeys('vol1', 'list', { prefix: 'a/' })).keys.map((k) => k.name), ['a/1', 'a/2', 'a/3'])
  const page1 = await client.listKeys('vol1', 'list', { maxKeys: 2 })
  assert.is(page1.truncated, true)
  const page2 = await client.listKeys('vol1', 'list', { maxKeys: 2, startAfter: page1.nextStartAfter! })
  assert.equal(page2.keys.map((k) => k.name), ['a/3', 'b'])
})

test('unknown volume, bucket and key give typed errors; invalid names are rejected', async () => {
  assert.is(await errorCode(client.getKey('nope', 'bkt', 'k')), 'KEY_NOT_FOUND'.replace('KEY', 'VOLUME'))
  assert.is(await errorCode(client.getKey('vol1', 'nope', 'k')), 'BUCKET_NOT_FOUND')
  assert.is(await errorCode(client.getKey('vol1', 'bkt', 'nope')), 'KEY_NOT_FOUND')
  assert.is(await errorCode(client.createVolume('Bad_Name')), 'INVALID_VOLUME_NAME')
  assert.is(await errorCode(client.createVolume('ab')), 'INVALID_VOLUME_NAME')
  assert.is(await errorCode(client.createBucket('vol1', 'x..y')), 'INVALID_BUCKET_NAME')
  assert.is(await errorCode(client.putKey('vol1', 'bkt', 'x'.repeat(1025), randomBytes(1, 1))), 'INVALID_KEY_NAME')
  assert.is(await errorCode(client.putKey('vol1', 'bkt', '', randomBytes(1, 1))), 'INVALID_KEY_NAME')
  assert.is(await errorCode(client.createVolume('vol1')), 'VOLUME_ALREADY_EXISTS')
  assert.is(await errorCode(client.createBucket('vol1', 'bkt')), 'BUCKET_ALREADY_EXISTS')
  assert.is(await errorCode(client.deleteBucket('vol1', 'bkt')), 'BUCKET_NOT_EMPTY')
  assert.is(await errorCode(client.deleteVolume('vol1')), 'VOLUME_NOT_EMPTY')
})

test.run()
