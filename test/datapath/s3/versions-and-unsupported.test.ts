/**
 * Goal: what real clients found taken and ignored is refused or honoured instead. A version
 * id other than `null` (versioning is never enabled here) is InvalidArgument on every object
 * call and in a DeleteObjects entry, and deletes or reads nothing (it used to delete the live
 * object); server-side encryption, SSE-C and object lock headers answer NotImplemented and
 * store nothing; a copy onto itself that names a storage class or a new checksum algorithm is
 * accepted, as S3 accepts it; a 503's O3 cause reaches the gateway's log. And the small
 * departures they showed: a continuation token that is not one is InvalidArgument, S3's
 * reserved bucket names are InvalidBucketName, CompleteMultipartUpload's Location is a URL,
 * NoSuchKey names the key.
 * Method: @aws-sdk/client-s3 (one attempt per call) against a real gateway over a mini cluster.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand, DeleteObjectCommand, DeleteObjectsCommand,
  CopyObjectCommand, CreateMultipartUploadCommand, GetObjectTaggingCommand, HeadBucketCommand, ListObjectsV2Command, UploadPartCommand,
  CompleteMultipartUploadCommand,
} from '@aws-sdk/client-s3'
import { S3_VOLUME } from '../../../datapath/s3/index.ts'
import { errorOf, signedRequest, type S3TestCluster, startWithBucket, stopWithBucket } from './s3-cluster.ts'

let env: S3TestCluster
let s3: S3Client
const B = 'versions-unsupported'
const BODY = 'live bytes that must survive'
const md5Hex = (s: string) => createHash('md5').update(s).digest('hex')

test.before(async () => { ({ env, s3 } = await startWithBucket(B)) })
test.after(() => stopWithBucket({ env, s3 }))

async function bodyOf(key: string): Promise<string> {
  return (await s3.send(new GetObjectCommand({ Bucket: B, Key: key }))).Body!.transformToString()
}

test('DeleteObject with a version id that names nothing is InvalidArgument and the object stays; versionId=null deletes it', async () => {
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'v/delete', Body: BODY }))
  const e = await errorOf(s3.send(new DeleteObjectCommand({ Bucket: B, Key: 'v/delete', VersionId: '3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY' })))
  assert.equal([e.name, e.status], ['InvalidArgument', 400])
  assert.is(await bodyOf('v/delete'), BODY)
  await s3.send(new DeleteObjectCommand({ Bucket: B, Key: 'v/delete', VersionId: 'null' }))
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'v/delete' })))).name, 'NotFound')
})

test('DeleteObjects: an entry with a version id that names nothing fails alone and deletes nothing; the others are deleted', async () => {
  for (const k of ['v/batch-1', 'v/batch-2', 'v/batch-3']) await s3.send(new PutObjectCommand({ Bucket: B, Key: k, Body: BODY }))
  const r = await s3.send(new DeleteObjectsCommand({
    Bucket: B,
    Delete: { Objects: [{ Key: 'v/batch-1', VersionId: 'not-a-version' }, { Key: 'v/batch-2' }, { Key: 'v/batch-3', VersionId: 'null' }] },
  }))
  assert.equal(r.Errors?.map((x) => [x.Key, x.VersionId, x.Code]), [['v/batch-1', 'not-a-version', 'InvalidArgument']])
  assert.equal(r.Deleted?.map((x) => [x.Key, x.VersionId]).sort(), [['v/batch-2', undefined], ['v/batch-3', 'null']])
  assert.is(await bodyOf('v/batch-1'), BODY)
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'v/batch-2' })))).name, 'NotFound')
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'v/batch-3' })))).name, 'NotFound')
})

test('GET, HEAD, tagging and copy of a version that names nothing are InvalidArgument; of versionId=null the object', async () => {
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'v/read', Body: BODY }))
  const get = await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'v/read', VersionId: 'bogus' })))
  assert.equal([get.name, get.status], ['InvalidArgument', 400])
  assert.equal((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'v/read', VersionId: 'bogus' })))).status, 400)
  assert.is((await errorOf(s3.send(new GetObjectTaggingCommand({ Bucket: B, Key: 'v/read', VersionId: 'bogus' })))).name, 'InvalidArgument')
  const copy = await errorOf(s3.send(new CopyObjectCommand({ Bucket: B, Key: 'v/copied', CopySource: `${B}/v/read?versionId=doesnotexist` })))
  assert.equal([copy.name, copy.status], ['InvalidArgument', 400])
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'v/copied' })))).name, 'NotFound')
  const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'v/read', VersionId: 'null' }))
  assert.is(await got.Body!.transformToString(), BODY)
  await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'v/copied', CopySource: `${B}/v/read?versionId=null` }))
  assert.is(await bodyOf('v/copied'), BODY)
})

test('server-side encryption, SSE-C and object lock headers answer NotImplemented and store nothing', async () => {
  const key = 'enc/put'
  const sseC = { SSECustomerAlgorithm: 'AES256', SSECustomerKey: '0123456789abcdef0123456789abcdef', SSECustomerKeyMD5: createHash('md5').update('0123456789abcdef0123456789abcdef').digest('base64') }
  const refusals = [
    () => s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: BODY, ServerSideEncryption: 'AES256' })),
    () => s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: BODY, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'some-key' })),
    () => s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: BODY, ...sseC })),
    () => s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: BODY, ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date('2030-01-01T00:00:00Z') })),
    () => s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: BODY, ObjectLockLegalHoldStatus: 'ON' })),
    () => s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key, ServerSideEncryption: 'AES256' })),
  ]
  for (const r of refusals) assert.equal((await errorOf(r())).name, 'NotImplemented')
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: key })))).name, 'NotFound')
  // Reading with a customer key, and copying with one, are refused the same way.
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'enc/plain', Body: BODY }))
  assert.is((await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'enc/plain', ...sseC })))).status, 501)
  assert.is((await errorOf(s3.send(new CopyObjectCommand({ Bucket: B, Key: 'enc/copy', CopySource: `${B}/enc/plain`, ServerSideEncryption: 'AES256' })))).status, 501)
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'enc/copy' })))).name, 'NotFound')
  // A bucket with object lock is not made.
  assert.is((await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'locked-bucket', ObjectLockEnabledForBucket: true })))).status, 501)
  assert.is((await errorOf(s3.send(new HeadBucketCommand({ Bucket: 'locked-bucket' })))).name, 'NotFound')
  // Anonymous callers learn nothing from the refusal: they are refused as anonymous first.
  const anonymous = new S3Client({ endpoint: env.endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: '', secretAccessKey: '' }, signer: { sign: async (r) => r } })
  try {
    assert.is((await errorOf(anonymous.send(new PutObjectCommand({ Bucket: B, Key: key, Body: BODY, ServerSideEncryption: 'AES256' })))).status, 403)
  } finally {
    anonymous.destroy()
  }
})

test('a copy onto itself naming a storage class, or a new checksum algorithm, is accepted; one changing nothing is still refused; an unknown class is InvalidStorageClass', async () => {
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'self/k', Body: BODY, Metadata: { color: 'blue' } }))
  const unknownClass = await signedRequest(env, 'PUT', `/${B}/self/other`, 'x', { headers: { 'x-amz-storage-class': 'CHEAPEST' } })
  assert.equal([unknownClass.status, /<Code>([^<]*)</.exec(unknownClass.body)?.[1]], [400, 'InvalidStorageClass'])
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'self/other' })))).name, 'NotFound')
  const nothing = await errorOf(s3.send(new CopyObjectCommand({ Bucket: B, Key: 'self/k', CopySource: `${B}/self/k` })))
  assert.equal([nothing.name, nothing.status], ['InvalidRequest', 400])
  const classed = await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'self/k', CopySource: `${B}/self/k`, StorageClass: 'STANDARD' }))
  assert.is(classed.CopyObjectResult?.ETag, `"${md5Hex(BODY)}"`)
  const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'self/k' }))
  assert.equal(head.Metadata, { color: 'blue' }, 'COPY keeps the metadata')
  const summed = await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'self/k', CopySource: `${B}/self/k`, ChecksumAlgorithm: 'SHA256' }))
  assert.is(summed.CopyObjectResult?.ChecksumSHA256, createHash('sha256').update(BODY).digest('base64'))
  assert.is(summed.CopyObjectResult?.ETag, `"${md5Hex(BODY)}"`)
  assert.is(await bodyOf('self/k'), BODY)
  assert.equal((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'self/k' }))).Metadata, { color: 'blue' })
})

test("a 503's O3 cause is in the gateway's log; the client is told what is short, in S3's words, and nothing internal", async () => {
  // rs-6-3 needs nine datanodes; this cluster has one, so no block can be allocated.
  await env.cluster.client().createBucket(S3_VOLUME, 'ec-too-wide', { replication: 'EC/rs-6-3-1024k', owner: 'alice' })
  const lines: string[] = []
  const original = console.error
  console.error = (...args: unknown[]) => { lines.push(args.map(String).join(' ')); original(...args) }
  let e: Awaited<ReturnType<typeof errorOf>>
  try {
    e = await errorOf(s3.send(new PutObjectCommand({ Bucket: 'ec-too-wide', Key: 'k', Body: BODY })))
  } finally {
    console.error = original
  }
  assert.equal([e.name, e.status], ['ServiceUnavailable', 503])
  assert.is(e.message, 'Service is unable to handle request: too few healthy datanodes with room for this bucket\'s replication. Please try again.')
  const line = lines.find((l) => l.includes('WARN S3 gateway: ServiceUnavailable on /ec-too-wide/k'))
  assert.ok(line !== undefined, `no warning logged; got:\n${lines.join('\n')}`)
  assert.ok(line.includes(`request ${e.requestId}`), line)
  assert.not.match(line, /Service is unable to handle request/, 'the log says the O3 cause, not the S3 words')
})

test('a continuation token that is not one of ours is InvalidArgument; one that is pages on', async () => {
  for (const k of ['t/a', 't/b', 't/c']) await s3.send(new PutObjectCommand({ Bucket: B, Key: k, Body: 'x' }))
  const first = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 't/', MaxKeys: 2 }))
  assert.equal(first.Contents?.map((c) => c.Key), ['t/a', 't/b'])
  const next = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 't/', MaxKeys: 2, ContinuationToken: first.NextContinuationToken }))
  assert.equal(next.Contents?.map((c) => c.Key), ['t/c'])
  for (const token of ['garbage!!', 'dC9h=', '%%%', Buffer.from([0xff, 0xfe]).toString('base64url')]) {
    const e = await errorOf(s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 't/', ContinuationToken: token })))
    assert.equal([e.name, e.status], ['InvalidArgument', 400], token)
  }
})

test("S3's reserved bucket names are InvalidBucketName, and no bucket is made", async () => {
  // (A name ending --x-s3 the SDK takes for a directory bucket and signs differently: raw below.)
  for (const name of ['xn--abc', 'sthree-bucket', 'abc-s3alias', 'abc--ol-s3']) {
    const e = await errorOf(s3.send(new CreateBucketCommand({ Bucket: name })))
    assert.equal([e.name, e.status], ['InvalidBucketName', 400], name)
    assert.is((await errorOf(s3.send(new HeadBucketCommand({ Bucket: name })))).name, 'NotFound', name)
  }
  const express = await signedRequest(env, 'PUT', '/abc--x-s3', '')
  assert.equal([express.status, /<Code>([^<]*)</.exec(express.body)?.[1]], [400, 'InvalidBucketName'])
})

test("CompleteMultipartUpload's Location is the object's URL; NoSuchKey names the key", async () => {
  const key = 'mpu/with space'
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key }))
  const part = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 1, Body: 'one part' }))
  const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }))
  assert.is(done.Location, `${env.endpoint}/${B}/mpu/with%20space`)
  const missing = await signedRequest(env, 'GET', `/${B}/no/such-key`, '')
  assert.is(missing.status, 404)
  assert.match(missing.body, '<Code>NoSuchKey</Code>')
  assert.match(missing.body, '<Key>no/such-key</Key>')
})

test.run()
