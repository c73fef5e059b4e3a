/**
 * Goal: listing, multipart, copy, tagging and presigned URLs through @aws-sdk/client-s3 on
 * its default settings. Method: a real gateway over a mini cluster; pagination with
 * delimiters, parts uploaded out of order, copies with both directives, presigned GET/PUT.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { crc32 } from '@node-rs/crc32'
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, ListObjectsCommand,
  ListObjectVersionsCommand, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, AbortMultipartUploadCommand,
  ListPartsCommand, ListMultipartUploadsCommand, CopyObjectCommand, UploadPartCopyCommand, GetObjectTaggingCommand, PutObjectTaggingCommand,
  DeleteObjectTaggingCommand, GetBucketLifecycleConfigurationCommand,
} from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { errorOf, startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

const MiB = 1024 * 1024
let env: S3TestCluster
let s3: S3Client
const B = 'adv-bucket'
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest()


test.before(async () => {
  env = await startS3Cluster()
  s3 = s3Client(env)
  await s3.send(new CreateBucketCommand({ Bucket: B }))
})

test.after(async () => {
  s3.destroy()
  await env.dispose()
})

test('ListObjectsV2 pages with prefix, delimiter, max-keys, continuation-token, start-after, encoding-type, fetch-owner', async () => {
  const names = ['a/1', 'a/2', 'a/b/3', 'b/1', 'c', 'd e', 'z/9']
  for (const n of names) await s3.send(new PutObjectCommand({ Bucket: 'adv-bucket', Key: `list/${n}`, Body: n }))
  const all = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'list/' }))
  assert.equal(all.Contents?.map((c) => c.Key), names.map((n) => `list/${n}`))
  assert.is(all.KeyCount, names.length)
  assert.is(all.Contents?.[0].Size, 3)
  assert.is(all.Contents?.[0].Owner, undefined)
  const dl = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'list/', Delimiter: '/' }))
  assert.equal(dl.CommonPrefixes?.map((p) => p.Prefix), ['list/a/', 'list/b/', 'list/z/'])
  assert.equal(dl.Contents?.map((c) => c.Key), ['list/c', 'list/d e'])
  // Pages of two entries, where a common prefix counts as one entry.
  const seen: string[] = []
  let token: string | undefined
  let pages = 0
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'list/', Delimiter: '/', MaxKeys: 2, ContinuationToken: token }))
    seen.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!), ...(page.Contents ?? []).map((c) => c.Key!))
    token = page.NextContinuationToken
    assert.is(page.IsTruncated, token !== undefined)
    pages++
  } while (token !== undefined)
  assert.is(pages, 3)
  assert.equal(seen.sort(), ['list/a/', 'list/b/', 'list/c', 'list/d e', 'list/z/'])
  const after = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'list/', StartAfter: 'list/c', FetchOwner: true }))
  assert.equal(after.Contents?.map((c) => c.Key), ['list/d e', 'list/z/9'])
  assert.is(after.Contents?.[0].Owner?.ID, 'alice')
  const enc = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'list/d', EncodingType: 'url' }))
  // The SDK leaves url-encoded keys as they come.
  assert.equal(enc.Contents?.map((c) => c.Key), ['list/d%20e'])
  assert.is(enc.EncodingType, 'url')
  const sub = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'list/a/', Delimiter: '/' }))
  assert.equal(sub.CommonPrefixes?.map((p) => p.Prefix), ['list/a/b/'])
  // S3's rule: a common prefix is left out unless it sorts after StartAfter, even when keys
  // after StartAfter fall inside it; one that sorts after StartAfter stays.
  const inside = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'list/', Delimiter: '/', StartAfter: 'list/a/1' }))
  assert.equal(inside.CommonPrefixes?.map((p) => p.Prefix), ['list/b/', 'list/z/'])
  assert.equal(inside.Contents?.map((c) => c.Key), ['list/c', 'list/d e'])
  const before = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'list/', Delimiter: '/', StartAfter: 'list/a' }))
  assert.equal(before.CommonPrefixes?.map((p) => p.Prefix), ['list/a/', 'list/b/', 'list/z/'])
})

test('ListObjectsV2 with a delimiter skips a common prefix of more than one OM page of keys', async () => {
  await s3.send(new CreateBucketCommand({ Bucket: 'wide-bucket' }))
  const client = env.cluster.client()
  const names = Array.from({ length: 1100 }, (_, i) => `deep/${String(i).padStart(5, '0')}`)
  for (let i = 0; i < names.length; i += 20) await Promise.all(names.slice(i, i + 20).map((n) => client.putKey('s3v', 'wide-bucket', n, new Uint8Array(1))))
  await s3.send(new PutObjectCommand({ Bucket: 'wide-bucket', Key: 'zz', Body: 'z' }))
  const r = await s3.send(new ListObjectsV2Command({ Bucket: 'wide-bucket', Delimiter: '/' }))
  assert.equal(r.CommonPrefixes?.map((p) => p.Prefix), ['deep/'])
  assert.equal(r.Contents?.map((c) => c.Key), ['zz'])
  const page = await s3.send(new ListObjectsV2Command({ Bucket: 'wide-bucket', Prefix: 'deep/', StartAfter: 'deep/01000' }))
  assert.is(page.KeyCount, 99)
  // A start-after inside the wide prefix: the prefix is left out, the walk jumps past its keys.
  const inside = await s3.send(new ListObjectsV2Command({ Bucket: 'wide-bucket', Delimiter: '/', StartAfter: 'deep/00001' }))
  assert.is(inside.CommonPrefixes, undefined)
  assert.equal(inside.Contents?.map((c) => c.Key), ['zz'])
})

test('ListObjects (v1) pages with marker; ListObjectVersions answers version null', async () => {
  const first = await s3.send(new ListObjectsCommand({ Bucket: B, Prefix: 'list/', MaxKeys: 3 }))
  assert.is(first.IsTruncated, true)
  assert.equal(first.Contents?.map((c) => c.Key), ['list/a/1', 'list/a/2', 'list/a/b/3'])
  assert.is(first.NextMarker, undefined, 'S3 answers NextMarker only with a delimiter')
  const second = await s3.send(new ListObjectsCommand({ Bucket: B, Prefix: 'list/', Marker: 'list/a/b/3' }))
  assert.is(second.IsTruncated, false)
  assert.equal(second.Contents?.map((c) => c.Key), ['list/b/1', 'list/c', 'list/d e', 'list/z/9'])
  const dl = await s3.send(new ListObjectsCommand({ Bucket: B, Prefix: 'list/', Delimiter: '/', MaxKeys: 2 }))
  assert.equal(dl.CommonPrefixes?.map((p) => p.Prefix), ['list/a/', 'list/b/'])
  assert.is(dl.NextMarker, 'list/b/')
  const v = await s3.send(new ListObjectVersionsCommand({ Bucket: B, Prefix: 'list/' }))
  assert.is(v.Versions?.length, 7)
  assert.is(v.Versions?.[0].VersionId, 'null')
  assert.is(v.Versions?.[0].IsLatest, true)
})

test('multipart upload with parts out of order: ETag md5-of-md5s-N, ListParts, ListMultipartUploads', async () => {
  const p1 = randomBytes(5 * MiB, 1), p2 = randomBytes(5 * MiB, 2), p3 = randomBytes(1234, 3)
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu/obj', ContentType: 'text/x-mpu', Metadata: { m: '1' } }))
  assert.ok(UploadId)
  const up = (n: number, body: Buffer) => s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/obj', UploadId, PartNumber: n, Body: body }))
  const e3 = await up(3, p3)
  const e1 = await up(1, p1)
  const e2 = await up(2, p2)
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: B }))
  assert.equal(uploads.Uploads?.map((u) => [u.Key, u.UploadId]), [['mpu/obj', UploadId]])
  const parts = await s3.send(new ListPartsCommand({ Bucket: B, Key: 'mpu/obj', UploadId }))
  assert.equal(parts.Parts?.map((p) => [p.PartNumber, p.Size]), [[1, p1.length], [2, p2.length], [3, p3.length]])
  const done = await s3.send(new CompleteMultipartUploadCommand({
    Bucket: B, Key: 'mpu/obj', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1.ETag }, { PartNumber: 2, ETag: e2.ETag }, { PartNumber: 3, ETag: e3.ETag }] },
  }))
  const expected = createHash('md5').update(Buffer.concat([md5(p1), md5(p2), md5(p3)])).digest('hex') + '-3'
  assert.is(done.ETag, `"${expected}"`)
  const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'mpu/obj' }))
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat([p1, p2, p3])))
  assert.is(got.ContentType, 'text/x-mpu')
  assert.equal(got.Metadata, { m: '1' })
  const ranged = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'mpu/obj', Range: `bytes=${5 * MiB - 10}-${5 * MiB + 9}` }))
  assert.ok(Buffer.from(await ranged.Body!.transformToByteArray()).equals(Buffer.concat([p1, p2]).subarray(5 * MiB - 10, 5 * MiB + 10)))
  assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: B }))).Uploads ?? [], [])
  assert.is((await errorOf(s3.send(new ListPartsCommand({ Bucket: B, Key: 'mpu/obj', UploadId })))).name, 'NoSuchUpload')
})

test('multipart with CRC32 part checksums: the object returns S3\'s composite checksum when asked', async () => {
  const p1 = randomBytes(5 * MiB, 11), p2 = randomBytes(777, 12)
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu/crc', ChecksumAlgorithm: 'CRC32' }))
  const up = (n: number, body: Buffer) => s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/crc', UploadId, PartNumber: n, Body: body, ChecksumAlgorithm: 'CRC32' }))
  const r1 = await up(1, p1), r2 = await up(2, p2)
  assert.ok(r1.ChecksumCRC32 && r2.ChecksumCRC32, 'parts return their CRC32')
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: 'mpu/crc', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: r1.ETag, ChecksumCRC32: r1.ChecksumCRC32 }, { PartNumber: 2, ETag: r2.ETag, ChecksumCRC32: r2.ChecksumCRC32 }] } }))
  const joined = Buffer.concat([Buffer.from(r1.ChecksumCRC32!, 'base64'), Buffer.from(r2.ChecksumCRC32!, 'base64')])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(joined) >>> 0)
  const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'mpu/crc', ChecksumMode: 'ENABLED' }))
  assert.is(head.ChecksumCRC32, `${crc.toString('base64')}-2`)
  const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'mpu/crc', ChecksumMode: 'ENABLED' }))
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat([p1, p2])))
})

test('ListMultipartUploads pages by key-marker and upload-id-marker without gaps or repeats', async () => {
  const ids: string[] = []
  for (const key of ['pg/a', 'pg/a', 'pg/a', 'pg/b']) ids.push((await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key }))).UploadId!)
  const seen: [string, string][] = []
  let keyMarker: string | undefined, idMarker: string | undefined
  for (let page = 0; page < 10; page++) {
    const r = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: 'pg/', MaxUploads: 2, KeyMarker: keyMarker, UploadIdMarker: idMarker }))
    seen.push(...(r.Uploads ?? []).map((u) => [u.Key!, u.UploadId!] as [string, string]))
    if (!r.IsTruncated) break
    keyMarker = r.NextKeyMarker; idMarker = r.NextUploadIdMarker
  }
  assert.is(seen.length, 4)
  assert.equal(new Set(seen.map(([, id]) => id)), new Set(ids))
  assert.equal(seen.map(([k]) => k), ['pg/a', 'pg/a', 'pg/a', 'pg/b'])
  for (const [Key, UploadId] of seen) await s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key, UploadId }))
})

test('multipart errors: NoSuchUpload, InvalidPart, InvalidPartOrder, EntityTooSmall, MalformedXML; Abort leaves nothing', async () => {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu/bad' }))
  const e1 = await s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/bad', UploadId, PartNumber: 1, Body: 'small' }))
  const e2 = await s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/bad', UploadId, PartNumber: 2, Body: 'tail' }))
  const complete = (parts: { PartNumber: number; ETag?: string }[]) => errorOf(s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: 'mpu/bad', UploadId, MultipartUpload: { Parts: parts } })))
  assert.is((await complete([{ PartNumber: 2, ETag: e2.ETag }, { PartNumber: 1, ETag: e1.ETag }])).name, 'InvalidPartOrder')
  assert.is((await complete([{ PartNumber: 1, ETag: '"0000"' }])).name, 'InvalidPart')
  assert.is((await complete([{ PartNumber: 1, ETag: e1.ETag }, { PartNumber: 2, ETag: e2.ETag }])).name, 'EntityTooSmall')
  assert.is((await complete([])).name, 'MalformedXML')
  assert.is((await errorOf(s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/bad', UploadId: 'f'.repeat(32), PartNumber: 1, Body: 'x' })))).name, 'NoSuchUpload')
  assert.is((await errorOf(s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/other', UploadId, PartNumber: 1, Body: 'x' })))).name, 'NoSuchUpload')
  await s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key: 'mpu/bad', UploadId }))
  assert.is((await errorOf(s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key: 'mpu/bad', UploadId })))).name, 'NoSuchUpload')
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'mpu/bad' })))).status, 404)
  // A single small part is a valid upload.
  const one = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu/one' }))
  const p = await s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/one', UploadId: one.UploadId, PartNumber: 1, Body: 'only' }))
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: 'mpu/one', UploadId: one.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p.ETag }] } }))
  assert.is(await (await s3.send(new GetObjectCommand({ Bucket: B, Key: 'mpu/one' }))).Body!.transformToString(), 'only')
})

test('CopyObject with COPY and REPLACE directives and copy-source conditions; UploadPartCopy with a range', async () => {
  const src = randomBytes(6 * MiB + 100, 9)
  const put = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'copy/src', Body: src, ContentType: 'text/src', Metadata: { a: '1' } }))
  const c1 = await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/dst', CopySource: `${B}/copy/src` }))
  assert.is(c1.CopyObjectResult?.ETag, put.ETag)
  const h1 = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'copy/dst' }))
  assert.is(h1.ContentType, 'text/src')
  assert.equal(h1.Metadata, { a: '1' })
  await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/dst2', CopySource: `${B}/copy/src`, MetadataDirective: 'REPLACE', ContentType: 'text/new', Metadata: { b: '2' } }))
  const h2 = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'copy/dst2' }))
  assert.is(h2.ContentType, 'text/new')
  assert.equal(h2.Metadata, { b: '2' })
  assert.ok(Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: B, Key: 'copy/dst2' }))).Body!.transformToByteArray()).equals(src))
  assert.is((await errorOf(s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/x', CopySource: `${B}/copy/src`, CopySourceIfMatch: '"nope"' })))).name, 'PreconditionFailed')
  assert.is((await errorOf(s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/x', CopySource: `${B}/copy/none` })))).name, 'NoSuchKey')
  assert.is((await errorOf(s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/src', CopySource: `${B}/copy/src` })))).name, 'InvalidRequest')
  await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/src', CopySource: `${B}/copy/src`, MetadataDirective: 'REPLACE', Metadata: { c: '3' } }))
  assert.equal((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'copy/src' }))).Metadata, { c: '3' })
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'copy/mpu' }))
  const pc1 = await s3.send(new UploadPartCopyCommand({ Bucket: B, Key: 'copy/mpu', UploadId, PartNumber: 1, CopySource: `${B}/copy/src`, CopySourceRange: `bytes=0-${5 * MiB - 1}` }))
  const pc2 = await s3.send(new UploadPartCopyCommand({ Bucket: B, Key: 'copy/mpu', UploadId, PartNumber: 2, CopySource: `${B}/copy/src`, CopySourceRange: `bytes=${5 * MiB}-${src.length - 1}` }))
  // A range past the source's end, or backwards, is what AWS answers it (InvalidArgument naming the size).
  for (const range of [`bytes=0-${src.length}`, 'bytes=10-5']) {
    const e = await errorOf(s3.send(new UploadPartCopyCommand({ Bucket: B, Key: 'copy/mpu', UploadId, PartNumber: 3, CopySource: `${B}/copy/src`, CopySourceRange: range })))
    assert.is(e.name, 'InvalidArgument', range)
    assert.is(e.message, `Range specified is not valid for source object of size: ${src.length}`)
  }
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: 'copy/mpu', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: pc1.CopyPartResult?.ETag }, { PartNumber: 2, ETag: pc2.CopyPartResult?.ETag }] } }))
  assert.ok(Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: B, Key: 'copy/mpu' }))).Body!.transformToByteArray()).equals(src))
})

test('Get/Put/DeleteObjectTagging and x-amz-tagging on PutObject', async () => {
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'tagged', Body: 'x', Tagging: 'k1=v1&k2=v2' }))
  assert.equal((await s3.send(new GetObjectTaggingCommand({ Bucket: B, Key: 'tagged' }))).TagSet, [{ Key: 'k1', Value: 'v1' }, { Key: 'k2', Value: 'v2' }])
  await s3.send(new PutObjectTaggingCommand({ Bucket: B, Key: 'tagged', Tagging: { TagSet: [{ Key: 'new', Value: 'tag value' }] } }))
  assert.equal((await s3.send(new GetObjectTaggingCommand({ Bucket: B, Key: 'tagged' }))).TagSet, [{ Key: 'new', Value: 'tag value' }])
  assert.is(await (await s3.send(new GetObjectCommand({ Bucket: B, Key: 'tagged' }))).Body!.transformToString(), 'x')
  await s3.send(new DeleteObjectTaggingCommand({ Bucket: B, Key: 'tagged' }))
  assert.equal((await s3.send(new GetObjectTaggingCommand({ Bucket: B, Key: 'tagged' }))).TagSet ?? [], [])
  assert.is((await errorOf(s3.send(new GetObjectTaggingCommand({ Bucket: B, Key: 'untagged-missing' })))).name, 'NoSuchKey')
})

test('presigned GET, PUT and HEAD; unsupported operations answer NotImplemented', async () => {
  const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: B, Key: 'presigned' }), { expiresIn: 60 })
  const put = await fetch(putUrl, { method: 'PUT', body: 'via url' })
  assert.is(put.status, 200)
  const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: 'presigned' }), { expiresIn: 60 })
  const get = await fetch(getUrl)
  assert.is(get.status, 200)
  assert.is(await get.text(), 'via url')
  const headUrl = await getSignedUrl(s3, new HeadObjectCommand({ Bucket: B, Key: 'presigned' }), { expiresIn: 60 })
  assert.is((await fetch(headUrl, { method: 'HEAD' })).headers.get('content-length'), '7')
  const tampered = await fetch(getUrl.replace('presigned', 'presigneX'))
  assert.is(tampered.status, 403)
  assert.match(await tampered.text(), '<Code>SignatureDoesNotMatch</Code>')
  const e = await errorOf(s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: B })))
  assert.is(e.name, 'NotImplemented')
  assert.is(e.status, 501)
})

test.run()
