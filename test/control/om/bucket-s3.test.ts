/** Goal: setBucketS3 keeps S3's bucket configuration (ACL, policy, CORS, tags, public access
 * block) with the bucket, one field at a time: a field set stays until cleared (null), the
 * others are untouched, an unknown field, an oversized value or a missing bucket is refused
 * and changes nothing, and both replicas end with identical tables. Method: the request's
 * prepare once, then apply on two real LMDB databases in a temp dir. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { BucketInfo } from '../../../core/om-wire.ts'
import type { S3Acl } from '../../../core/s3-access/model.ts'
import { errorCode } from '../../helpers.ts'
import { digest, OmReplicas } from './replicas.ts'

const om = new OmReplicas('o3-om-bucket-s3-')
const { leader, follower, run } = om
const bucket = (): BucketInfo => leader.t.buckets.get('s3v/conf')!

test.before(async () => {
  await run('createVolume', { volume: 's3v' })
  await run('createBucket', { volume: 's3v', bucket: 'conf', owner: 'alice' })
})
test.after(() => om.close())

test('a new bucket has no S3 configuration; fields are set and cleared one at a time', async () => {
  assert.is(bucket().s3, undefined)
  const acl: S3Acl = { owner: 'alice', grants: [{ grantee: { type: 'CanonicalUser', id: 'alice' }, permission: 'FULL_CONTROL' }] }
  const policy = '{"Version":"2012-10-17","Statement":[]}'
  await run('setBucketS3', { volume: 's3v', bucket: 'conf', field: 'acl', value: acl })
  const b = await run('setBucketS3', { volume: 's3v', bucket: 'conf', field: 'policy', value: policy }) as BucketInfo
  assert.equal(b.s3, { acl, policy })
  await run('setBucketS3', { volume: 's3v', bucket: 'conf', field: 'tags', value: [['b', '2'], ['a', '1']] })
  assert.equal(bucket().s3?.tags, [['b', '2'], ['a', '1']], 'tags keep their order')
  await run('setBucketS3', { volume: 's3v', bucket: 'conf', field: 'acl', value: null })
  assert.equal(bucket().s3, { policy, tags: [['b', '2'], ['a', '1']] }, 'clearing one field keeps the others')
  await run('setBucketS3', { volume: 's3v', bucket: 'conf', field: 'policy', value: null })
  await run('setBucketS3', { volume: 's3v', bucket: 'conf', field: 'tags', value: null })
  assert.is(bucket().s3, undefined, 'nothing left: no record')
  assert.is(bucket().owner, 'alice')
  assert.is(digest(leader), digest(follower))
})

test('an unknown field, an oversized value or a missing bucket is refused and changes nothing', async () => {
  await run('setBucketS3', { volume: 's3v', bucket: 'conf', field: 'cors', value: [{ allowedOrigins: ['*'], allowedMethods: ['GET'], allowedHeaders: [], exposeHeaders: [] }] })
  const before = digest(leader)
  assert.is(await errorCode(run('setBucketS3', { volume: 's3v', bucket: 'conf', field: 'owner', value: 'bob' })), 'INVALID_ARGUMENT')
  assert.is(await errorCode(run('setBucketS3', { volume: 's3v', bucket: 'conf', field: 'policy', value: 'x'.repeat(70 * 1024) })), 'INVALID_ARGUMENT')
  assert.is(await errorCode(run('setBucketS3', { volume: 's3v', bucket: 'nope', field: 'policy', value: '{}' })), 'BUCKET_NOT_FOUND')
  assert.is(digest(leader), before)
  assert.is(bucket().owner, 'alice')
  assert.is(digest(leader), digest(follower))
})

test.run()
