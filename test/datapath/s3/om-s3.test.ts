/**
 * Goal: the OM RPCs the S3 gateway relies on: S3 secrets (create once, look up, revoke) and
 * commitMultipartKey (a key made of other keys' blocks, no bytes moved). Method: a mini
 * cluster; call the native client; read the composed key back byte for byte.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { KiB } from '../../../core/limits.ts'
import { randomBytes, startMiniCluster } from '../../cluster/mini-cluster.ts'
import { errorCode } from '../../helpers.ts'

let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: ReturnType<typeof cluster.client>

test.before(async () => {
  cluster = await startMiniCluster({ datanodes: 1, overrides: { 'client.chunkSizeBytes': 64 * KiB } })
  client = cluster.client({ chunkSizeBytes: 64 * KiB })
  await client.createVolume('vol1')
  await client.createBucket('vol1', 'bkt')
})

test.after(async () => { await cluster.dispose() })


test('getS3Secret() creates a key pair once; lookupS3Secret() finds it until revoked', async () => {
  const a = await client.getS3Secret('alice')
  assert.equal(await client.getS3Secret('alice'), a)
  assert.is.not((await client.getS3Secret('bob')).awsAccessKey, a.awsAccessKey)
  assert.equal(await client.lookupS3Secret(a.awsAccessKey), a)
  assert.equal(await client.revokeS3Secret('alice'), { revoked: 1 })
  assert.is(await errorCode(client.lookupS3Secret(a.awsAccessKey)), 'PERMISSION_DENIED')
  assert.is(await errorCode(client.getS3Secret('no/slash')), 'INVALID_ARGUMENT')
})

test('commitMultipartKey() concatenates the parts and removes them', async () => {
  const one = randomBytes(100 * KiB, 1), two = randomBytes(3 * KiB, 2)
  await client.putKey('vol1', 'bkt', 'p1', one)
  await client.putKey('vol1', 'bkt', 'p2', two)
  const key = await client.commitMultipartKey('vol1', 'bkt', 'whole', [{ volume: 'vol1', bucket: 'bkt', key: 'p1' }, { volume: 'vol1', bucket: 'bkt', key: 'p2' }], { etag: 'x' })
  assert.is(key.size, one.length + two.length)
  assert.ok((await client.getKey('vol1', 'bkt', 'whole')).equals(Buffer.concat([one, two])))
  assert.is(await errorCode(client.headKey('vol1', 'bkt', 'p1')), 'KEY_NOT_FOUND')
  const again = await client.commitMultipartKey('vol1', 'bkt', 'whole', [{ volume: 'vol1', bucket: 'bkt', key: 'whole' }], { tag: 'y' })
  assert.equal(again.metadata, { tag: 'y' })
  assert.ok((await client.getKey('vol1', 'bkt', 'whole')).equals(Buffer.concat([one, two])))
  assert.is((await client.getBucket('vol1', 'bkt')).keyCount, 1)
  assert.is(await errorCode(client.commitMultipartKey('vol1', 'bkt', 'x', [{ volume: 'vol1', bucket: 'bkt', key: 'gone' }], {})), 'KEY_NOT_FOUND')
})

test.run()
