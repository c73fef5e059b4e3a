/**
 * Goal: authorizeNative() decides as Ozone's native authorizer: administrators and owners have
 * every right, others need the right in the object's ACLs and READ on the records above it;
 * S3 ACL grants count as their native rights; and the S3 authorizer takes a native grant where
 * the S3 ACL says no (but not a public one under IgnorePublicAcls). Method: tables over one
 * volume, bucket and key.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { authorizeNative, nativeRightsOf, s3ToNative, type NativeTarget } from '../../../core/access/authorize.ts'
import { ACL_RIGHTS, parseAcl, type AclRight } from '../../../core/access/native-acl.ts'
import { cannedAcl } from '../../../core/s3-access/acl.ts'
import { authorize } from '../../../core/s3-access/authorize.ts'
import type { BucketInfo, KeyInfo, VolumeInfo } from '../../../core/om-wire.ts'
import type { BucketS3Config } from '../../../core/s3-access/model.ts'

const acls = (...s: string[]) => s.map(parseAcl)
const volume = (a: string[] = []): VolumeInfo => ({ name: 'vol', owner: 'alice', admin: 'alice', createdAtMs: 0, modifiedAtMs: 0, quotaBytes: -1, quotaNamespace: -1, acls: acls('user:alice:a', ...a) })
const bucket = (a: string[] = [], s3?: BucketS3Config): BucketInfo => ({
  volume: 'vol', name: 'b', owner: 'alice', layout: 'OBJECT_STORE', replication: 'RATIS/ONE', checksumType: 'CRC32C', createdAtMs: 0, modifiedAtMs: 0,
  quotaBytes: -1, quotaNamespace: -1, usedBytes: 0, usedNamespace: 0, acls: acls('user:alice:a', ...a), ...(s3 === undefined ? {} : { s3 }),
})
const key = (a: string[] = [], metadata: Record<string, string> = {}): KeyInfo => ({
  volume: 'vol', bucket: 'b', name: 'k', size: 0, replication: 'RATIS/ONE', checksumType: 'CRC32C', bytesPerChecksum: 16384, createdAtMs: 0, modifiedAtMs: 0,
  locations: [], metadata, objectId: 1, acls: acls('user:alice:a', ...a),
})
const may = (user: string | undefined, right: AclRight, target: NativeTarget, o: { admin?: boolean; groups?: string[] } = {}) =>
  authorizeNative({ principal: { user, groups: o.groups ?? [] }, admin: o.admin === true, right, target }).allowed

const RIGHTS = ACL_RIGHTS.filter((r) => r !== 'ALL' && r !== 'NONE')

test('each right on each object kind: granted to bob alone it allows that right, and no other', () => {
  for (const right of RIGHTS) {
    const grant = `user:bob:${right}`
    const targets: [string, NativeTarget][] = [
      ['volume', { kind: 'volume', volume: volume([grant]) }],
      ['bucket', { kind: 'bucket', volume: volume(['user:bob:r']), bucket: bucket([grant]) }],
      ['key', { kind: 'key', volume: volume(['user:bob:r']), bucket: bucket(['user:bob:r']), key: key([grant]) }],
    ]
    for (const [kind, target] of targets) {
      assert.ok(may('bob', right, target), `bob ${right} on ${kind}`)
      assert.not.ok(may('carol', right, target), `carol ${right} on ${kind}`)
      for (const other of RIGHTS) {
        if (other === right) continue
        assert.not.ok(may('bob', other, target), `bob ${other} on ${kind} with only ${grant}`)
      }
    }
  }
})

test('owners and administrators have every right; the bucket owner on its keys too; others nothing without an ACL', () => {
  const k: NativeTarget = { kind: 'key', volume: volume(), bucket: { ...bucket(), owner: 'bob', acls: [] }, key: key() }
  for (const right of ACL_RIGHTS.filter((r) => r !== 'NONE')) {
    assert.ok(may('alice', right, { kind: 'volume', volume: volume() }), `volume owner ${right}`)
    assert.ok(may('bob', right, k), `bucket owner ${right} on its key`)
    assert.ok(may('root', right, k, { admin: true }), `admin ${right}`)
    assert.not.ok(may('carol', right, k), `carol ${right}`)
    assert.not.ok(may(undefined, right, k), `anonymous ${right}`)
  }
})

test('a key\'s right needs READ on its bucket and volume; the S3 volumes are left out (volume undefined)', () => {
  const k = key(['user:bob:r'])
  assert.not.ok(may('bob', 'READ', { kind: 'key', volume: volume(), bucket: bucket(['user:bob:r']), key: k }), 'no volume READ')
  assert.not.ok(may('bob', 'READ', { kind: 'key', volume: volume(['user:bob:r']), bucket: bucket(), key: k }), 'no bucket READ')
  assert.ok(may('bob', 'READ', { kind: 'key', volume: volume(['user:bob:r']), bucket: bucket(['user:bob:r']), key: k }))
  assert.ok(may('bob', 'READ', { kind: 'key', bucket: bucket(['user:bob:r']), key: k }), 's3v: no volume to read')
  assert.ok(may('bob', 'CREATE', { kind: 'bucket', bucket: bucket(['user:bob:c']) }), 'CREATE on the bucket makes keys')
})

test('groups, world and anonymous grants', () => {
  const t: NativeTarget = { kind: 'bucket', bucket: bucket(['group:dev:l', 'world::r', 'anonymous::x']) }
  assert.ok(may('erin', 'LIST', t, { groups: ['dev'] }))
  assert.not.ok(may('frank', 'LIST', t))
  assert.ok(may('frank', 'READ', t))
  assert.not.ok(may(undefined, 'READ', t), 'world is signed users only')
  assert.ok(may(undefined, 'READ_ACL', t), 'anonymous is anyone')
})

test('S3 ACL grants count as their native rights (READ -> READ+LIST on a bucket; WRITE -> CREATE+DELETE+WRITE; FULL_CONTROL -> ALL)', () => {
  assert.equal(nativeRightsOf('READ', 'bucket'), ['READ', 'LIST'])
  assert.equal(nativeRightsOf('WRITE', 'bucket'), ['WRITE', 'CREATE', 'DELETE'])
  assert.equal(nativeRightsOf('READ_ACP', 'key'), ['READ_ACL'])
  assert.equal(nativeRightsOf('WRITE_ACP', 'key'), ['WRITE_ACL'])
  assert.equal(nativeRightsOf('FULL_CONTROL', 'key'), ['ALL'])
  assert.equal(s3ToNative(cannedAcl('public-read', 'alice', 'alice'), 'bucket').map((a) => `${a.type}:${a.name}:${a.rights}`), ['user:alice:ALL', 'anonymous::READ,LIST'])
  const s3 = { acl: { owner: 'alice', grants: [{ grantee: { type: 'CanonicalUser' as const, id: 'bob' }, permission: 'WRITE' as const }] } }
  const t: NativeTarget = { kind: 'bucket', bucket: bucket([], s3) }
  assert.ok(may('bob', 'CREATE', t))
  assert.ok(may('bob', 'DELETE', t))
  assert.not.ok(may('bob', 'LIST', t))
})

test('the S3 authorizer: a native grant allows what the S3 ACL does not; IgnorePublicAcls leaves out native world/anonymous too', () => {
  const ask = (principal: string | undefined, action: string, b: BucketInfo, k?: KeyInfo) =>
    authorize({ principal, action, resource: 'arn:aws:s3:::b/k', conditions: {}, bucket: b, key: k }).allowed
  assert.not.ok(ask('bob', 's3:ListBucket', bucket()))
  assert.ok(ask('bob', 's3:ListBucket', bucket(['user:bob:l'])))
  assert.not.ok(ask('bob', 's3:PutObject', bucket(['user:bob:l'])))
  assert.ok(ask('bob', 's3:PutObject', bucket(['user:bob:c'])))
  assert.ok(ask('bob', 's3:GetObject', bucket(['user:bob:r']), key(['user:bob:r'])))
  assert.not.ok(ask('bob', 's3:GetObject', bucket(['user:bob:r']), key()), 'the key grants nothing')
  assert.not.ok(ask('bob', 's3:GetObject', bucket(), key(['user:bob:r'])), 'no READ on the bucket')
  assert.ok(ask(undefined, 's3:ListBucket', bucket(['anonymous::l'])))
  assert.not.ok(ask(undefined, 's3:ListBucket', bucket(['anonymous::l'], { publicAccessBlock: { blockPublicAcls: false, ignorePublicAcls: true, blockPublicPolicy: false, restrictPublicBuckets: false } })))
  // Owner-only actions are not opened by native grants.
  assert.not.ok(ask('bob', 's3:PutBucketPolicy', bucket(['user:bob:a'])))
  assert.not.ok(ask('bob', 's3:GetObjectTagging', bucket(['user:bob:a']), key(['user:bob:a'])))
})

test.run()
