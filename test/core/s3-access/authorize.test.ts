/**
 * Goal: authorize() decides in AWS's order: a policy Deny wins over everything (the owner
 * too), a policy Allow over the ACLs unless RestrictPublicBuckets ignores a public one, then
 * the bucket's ACL for bucket actions and key writes, the key's ACL for key reads, with the
 * owners' standing rights and IgnorePublicAcls. Method: a table of (principal, action, ACLs,
 * verdict) over one bucket, with one-statement policies: this suite tests the order, not
 * policy matching (policy.test.ts does).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cannedAcl, privateAcl } from '../../../core/s3-access/acl.ts'
import { authorize, needsObjectAcl } from '../../../core/s3-access/authorize.ts'
import type { BucketS3Config, S3Acl } from '../../../core/s3-access/model.ts'
import type { BucketInfo } from '../../../core/om-wire.ts'

const bucketOf = (s3?: BucketS3Config): BucketInfo => ({
  volume: 's3v', name: 'photos', owner: 'alice', layout: 'OBJECT_STORE', replication: 'RATIS/ONE', checksumType: 'CRC32C', createdAtMs: 0, modifiedAtMs: 0,
  quotaBytes: -1, quotaNamespace: -1, usedBytes: 0, usedNamespace: 0, ...(s3 === undefined ? {} : { s3 }),
})

const ask = (principal: string | undefined, action: string, o: { s3?: BucketS3Config; objectAcl?: S3Acl; resource?: string } = {}) =>
  authorize({ principal, action, resource: o.resource ?? 'arn:aws:s3:::photos/k', conditions: {}, bucket: bucketOf(o.s3), objectAcl: o.objectAcl }).allowed

test('a private bucket and key: the owner does everything, anyone else and anonymous nothing', () => {
  const actions = ['s3:ListBucket', 's3:PutObject', 's3:DeleteObject', 's3:GetObject', 's3:GetObjectAcl', 's3:PutObjectAcl', 's3:GetBucketAcl', 's3:PutBucketAcl',
    's3:GetObjectTagging', 's3:PutObjectTagging', 's3:DeleteBucket', 's3:GetBucketPolicy', 's3:PutBucketCORS', 's3:GetBucketLocation', 's3:ListBucketMultipartUploads', 's3:SomethingNew']
  for (const a of actions) {
    assert.ok(ask('alice', a), `alice ${a}`)
    assert.not.ok(ask('bob', a), `bob ${a}`)
    assert.not.ok(ask(undefined, a), `anonymous ${a}`)
  }
})

test('a public-read bucket lets anyone list it but not write, read keys, or touch its configuration', () => {
  const s3 = { acl: cannedAcl('public-read', 'alice', 'alice') }
  assert.ok(ask(undefined, 's3:ListBucket', { s3 }))
  assert.ok(ask('bob', 's3:ListBucketMultipartUploads', { s3 }))
  assert.not.ok(ask('bob', 's3:PutObject', { s3 }))
  assert.not.ok(ask('bob', 's3:GetObject', { s3 }))
  assert.not.ok(ask('bob', 's3:GetBucketAcl', { s3 }))
  assert.not.ok(ask('bob', 's3:GetBucketLocation', { s3 }))
})

test('public-read-write and authenticated-read buckets: WRITE lets keys be written and deleted', () => {
  const rw = { acl: cannedAcl('public-read-write', 'alice', 'alice') }
  assert.ok(ask(undefined, 's3:PutObject', { s3: rw }))
  assert.ok(ask('bob', 's3:DeleteObject', { s3: rw }))
  const auth = { acl: cannedAcl('authenticated-read', 'alice', 'alice') }
  assert.ok(ask('bob', 's3:ListBucket', { s3: auth }))
  assert.not.ok(ask(undefined, 's3:ListBucket', { s3: auth }))
})

test("key actions follow the key's ACL, not the bucket's; its owner keeps READ_ACP and WRITE_ACP", () => {
  const s3 = { acl: cannedAcl('public-read-write', 'alice', 'alice') }
  // bob's key in alice's bucket, bucket-owner-read: alice may read it, carol may not.
  const bobs = cannedAcl('bucket-owner-read', 'bob', 'alice')
  assert.ok(ask('alice', 's3:GetObject', { s3, objectAcl: bobs }))
  assert.not.ok(ask('alice', 's3:GetObjectAcl', { s3, objectAcl: bobs }))
  assert.not.ok(ask('carol', 's3:GetObject', { s3, objectAcl: bobs }))
  // A private key of bob's: not even the bucket owner reads it (AWS's object writer ownership).
  assert.not.ok(ask('alice', 's3:GetObject', { s3, objectAcl: privateAcl('bob') }))
  // An owner who dropped even its own grant still reads and writes the ACL.
  const bare: S3Acl = { owner: 'bob', grants: [] }
  assert.not.ok(ask('bob', 's3:GetObject', { objectAcl: bare }))
  assert.ok(ask('bob', 's3:GetObjectAcl', { objectAcl: bare }))
  assert.ok(ask('bob', 's3:PutObjectAcl', { objectAcl: bare }))
  // Tags are the key owner's alone, read or written: an ACL's READ grants GetObject only (AWS's mapping).
  const pub = cannedAcl('public-read', 'bob', 'alice')
  assert.ok(ask(undefined, 's3:GetObject', { objectAcl: pub }))
  assert.not.ok(ask(undefined, 's3:GetObjectTagging', { objectAcl: pub }))
  assert.ok(ask('bob', 's3:GetObjectTagging', { objectAcl: pub }))
  assert.not.ok(ask('alice', 's3:PutObjectTagging', { objectAcl: pub }))
  assert.ok(ask('bob', 's3:DeleteObjectTagging', { objectAcl: pub }))
})

test('the bucket owner keeps its bucket ACL rights after granting itself nothing', () => {
  const s3 = { acl: { owner: 'alice', grants: [] } }
  assert.not.ok(ask('alice', 's3:ListBucket', { s3 }))
  assert.ok(ask('alice', 's3:GetBucketAcl', { s3 }))
  assert.ok(ask('alice', 's3:PutBucketAcl', { s3 }))
})

test('an upload is its initiator\'s and the bucket owner\'s to list and abort', () => {
  const upload = privateAcl('bob')
  assert.ok(ask('bob', 's3:ListMultipartUploadParts', { objectAcl: upload }))
  assert.ok(ask('alice', 's3:AbortMultipartUpload', { objectAcl: upload }))
  assert.not.ok(ask('carol', 's3:AbortMultipartUpload', { objectAcl: upload }))
  assert.not.ok(ask(undefined, 's3:ListMultipartUploadParts', { objectAcl: upload }))
})

/** A policy document of one statement. */
const policy = (effect: 'Allow' | 'Deny', principal: unknown, actions: string[], resources = ['arn:aws:s3:::photos', 'arn:aws:s3:::photos/*']) =>
  JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: effect, Principal: principal, Action: actions, Resource: resources }] })

test('a policy Deny wins over the owner and over any ACL', () => {
  const s3 = { policy: policy('Deny', '*', ['s3:GetObject', 's3:PutBucketAcl']), acl: cannedAcl('public-read', 'alice', 'alice') }
  assert.not.ok(ask('alice', 's3:PutBucketAcl', { s3, resource: 'arn:aws:s3:::photos' }))
  assert.not.ok(ask(undefined, 's3:GetObject', { s3, objectAcl: cannedAcl('public-read', 'alice', 'alice') }))
  assert.ok(ask(undefined, 's3:ListBucket', { s3, resource: 'arn:aws:s3:::photos' }))
  assert.ok(ask('alice', 's3:PutObject', { s3 }))
})

test('a policy Allow grants beyond the ACLs; RestrictPublicBuckets ignores a public one for all but the owner', () => {
  const pub = policy('Allow', '*', ['s3:GetObject', 's3:PutObject'], ['arn:aws:s3:::photos/*'])
  assert.ok(ask(undefined, 's3:GetObject', { s3: { policy: pub } }))
  assert.ok(ask('bob', 's3:PutObject', { s3: { policy: pub } }))
  assert.not.ok(ask('bob', 's3:PutObject', { s3: { policy: pub }, resource: 'arn:aws:s3:::other/k' }))
  const restrict = { blockPublicAcls: false, ignorePublicAcls: false, blockPublicPolicy: false, restrictPublicBuckets: true }
  assert.not.ok(ask(undefined, 's3:GetObject', { s3: { policy: pub, publicAccessBlock: restrict } }))
  assert.not.ok(ask('bob', 's3:PutObject', { s3: { policy: pub, publicAccessBlock: restrict } }))
  // The ACL still decides beside the ignored policy.
  const bobWrites: S3Acl = { owner: 'alice', grants: [{ grantee: { type: 'CanonicalUser', id: 'bob' }, permission: 'WRITE' }] }
  assert.ok(ask('bob', 's3:PutObject', { s3: { policy: pub, publicAccessBlock: restrict, acl: bobWrites } }))
  // A policy that is not public is honoured under RestrictPublicBuckets.
  const bobs = policy('Allow', { CanonicalUser: 'bob' }, ['s3:PutObject'], ['arn:aws:s3:::photos/*'])
  assert.ok(ask('bob', 's3:PutObject', { s3: { policy: bobs, publicAccessBlock: restrict } }))
  assert.not.ok(ask('carol', 's3:PutObject', { s3: { policy: bobs, publicAccessBlock: restrict } }))
})

test('a stored policy that does not parse lets nobody but the bucket owner in', () => {
  const s3 = { policy: '{"Statement": 1}', acl: cannedAcl('public-read-write', 'alice', 'alice') }
  assert.not.ok(ask(undefined, 's3:ListBucket', { s3 }))
  assert.ok(ask('alice', 's3:ListBucket', { s3 }))
})

test("the bucket owner is never denied managing its policy; a policy's Allow reaches only keys the bucket owner owns", () => {
  const denyAll = policy('Deny', '*', ['s3:*'])
  for (const a of ['s3:GetBucketPolicy', 's3:PutBucketPolicy', 's3:DeleteBucketPolicy']) {
    assert.ok(ask('alice', a, { s3: { policy: denyAll }, resource: 'arn:aws:s3:::photos' }), a)
    assert.not.ok(ask('bob', a, { s3: { policy: denyAll }, resource: 'arn:aws:s3:::photos' }), a)
  }
  assert.not.ok(ask('alice', 's3:PutBucketAcl', { s3: { policy: denyAll }, resource: 'arn:aws:s3:::photos' }))
  const readAll = { policy: policy('Allow', '*', ['s3:GetObject']) }
  assert.ok(ask(undefined, 's3:GetObject', { s3: readAll, objectAcl: privateAcl('alice') }))
  assert.not.ok(ask(undefined, 's3:GetObject', { s3: readAll, objectAcl: privateAcl('bob') }))
  assert.not.ok(ask('carol', 's3:GetObject', { s3: readAll, objectAcl: privateAcl('bob') }))
  // A Deny reaches every key, whoever owns it.
  assert.not.ok(ask('bob', 's3:GetObject', { s3: { policy: policy('Deny', '*', ['s3:GetObject']) }, objectAcl: privateAcl('bob') }))
})

test('IgnorePublicAcls leaves out AllUsers and AuthenticatedUsers grants, not grants to users', () => {
  const ignore = { blockPublicAcls: false, ignorePublicAcls: true, blockPublicPolicy: false, restrictPublicBuckets: false }
  const acl = { owner: 'alice', grants: [...cannedAcl('public-read-write', 'alice', 'alice').grants, { grantee: { type: 'CanonicalUser' as const, id: 'bob' }, permission: 'READ' as const }] }
  assert.not.ok(ask(undefined, 's3:ListBucket', { s3: { acl, publicAccessBlock: ignore } }))
  assert.not.ok(ask('carol', 's3:PutObject', { s3: { acl, publicAccessBlock: ignore } }))
  assert.ok(ask('bob', 's3:ListBucket', { s3: { acl, publicAccessBlock: ignore } }))
  assert.not.ok(ask(undefined, 's3:GetObject', { s3: { publicAccessBlock: ignore }, objectAcl: cannedAcl('public-read', 'alice', 'alice') }))
})

test('needsObjectAcl() names the actions decided by the key (or upload), not the bucket', () => {
  assert.equal(['s3:GetObject', 's3:GetObjectAcl', 's3:PutObjectAcl', 's3:PutObjectTagging', 's3:AbortMultipartUpload'].map(needsObjectAcl), [true, true, true, true, true])
  assert.equal(['s3:PutObject', 's3:DeleteObject', 's3:ListBucket', 's3:GetBucketAcl', 's3:DeleteBucket'].map(needsObjectAcl), [false, false, false, false, false])
})

test.run()
