/**
 * Goal: user B can neither read, list, overwrite nor delete user A's private objects, nor
 * learn which keys exist, nor touch A's bucket configuration, by any S3 call: object and
 * bucket calls, multipart (into A's uploads or from A's objects), copy source, presigned
 * URLs, DeleteObjects, tagging, ACL and policy calls; anonymous requests neither. Every
 * refusal is AccessDenied and leaves A's data as it was. Method: a real gateway over a mini
 * cluster; @aws-sdk/client-s3 as alice (A) and bob (B), presigned URLs signed by bob, and
 * unsigned requests with fetch; after the attempts, alice reads everything back.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteBucketCommand,
  DeleteBucketPolicyCommand, DeleteObjectCommand, DeleteObjectsCommand, DeleteObjectTaggingCommand, GetBucketAclCommand, GetBucketLocationCommand,
  GetBucketPolicyCommand, GetObjectAclCommand, GetObjectCommand, GetObjectTaggingCommand, HeadBucketCommand, HeadObjectCommand, ListBucketsCommand,
  ListMultipartUploadsCommand, ListObjectsCommand, ListObjectsV2Command, ListObjectVersionsCommand, ListPartsCommand, PutBucketAclCommand,
  PutBucketPolicyCommand, PutObjectAclCommand, PutObjectCommand, PutObjectTaggingCommand, PutPublicAccessBlockCommand, UploadPartCommand,
  UploadPartCopyCommand, type S3Client,
} from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { errorOf, startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

let env: S3TestCluster
let alice: S3Client, bob: S3Client
/** alice's private bucket, a key in it, and an upload of hers in progress. */
const A = 'alice-private'
const SECRET = 'secret.txt'
let uploadId: string
/** bob's own bucket, and an upload of his (to copy alice's bytes into). */
const BOB = 'bob-own'
let bobUploadId: string

test.before(async () => {
  env = await startS3Cluster()
  alice = s3Client(env, env.alice, { maxAttempts: 1 })
  bob = s3Client(env, env.bob, { maxAttempts: 1 })
  await alice.send(new CreateBucketCommand({ Bucket: A }))
  await alice.send(new PutObjectCommand({ Bucket: A, Key: SECRET, Body: 'alice only', Tagging: 'k=v' }))
  uploadId = (await alice.send(new CreateMultipartUploadCommand({ Bucket: A, Key: 'upload' }))).UploadId!
  await alice.send(new UploadPartCommand({ Bucket: A, Key: 'upload', UploadId: uploadId, PartNumber: 1, Body: 'alice part' }))
  await bob.send(new CreateBucketCommand({ Bucket: BOB }))
  await bob.send(new PutObjectCommand({ Bucket: BOB, Key: 'bobs', Body: 'bob data' }))
  bobUploadId = (await bob.send(new CreateMultipartUploadCommand({ Bucket: BOB, Key: 'copy-target' }))).UploadId!
})

test.after(async () => {
  alice.destroy(); bob.destroy()
  await env.dispose()
})

/** Every call must be refused with AccessDenied (403). */
async function deniedAll(calls: [string, () => Promise<unknown>][]): Promise<void> {
  for (const [what, call] of calls) {
    const e = await errorOf(call())
    assert.is(e.name, 'AccessDenied', what)
    assert.is(e.status, 403, what)
  }
}

/** alice's data, as she reads it back. */
async function aliceSees(): Promise<unknown> {
  const body = await (await alice.send(new GetObjectCommand({ Bucket: A, Key: SECRET }))).Body!.transformToString()
  const keys = (await alice.send(new ListObjectsV2Command({ Bucket: A }))).Contents?.map((c) => c.Key)
  const tags = (await alice.send(new GetObjectTaggingCommand({ Bucket: A, Key: SECRET }))).TagSet
  const parts = (await alice.send(new ListPartsCommand({ Bucket: A, Key: 'upload', UploadId: uploadId }))).Parts?.map((p) => p.PartNumber)
  const acl = (await alice.send(new GetBucketAclCommand({ Bucket: A }))).Grants?.length
  return { body, keys, tags, parts, acl }
}

const before = { body: 'alice only', keys: [SECRET], tags: [{ Key: 'k', Value: 'v' }], parts: [1], acl: 1 }

test("bob cannot read, list or learn of alice's keys", async () => {
  assert.equal(await aliceSees(), before)
  await deniedAll([
    ['GetObject', () => bob.send(new GetObjectCommand({ Bucket: A, Key: SECRET }))],
    ['GetObject of a missing key (not NoSuchKey)', () => bob.send(new GetObjectCommand({ Bucket: A, Key: 'missing' }))],
    ['GetObject with a range', () => bob.send(new GetObjectCommand({ Bucket: A, Key: SECRET, Range: 'bytes=0-3' }))],
    ['GetObject of part 1', () => bob.send(new GetObjectCommand({ Bucket: A, Key: SECRET, PartNumber: 1 }))],
    ['ListObjectsV2', () => bob.send(new ListObjectsV2Command({ Bucket: A }))],
    ['ListObjects', () => bob.send(new ListObjectsCommand({ Bucket: A }))],
    ['ListObjectVersions', () => bob.send(new ListObjectVersionsCommand({ Bucket: A }))],
    ['ListMultipartUploads', () => bob.send(new ListMultipartUploadsCommand({ Bucket: A }))],
    ['ListParts', () => bob.send(new ListPartsCommand({ Bucket: A, Key: 'upload', UploadId: uploadId }))],
    ['GetObjectTagging', () => bob.send(new GetObjectTaggingCommand({ Bucket: A, Key: SECRET }))],
    ['GetObjectAcl', () => bob.send(new GetObjectAclCommand({ Bucket: A, Key: SECRET }))],
    ['GetBucketAcl', () => bob.send(new GetBucketAclCommand({ Bucket: A }))],
    ['GetBucketLocation', () => bob.send(new GetBucketLocationCommand({ Bucket: A }))],
    ['GetBucketPolicy', () => bob.send(new GetBucketPolicyCommand({ Bucket: A }))],
  ])
  // HEAD answers have no body: the status says it.
  assert.is((await errorOf(bob.send(new HeadObjectCommand({ Bucket: A, Key: SECRET })))).status, 403)
  assert.is((await errorOf(bob.send(new HeadObjectCommand({ Bucket: A, Key: 'missing' })))).status, 403)
  assert.is((await errorOf(bob.send(new HeadBucketCommand({ Bucket: A })))).status, 403)
  const mine = (await bob.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)
  assert.equal(mine, [BOB])
})

test("bob cannot overwrite, delete or retag alice's keys, nor change her bucket's configuration", async () => {
  await deniedAll([
    ['PutObject over hers', () => bob.send(new PutObjectCommand({ Bucket: A, Key: SECRET, Body: 'bob was here' }))],
    ['PutObject of a new key', () => bob.send(new PutObjectCommand({ Bucket: A, Key: 'new', Body: 'bob was here' }))],
    ['PutObject create-only', () => bob.send(new PutObjectCommand({ Bucket: A, Key: 'new', Body: 'x', IfNoneMatch: '*' }))],
    ['DeleteObject', () => bob.send(new DeleteObjectCommand({ Bucket: A, Key: SECRET }))],
    ['DeleteObjects', () => bob.send(new DeleteObjectsCommand({ Bucket: A, Delete: { Objects: [{ Key: SECRET }, { Key: 'missing' }] } }))],
    ['PutObjectTagging', () => bob.send(new PutObjectTaggingCommand({ Bucket: A, Key: SECRET, Tagging: { TagSet: [{ Key: 'b', Value: 'b' }] } }))],
    ['DeleteObjectTagging', () => bob.send(new DeleteObjectTaggingCommand({ Bucket: A, Key: SECRET }))],
    ['PutObjectAcl', () => bob.send(new PutObjectAclCommand({ Bucket: A, Key: SECRET, ACL: 'public-read' }))],
    ['PutBucketAcl', () => bob.send(new PutBucketAclCommand({ Bucket: A, ACL: 'public-read-write' }))],
    ['PutBucketPolicy', () => bob.send(new PutBucketPolicyCommand({ Bucket: A, Policy: JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:*', Resource: `arn:aws:s3:::${A}/*` }] }) }))],
    ['DeleteBucketPolicy', () => bob.send(new DeleteBucketPolicyCommand({ Bucket: A }))],
    ['PutPublicAccessBlock', () => bob.send(new PutPublicAccessBlockCommand({ Bucket: A, PublicAccessBlockConfiguration: {} }))],
    ['DeleteBucket', () => bob.send(new DeleteBucketCommand({ Bucket: A }))],
  ])
  assert.equal(await aliceSees(), before)
})

test("bob cannot use alice's uploads nor start one in her bucket", async () => {
  await deniedAll([
    ['CreateMultipartUpload', () => bob.send(new CreateMultipartUploadCommand({ Bucket: A, Key: 'bobs-upload' }))],
    ['UploadPart into hers', () => bob.send(new UploadPartCommand({ Bucket: A, Key: 'upload', UploadId: uploadId, PartNumber: 2, Body: 'bob part' }))],
    ['UploadPartCopy into hers', () => bob.send(new UploadPartCopyCommand({ Bucket: A, Key: 'upload', UploadId: uploadId, PartNumber: 2, CopySource: `${BOB}/bobs` }))],
    ['CompleteMultipartUpload of hers', () => bob.send(new CompleteMultipartUploadCommand({ Bucket: A, Key: 'upload', UploadId: uploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"x"' }] } }))],
    ['AbortMultipartUpload of hers', () => bob.send(new AbortMultipartUploadCommand({ Bucket: A, Key: 'upload', UploadId: uploadId }))],
  ])
  assert.equal(await aliceSees(), before)
})

test("bob cannot copy alice's keys out, nor his into her bucket", async () => {
  await deniedAll([
    ['CopyObject from hers into his bucket', () => bob.send(new CopyObjectCommand({ Bucket: BOB, Key: 'stolen', CopySource: `${A}/${SECRET}` }))],
    ['CopyObject of a missing key of hers', () => bob.send(new CopyObjectCommand({ Bucket: BOB, Key: 'stolen', CopySource: `${A}/missing` }))],
    ['UploadPartCopy from hers into his upload', () => bob.send(new UploadPartCopyCommand({ Bucket: BOB, Key: 'copy-target', UploadId: bobUploadId, PartNumber: 1, CopySource: `${A}/${SECRET}` }))],
    ['CopyObject from his into her bucket', () => bob.send(new CopyObjectCommand({ Bucket: A, Key: 'planted', CopySource: `${BOB}/bobs` }))],
  ])
  assert.is((await errorOf(bob.send(new GetObjectCommand({ Bucket: BOB, Key: 'stolen' })))).name, 'NoSuchKey')
  assert.equal((await bob.send(new ListPartsCommand({ Bucket: BOB, Key: 'copy-target', UploadId: bobUploadId }))).Parts ?? [], [])
  assert.equal(await aliceSees(), before)
})

test("presigned URLs signed by bob open nothing of alice's; hers work until she makes them for others", async () => {
  const urls: [string, string, string?][] = [
    ['GET', await getSignedUrl(bob, new GetObjectCommand({ Bucket: A, Key: SECRET }), { expiresIn: 60 })],
    ['HEAD', await getSignedUrl(bob, new HeadObjectCommand({ Bucket: A, Key: SECRET }), { expiresIn: 60 })],
    ['PUT', await getSignedUrl(bob, new PutObjectCommand({ Bucket: A, Key: SECRET }), { expiresIn: 60 }), 'overwritten'],
    ['DELETE', await getSignedUrl(bob, new DeleteObjectCommand({ Bucket: A, Key: SECRET }), { expiresIn: 60 })],
    ['GET', await getSignedUrl(bob, new ListObjectsV2Command({ Bucket: A }), { expiresIn: 60 })],
  ]
  for (const [method, url, body] of urls) assert.is((await fetch(url, { method, body })).status, 403, `${method} ${url.split('?')[0]}`)
  // A URL alice signs lets its holder (here an unsigned fetch) read as alice.
  const hers = await getSignedUrl(alice, new GetObjectCommand({ Bucket: A, Key: SECRET }), { expiresIn: 60 })
  assert.is(await (await fetch(hers)).text(), 'alice only')
  assert.equal(await aliceSees(), before)
})

test('anonymous requests get AccessDenied for every one of these calls', async () => {
  const calls: [string, string, string?][] = [
    ['GET', `/${A}/${SECRET}`], ['HEAD', `/${A}/${SECRET}`], ['GET', `/${A}/missing`], ['GET', `/${A}?list-type=2`], ['GET', `/${A}`],
    ['GET', `/${A}?uploads`], ['GET', `/${A}/upload?uploadId=${uploadId}`], ['GET', `/${A}/${SECRET}?tagging`], ['GET', `/${A}/${SECRET}?acl`],
    ['GET', `/${A}?acl`], ['GET', `/${A}?policy`], ['GET', `/${A}?location`], ['PUT', `/${A}/${SECRET}`, 'anon'], ['DELETE', `/${A}/${SECRET}`],
    ['POST', `/${A}/upload?uploads`], ['PUT', `/${A}/upload?uploadId=${uploadId}&partNumber=2`, 'anon part'], ['DELETE', `/${A}/upload?uploadId=${uploadId}`],
    ['PUT', `/${A}?acl`, ''], ['DELETE', `/${A}`], ['GET', '/'],
  ]
  for (const [method, path, body] of calls) {
    const res = await fetch(`${env.endpoint}${path}`, { method, body })
    assert.is(res.status, 403, `${method} ${path}`)
    if (method !== 'HEAD') assert.match(await res.text(), '<Code>AccessDenied</Code>', `${method} ${path}`)
  }
  const del = await fetch(`${env.endpoint}/${A}?delete`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: `<Delete><Object><Key>${SECRET}</Key></Object></Delete>` })
  assert.is(del.status, 403)
  assert.equal(await aliceSees(), before)
})

test('x-amz-expected-bucket-owner and x-amz-source-expected-bucket-owner refuse a bucket someone else owns', async () => {
  await deniedAll([
    ['GetObject expecting bob', () => alice.send(new GetObjectCommand({ Bucket: A, Key: SECRET, ExpectedBucketOwner: 'bob' }))],
    ['PutObject expecting bob', () => alice.send(new PutObjectCommand({ Bucket: A, Key: 'x', Body: 'x', ExpectedBucketOwner: 'bob' }))],
    ['CopyObject from a source expected to be bob\'s', () => alice.send(new CopyObjectCommand({ Bucket: A, Key: 'c', CopySource: `${A}/${SECRET}`, ExpectedSourceBucketOwner: 'bob' }))],
  ])
  assert.is((await errorOf(alice.send(new GetObjectCommand({ Bucket: A, Key: SECRET, ExpectedBucketOwner: 'alice' })))).name, 'OK')
  assert.equal(await aliceSees(), before)
})

test('SigV2 presigned URLs signed by bob open nothing of alice\'s', async () => {
  const { createHmac } = await import('node:crypto')
  const expires = Math.floor(Date.now() / 1000) + 60
  const sign = (method: string, resource: string) => encodeURIComponent(createHmac('sha1', env.bob.awsSecret).update(`${method}\n\n\n${expires}\n${resource}`).digest('base64'))
  const url = (method: string, resource: string) => `${env.endpoint}${resource}?AWSAccessKeyId=${env.bob.awsAccessKey}&Expires=${expires}&Signature=${sign(method, resource)}`
  // The same scheme works for bob's own key, so the refusal is authorization, not the signature.
  assert.is(await (await fetch(url('GET', `/${BOB}/bobs`))).text(), 'bob data')
  assert.is((await fetch(url('GET', `/${A}/${SECRET}`))).status, 403)
  assert.is((await fetch(url('DELETE', `/${A}/${SECRET}`), { method: 'DELETE' })).status, 403)
  assert.equal(await aliceSees(), before)
})

test('alice can still do all of it herself', async () => {
  await alice.send(new PutObjectTaggingCommand({ Bucket: A, Key: SECRET, Tagging: { TagSet: [{ Key: 'k', Value: 'v' }] } }))
  await alice.send(new CopyObjectCommand({ Bucket: A, Key: 'copy', CopySource: `${A}/${SECRET}` }))
  await alice.send(new AbortMultipartUploadCommand({ Bucket: A, Key: 'upload', UploadId: uploadId }))
  await alice.send(new DeleteObjectsCommand({ Bucket: A, Delete: { Objects: [{ Key: 'copy' }, { Key: SECRET }] } }))
  assert.equal((await alice.send(new ListObjectsV2Command({ Bucket: A }))).Contents ?? [], [])
  await alice.send(new DeleteBucketCommand({ Bucket: A }))
})

test.run()
