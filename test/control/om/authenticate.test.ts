/**
 * Goal: with security.enabled=1 the OM serves only callers it can name. Unsigned calls, calls
 * with an unknown or revoked access key, a wrong secret or a stale date are refused on every
 * route; a user's signed calls work; S3 secrets only for their user or an administrator;
 * s3Authenticate and x-o3-on-behalf-of only for the S3 gateway. Method: a real mini cluster
 * with a secure OM over HTTPS, callers trusting its CA without a certificate of their own (users
 * sign; the certificate path is in authenticate-peer.test.ts), native clients with and without
 * credentials, raw RpcClients.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import { RpcClient } from '../../../core/rpc/client.ts'
import { requestSigner } from '../../../core/security/request-signing.ts'
import { tlsTransport } from '../../../core/rpc/transport.ts'
import { O3Client } from '../../../datapath/client/index.ts'
import { randomBytes, startMiniCluster } from '../../cluster/mini-cluster.ts'

const cluster = await startMiniCluster({ datanodes: 1, overrides: { 'security.enabled': 1, 'o3.administrators': 'admin', 'client.replication': 'RATIS/ONE' } })
const admin = await cluster.om.ensureUserSecret('admin')
const alice = await cluster.om.ensureUserSecret('alice')
const bob = await cluster.om.ensureUserSecret('bob')
/** HTTPS trusting the cluster CA, no certificate: what a user's client is. */
const transport = tlsTransport(() => ({ ca: cluster.caCert! }))
const as = (s: { awsAccessKey: string; awsSecret: string }) => new O3Client({ om: cluster.omAddress, scm: cluster.scmAddress, transport, credentials: { accessKey: s.awsAccessKey, secret: s.awsSecret } })

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return err instanceof O3Error ? err.code : String(err)
  }
  return 'OK'
}

test.after(() => cluster.dispose())

/** Every OM route, with arguments that would otherwise pass its own checks where that is cheap. */
const ROUTES: [string, object][] = [
  ['createVolume', { volume: 'stolen' }], ['getVolume', { volume: 'v' }], ['listVolumes', {}], ['deleteVolume', { volume: 'v' }],
  ['createBucket', { volume: 'v', bucket: 'b' }], ['getBucket', { volume: 'v', bucket: 'b' }], ['listBuckets', { volume: 'v' }],
  ['deleteBucket', { volume: 'v', bucket: 'b' }], ['setVolumeQuota', { volume: 'v' }], ['setBucketQuota', { volume: 'v', bucket: 'b' }],
  ['setBucketS3', { volume: 'v', bucket: 'b', field: 'acl', value: null }], ['openKey', { volume: 'v', bucket: 'b', key: 'k' }],
  ['allocateBlock', { clientId: 'x' }], ['commitKey', { clientId: 'x' }], ['abortKey', { clientId: 'x' }],
  ['lookupKey', { volume: 'v', bucket: 'b', key: 'k' }], ['listKeys', { volume: 'v', bucket: 'b' }], ['deleteKey', { volume: 'v', bucket: 'b', key: 'k' }],
  ['renameKey', { volume: 'v', bucket: 'b', key: 'k', toKey: 'l' }], ['commitMultipartKey', { volume: 'v', bucket: 'b', key: 'k', parts: [] }],
  ['getS3Secret', { user: 'alice' }], ['revokeS3Secret', { user: 'alice' }], ['lookupS3Secret', { accessKey: alice.awsAccessKey }],
  ['s3Authenticate', { accessKey: alice.awsAccessKey }], ['roles', {}], ['stateDigest', {}], ['transferLeadership', { target: 'om2' }],
]

test('without credentials every OM route is UNAUTHENTICATED and nothing changes', async () => {
  const anonymous = new RpcClient('OM', cluster.omAddress, { transport })
  for (const [method, args] of ROUTES) assert.is(await codeOf(anonymous.call(method, args)), 'UNAUTHENTICATED', method)
  const err = await anonymous.call('listVolumes', {}).catch((e: O3Error) => e)
  assert.match((err as O3Error).message, /neither signed by a user/)
  assert.is(await codeOf(as(admin).getVolume('stolen')), 'VOLUME_NOT_FOUND')
  assert.is((await as(alice).getS3Secret('alice')).awsSecret, alice.awsSecret, 'alice still has her key')
})

test('a wrong secret is SIGNATURE_MISMATCH, an unknown access key or a stale date UNAUTHENTICATED, on every route', async () => {
  const forged = new RpcClient('OM', cluster.omAddress, { transport, signer: requestSigner({ accessKey: alice.awsAccessKey, secret: bob.awsSecret }) })
  const unknown = new RpcClient('OM', cluster.omAddress, { transport, signer: requestSigner({ accessKey: 'O3NOBODY', secret: 'x' }) })
  const stale = new RpcClient('OM', cluster.omAddress, { transport, signer: requestSigner({ accessKey: alice.awsAccessKey, secret: alice.awsSecret }, () => Date.now() - 20 * 60_000) })
  for (const [method, args] of ROUTES) {
    assert.is(await codeOf(forged.call(method, args)), 'SIGNATURE_MISMATCH', method)
    assert.is(await codeOf(unknown.call(method, args)), 'UNAUTHENTICATED', method)
    assert.is(await codeOf(stale.call(method, args)), 'UNAUTHENTICATED', method)
  }
})

test("a user's signed calls work end to end: volume, bucket, key written and read", async () => {
  const client = as(alice)
  // Volumes are the administrators' to create (Ozone; control/om/access.ts); alice owns hers.
  assert.is(await codeOf(client.createVolume('alice-vol', { owner: 'alice' })), 'PERMISSION_DENIED')
  await as(admin).createVolume('alice-vol', { owner: 'alice' })
  await client.createBucket('alice-vol', 'bucket1')
  const data = randomBytes(100_000, 7)
  await client.putKey('alice-vol', 'bucket1', 'k1', data)
  assert.ok((await client.getKey('alice-vol', 'bucket1', 'k1')).equals(data))
  assert.equal((await client.listKeys('alice-vol', 'bucket1')).keys.map((k) => k.name), ['k1'])
})

test('getS3Secret and lookupS3Secret: the user itself or an administrator, nobody else', async () => {
  assert.is((await as(alice).getS3Secret('alice')).awsAccessKey, alice.awsAccessKey)
  assert.is(await codeOf(as(alice).getS3Secret('bob')), 'PERMISSION_DENIED')
  assert.is(await codeOf(as(alice).getS3Secret('carol')), 'PERMISSION_DENIED', 'nor a key for a new user')
  assert.is(await codeOf(as(alice).lookupS3Secret(bob.awsAccessKey)), 'PERMISSION_DENIED')
  assert.is((await as(alice).lookupS3Secret(alice.awsAccessKey)).user, 'alice')
  assert.is((await as(admin).getS3Secret('bob')).awsSecret, bob.awsSecret)
  assert.is((await as(admin).lookupS3Secret(bob.awsAccessKey)).user, 'bob')
  const carol = await as(admin).getS3Secret('carol')
  assert.is(carol.user, 'carol')
  const err = await as(bob).getS3Secret('alice').catch((e: O3Error) => e)
  assert.match((err as O3Error).message, /user bob is neither alice nor an administrator/)
  assert.ok(!(err as O3Error).message.includes(alice.awsSecret), "the refusal does not show the secret")
})

test('revokeS3Secret: another user is refused; after the administrator revokes, the old key is refused at once', async () => {
  const carol = await as(admin).getS3Secret('carol')
  assert.is(await codeOf(as(bob).revokeS3Secret('carol')), 'PERMISSION_DENIED')
  assert.ok((await as(carol).listVolumes()).length >= 0)
  assert.equal(await as(admin).revokeS3Secret('carol'), { revoked: 1 })
  assert.is(await codeOf(as(carol).listVolumes()), 'UNAUTHENTICATED')
  const again = await as(admin).getS3Secret('carol')
  assert.is.not(again.awsAccessKey, carol.awsAccessKey)
  assert.equal(await as(again).revokeS3Secret('carol'), { revoked: 1 }, 'a user may revoke their own')
})

test('s3Authenticate and x-o3-on-behalf-of are for the S3 gateway only, not for a user', async () => {
  assert.is(await codeOf(as(alice).s3Authenticate({ accessKey: bob.awsAccessKey, proof: null })), 'PERMISSION_DENIED')
  assert.is(await codeOf(as(alice).as('bob').listVolumes()), 'PERMISSION_DENIED')
  assert.is(await codeOf(as(alice).as('bob').createVolume('bobs', { owner: 'bob' })), 'PERMISSION_DENIED')
  assert.is(await codeOf(as(admin).getVolume('bobs')), 'VOLUME_NOT_FOUND')
})

test("the retry cache answers a call id once per user: another user's same id is a call of its own", async () => {
  const signed = (s: typeof alice) => new RpcClient('OM', cluster.omAddress, { transport, signer: requestSigner({ accessKey: s.awsAccessKey, secret: s.awsSecret }) })
  const caller = { client: 'shared-client-id', call: 0 }
  // Volumes are the administrators'; any user may make buckets in this one (world::c).
  await as(admin).createVolume('retry', { acls: ['world::c'] })
  assert.is((await signed(alice).call<{ name: string }>('createBucket', { volume: 'retry', bucket: 'alice-retry', caller })).name, 'alice-retry')
  assert.is((await signed(alice).call<{ name: string }>('createBucket', { volume: 'retry', bucket: 'alice-retry', caller })).name, 'alice-retry', 'her retry: her answer')
  assert.is((await signed(bob).call<{ name: string }>('createBucket', { volume: 'retry', bucket: 'bob-retry', caller })).name, 'bob-retry')
  assert.is((await as(admin).getBucket('retry', 'bob-retry')).owner, 'bob')
})

test.run()
