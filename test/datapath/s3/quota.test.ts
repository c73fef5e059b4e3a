/**
 * Goal: a bucket's quotas reach S3 clients as Ozone's gateway reports them (S3ErrorTable:
 * QuotaExceeded, 403): a PUT past the space quota, an UploadPart past it (unfinished uploads'
 * parts count against the bucket) and a new key past the namespace quota fail, an upload that
 * fits exactly succeeds, a refused write leaves nothing behind, and CreateBucket past the
 * s3v volume's quotas is refused alike. Method: a real gateway
 * over a mini cluster on loopback, @aws-sdk/client-s3 with one attempt per call; quotas set
 * with the native client on the bucket's OM record (volume s3v).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand,
} from '@aws-sdk/client-s3'
import { parseReplication } from '../../../core/wire.ts'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { errorOf, startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

let env: S3TestCluster
let s3: S3Client
let client: ReturnType<S3TestCluster['cluster']['client']>
let factor = 1

test.before(async () => {
  env = await startS3Cluster()
  s3 = s3Client(env, env.alice, { maxAttempts: 1 })
  client = env.cluster.client()
  await s3.send(new CreateBucketCommand({ Bucket: 'limited' }))
  factor = parseReplication((await client.getBucket('s3v', 'limited')).replication).factor
})

test.after(async () => {
  s3.destroy()
  await env.dispose()
})

const used = async () => (await client.getBucket('s3v', 'limited')).usedBytes

test('PutObject past the bucket\'s space quota answers 403 QuotaExceeded; one that fits exactly succeeds', async () => {
  await s3.send(new PutObjectCommand({ Bucket: 'limited', Key: 'first', Body: randomBytes(1000, 1) }))
  assert.is(await used(), 1000 * factor)
  await client.setBucketQuota('s3v', 'limited', { quotaBytes: 1500 * factor })
  const refused = await errorOf(s3.send(new PutObjectCommand({ Bucket: 'limited', Key: 'too-big', Body: randomBytes(501, 2) })))
  assert.equal([refused.name, refused.status], ['QuotaExceeded', 403])
  assert.is((await errorOf(s3.send(new GetObjectCommand({ Bucket: 'limited', Key: 'too-big' })))).name, 'NoSuchKey', 'nothing of the refused PUT is visible')
  assert.is(await used(), 1000 * factor)
  await s3.send(new PutObjectCommand({ Bucket: 'limited', Key: 'exact', Body: randomBytes(500, 3) }))
  assert.is(await used(), 1500 * factor)
  // An overwrite with fewer bytes releases the difference.
  await s3.send(new PutObjectCommand({ Bucket: 'limited', Key: 'first', Body: randomBytes(100, 4) }))
  assert.is(await used(), 600 * factor)
})

test('UploadPart past the quota answers QuotaExceeded: unfinished uploads count; completing one moves its bytes', async () => {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'limited', Key: 'multi' }))
  const part = await s3.send(new UploadPartCommand({ Bucket: 'limited', Key: 'multi', UploadId, PartNumber: 1, Body: randomBytes(800, 5) }))
  // 600 + 800 of 1500 used: a second part of 101 does not fit, nor does a PUT of 101.
  const refused = await errorOf(s3.send(new UploadPartCommand({ Bucket: 'limited', Key: 'multi', UploadId, PartNumber: 2, Body: randomBytes(101, 6) })))
  assert.equal([refused.name, refused.status], ['QuotaExceeded', 403])
  assert.is((await errorOf(s3.send(new PutObjectCommand({ Bucket: 'limited', Key: 'small', Body: randomBytes(101, 7) })))).name, 'QuotaExceeded')
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'limited', Key: 'multi', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }))
  assert.is(await used(), 1400 * factor)
  const body = await (await s3.send(new GetObjectCommand({ Bucket: 'limited', Key: 'multi' }))).Body!.transformToByteArray()
  assert.ok(Buffer.from(body).equals(randomBytes(800, 5)))
})

test('a new key past the namespace quota answers QuotaExceeded; overwriting an existing key does not', async () => {
  await client.setBucketQuota('s3v', 'limited', { quotaBytes: -1, quotaNamespace: 3 })
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'limited' }))
  assert.is(listed.KeyCount, 3)
  const refused = await errorOf(s3.send(new PutObjectCommand({ Bucket: 'limited', Key: 'fourth', Body: 'x' })))
  assert.equal([refused.name, refused.status], ['QuotaExceeded', 403])
  await s3.send(new PutObjectCommand({ Bucket: 'limited', Key: 'exact', Body: 'y' }))
  assert.is((await client.getBucket('s3v', 'limited')).usedNamespace, 3)
})

test('CreateBucket past the s3v volume\'s namespace quota, or without the space quota its volume\'s needs, answers QuotaExceeded', async () => {
  const buckets = (await client.getVolume('s3v')).usedNamespace!
  await client.setVolumeQuota('s3v', { quotaNamespace: buckets })
  const refused = await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'one-more' })))
  assert.equal([refused.name, refused.status], ['QuotaExceeded', 403])
  await client.setVolumeQuota('s3v', { quotaNamespace: -1 })
  await client.setBucketQuota('s3v', 'limited', { quotaBytes: 1024 * 1024 })
  await client.setVolumeQuota('s3v', { quotaBytes: 10 * 1024 * 1024 })
  assert.is((await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'one-more' })))).name, 'QuotaExceeded')
  await client.setVolumeQuota('s3v', { quotaBytes: -1 })
  await s3.send(new CreateBucketCommand({ Bucket: 'one-more' }))
})

test.run()
