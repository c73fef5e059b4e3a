/**
 * Goal: the S3 gateway and the OM decide alike through the one native authorizer. A native
 * grant (`o3 sh bucket addacl -a user:bob:l`) lets bob list alice's bucket through S3; a
 * DEFAULT grant reaches the keys written after it, which bob may then GET, while older keys
 * stay refused; CREATE lets bob PUT; removing the grant refuses again. The other way, an S3
 * ACL grant (PutBucketAcl READ to bob) is READ+LIST for the OM's authorizer. Method: a real
 * gateway over a mini cluster (security off: the native client sets ACLs as an open caller),
 * the AWS SDK as alice and bob, and the OM's authorize option asked with a user RpcContext.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutBucketAclCommand, PutObjectCommand, DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import type { O3Client } from '../../../datapath/client/index.ts'
import { formatAcl } from '../../../core/access/native-acl.ts'
import { errorCode } from '../../helpers.ts'
import { errorOf, startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

let env: S3TestCluster
let alice: S3Client, bob: S3Client
let client: O3Client
const BUCKET = 'alice-shared'
const object = { kind: 'bucket' as const, volume: 's3v', bucket: BUCKET }
const bobUser = { caller: { kind: 'user' as const, user: 'bob' } }

test.before(async () => {
  env = await startS3Cluster()
  alice = s3Client(env, env.alice, { maxAttempts: 1 })
  bob = s3Client(env, env.bob, { maxAttempts: 1 })
  client = env.cluster.client()
  await alice.send(new CreateBucketCommand({ Bucket: BUCKET }))
  await alice.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'old', Body: 'before the grant' }))
})
test.after(async () => { await env.dispose() })

test('a bucket made through S3 carries its owner\'s native ACL', async () => {
  assert.equal((await client.getAcl(object)).map(formatAcl), ['user:alice:a'])
})

test('native grants on the bucket: LIST lets bob list, DEFAULT READ reaches new keys only, CREATE lets him put; removal refuses again', async () => {
  const list = () => errorOf(bob.send(new ListObjectsV2Command({ Bucket: BUCKET })))
  const get = (key: string) => errorOf(bob.send(new GetObjectCommand({ Bucket: BUCKET, Key: key })))
  const put = (key: string) => errorOf(bob.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'bob' })))
  assert.is((await list()).name, 'AccessDenied')
  assert.is((await get('old')).name, 'AccessDenied')
  assert.is((await put('bobs')).name, 'AccessDenied')

  await client.addAcl(object, 'user:bob:rl')
  await client.addAcl(object, 'user:bob:r[DEFAULT]')
  assert.is((await list()).name, 'OK')
  await alice.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'new', Body: 'after the grant' }))
  assert.ok((await client.getAcl({ kind: 'key', volume: 's3v', bucket: BUCKET, key: 'new' })).map(formatAcl).includes('user:bob:r'), 'the new key inherited bob\'s DEFAULT READ')
  const r = await bob.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'new' }))
  assert.is(await r.Body!.transformToString(), 'after the grant')
  assert.is((await get('old')).name, 'AccessDenied', 'a key written before the DEFAULT ACL')
  assert.is((await put('bobs')).name, 'AccessDenied', 'READ and LIST do not write')

  await client.addAcl(object, 'user:bob:c')
  assert.is((await put('bobs')).name, 'OK')
  assert.is((await errorOf(bob.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'new' })))).name, 'AccessDenied', 'CREATE does not delete')

  await client.removeAcl(object, 'user:bob:rlc')
  assert.is((await list()).name, 'AccessDenied')
  assert.is((await get('new')).name, 'AccessDenied', 'the key still grants READ, but the bucket no longer does')
  await client.setAcl(object, ['user:alice:a'])
})

test('the OM\'s authorizer takes S3 ACL grants as native rights: PutBucketAcl READ to bob is READ and LIST, not CREATE', async () => {
  const authorize = env.cluster.om.authorize
  const ask = (method: string, args: Record<string, unknown>) => errorCode(Promise.resolve().then(() => authorize(method, args, bobUser)))
  assert.is(await ask('listKeys', { volume: 's3v', bucket: BUCKET }), 'PERMISSION_DENIED')
  await alice.send(new PutBucketAclCommand({ Bucket: BUCKET, GrantRead: 'id="bob"', GrantFullControl: 'id="alice"' }))
  assert.is(await ask('listKeys', { volume: 's3v', bucket: BUCKET }), 'OK')
  assert.is(await ask('getBucket', { volume: 's3v', bucket: BUCKET }), 'OK')
  assert.is(await ask('openKey', { volume: 's3v', bucket: BUCKET, key: 'x' }), 'PERMISSION_DENIED')
  // And the gateway agrees: bob lists through S3 by the S3 grant.
  assert.is((await errorOf(bob.send(new ListObjectsV2Command({ Bucket: BUCKET })))).name, 'OK')
})

test.run()
