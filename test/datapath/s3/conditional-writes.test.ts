/**
 * Goal: S3's conditional writes (If-None-Match: *, If-Match: <etag>) on PutObject and
 * CompleteMultipartUpload hold atomically, and a CompleteMultipartUpload repeated after it
 * succeeded answers the same result. Method: a real gateway over a mini cluster through the
 * AWS SDK v3; races are concurrent requests of which exactly the right ones must win.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand,
  PutObjectCommand, PutObjectTaggingCommand, S3Client, UploadPartCommand, type CompletedPart,
} from '@aws-sdk/client-s3'
import { errorOf, type S3TestCluster, startWithBucket, stopWithBucket } from './s3-cluster.ts'

let env: S3TestCluster
let s3: S3Client
const B = 'cond-bucket'

test.before(async () => { ({ env, s3 } = await startWithBucket(B)) })
test.after(() => stopWithBucket({ env, s3 }))

const put = (Key: string, Body: string, extra: { IfMatch?: string; IfNoneMatch?: string } = {}) => s3.send(new PutObjectCommand({ Bucket: B, Key, Body, ...extra }))
const body = async (Key: string) => (await s3.send(new GetObjectCommand({ Bucket: B, Key }))).Body!.transformToString()

/** An upload of `Key` with one small part, ready to complete. */
async function upload(Key: string, content: string): Promise<{ UploadId: string; Parts: CompletedPart[] }> {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key }))
  const { ETag } = await s3.send(new UploadPartCommand({ Bucket: B, Key, UploadId, PartNumber: 1, Body: content }))
  return { UploadId: UploadId!, Parts: [{ PartNumber: 1, ETag }] }
}
const complete = (Key: string, u: { UploadId: string; Parts: CompletedPart[] }, extra: { IfMatch?: string; IfNoneMatch?: string } = {}) =>
  s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key, UploadId: u.UploadId, MultipartUpload: { Parts: u.Parts }, ...extra }))

test('PutObject If-None-Match: * creates once, then 412 PreconditionFailed; the object keeps its first body', async () => {
  await put('create-once', 'first', { IfNoneMatch: '*' })
  const e = await errorOf(put('create-once', 'second', { IfNoneMatch: '*' }))
  assert.equal([e.name, e.status], ['PreconditionFailed', 412])
  assert.is(await body('create-once'), 'first')
})

test('PutObject If-None-Match with an ETag (not *) is NotImplemented, as S3 answers', async () => {
  const etag = (await put('nm-etag', 'a')).ETag!
  const e = await errorOf(put('nm-etag', 'b', { IfNoneMatch: etag }))
  assert.equal([e.name, e.status], ['NotImplemented', 501])
  assert.is(await body('nm-etag'), 'a')
})

test('PutObject If-Match replaces only the object with that ETag: 412 on another, NoSuchKey when absent, * matches any', async () => {
  const first = (await put('cas', 'v1')).ETag!
  const second = (await put('cas', 'v2', { IfMatch: first })).ETag!
  assert.is(await body('cas'), 'v2')
  const stale = await errorOf(put('cas', 'v3', { IfMatch: first }))
  assert.equal([stale.name, stale.status], ['PreconditionFailed', 412])
  assert.is(await body('cas'), 'v2')
  const unquoted = await put('cas', 'v3', { IfMatch: second.replace(/"/g, '') })
  assert.ok(unquoted.ETag !== undefined)
  await put('cas', 'v4', { IfMatch: '*' })
  assert.is(await body('cas'), 'v4')
  const absent = await errorOf(put('cas-absent', 'v1', { IfMatch: first }))
  assert.equal([absent.name, absent.status], ['NoSuchKey', 404])
  assert.equal((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'cas-absent' })))).status, 404)
})

test('PutObject If-Match races: of writers matching one ETag exactly one wins, the rest get 412', async () => {
  const etag = (await put('race', 'v0')).ETag!
  const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => put('race', `w${i}`, { IfMatch: etag })))
  const won = results.filter((r) => r.status === 'fulfilled')
  assert.is(won.length, 1)
  for (const r of results) if (r.status === 'rejected') assert.is((r.reason as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode, 412)
  const winner = results.findIndex((r) => r.status === 'fulfilled')
  assert.is(await body('race'), `w${winner}`)
})

test('PutObject If-None-Match: * races: exactly one of concurrent creators wins', async () => {
  const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => put('race-create', `w${i}`, { IfNoneMatch: '*' })))
  assert.is(results.filter((r) => r.status === 'fulfilled').length, 1)
})

test('CopyObject onto a destination with If-None-Match: * or If-Match holds the condition as PutObject does', async () => {
  await put('copy-src', 'source')
  const dest = (await put('copy-dest', 'dest')).ETag!
  const copy = (Key: string, extra: { IfMatch?: string; IfNoneMatch?: string }) => s3.send(new CopyObjectCommand({ Bucket: B, Key, CopySource: `${B}/copy-src`, ...extra }))
  assert.is((await errorOf(copy('copy-dest', { IfNoneMatch: '*' }))).status, 412)
  assert.is((await errorOf(copy('copy-dest', { IfMatch: '"ffffffffffffffffffffffffffffffff"' }))).status, 412)
  assert.is((await errorOf(copy('copy-none', { IfMatch: dest }))).name, 'NoSuchKey')
  assert.is(await body('copy-dest'), 'dest')
  await copy('copy-dest', { IfMatch: dest })
  assert.is(await body('copy-dest'), 'source')
  await copy('copy-new', { IfNoneMatch: '*' })
  assert.is(await body('copy-new'), 'source')
})

test('CompleteMultipartUpload If-None-Match: * refuses over an existing key and keeps the upload; If-Match completes over the matched object', async () => {
  const etag = (await put('mpu-cond', 'old')).ETag!
  const u = await upload('mpu-cond', 'new')
  const refused = await errorOf(complete('mpu-cond', u, { IfNoneMatch: '*' }))
  assert.equal([refused.name, refused.status], ['PreconditionFailed', 412])
  const stale = await errorOf(complete('mpu-cond', u, { IfMatch: '"0123456789abcdef0123456789abcdef"' }))
  assert.equal([stale.name, stale.status], ['PreconditionFailed', 412])
  assert.is(await body('mpu-cond'), 'old')
  const done = await complete('mpu-cond', u, { IfMatch: etag })
  assert.match(done.ETag!, /-1"$/)
  assert.is(await body('mpu-cond'), 'new')
  const fresh = await upload('mpu-fresh', 'fresh')
  const absent = await errorOf(complete('mpu-fresh', fresh, { IfMatch: etag }))
  assert.equal([absent.name, absent.status], ['NoSuchKey', 404])
  await complete('mpu-fresh', fresh, { IfNoneMatch: '*' })
  assert.is(await body('mpu-fresh'), 'fresh')
})

test('CompleteMultipartUpload repeated after success answers the same result, even with If-None-Match: * and after a tagging change', async () => {
  const u = await upload('mpu-again', 'once')
  const first = await complete('mpu-again', u)
  const again = await complete('mpu-again', u)
  assert.equal([again.ETag, again.Bucket, again.Key, again.Location], [first.ETag, first.Bucket, first.Key, first.Location])
  assert.is((await complete('mpu-again', u, { IfNoneMatch: '*' })).ETag, first.ETag)
  await s3.send(new PutObjectTaggingCommand({ Bucket: B, Key: 'mpu-again', Tagging: { TagSet: [{ Key: 't', Value: '1' }] } }))
  assert.is((await complete('mpu-again', u)).ETag, first.ETag)
  // The upload id is O3's own metadata: neither shown nor carried by a copy.
  const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'mpu-again' }))
  assert.equal(head.Metadata, {})
  await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'mpu-copy', CopySource: `${B}/mpu-again` }))
  // Another upload of the key replaces it; the first upload's id is then unknown.
  await put('mpu-again', 'replaced')
  const gone = await errorOf(complete('mpu-again', u))
  assert.equal([gone.name, gone.status], ['NoSuchUpload', 404])
  const copy = await errorOf(complete('mpu-copy', u))
  assert.equal([copy.name, copy.status], ['NoSuchUpload', 404])
})

test('CompleteMultipartUpload repeated answers the same checksum and checksum type', async () => {
  const Key = 'mpu-crc-again'
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key, ChecksumAlgorithm: 'CRC32' }))
  const part = await s3.send(new UploadPartCommand({ Bucket: B, Key, UploadId, PartNumber: 1, Body: 'crc', ChecksumAlgorithm: 'CRC32' }))
  const u = { UploadId: UploadId!, Parts: [{ PartNumber: 1, ETag: part.ETag, ChecksumCRC32: part.ChecksumCRC32 }] }
  const first = await complete(Key, u)
  assert.ok(first.ChecksumCRC32 !== undefined)
  const again = await complete(Key, u)
  assert.equal([again.ETag, again.ChecksumCRC32, again.ChecksumType], [first.ETag, first.ChecksumCRC32, first.ChecksumType])
})

test('CompleteMultipartUpload sent twice at once: both answer the one result', async () => {
  const u = await upload('mpu-twice', 'twice')
  const [a, b] = await Promise.all([complete('mpu-twice', u), complete('mpu-twice', u)])
  assert.is(a.ETag, b.ETag)
  assert.is(await body('mpu-twice'), 'twice')
})

test.run()
