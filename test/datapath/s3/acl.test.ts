/**
 * Goal: S3 ACLs through the gateway as S3 clients use them: each canned ACL on buckets and
 * objects gives exactly its access to the owner, another user and anonymous requests;
 * x-amz-grant-* headers and AccessControlPolicy bodies (Get/Put Bucket and Object ACL),
 * refused cleanly when malformed (MalformedACLError, changing nothing) or naming an e-mail;
 * ACLs on CopyObject and multipart uploads; owners and initiators in listings; anonymous
 * requests; a bucket policy deciding before the ACLs. Method: a real gateway over a mini
 * cluster; @aws-sdk/client-s3 as alice (owner), bob and carol; unsigned requests with fetch.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import {
  CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectCommand, GetBucketAclCommand,
  GetObjectAclCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsCommand, ListObjectsV2Command, ListPartsCommand, PutBucketAclCommand,
  PutBucketPolicyCommand, PutObjectAclCommand, PutObjectCommand, PutPublicAccessBlockCommand, UploadPartCommand, type BucketCannedACL, type ObjectCannedACL, type S3Client,
} from '@aws-sdk/client-s3'
import { ALL_USERS_GROUP, AUTHENTICATED_USERS_GROUP } from '../../../core/s3-access/model.ts'
import { errorOf, signedRequest, startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

let env: S3TestCluster
let alice: S3Client, bob: S3Client, carol: S3Client
const B = 'acls'

test.before(async () => {
  env = await startS3Cluster()
  alice = s3Client(env, env.alice, { maxAttempts: 1 })
  bob = s3Client(env, env.bob, { maxAttempts: 1 })
  carol = s3Client(env, await env.cluster.client().getS3Secret('carol'), { maxAttempts: 1 })
  await alice.send(new CreateBucketCommand({ Bucket: B }))
})

test.after(async () => {
  alice.destroy(); bob.destroy(); carol.destroy()
  await env.dispose()
})

/** An unsigned (anonymous) request; the status and body. */
async function anon(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${env.endpoint}${path}`, { method, body })
  return { status: res.status, body: await res.text() }
}

/** 'OK' when `client` can read the key, else its error's name. */
async function reads(client: S3Client, bucket: string, key: string): Promise<string> {
  return (await errorOf(client.send(new GetObjectCommand({ Bucket: bucket, Key: key })).then((r) => r.Body!.transformToString()))).name
}

const grantsOf = (acl: { Grants?: { Grantee?: { ID?: string; URI?: string; Type?: string }; Permission?: string }[] }) =>
  (acl.Grants ?? []).map((g) => `${g.Grantee?.Type}:${g.Grantee?.ID ?? g.Grantee?.URI}:${g.Permission}`)

test('GetBucketAcl and GetObjectAcl of what nobody set an ACL on: the owner\'s FULL_CONTROL, with owner and display name', async () => {
  const acl = await alice.send(new GetBucketAclCommand({ Bucket: B }))
  assert.equal(acl.Owner, { ID: 'alice', DisplayName: 'alice' })
  assert.equal(grantsOf(acl), ['CanonicalUser:alice:FULL_CONTROL'])
  assert.is(acl.Grants![0].Grantee!.DisplayName, 'alice')
  await alice.send(new PutObjectCommand({ Bucket: B, Key: 'plain', Body: 'x' }))
  assert.equal(grantsOf(await alice.send(new GetObjectAclCommand({ Bucket: B, Key: 'plain' }))), ['CanonicalUser:alice:FULL_CONTROL'])
})

test('each canned object ACL: who may read the key (owner, another user, anonymous)', async () => {
  const table: [ObjectCannedACL, string, string, string][] = [
    ['private', 'OK', 'AccessDenied', '403'],
    ['public-read', 'OK', 'OK', '200'],
    ['public-read-write', 'OK', 'OK', '200'],
    ['authenticated-read', 'OK', 'OK', '403'],
    ['bucket-owner-read', 'OK', 'AccessDenied', '403'],
    ['bucket-owner-full-control', 'OK', 'AccessDenied', '403'],
  ]
  for (const [acl, owner, other, anonymous] of table) {
    const key = `canned-${acl}`
    await alice.send(new PutObjectCommand({ Bucket: B, Key: key, Body: 'data', ACL: acl }))
    assert.is(await reads(alice, B, key), owner, `${acl}: owner`)
    assert.is(await reads(bob, B, key), other, `${acl}: other user`)
    assert.is(String((await anon('GET', `/${B}/${key}`)).status), anonymous, `${acl}: anonymous`)
  }
  // An unknown canned ACL is refused and writes nothing.
  assert.is((await errorOf(alice.send(new PutObjectCommand({ Bucket: B, Key: 'bad-acl', Body: 'x', ACL: 'everyone' as ObjectCannedACL })))).name, 'InvalidArgument')
  assert.is((await errorOf(alice.send(new GetObjectCommand({ Bucket: B, Key: 'bad-acl' })))).name, 'NoSuchKey')
})

test('each canned bucket ACL: who may list the bucket and write into it', async () => {
  const table: [BucketCannedACL, string, string, string, string][] = [
    // acl, bob lists, anonymous lists, bob writes, anonymous writes
    ['private', 'AccessDenied', '403', 'AccessDenied', '403'],
    ['public-read', 'OK', '200', 'AccessDenied', '403'],
    ['public-read-write', 'OK', '200', 'OK', '200'],
    ['authenticated-read', 'OK', '403', 'AccessDenied', '403'],
  ]
  for (const [acl, bobLists, anonLists, bobWrites, anonWrites] of table) {
    const bucket = `canned-${acl}`
    await alice.send(new CreateBucketCommand({ Bucket: bucket, ACL: acl }))
    assert.is((await errorOf(alice.send(new ListObjectsV2Command({ Bucket: bucket })))).name, 'OK', `${acl}: owner lists`)
    assert.is((await errorOf(bob.send(new ListObjectsV2Command({ Bucket: bucket })))).name, bobLists, `${acl}: bob lists`)
    assert.is(String((await anon('GET', `/${bucket}?list-type=2`)).status), anonLists, `${acl}: anonymous lists`)
    assert.is((await errorOf(bob.send(new PutObjectCommand({ Bucket: bucket, Key: 'from-bob', Body: 'b' })))).name, bobWrites, `${acl}: bob writes`)
    assert.is(String((await anon('PUT', `/${bucket}/from-anon`, 'a')).status), anonWrites, `${acl}: anonymous writes`)
    // Its configuration stays the owner's whatever the ACL.
    assert.is((await errorOf(bob.send(new GetBucketAclCommand({ Bucket: bucket })))).name, 'AccessDenied', `${acl}: bob reads the ACL`)
  }
})

test('CreateBucket with x-amz-grant-* headers; a bad grant creates no bucket', async () => {
  await alice.send(new CreateBucketCommand({ Bucket: 'granted-bucket', GrantRead: 'id="bob"', GrantFullControl: 'id="alice"' }))
  assert.is((await errorOf(bob.send(new ListObjectsV2Command({ Bucket: 'granted-bucket' })))).name, 'OK')
  assert.is((await errorOf(carol.send(new ListObjectsV2Command({ Bucket: 'granted-bucket' })))).name, 'AccessDenied')
  assert.equal(grantsOf(await alice.send(new GetBucketAclCommand({ Bucket: 'granted-bucket' }))), ['CanonicalUser:bob:READ', 'CanonicalUser:alice:FULL_CONTROL'])
  assert.is((await errorOf(alice.send(new CreateBucketCommand({ Bucket: 'bad-grant', GrantRead: 'uri="http://example.com/all"' })))).name, 'InvalidArgument')
  assert.is((await errorOf(alice.send(new ListObjectsV2Command({ Bucket: 'bad-grant' })))).name, 'NoSuchBucket')
})

test("a key written into another's bucket is its writer's: the bucket owner reads it only when granted, but may delete it", async () => {
  const bucket = 'canned-public-read-write'
  await bob.send(new PutObjectCommand({ Bucket: bucket, Key: 'bobs', Body: 'mine' }))
  assert.is(await reads(bob, bucket, 'bobs'), 'OK')
  assert.is(await reads(alice, bucket, 'bobs'), 'AccessDenied')
  await bob.send(new PutObjectCommand({ Bucket: bucket, Key: 'shared', Body: 'ours', ACL: 'bucket-owner-read' }))
  assert.is(await reads(alice, bucket, 'shared'), 'OK')
  assert.is(await reads(carol, bucket, 'shared'), 'AccessDenied')
  const acl = await bob.send(new GetObjectAclCommand({ Bucket: bucket, Key: 'shared' }))
  assert.equal(acl.Owner?.ID, 'bob')
  assert.equal(grantsOf(acl), ['CanonicalUser:bob:FULL_CONTROL', 'CanonicalUser:alice:READ'])
  // Listings name each key's owner: V1 always, V2 with fetch-owner.
  const v1 = await alice.send(new ListObjectsCommand({ Bucket: bucket }))
  const owners = Object.fromEntries((v1.Contents ?? []).map((c) => [c.Key, c.Owner?.ID]))
  assert.is(owners.bobs, 'bob')
  assert.is(owners['from-anon'], 'alice')
  assert.is(v1.Contents!.find((c) => c.Key === 'bobs')!.Owner!.DisplayName, 'bob')
  const v2 = await alice.send(new ListObjectsV2Command({ Bucket: bucket, FetchOwner: true }))
  assert.is(v2.Contents!.find((c) => c.Key === 'bobs')!.Owner!.ID, 'bob')
  assert.is((await alice.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents![0].Owner, undefined)
  await alice.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'bobs' }))
  assert.is(await reads(bob, bucket, 'bobs'), 'NoSuchKey')
})

test('x-amz-grant-* headers grant exactly what they list; with x-amz-acl too they are InvalidRequest; an e-mail grantee is refused', async () => {
  await alice.send(new PutObjectCommand({ Bucket: B, Key: 'granted', Body: 'g', GrantRead: 'id="bob"', GrantFullControl: 'id="alice"' }))
  assert.is(await reads(bob, B, 'granted'), 'OK')
  assert.is(await reads(carol, B, 'granted'), 'AccessDenied')
  assert.is((await errorOf(bob.send(new GetObjectAclCommand({ Bucket: B, Key: 'granted' })))).name, 'AccessDenied')
  await alice.send(new PutObjectCommand({ Bucket: B, Key: 'group', Body: 'g', GrantRead: `uri="${AUTHENTICATED_USERS_GROUP}"` }))
  assert.is(await reads(carol, B, 'group'), 'OK')
  assert.is((await anon('GET', `/${B}/group`)).status, 403)
  // The owner keeps READ_ACP and WRITE_ACP on a key whose ACL leaves it out.
  assert.equal(grantsOf(await alice.send(new GetObjectAclCommand({ Bucket: B, Key: 'group' }))), [`Group:${AUTHENTICATED_USERS_GROUP}:READ`])
  await alice.send(new PutObjectAclCommand({ Bucket: B, Key: 'group', GrantRead: 'id="bob"' }))
  assert.is(await reads(alice, B, 'group'), 'AccessDenied')
  assert.equal(grantsOf(await alice.send(new GetObjectAclCommand({ Bucket: B, Key: 'group' }))), ['CanonicalUser:bob:READ'])
  assert.is((await errorOf(alice.send(new PutObjectCommand({ Bucket: B, Key: 'both', Body: 'x', ACL: 'private', GrantRead: 'id="bob"' })))).name, 'InvalidRequest')
  assert.is((await errorOf(alice.send(new PutObjectCommand({ Bucket: B, Key: 'mail', Body: 'x', GrantRead: 'emailAddress="bob@example.com"' })))).name, 'UnresolvableGrantByEmailAddress')
  assert.is((await errorOf(alice.send(new GetObjectCommand({ Bucket: B, Key: 'mail' })))).name, 'NoSuchKey')
})

test('PutObjectAcl and PutBucketAcl with an AccessControlPolicy body; a malformed one is MalformedACLError and changes nothing', async () => {
  await alice.send(new PutObjectCommand({ Bucket: B, Key: 'by-body', Body: 'b' }))
  const policy = {
    Owner: { ID: 'alice' },
    Grants: [
      { Grantee: { Type: 'CanonicalUser' as const, ID: 'alice' }, Permission: 'FULL_CONTROL' as const },
      { Grantee: { Type: 'Group' as const, URI: ALL_USERS_GROUP }, Permission: 'READ' as const },
    ],
  }
  await alice.send(new PutObjectAclCommand({ Bucket: B, Key: 'by-body', AccessControlPolicy: policy }))
  assert.is((await anon('GET', `/${B}/by-body`)).body, 'b')
  // Rewriting the ACL keeps the bytes and the ETag.
  assert.is((await alice.send(new GetObjectCommand({ Bucket: B, Key: 'by-body' }))).ETag, '"92eb5ffee6ae2fec3ad71c777531578f"')
  const bad = [
    { ...policy, Grants: [{ Grantee: { Type: 'Group' as const, URI: 'http://example.com/nobody' }, Permission: 'READ' as const }] },
    { ...policy, Grants: [{ Grantee: { Type: 'CanonicalUser' as const, ID: 'bob' }, Permission: 'EVERYTHING' as 'READ' }] },
  ]
  for (const p of bad) assert.is((await errorOf(alice.send(new PutObjectAclCommand({ Bucket: B, Key: 'by-body', AccessControlPolicy: p })))).name, 'MalformedACLError')
  const mail = { ...policy, Grants: [{ Grantee: { Type: 'AmazonCustomerByEmail' as const, EmailAddress: 'b@example.com' }, Permission: 'READ' as const }] }
  assert.is((await errorOf(alice.send(new PutObjectAclCommand({ Bucket: B, Key: 'by-body', AccessControlPolicy: mail })))).name, 'UnresolvableGrantByEmailAddress')
  // An ACL cannot give the key to someone else.
  assert.is((await errorOf(alice.send(new PutObjectAclCommand({ Bucket: B, Key: 'by-body', AccessControlPolicy: { ...policy, Owner: { ID: 'bob' } } })))).name, 'AccessDenied')
  assert.equal(grantsOf(await alice.send(new GetObjectAclCommand({ Bucket: B, Key: 'by-body' }))), ['CanonicalUser:alice:FULL_CONTROL', `Group:${ALL_USERS_GROUP}:READ`])
  // Not XML at all, raw: MalformedACLError too.
  await alice.send(new CreateBucketCommand({ Bucket: 'acl-body' }))
  await alice.send(new PutBucketAclCommand({ Bucket: 'acl-body', AccessControlPolicy: policy }))
  assert.is((await anon('GET', '/acl-body')).status, 200)
  assert.is((await errorOf(alice.send(new PutBucketAclCommand({ Bucket: 'acl-body', AccessControlPolicy: bad[1] })))).name, 'MalformedACLError')
  assert.equal(grantsOf(await alice.send(new GetBucketAclCommand({ Bucket: 'acl-body' }))), ['CanonicalUser:alice:FULL_CONTROL', `Group:${ALL_USERS_GROUP}:READ`])
  await alice.send(new PutBucketAclCommand({ Bucket: 'acl-body', ACL: 'private' }))
  assert.is((await anon('GET', '/acl-body')).status, 403)
})

test('an ACL body that is not well-formed XML, has a DOCTYPE or another root is MalformedACLError and changes nothing', async () => {
  await alice.send(new CreateBucketCommand({ Bucket: 'raw-acl', ACL: 'public-read' }))
  const xsi = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
  const good = `<AccessControlPolicy><Owner><ID>alice</ID></Owner><AccessControlList><Grant><Grantee ${xsi} xsi:type="CanonicalUser"><ID>alice</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>`
  const bodies = [
    '<AccessControlPolicy><Owner>',
    '<!DOCTYPE x [<!ENTITY e "alice">]><AccessControlPolicy><Owner><ID>&e;</ID></Owner><AccessControlList/></AccessControlPolicy>',
    '<Tagging><TagSet/></Tagging>',
    good.replace('FULL_CONTROL', 'ALL'),
    good.replace('CanonicalUser', 'Nobody'),
  ]
  for (const body of bodies) {
    const r = await signedRequest(env, 'PUT', '/raw-acl?acl', body)
    assert.is(r.status, 400, body)
    assert.match(r.body, '<Code>MalformedACLError</Code>', body)
  }
  assert.is((await anon('GET', '/raw-acl')).status, 200)
  // The same document, well-formed, as a Go or Python client writes it (character references too).
  assert.is((await signedRequest(env, 'PUT', '/raw-acl?acl', good.replace('<ID>alice</ID></Grantee>', '<ID>&#97;lice</ID></Grantee>'))).status, 200)
  assert.is((await anon('GET', '/raw-acl')).status, 403)
  assert.equal(grantsOf(await alice.send(new GetBucketAclCommand({ Bucket: 'raw-acl' }))), ['CanonicalUser:alice:FULL_CONTROL'])
})

test('PutObjectAcl by a grantee of WRITE_ACP; a missing key is NoSuchKey to who may list, AccessDenied to others', async () => {
  await alice.send(new PutObjectCommand({ Bucket: B, Key: 'delegated', Body: 'd', GrantWriteACP: 'id="bob"', GrantFullControl: 'id="alice"' }))
  await bob.send(new PutObjectAclCommand({ Bucket: B, Key: 'delegated', ACL: 'public-read' }))
  assert.is((await anon('GET', `/${B}/delegated`)).status, 200)
  // Its owner is still alice.
  assert.is((await alice.send(new GetObjectAclCommand({ Bucket: B, Key: 'delegated' }))).Owner?.ID, 'alice')
  assert.is((await errorOf(alice.send(new GetObjectAclCommand({ Bucket: B, Key: 'nothing' })))).name, 'NoSuchKey')
  assert.is((await errorOf(bob.send(new GetObjectAclCommand({ Bucket: B, Key: 'nothing' })))).name, 'AccessDenied')
  assert.is((await anon('GET', `/${B}/nothing`)).status, 403)
  assert.is((await anon('GET', '/no-such-bucket/k')).body.includes('<Code>NoSuchBucket</Code>'), true)
})

test('a multipart upload\'s ACL reaches the object; ListParts and ListMultipartUploads name the initiator', async () => {
  const bucket = 'canned-public-read-write'
  const { UploadId } = await bob.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp', ACL: 'public-read' }))
  const part = await bob.send(new UploadPartCommand({ Bucket: bucket, Key: 'mp', UploadId, PartNumber: 1, Body: 'part one' }))
  const parts = await bob.send(new ListPartsCommand({ Bucket: bucket, Key: 'mp', UploadId }))
  assert.equal(parts.Initiator, { ID: 'bob', DisplayName: 'bob' })
  assert.equal(parts.Owner, { ID: 'bob', DisplayName: 'bob' })
  // The bucket owner may see the uploads in its bucket and their parts; carol may not see the parts.
  const uploads = await alice.send(new ListMultipartUploadsCommand({ Bucket: bucket }))
  assert.equal(uploads.Uploads?.map((u) => [u.Key, u.Initiator?.ID, u.Owner?.ID]), [['mp', 'bob', 'bob']])
  assert.is((await errorOf(alice.send(new ListPartsCommand({ Bucket: bucket, Key: 'mp', UploadId })))).name, 'OK')
  assert.is((await errorOf(carol.send(new ListPartsCommand({ Bucket: bucket, Key: 'mp', UploadId })))).name, 'AccessDenied')
  await bob.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'mp', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }))
  assert.is((await anon('GET', `/${bucket}/mp`)).body, 'part one')
  assert.is((await bob.send(new GetObjectAclCommand({ Bucket: bucket, Key: 'mp' }))).Owner?.ID, 'bob')
  assert.is((await errorOf(alice.send(new GetObjectAclCommand({ Bucket: bucket, Key: 'mp' })))).name, 'AccessDenied')
})

test("CopyObject: the copy gets its own request's ACL and writer, never the source's", async () => {
  await alice.send(new PutObjectCommand({ Bucket: B, Key: 'src-public', Body: 'pub', ACL: 'public-read' }))
  await alice.send(new CopyObjectCommand({ Bucket: B, Key: 'copy-private', CopySource: `${B}/src-public` }))
  assert.is((await anon('GET', `/${B}/copy-private`)).status, 403)
  await alice.send(new CopyObjectCommand({ Bucket: B, Key: 'copy-public', CopySource: `${B}/src-public`, ACL: 'public-read' }))
  assert.is((await anon('GET', `/${B}/copy-public`)).body, 'pub')
  // bob may copy what he may read into a bucket he may write: the copy is his.
  await bob.send(new CopyObjectCommand({ Bucket: 'canned-public-read-write', Key: 'bobs-copy', CopySource: `${B}/src-public` }))
  assert.is((await bob.send(new GetObjectAclCommand({ Bucket: 'canned-public-read-write', Key: 'bobs-copy' }))).Owner?.ID, 'bob')
})

test('anonymous requests: ListBuckets and CreateBucket are AccessDenied; HEAD of a public bucket and key works', async () => {
  assert.is((await anon('GET', '/')).status, 403)
  assert.is((await anon('PUT', '/anon-bucket')).status, 403)
  assert.is((await anon('HEAD', '/canned-public-read')).status, 200)
  assert.is((await anon('HEAD', '/canned-private')).status, 403)
  assert.is((await anon('HEAD', `/${B}/canned-public-read`)).status, 200)
  // A half-signed request is not anonymous: it is refused as before.
  assert.is((await anon('GET', `/${B}/canned-public-read?X-Amz-Algorithm=AWS4-HMAC-SHA256`)).status, 403)
})

test('BlockPublicAcls refuses public ACLs on PutObject, PutObjectAcl and PutBucketAcl; private ones pass', async () => {
  await alice.send(new CreateBucketCommand({ Bucket: 'blocked' }))
  await alice.send(new PutPublicAccessBlockCommand({ Bucket: 'blocked', PublicAccessBlockConfiguration: { BlockPublicAcls: true } }))
  assert.is((await errorOf(alice.send(new PutObjectCommand({ Bucket: 'blocked', Key: 'k', Body: 'x', ACL: 'public-read' })))).name, 'AccessDenied')
  await alice.send(new PutObjectCommand({ Bucket: 'blocked', Key: 'k', Body: 'x', ACL: 'private' }))
  assert.is((await errorOf(alice.send(new PutObjectAclCommand({ Bucket: 'blocked', Key: 'k', ACL: 'authenticated-read' })))).name, 'AccessDenied')
  assert.is((await errorOf(alice.send(new PutBucketAclCommand({ Bucket: 'blocked', ACL: 'public-read' })))).name, 'AccessDenied')
  assert.is((await errorOf(alice.send(new CreateMultipartUploadCommand({ Bucket: 'blocked', Key: 'mp', ACL: 'public-read' })))).name, 'AccessDenied')
})

test('a bucket policy decides before the ACLs: an Allow opens a private key to anonymous reads, a Deny shuts a public one', async () => {
  await alice.send(new CreateBucketCommand({ Bucket: 'with-policy' }))
  await alice.send(new PutObjectCommand({ Bucket: 'with-policy', Key: 'open/k', Body: 'open' }))
  await alice.send(new PutObjectCommand({ Bucket: 'with-policy', Key: 'shut/k', Body: 'shut', ACL: 'public-read' }))
  assert.is((await anon('GET', '/with-policy/open/k')).status, 403)
  await alice.send(new PutBucketPolicyCommand({
    Bucket: 'with-policy', Policy: JSON.stringify({
      Version: '2012-10-17', Statement: [
        { Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::with-policy/open/*' },
        { Effect: 'Deny', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::with-policy/shut/*' },
      ],
    }),
  }))
  assert.is((await anon('GET', '/with-policy/open/k')).body, 'open')
  assert.is(await reads(bob, 'with-policy', 'open/k'), 'OK')
  assert.is((await anon('GET', '/with-policy/shut/k')).status, 403)
  assert.is(await reads(alice, 'with-policy', 'shut/k'), 'AccessDenied')
  // Allowed to read but not to list: a missing key is AccessDenied, not NoSuchKey.
  assert.is((await anon('GET', '/with-policy/open/missing')).status, 403)
  assert.is((await errorOf(alice.send(new GetObjectCommand({ Bucket: 'with-policy', Key: 'open/missing' })))).name, 'NoSuchKey')
})

test("a policy's conditions see the request: aws:SourceIp from the connection, s3:prefix from the listing", async () => {
  await alice.send(new CreateBucketCommand({ Bucket: 'conditions' }))
  await alice.send(new PutObjectCommand({ Bucket: 'conditions', Key: 'home/bob/a', Body: 'a' }))
  const put = (statements: unknown[]) => alice.send(new PutBucketPolicyCommand({ Bucket: 'conditions', Policy: JSON.stringify({ Version: '2012-10-17', Statement: statements }) }))
  const read = (cidr: string) => ({ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::conditions/*', Condition: { IpAddress: { 'aws:SourceIp': cidr } } })
  await put([read('127.0.0.0/8')])
  assert.is((await anon('GET', '/conditions/home/bob/a')).body, 'a')
  await put([read('10.0.0.0/8')])
  assert.is((await anon('GET', '/conditions/home/bob/a')).status, 403)
  await put([{ Effect: 'Allow', Principal: { CanonicalUser: 'bob' }, Action: 's3:ListBucket', Resource: 'arn:aws:s3:::conditions', Condition: { StringLike: { 's3:prefix': 'home/bob/*' } } }])
  assert.equal((await bob.send(new ListObjectsV2Command({ Bucket: 'conditions', Prefix: 'home/bob/' }))).Contents?.map((c) => c.Key), ['home/bob/a'])
  assert.is((await errorOf(bob.send(new ListObjectsV2Command({ Bucket: 'conditions' })))).name, 'AccessDenied')
  assert.is((await errorOf(bob.send(new ListObjectsV2Command({ Bucket: 'conditions', Prefix: 'home/' })))).name, 'AccessDenied')
})

test('a PUT that lands while PutObjectAcl reads its body keeps its own ETag and bytes (the ACL is written over the new key)', async () => {
  await alice.send(new PutObjectCommand({ Bucket: B, Key: 'raced', Body: 'old bytes' }))
  const xsi = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
  const body = `<AccessControlPolicy><AccessControlList><Grant><Grantee ${xsi} xsi:type="CanonicalUser"><ID>alice</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant>` +
    `<Grant><Grantee ${xsi} xsi:type="Group"><URI>${ALL_USERS_GROUP}</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>`
  // The request's headers go first: the gateway authenticates it and reads the key, then waits
  // for the body; meanwhile another PUT replaces the key.
  const reply = signedRequest(env, 'PUT', `/${B}/raced?acl`, body, { beforeBody: async () => {
    await new Promise((r) => setTimeout(r, 300))
    await alice.send(new PutObjectCommand({ Bucket: B, Key: 'raced', Body: 'new bytes', ContentType: 'text/plain' }))
  } })
  assert.is((await reply).status, 200)
  const r = await alice.send(new GetObjectCommand({ Bucket: B, Key: 'raced' }))
  assert.is(await r.Body!.transformToString(), 'new bytes')
  assert.is(r.ETag, `"${createHash('md5').update('new bytes').digest('hex')}"`)
  assert.is(r.ContentType, 'text/plain')
  assert.is((await anon('GET', `/${B}/raced`)).body, 'new bytes')
})

test.run()
