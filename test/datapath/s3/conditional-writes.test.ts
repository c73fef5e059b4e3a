/**
 * Goal: S3's conditional writes (If-None-Match: *, If-Match: <etag>) on PutObject and
 * CompleteMultipartUpload hold atomically, and a CompleteMultipartUpload repeated after it
 * succeeded answers the same result; conditional deletes (DeleteObject's If-Match, size and
 * Last-Modified, DeleteObjects' per-key ETag, Size, LastModifiedTime) delete only a key that
 * meets them and never the key a racing writer replaced it with. Method: a real gateway over a mini cluster through the
 * AWS SDK v3; races are concurrent requests of which exactly the right ones must win.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand, ListObjectsV2Command, PutBucketPolicyCommand, DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand,
  PutBucketAclCommand, PutObjectCommand, PutObjectTaggingCommand, S3Client, UploadPartCommand, type CompletedPart,
} from '@aws-sdk/client-s3'
import { errorOf, keyExists, s3Client, type S3TestCluster, startWithBucket, stopWithBucket, withHeaders } from './s3-cluster.ts'

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


const del = (Key: string, extra: { IfMatch?: string; IfMatchSize?: number; IfMatchLastModifiedTime?: Date } = {}) => s3.send(new DeleteObjectCommand({ Bucket: B, Key, ...extra }))
const exists = (Key: string) => keyExists(s3, B, Key)

test('DeleteObject If-Match deletes only the object with that ETag: 412 on another (kept), * any, NoSuchKey when absent', async () => {
  const etag = (await put('del-cas', 'v1')).ETag!
  const stale = await errorOf(del('del-cas', { IfMatch: '"0123456789abcdef0123456789abcdef"' }))
  assert.equal([stale.name, stale.status], ['PreconditionFailed', 412])
  assert.is(await body('del-cas'), 'v1')
  assert.is((await del('del-cas', { IfMatch: etag })).$metadata.httpStatusCode, 204)
  assert.is(await exists('del-cas'), false)
  // A conditional delete is there to find the object: gone, it is NoSuchKey (an unconditional one is 204).
  for (const IfMatch of [etag, '*']) assert.equal(await errorOf(del('del-cas', { IfMatch })).then((e) => [e.name, e.status]), ['NoSuchKey', 404])
  assert.is((await del('del-cas')).$metadata.httpStatusCode, 204)
  await put('del-cas', 'v2')
  await del('del-cas', { IfMatch: '*' })
  assert.is(await exists('del-cas'), false)
})

test('DeleteObject with a size or a Last-Modified to match: 412 and kept when either differs; deleted when both hold', async () => {
  await put('del-size', 'four')
  const modified = (await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'del-size' }))).LastModified!
  const bySize = await errorOf(del('del-size', { IfMatchSize: 5 }))
  assert.equal([bySize.name, bySize.status], ['PreconditionFailed', 412])
  const byTime = await errorOf(del('del-size', { IfMatchSize: 4, IfMatchLastModifiedTime: new Date(Date.UTC(2015, 0, 1)) }))
  assert.equal([byTime.name, byTime.status], ['PreconditionFailed', 412])
  assert.is(await body('del-size'), 'four')
  await del('del-size', { IfMatchSize: 4, IfMatchLastModifiedTime: modified })
  assert.is(await exists('del-size'), false)
  // Without an ETag to match, a missing key is deleted already, as an unconditional delete.
  assert.is((await del('del-size', { IfMatchSize: 5 })).$metadata.httpStatusCode, 204)
})

test('DeleteObject with a malformed condition is InvalidArgument and deletes nothing', async () => {
  await put('del-bad', 'x')
  const raw = (headers: Record<string, string>) => s3.send(withHeaders(new DeleteObjectCommand({ Bucket: B, Key: 'del-bad' }), headers))
  for (const h of <Record<string, string>[]>[{ 'x-amz-if-match-size': '-1' }, { 'x-amz-if-match-size': 'ten' }, { 'x-amz-if-match-last-modified-time': 'yesterday' }, { 'if-match': '"a", "b"' }]) {
    const e = await errorOf(raw(h))
    assert.equal([e.name, e.status], ['InvalidArgument', 400], JSON.stringify(h))
  }
  assert.is(await body('del-bad'), 'x')
})

test('DeleteObject If-Match races a writer: the delete never removes the object that replaced the one it matched', async () => {
  for (let round = 0; round < 5; round++) {
    const Key = `del-race-${round}`
    const etag = (await put(Key, 'old')).ETag!
    const [deleted, written] = await Promise.allSettled([del(Key, { IfMatch: etag }), put(Key, 'new')])
    assert.is(written.status, 'fulfilled')
    // Either the delete came first (the new object stands) or it found the new ETag (412): the new body is there.
    if (deleted.status === 'rejected') assert.is((deleted.reason as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode, 412)
    assert.is(await body(Key), 'new')
  }
})

test('DeleteObjects: each entry\'s ETag, Size and LastModifiedTime hold for it alone (PreconditionFailed, NoSuchKey entries), the rest are deleted', async () => {
  const a = (await put('dm-a', 'aaa')).ETag!
  await put('dm-b', 'bbb')
  await put('dm-c', 'ccc')
  await put('dm-d', 'ddd')
  const dModified = (await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'dm-d' }))).LastModified!
  const out = await s3.send(new DeleteObjectsCommand({
    Bucket: B,
    Delete: {
      Objects: [
        { Key: 'dm-a', ETag: a }, { Key: 'dm-b', ETag: a }, { Key: 'dm-c', Size: 4 }, { Key: 'dm-d', LastModifiedTime: dModified, Size: 3 },
        { Key: 'dm-gone', ETag: a }, { Key: 'dm-gone2', Size: 1 },
      ],
    },
  }))
  assert.equal((out.Deleted ?? []).map((d) => d.Key).sort(), ['dm-a', 'dm-d', 'dm-gone2'])
  assert.equal((out.Errors ?? []).map((e) => [e.Key, e.Code]).sort(), [['dm-b', 'PreconditionFailed'], ['dm-c', 'PreconditionFailed'], ['dm-gone', 'NoSuchKey']])
  assert.equal([await exists('dm-a'), await exists('dm-b'), await exists('dm-c'), await exists('dm-d')], [false, true, true, false])
})

test('a conditional delete tells no more than a read would: an ETag, size or time needs s3:GetObject, and a missing key is AccessDenied to who may not list', async () => {
  // Bob may write (and so delete) in the bucket but neither read alice's key nor list.
  await s3.send(new PutBucketAclCommand({ Bucket: B, GrantFullControl: `id=${env.alice.user}`, GrantWrite: 'id=bob' }))
  const bob = s3Client(env, env.bob, { maxAttempts: 1 })
  const bobDel = (Key: string, extra: { IfMatch?: string; IfMatchSize?: number }) => errorOf(bob.send(new DeleteObjectCommand({ Bucket: B, Key, ...extra }))).then((e) => [e.name, e.status])
  try {
    const etag = (await put('del-acl', 'alice')).ETag!
    assert.equal(await bobDel('del-acl', { IfMatch: etag }), ['AccessDenied', 403])
    assert.equal(await bobDel('del-acl', { IfMatchSize: 5 }), ['AccessDenied', 403])
    assert.is(await body('del-acl'), 'alice')
    // A missing key: no 204 for a size that cannot match, no NoSuchKey for *: bob may not know it is missing.
    assert.equal(await bobDel('del-none', { IfMatchSize: 5 }), ['AccessDenied', 403])
    assert.equal(await bobDel('del-none', { IfMatch: '*' }), ['AccessDenied', 403])
    assert.equal(await bobDel('del-acl', { IfMatch: '*' }), ['OK', undefined])
    assert.is(await exists('del-acl'), false)
  } finally {
    bob.destroy()
    await s3.send(new PutBucketAclCommand({ Bucket: B, ACL: 'private' }))
  }
})

test('a policy requiring s3:if-match (S3\'s enforced conditional deletes): DeleteObjects judges each entry by its own ETag, never by a request header no entry obeys', async () => {
  const P = 'cond-policy'
  await s3.send(new CreateBucketCommand({ Bucket: P }))
  await s3.send(new PutBucketPolicyCommand({
    Bucket: P,
    Policy: JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: 'bob' }, Action: 's3:DeleteObject', Resource: `arn:aws:s3:::${P}/*`, Condition: { Null: { 's3:if-match': 'false' } } },
        { Effect: 'Allow', Principal: { AWS: 'bob' }, Action: 's3:GetObject', Resource: `arn:aws:s3:::${P}/*` },
      ],
    }),
  }))
  const bob = s3Client(env, env.bob, { maxAttempts: 1 })
  try {
    const etags: Record<string, string> = {}
    for (const Key of ['a', 'b', 'c']) etags[Key] = (await s3.send(new PutObjectCommand({ Bucket: P, Key, Body: Key }))).ETag!
    assert.equal(await errorOf(bob.send(new DeleteObjectCommand({ Bucket: P, Key: 'a' }))).then((e) => e.name), 'AccessDenied')
    // Entries without an ETag, sent with an If-Match header: refused, nothing deleted.
    const withHeader = withHeaders(new DeleteObjectsCommand({ Bucket: P, Delete: { Objects: [{ Key: 'b' }, { Key: 'c' }] } }), { 'if-match': '*' })
    assert.equal(await errorOf(bob.send(withHeader)).then((e) => e.name), 'AccessDenied')
    const mixed = await bob.send(new DeleteObjectsCommand({ Bucket: P, Delete: { Objects: [{ Key: 'a', ETag: etags.a }, { Key: 'b' }] } }))
    assert.equal((mixed.Deleted ?? []).map((d) => d.Key), ['a'])
    assert.equal((mixed.Errors ?? []).map((e) => [e.Key, e.Code]), [['b', 'AccessDenied']])
    await bob.send(new DeleteObjectCommand({ Bucket: P, Key: 'c', IfMatch: etags.c }))
    const left = await s3.send(new ListObjectsV2Command({ Bucket: P }))
    assert.equal((left.Contents ?? []).map((o) => o.Key), ['b'])
  } finally {
    bob.destroy()
  }
})

test('conditions in their exact forms: a Last-Modified with milliseconds (as listings give it) matches its second; an ETag with quotes or without', async () => {
  const etag = (await put('del-forms', 'x')).ETag!
  const listed = (await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'del-forms' }))).Contents![0]!
  const at = new Date(listed.LastModified!.getTime() + 999 - (listed.LastModified!.getTime() % 1000))
  const out = await s3.send(new DeleteObjectsCommand({ Bucket: B, Delete: { Objects: [{ Key: 'del-forms', ETag: etag.replace(/"/g, ''), LastModifiedTime: at }] } }))
  assert.equal((out.Deleted ?? []).map((d) => d.Key), ['del-forms'])
})

test.run()
