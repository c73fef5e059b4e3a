/**
 * Goal: a bucket policy decides requests as S3 decides them: an Allow opens objects to
 * anonymous callers or other users, an explicit Deny beats every ACL and binds the bucket's
 * owner too (but never locks the owner out of the policy calls), conditions on the caller's
 * address, the listing prefix and the request's ACL hold, and Block Public Access's
 * RestrictPublicBuckets and BlockPublicAcls apply. Method: a real gateway over a mini cluster;
 * alice owns the buckets, bob is another user (@aws-sdk/client-s3), anonymous callers are
 * plain unsigned fetch requests.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteBucketPolicyCommand, DeleteObjectsCommand, UploadPartCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutBucketPolicyCommand, PutObjectCommand,
  PutPublicAccessBlockCommand, DeletePublicAccessBlockCommand, type S3Client,
} from '@aws-sdk/client-s3'
import { errorOf, startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

let env: S3TestCluster
let s3: S3Client
let bobS3: S3Client
const B = 'effects'
const OBJECTS = `arn:aws:s3:::${B}/*`

const policy = (...statements: Record<string, unknown>[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements })
const allow = (extra: Record<string, unknown>) => ({ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: OBJECTS, ...extra })
const deny = (extra: Record<string, unknown>) => ({ ...allow(extra), Effect: 'Deny' })

async function setPolicy(document: string): Promise<void> {
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: document }))
}

/** An unsigned GET: its status and body. */
async function anonymousGet(path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${env.endpoint}/${path}`)
  return { status: res.status, body: await res.text() }
}

async function bobGets(key: string): Promise<string> {
  return (await errorOf(bobS3.send(new GetObjectCommand({ Bucket: B, Key: key })).then((r) => r.Body?.transformToString()))).name
}

test.before(async () => {
  env = await startS3Cluster()
  s3 = s3Client(env, env.alice, { maxAttempts: 1 })
  bobS3 = s3Client(env, env.bob, { maxAttempts: 1 })
  await s3.send(new CreateBucketCommand({ Bucket: B }))
  for (const key of ['public/a.txt', 'private/b.txt', 'secret/c.txt']) await s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: `body of ${key}` }))
})

test.after.each(async () => {
  await s3.send(new DeleteBucketPolicyCommand({ Bucket: B }))
  await s3.send(new DeletePublicAccessBlockCommand({ Bucket: B }))
})

test.after(async () => {
  await env.dispose()
})

test('without a policy anonymous callers and other users are refused', async () => {
  assert.is((await anonymousGet(`${B}/public/a.txt`)).status, 403)
  assert.is(await bobGets('public/a.txt'), 'AccessDenied')
})

test('an Allow to * on a prefix lets anonymous callers read there, and only there', async () => {
  await setPolicy(policy(allow({ Resource: `arn:aws:s3:::${B}/public/*` })))
  const ok = await anonymousGet(`${B}/public/a.txt`)
  assert.equal(ok, { status: 200, body: 'body of public/a.txt' })
  assert.is((await anonymousGet(`${B}/private/b.txt`)).status, 403)
  // Reading is not listing: the policy grants no s3:ListBucket.
  assert.is((await anonymousGet(`${B}?list-type=2`)).status, 403)
})

test('an Allow to a named user lets that user read, nobody else', async () => {
  await setPolicy(policy(allow({ Principal: { AWS: 'bob' } })))
  assert.is(await bobGets('private/b.txt'), 'OK')
  assert.is((await anonymousGet(`${B}/private/b.txt`)).status, 403)
})

test('an explicit Deny beats the Allow and binds the bucket owner', async () => {
  await setPolicy(policy(allow({}), deny({ Resource: `arn:aws:s3:::${B}/secret/*` })))
  assert.is((await anonymousGet(`${B}/public/a.txt`)).status, 200)
  assert.is((await anonymousGet(`${B}/secret/c.txt`)).status, 403)
  assert.is((await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'secret/c.txt' })))).name, 'AccessDenied')
  assert.is((await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'public/a.txt' })))).name, 'OK')
})

test('a Deny of every action never locks the owner out of the policy calls', async () => {
  await setPolicy(policy(deny({ Principal: { AWS: 'alice' }, Action: 's3:*', Resource: [`arn:aws:s3:::${B}`, OBJECTS] })))
  assert.is((await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'public/a.txt' })))).name, 'AccessDenied')
  assert.is((await errorOf(s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: policy(allow({})) })))).name, 'OK')
  assert.is((await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'public/a.txt' })))).name, 'OK')
})

test('an IpAddress condition admits callers from its range only', async () => {
  await setPolicy(policy(allow({ Principal: { AWS: 'bob' }, Condition: { IpAddress: { 'aws:SourceIp': '127.0.0.0/8' } } })))
  assert.is(await bobGets('private/b.txt'), 'OK')
  await setPolicy(policy(allow({ Principal: { AWS: 'bob' }, Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } } })))
  assert.is(await bobGets('private/b.txt'), 'AccessDenied')
})

test('a Deny on aws:SecureTransport false refuses requests over plain HTTP', async () => {
  await setPolicy(policy(allow({}), deny({ Action: 's3:*', Resource: [`arn:aws:s3:::${B}`, OBJECTS], Condition: { Bool: { 'aws:SecureTransport': 'false' } } })))
  assert.is((await anonymousGet(`${B}/public/a.txt`)).status, 403)
  assert.is((await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'public/a.txt' })))).name, 'AccessDenied')
})

test('an anonymous caller is aws:userid anonymous and has no aws:username', async () => {
  await setPolicy(policy(allow({ Condition: { StringEquals: { 'aws:userid': 'anonymous' }, Null: { 'aws:username': 'true' } } })))
  assert.is((await anonymousGet(`${B}/public/a.txt`)).status, 200)
  assert.is(await bobGets('public/a.txt'), 'AccessDenied')
})

test('an s3:prefix condition confines what another user may list', async () => {
  await setPolicy(policy({ Effect: 'Allow', Principal: { AWS: 'bob' }, Action: 's3:ListBucket', Resource: `arn:aws:s3:::${B}`, Condition: { StringLike: { 's3:prefix': 'public/*' } } }))
  const listed = await bobS3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'public/' }))
  assert.equal(listed.Contents?.map((o) => o.Key), ['public/a.txt'])
  assert.is((await errorOf(bobS3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'secret/' })))).name, 'AccessDenied')
  assert.is((await errorOf(bobS3.send(new ListObjectsV2Command({ Bucket: B })))).name, 'AccessDenied')
})

test('a Deny on s3:x-amz-acl like public* refuses a public-read upload (s3-tests)', async () => {
  await setPolicy(policy(deny({ Principal: '*', Action: 's3:PutObject', Condition: { StringLike: { 's3:x-amz-acl': 'public*' } } })))
  assert.is((await errorOf(s3.send(new PutObjectCommand({ Bucket: B, Key: 'up/a', Body: 'x', ACL: 'public-read' })))).name, 'AccessDenied')
  assert.is((await errorOf(s3.send(new PutObjectCommand({ Bucket: B, Key: 'up/a', Body: 'x', ACL: 'private' })))).name, 'OK')
})

test('RestrictPublicBuckets ignores a public policy’s Allow for all but the owner', async () => {
  await setPolicy(policy(allow({})))
  assert.is((await anonymousGet(`${B}/public/a.txt`)).status, 200)
  await s3.send(new PutPublicAccessBlockCommand({ Bucket: B, PublicAccessBlockConfiguration: { RestrictPublicBuckets: true } }))
  assert.is((await anonymousGet(`${B}/public/a.txt`)).status, 403)
  assert.is((await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'public/a.txt' })))).name, 'OK')
})

test('BlockPublicAcls refuses an upload with a public canned ACL', async () => {
  await s3.send(new PutPublicAccessBlockCommand({ Bucket: B, PublicAccessBlockConfiguration: { BlockPublicAcls: true } }))
  const e = await errorOf(s3.send(new PutObjectCommand({ Bucket: B, Key: 'up/b', Body: 'x', ACL: 'public-read' })))
  assert.equal([e.name, e.status], ['AccessDenied', 403])
  assert.is((await errorOf(s3.send(new PutObjectCommand({ Bucket: B, Key: 'up/b', Body: 'x' })))).name, 'OK')
})

test('an explicit Deny beats a public-read ACL', async () => {
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'acl/open.txt', Body: 'open', ACL: 'public-read' }))
  assert.is((await anonymousGet(`${B}/acl/open.txt`)).status, 200)
  assert.is(await bobGets('acl/open.txt'), 'OK')
  await setPolicy(policy(deny({ Resource: `arn:aws:s3:::${B}/acl/*` })))
  assert.is((await anonymousGet(`${B}/acl/open.txt`)).status, 403)
  assert.is(await bobGets('acl/open.txt'), 'AccessDenied')
})

test('IgnorePublicAcls ignores a public-read ACL but not a policy Allow', async () => {
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'acl/open.txt', Body: 'open', ACL: 'public-read' }))
  await s3.send(new PutPublicAccessBlockCommand({ Bucket: B, PublicAccessBlockConfiguration: { IgnorePublicAcls: true } }))
  assert.is((await anonymousGet(`${B}/acl/open.txt`)).status, 403)
  await setPolicy(policy(allow({ Resource: `arn:aws:s3:::${B}/acl/*` })))
  assert.is((await anonymousGet(`${B}/acl/open.txt`)).status, 200)
})

test('a missing key is NoSuchKey to a caller the policy lets list that prefix, AccessDenied to others (s3-tests)', async () => {
  await setPolicy(policy(
    allow({ Principal: { AWS: 'bob' }, Action: 's3:GetObject' }),
    { Effect: 'Allow', Principal: { AWS: 'bob' }, Action: 's3:ListBucket', Resource: `arn:aws:s3:::${B}`, Condition: { StringLike: { 's3:prefix': 'public/*' } } },
  ))
  const head = async (key: string) => (await errorOf(bobS3.send(new HeadObjectCommand({ Bucket: B, Key: key })))).status
  assert.is(await head('public/missing'), 404)
  assert.is(await head('private/missing'), 403)
})

test('${aws:username} gives each user a home prefix to write and read', async () => {
  await setPolicy(policy(allow({ Principal: { AWS: ['bob', 'alice'] }, Action: ['s3:PutObject', 's3:GetObject'], Resource: `arn:aws:s3:::${B}/home/\${aws:username}/*` })))
  assert.is((await errorOf(bobS3.send(new PutObjectCommand({ Bucket: B, Key: 'home/bob/notes.txt', Body: 'mine' })))).name, 'OK')
  assert.is(await bobGets('home/bob/notes.txt'), 'OK')
  assert.is((await errorOf(bobS3.send(new PutObjectCommand({ Bucket: B, Key: 'home/carol/notes.txt', Body: 'not mine' })))).name, 'AccessDenied')
})

test('an s3:ExistingObjectTag condition grants reads of objects so tagged (s3-tests)', async () => {
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'tagged/public.txt', Body: 'p', Tagging: 'security=public' }))
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'tagged/secret.txt', Body: 's', Tagging: 'security=secret' }))
  await setPolicy(policy(allow({ Principal: { AWS: 'bob' }, Condition: { StringEquals: { 's3:ExistingObjectTag/security': 'public' } } })))
  assert.is(await bobGets('tagged/public.txt'), 'OK')
  assert.is(await bobGets('tagged/secret.txt'), 'AccessDenied')
})

test('a copy needs s3:GetObject on its source: a policy Allow lets another user copy from a prefix, a Deny on s3:x-amz-copy-source refuses', async () => {
  await bobS3.send(new CreateBucketCommand({ Bucket: 'bobs' }))
  await setPolicy(policy(allow({ Principal: { AWS: 'bob' }, Resource: `arn:aws:s3:::${B}/public/*` })))
  assert.is((await errorOf(bobS3.send(new CopyObjectCommand({ Bucket: 'bobs', Key: 'copied', CopySource: `${B}/public/a.txt` })))).name, 'OK')
  assert.is((await errorOf(bobS3.send(new CopyObjectCommand({ Bucket: 'bobs', Key: 'copied', CopySource: `${B}/private/b.txt` })))).name, 'AccessDenied')
  // The destination's policy sees the copy's source (s3-tests bucket_policy_put_obj_copy_source).
  await setPolicy(policy(deny({ Action: 's3:PutObject', Condition: { StringLike: { 's3:x-amz-copy-source': `${B}/secret/*` } } })))
  assert.is((await errorOf(s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/of-secret', CopySource: `${B}/secret/c.txt` })))).name, 'AccessDenied')
  assert.is((await errorOf(s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/of-public', CopySource: `${B}/public/a.txt` })))).name, 'OK')
})

test('DeleteObjects asks the policy about each key: a denied one is an AccessDenied entry, the others go', async () => {
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'del/keep', Body: 'k' }))
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'del/drop', Body: 'd' }))
  await setPolicy(policy(deny({ Principal: '*', Action: 's3:DeleteObject', Resource: `arn:aws:s3:::${B}/del/keep` })))
  const r = await s3.send(new DeleteObjectsCommand({ Bucket: B, Delete: { Objects: [{ Key: 'del/keep' }, { Key: 'del/drop' }] } }))
  assert.equal(r.Deleted?.map((d) => d.Key), ['del/drop'])
  assert.equal(r.Errors?.map((e) => [e.Key, e.Code]), [['del/keep', 'AccessDenied']])
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'del/keep' })))).name, 'OK')
})

test('a policy Allow of s3:PutObject lets another user upload in parts', async () => {
  await setPolicy(policy(allow({ Principal: { AWS: 'bob' }, Action: ['s3:PutObject', 's3:GetObject'], Resource: `arn:aws:s3:::${B}/drop/*` })))
  const { UploadId } = await bobS3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'drop/parts.bin' }))
  const part = await bobS3.send(new UploadPartCommand({ Bucket: B, Key: 'drop/parts.bin', UploadId, PartNumber: 1, Body: 'one part' }))
  await bobS3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: 'drop/parts.bin', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }))
  assert.is(await bobGets('drop/parts.bin'), 'OK')
  assert.is((await errorOf(bobS3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'elsewhere/parts.bin' })))).name, 'AccessDenied')
})

test('an upload that tags its object needs s3:PutObjectTagging too: a policy granting only s3:PutObject lets bob write but not tag', async () => {
  const write = { Effect: 'Allow', Principal: { AWS: 'bob' }, Action: 's3:PutObject', Resource: OBJECTS }
  await setPolicy(policy(write))
  assert.is((await errorOf(bobS3.send(new PutObjectCommand({ Bucket: B, Key: 'bob/plain.txt', Body: 'plain' })))).name, 'OK')
  assert.is((await errorOf(bobS3.send(new PutObjectCommand({ Bucket: B, Key: 'bob/tagged.txt', Body: 'tagged', Tagging: 'k=v' })))).name, 'AccessDenied')
  assert.is((await errorOf(bobS3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'bob/tagged-mpu', Tagging: 'k=v' })))).name, 'AccessDenied')
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'bob/tagged.txt' })))).name, 'NotFound', 'nothing written')
  await setPolicy(policy({ ...write, Action: ['s3:PutObject', 's3:PutObjectTagging'] }))
  assert.is((await errorOf(bobS3.send(new PutObjectCommand({ Bucket: B, Key: 'bob/tagged.txt', Body: 'tagged', Tagging: 'k=v' })))).name, 'OK')
  // The bucket owner tags its own uploads without any policy.
  await s3.send(new DeleteBucketPolicyCommand({ Bucket: B }))
  assert.is((await errorOf(s3.send(new PutObjectCommand({ Bucket: B, Key: 'own-tagged.txt', Body: 'x', Tagging: 'k=v' })))).name, 'OK')
})

test.run()
