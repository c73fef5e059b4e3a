/**
 * Goal: GetObjectAttributes answers what x-amz-object-attributes asks, as S3 does: the ETag
 * without quotes, the checksum and its type (a COMPOSITE one without its "-N"), a multipart
 * COMPOSITE object's parts with sizes and checksums paged by MaxParts / PartNumberMarker (only
 * the count for a FULL_OBJECT one or one without checksums), StorageClass and ObjectSize; only what was asked;
 * bad attribute names are InvalidArgument and a missing key NoSuchKey. Method: a real gateway
 * over a mini cluster, driven by @aws-sdk/client-s3 (GetObjectAttributesCommand), compared with
 * digests computed here.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { crc32 } from '@node-rs/crc32'
import {
  S3Client, PutObjectCommand, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, GetObjectAttributesCommand,
  type ChecksumAlgorithm, type ChecksumType, type CompletedPart, type ObjectAttributes,
} from '@aws-sdk/client-s3'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { errorOf, type S3TestCluster, startWithBucket, stopWithBucket } from './s3-cluster.ts'

const MiB = 1024 * 1024
const B = 'attrs'
const ALL: ObjectAttributes[] = ['ETag', 'Checksum', 'ObjectParts', 'StorageClass', 'ObjectSize']
let env: S3TestCluster
let s3: S3Client

const parts = [randomBytes(5 * MiB, 1), randomBytes(5 * MiB, 2), randomBytes(1234, 3)]
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest()

async function multipart(key: string, algorithm?: ChecksumAlgorithm, type?: ChecksumType): Promise<string> {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key, ChecksumAlgorithm: algorithm, ChecksumType: type }))
  const done: CompletedPart[] = []
  for (const [i, body] of parts.entries()) {
    const r = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: i + 1, Body: body, ChecksumAlgorithm: algorithm }))
    done.push({ PartNumber: i + 1, ETag: r.ETag, ChecksumSHA256: r.ChecksumSHA256, ChecksumCRC32: r.ChecksumCRC32 })
  }
  return (await s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: key, UploadId, MultipartUpload: { Parts: done } }))).ETag!
}

const attributes = (Key: string, ObjectAttributes = ALL, extra: { MaxParts?: number; PartNumberMarker?: string } = {}) =>
  s3.send(new GetObjectAttributesCommand({ Bucket: B, Key, ObjectAttributes, ...extra }))

test.before(async () => { ({ env, s3 } = await startWithBucket(B)) })
test.after(() => stopWithBucket({ env, s3 }))

test('GetObjectAttributes of an object written in one piece: ETag unquoted, checksum and type, size, storage class, no parts', async () => {
  const body = randomBytes(100_000, 9)
  const put = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'one', Body: body, ChecksumAlgorithm: 'CRC32' }))
  const a = await attributes('one')
  assert.is(a.ETag, put.ETag!.replace(/"/g, ''))
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body) >>> 0)
  assert.equal(a.Checksum, { ChecksumCRC32: crc.toString('base64'), ChecksumType: 'FULL_OBJECT' })
  assert.is(a.ObjectSize, body.length)
  assert.is(a.StorageClass, 'STANDARD')
  assert.is(a.ObjectParts, undefined)
  assert.instance(a.LastModified, Date)
})

test('GetObjectAttributes answers only the attributes asked for', async () => {
  const a = await attributes('one', ['ObjectSize'])
  assert.is(a.ObjectSize, 100_000)
  assert.is(a.ETag, undefined)
  assert.is(a.Checksum, undefined)
  assert.is(a.StorageClass, undefined)
})

test('GetObjectAttributes of a SHA256 multipart object: COMPOSITE checksum without -N, and its parts with sizes and checksums', async () => {
  const etag = await multipart('mpu', 'SHA256')
  const a = await attributes('mpu')
  assert.is(a.ETag, etag.replace(/"/g, ''))
  const composite = createHash('sha256').update(Buffer.concat(parts.map(sha256))).digest('base64')
  assert.equal(a.Checksum, { ChecksumSHA256: composite, ChecksumType: 'COMPOSITE' })
  assert.is(a.ObjectSize, parts.reduce((s, p) => s + p.length, 0))
  assert.is(a.ObjectParts?.TotalPartsCount, 3)
  assert.is(a.ObjectParts?.IsTruncated, false)
  assert.equal(a.ObjectParts?.Parts?.map((p) => [p.PartNumber, p.Size, p.ChecksumSHA256]), parts.map((p, i) => [i + 1, p.length, sha256(p).toString('base64')]))
})

test('GetObjectAttributes pages the parts by MaxParts and PartNumberMarker', async () => {
  const first = await attributes('mpu', ['ObjectParts'], { MaxParts: 2 })
  assert.is(first.ObjectParts?.IsTruncated, true)
  assert.is(first.ObjectParts?.MaxParts, 2)
  assert.equal(first.ObjectParts?.Parts?.map((p) => p.PartNumber), [1, 2])
  assert.is(String(first.ObjectParts?.NextPartNumberMarker), '2')
  const second = await attributes('mpu', ['ObjectParts'], { MaxParts: 2, PartNumberMarker: first.ObjectParts?.NextPartNumberMarker })
  assert.is(second.ObjectParts?.IsTruncated, false)
  assert.is(String(second.ObjectParts?.PartNumberMarker), '2')
  assert.equal(second.ObjectParts?.Parts?.map((p) => [p.PartNumber, p.Size]), [[3, 1234]])
  assert.is(second.ObjectParts?.TotalPartsCount, 3)
})

test('GetObjectAttributes of a FULL_OBJECT multipart object: the whole CRC32, and the parts count only', async () => {
  await multipart('mpu-full', 'CRC32', 'FULL_OBJECT')
  const a = await attributes('mpu-full')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(Buffer.concat(parts)) >>> 0)
  assert.equal(a.Checksum, { ChecksumCRC32: crc.toString('base64'), ChecksumType: 'FULL_OBJECT' })
  assert.is(a.ObjectParts?.TotalPartsCount, 3)
  assert.is(a.ObjectParts?.Parts, undefined)
})

test('GetObjectAttributes of a multipart object without checksums gives the parts count only', async () => {
  // The SDK adds a CRC32 to each part unless told not to: send the parts as raw bytes would,
  // with a client that only computes checksums when an operation requires them.
  const plain = new S3Client({
    endpoint: env.endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, requestChecksumCalculation: 'WHEN_REQUIRED',
    credentials: { accessKeyId: env.alice.awsAccessKey, secretAccessKey: env.alice.awsSecret },
  })
  const { UploadId } = await plain.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu-plain' }))
  const done: CompletedPart[] = []
  for (const [i, body] of parts.entries()) done.push({ PartNumber: i + 1, ETag: (await plain.send(new UploadPartCommand({ Bucket: B, Key: 'mpu-plain', UploadId, PartNumber: i + 1, Body: body }))).ETag })
  await plain.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: 'mpu-plain', UploadId, MultipartUpload: { Parts: done } }))
  plain.destroy()
  const a = await attributes('mpu-plain')
  assert.is(a.Checksum, undefined)
  assert.is(a.ObjectParts?.TotalPartsCount, 3)
  assert.is(a.ObjectParts?.Parts, undefined)
})

test('GetObjectAttributes refuses unknown attributes (InvalidArgument) and answers NoSuchKey for a missing key', async () => {
  assert.equal(await errorOf(attributes('one', ['Bogus' as ObjectAttributes])).then((e) => [e.name, e.status]), ['InvalidArgument', 400])
  assert.equal(await errorOf(attributes('absent')).then((e) => [e.name, e.status]), ['NoSuchKey', 404])
})

test.run()
