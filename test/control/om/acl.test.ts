/** Goal: native ACLs on the OM's records and the OM's authorize option. Creation gives the
 * owner ALL and hands DEFAULT ACLs down (volume -> bucket -> key); addAcl, removeAcl and setAcl
 * change them alike on both replicas; and for every route a user is refused without the right
 * Ozone's native authorizer asks for and let through with it, owners and administrators
 * always, services and open callers as the design says. Method: the OM's requests over two
 * real LMDB replicas (replicas.ts) and omAuthorizer over the leader's tables, with RpcContexts
 * built as the RPC edge would build them. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { formatAcl, type OzoneAcl } from '../../../core/access/native-acl.ts'
import { loadConfig } from '../../../core/config.ts'
import type { BucketInfo, KeyInfo, OpenKeyResult, VolumeInfo } from '../../../core/om-wire.ts'
import type { Caller, RpcContext } from '../../../core/security/caller.ts'
import { omAuthorizer, volumeVisible } from '../../../control/om/access.ts'
import { keyPath } from '../../../control/om/tables.ts'
import { errorCode } from '../../helpers.ts'
import { digest, OmReplicas } from './replicas.ts'

const om = new OmReplicas('o3-om-acl-')
const { leader, follower, run } = om
const config = { ...loadConfig({ env: {} }), 'o3.administrators': 'root', 'o3.groups': 'dev:erin' }
const authorize = omAuthorizer({ tables: () => leader.t, config })
const as = (caller: Caller, onBehalfOf?: string): RpcContext => (onBehalfOf === undefined ? { caller } : { caller, onBehalfOf })
const user = (name: string) => as({ kind: 'user', user: name })
const acls = (a: OzoneAcl[] | undefined) => (a ?? []).map(formatAcl)
const volume = (name = 'vol'): VolumeInfo => leader.t.volumes.get(name)!
const bucket = (name = 'bkt'): BucketInfo => leader.t.buckets.get(`vol/${name}`)!
const key = (name = 'k'): KeyInfo => leader.t.keys.get(keyPath('vol', 'bkt', name))!

/** Writes a key as `owner` (the OM's handler sets owner from the caller). */
async function writeKey(name: string, owner?: string): Promise<void> {
  const open = await run('openKey', { volume: 'vol', bucket: 'bkt', key: name, owner }) as OpenKeyResult
  await run('commitKey', { clientId: open.clientId, blocks: [], size: 0 })
}

test.before(async () => {
  await run('createVolume', { volume: 'vol', owner: 'alice', acls: ['group:dev:l[DEFAULT]'] })
  await run('createBucket', { volume: 'vol', bucket: 'bkt' })
  await writeKey('k', 'carol')
})
test.after(() => om.close())

test('creation: the owner gets ALL, a bucket inherits its volume\'s DEFAULT ACLs (as ACCESS and DEFAULT), a key its bucket\'s (as ACCESS)', async () => {
  assert.equal(acls(volume().acls), ['user:alice:a', 'group:dev:l[DEFAULT]'])
  assert.equal(acls(bucket().acls), ['user:alice:a', 'group:dev:l', 'group:dev:l[DEFAULT]'])
  assert.equal(acls(key().acls), ['user:carol:a', 'group:dev:l'])
  // No writer named (security off): the bucket's owner.
  await writeKey('anon')
  assert.equal(acls(key('anon').acls), ['user:alice:a', 'group:dev:l'])
  await run('deleteKey', { volume: 'vol', bucket: 'bkt', key: 'anon' })
  assert.is(digest(leader), digest(follower))
})

test('addAcl, removeAcl and setAcl change each kind of record alike on both replicas; bad ACLs and missing records are refused', async () => {
  for (const object of [{ kind: 'volume', volume: 'vol' }, { kind: 'bucket', volume: 'vol', bucket: 'bkt' }, { kind: 'key', volume: 'vol', bucket: 'bkt', key: 'k' }]) {
    const get = () => (object.kind === 'volume' ? volume() : object.kind === 'bucket' ? bucket() : key()).acls
    const before = get()
    const added = await run('addAcl', { ...object, acl: 'user:zed:rw' }) as { acls: OzoneAcl[]; changed: boolean }
    assert.ok(added.changed, object.kind)
    assert.ok(acls(get()).includes('user:zed:rw'), object.kind)
    assert.not.ok((await run('addAcl', { ...object, acl: 'user:zed:r' }) as { changed: boolean }).changed, `${object.kind}: already there`)
    await run('removeAcl', { ...object, acl: 'user:zed:w' })
    assert.ok(acls(get()).includes('user:zed:r'), object.kind)
    await run('removeAcl', { ...object, acl: 'user:zed:r' })
    assert.equal(get(), before, `${object.kind}: back as it was`)
    await run('setAcl', { ...object, acls: ['user:zed:a', 'world::r'] })
    assert.equal(acls(get()), ['user:zed:a', 'world::r'], object.kind)
    await run('setAcl', { ...object, acls: before })
    assert.equal(get(), before, object.kind)
    assert.is(await errorCode(run('addAcl', { ...object, acl: 'user:zed:q' })), 'INVALID_ARGUMENT')
  }
  assert.is(await errorCode(run('addAcl', { kind: 'volume', volume: 'nope', acl: 'user:zed:r' })), 'VOLUME_NOT_FOUND')
  assert.is(await errorCode(run('addAcl', { kind: 'key', volume: 'vol', bucket: 'bkt', key: 'nope', acl: 'user:zed:r' })), 'KEY_NOT_FOUND')
  assert.is(await errorCode(run('addAcl', { kind: 'prefix', volume: 'vol', acl: 'user:zed:r' })), 'INVALID_ARGUMENT')
  assert.is(digest(leader), digest(follower))
})

type Grant = [kind: 'volume' | 'bucket' | 'key', acl: string]
const V = { kind: 'volume' as const, volume: 'vol' }
const B = { kind: 'bucket' as const, volume: 'vol', bucket: 'bkt' }
const K = { kind: 'key' as const, volume: 'vol', bucket: 'bkt', key: 'k' }
const OBJECTS = { volume: V, bucket: B, key: K }
const grant = (g: Grant) => run('addAcl', { ...OBJECTS[g[0]], acl: g[1] })
const revoke = (g: Grant) => run('removeAcl', { ...OBJECTS[g[0]], acl: g[1] })
const VOL_READ: Grant = ['volume', 'user:bob:r']
const BUCKET_READ: Grant = ['bucket', 'user:bob:r']

/** Each route: the args (a function when they depend on state), the parents' grants bob keeps, and the grant that decides. */
const ROUTES: { method: string; args: () => Promise<Record<string, unknown>> | Record<string, unknown>; parents: Grant[]; grant: Grant }[] = [
  { method: 'getVolume', args: () => ({ volume: 'vol' }), parents: [], grant: ['volume', 'user:bob:r'] },
  { method: 'listBuckets', args: () => ({ volume: 'vol' }), parents: [], grant: ['volume', 'user:bob:l'] },
  { method: 'deleteVolume', args: () => ({ volume: 'vol' }), parents: [], grant: ['volume', 'user:bob:d'] },
  { method: 'createBucket', args: () => ({ volume: 'vol', bucket: 'new' }), parents: [], grant: ['volume', 'user:bob:c'] },
  { method: 'setAcl', args: () => ({ ...V, acls: [] }), parents: [], grant: ['volume', 'user:bob:y'] },
  { method: 'getAcl', args: () => V, parents: [], grant: ['volume', 'user:bob:x'] },
  { method: 'getBucket', args: () => ({ volume: 'vol', bucket: 'bkt' }), parents: [VOL_READ], grant: ['bucket', 'user:bob:r'] },
  { method: 'listKeys', args: () => ({ volume: 'vol', bucket: 'bkt' }), parents: [VOL_READ], grant: ['bucket', 'user:bob:l'] },
  { method: 'deleteBucket', args: () => ({ volume: 'vol', bucket: 'bkt' }), parents: [VOL_READ], grant: ['bucket', 'user:bob:d'] },
  { method: 'setBucketQuota', args: () => ({ volume: 'vol', bucket: 'bkt', quotaBytes: 1 }), parents: [VOL_READ], grant: ['bucket', 'user:bob:w'] },
  { method: 'addAcl', args: () => ({ ...B, acl: 'user:zed:r' }), parents: [VOL_READ], grant: ['bucket', 'user:bob:y'] },
  { method: 'getAcl', args: () => B, parents: [VOL_READ], grant: ['bucket', 'user:bob:x'] },
  { method: 'openKey', args: () => ({ volume: 'vol', bucket: 'bkt', key: 'new' }), parents: [VOL_READ], grant: ['bucket', 'user:bob:c'] },
  {
    method: 'commitKey', parents: [VOL_READ], grant: ['bucket', 'user:bob:c'],
    args: async () => ({ clientId: (await run('openKey', { volume: 'vol', bucket: 'bkt', key: 'new', owner: 'bob' }) as OpenKeyResult).clientId, blocks: [], size: 0 }),
  },
  { method: 'lookupKey', args: () => ({ volume: 'vol', bucket: 'bkt', key: 'k' }), parents: [VOL_READ, BUCKET_READ], grant: ['key', 'user:bob:r'] },
  { method: 'deleteKey', args: () => ({ volume: 'vol', bucket: 'bkt', key: 'k' }), parents: [VOL_READ, BUCKET_READ], grant: ['key', 'user:bob:d'] },
  { method: 'renameKey', args: () => ({ volume: 'vol', bucket: 'bkt', key: 'k', toKey: 'k2' }), parents: [VOL_READ, BUCKET_READ, ['bucket', 'user:bob:c']], grant: ['key', 'user:bob:d'] },
  { method: 'commitMultipartKey', args: () => ({ volume: 'vol', bucket: 'bkt', key: 'm', parts: [{ volume: 'vol', bucket: 'bkt', key: 'k' }] }), parents: [VOL_READ, BUCKET_READ, ['bucket', 'user:bob:c']], grant: ['key', 'user:bob:d'] },
  { method: 'getAcl', args: () => K, parents: [VOL_READ, BUCKET_READ], grant: ['key', 'user:bob:x'] },
  { method: 'setAcl', args: () => ({ ...K, acls: [] }), parents: [VOL_READ, BUCKET_READ], grant: ['key', 'user:bob:y'] },
]

test('every route, for a user: refused (PERMISSION_DENIED) without the right, allowed with it; the owner and an administrator always', async () => {
  for (const r of ROUTES) {
    const name = `${r.method} ${r.grant.join(' ')}`
    const args = await r.args()
    for (const g of r.parents) await grant(g)
    assert.is(await errorCode(Promise.resolve().then(() => authorize(r.method, args, user('bob')))), 'PERMISSION_DENIED', `${name}: bob without the grant`)
    await grant(r.grant)
    authorize(r.method, args, user('bob'))
    // The right is the one asked: a grant of every other right on that object is not enough.
    await revoke(r.grant)
    const others: Grant = [r.grant[0], `user:bob:${'rwcldxy'.replace(r.grant[1].split(':')[2]!, '')}`]
    await grant(others)
    assert.is(await errorCode(Promise.resolve().then(() => authorize(r.method, args, user('bob')))), 'PERMISSION_DENIED', `${name}: bob with every other right`)
    await revoke(others)
    for (const g of r.parents) await revoke(g)
    // Owners: alice owns the volume and the bucket; root is an administrator.
    // (An open key is its writer's alone: alice may not commit bob's; the open key test below.)
    if (r.method !== 'commitKey') authorize(r.method, args, user('alice'))
    authorize(r.method, args, user('root'))
    assert.is(await errorCode(Promise.resolve().then(() => authorize(r.method, args, user('carol')))), 'PERMISSION_DENIED', `${name}: carol`)
  }
})

test('a key\'s right needs READ on its bucket and volume, as Ozone\'s native authorizer asks', async () => {
  const args = { volume: 'vol', bucket: 'bkt', key: 'k' }
  await grant(['key', 'user:bob:r'])
  assert.is(await errorCode(Promise.resolve().then(() => authorize('lookupKey', args, user('bob')))), 'PERMISSION_DENIED')
  await grant(VOL_READ)
  assert.is(await errorCode(Promise.resolve().then(() => authorize('lookupKey', args, user('bob')))), 'PERMISSION_DENIED')
  await grant(BUCKET_READ)
  authorize('lookupKey', args, user('bob'))
  for (const g of [['key', 'user:bob:r'], VOL_READ, BUCKET_READ] as Grant[]) await revoke(g)
})

test('a conditional deleteKey needs READ as well as DELETE unless its condition is If-Match *: a failed condition would tell the ETag, size or time', async () => {
  const base = { volume: 'vol', bucket: 'bkt', key: 'k' }
  const denied = (args: Record<string, unknown>) => errorCode(Promise.resolve().then(() => authorize('deleteKey', { ...base, ...args }, user('bob'))))
  const grants: Grant[] = [VOL_READ, BUCKET_READ, ['key', 'user:bob:d']]
  for (const g of grants) await grant(g)
  authorize('deleteKey', base, user('bob'))
  authorize('deleteKey', { ...base, ifMatchEtag: '*' }, user('bob'))
  for (const c of [{ ifMatchEtag: 'e1' }, { ifMatchSize: 0 }, { ifMatchModifiedSeconds: 0 }]) assert.is(await denied(c), 'PERMISSION_DENIED', JSON.stringify(c))
  await grant(['key', 'user:bob:r'])
  for (const c of [{ ifMatchEtag: 'e1' }, { ifMatchSize: 0 }, { ifMatchModifiedSeconds: 0 }]) assert.is(await denied(c), 'OK', JSON.stringify(c))
  for (const g of [...grants, ['key', 'user:bob:r']] as Grant[]) await revoke(g)
})

test('DEFAULT ACLs inherited by a new bucket and key grant on them: group dev (erin) may list both', async () => {
  // group:dev:l[DEFAULT] on the volume -> bucket b has group:dev:l (+ DEFAULT) -> key k has group:dev:l.
  await grant(['volume', 'group:dev:r'])
  await grant(['bucket', 'group:dev:r'])
  authorize('listKeys', { volume: 'vol', bucket: 'bkt' }, user('erin'))
  assert.is(await errorCode(Promise.resolve().then(() => authorize('listKeys', { volume: 'vol', bucket: 'bkt' }, user('frank')))), 'PERMISSION_DENIED')
  await revoke(['volume', 'group:dev:r'])
  await revoke(['bucket', 'group:dev:r'])
  // A DEFAULT ACL added later reaches only what is created after it.
  await grant(['bucket', 'user:bob:r[DEFAULT]'])
  await writeKey('later', 'alice')
  assert.ok(acls(key('later').acls).includes('user:bob:r'))
  assert.not.ok(acls(key('k').acls).includes('user:bob:r'))
  await revoke(['bucket', 'user:bob:r[DEFAULT]'])
})

test('admin-only routes, S3 secrets, gateway-only calls and unknown methods', async () => {
  const denied = async (method: string, args: Record<string, unknown>, ctx: RpcContext) => errorCode(Promise.resolve().then(() => authorize(method, args, ctx)))
  for (const m of ['createVolume', 'setVolumeQuota', 'transferLeadership', 'addMember', 'stateDigest', 'noSuchMethod']) {
    assert.is(await denied(m, { volume: 'x' }, user('alice')), 'PERMISSION_DENIED', m)
    authorize(m, { volume: 'x' }, user('root'))
  }
  // A bucket's S3 configuration only through the gateway (which checks as S3 does) or by an
  // administrator: not by a user with every right on the bucket, nor by its owner natively.
  await grant(['volume', 'user:bob:r'])
  await grant(['bucket', 'user:bob:a'])
  for (const field of ['policy', 'publicAccessBlock', 'cors', 'tags', 'acl']) {
    const args = { volume: 'vol', bucket: 'bkt', field, value: null }
    assert.is(await denied('setBucketS3', args, user('bob')), 'PERMISSION_DENIED', `bob ${field}`)
    assert.is(await denied('setBucketS3', args, user('alice')), 'PERMISSION_DENIED', `the owner ${field}`)
    authorize('setBucketS3', args, user('root'))
  }
  await revoke(['bucket', 'user:bob:a'])
  await revoke(['volume', 'user:bob:r'])
  // S3 secrets and s3Authenticate are their handlers' to check (control/om/authenticate.ts, its own suite).
  for (const m of ['getS3Secret', 'revokeS3Secret', 'lookupS3Secret', 's3Authenticate']) authorize(m, { user: 'alice' }, user('bob'))
  authorize('listVolumes', {}, user('bob'))
  assert.is(await denied('roles', {}, user('bob')), 'PERMISSION_DENIED')
})

test('the S3 gateway\'s certificate reaches only the calls the gateway makes: never group administration or quotas', async () => {
  const s3g = as({ kind: 'service', role: 's3g', id: 's3g-1' })
  const denied = async (method: string, ctx: RpcContext) => errorCode(Promise.resolve().then(() => authorize(method, { volume: 'vol', target: 'om2', node: {}, name: 'om2' }, ctx)))
  for (const m of ['addMember', 'removeMember', 'transferLeadership', 'groupMembers', 'roles', 'stateDigest', 'setVolumeQuota', 'deleteVolume', 'setAcl', 'addAcl', 'noSuchMethod']) {
    assert.is(await denied(m, s3g), 'PERMISSION_DENIED', `s3g ${m}`)
    assert.is(await denied(m, as({ kind: 'service', role: 's3g', id: 's3g-1' }, 'alice')), 'PERMISSION_DENIED', `s3g for alice ${m}`)
    assert.is(await denied(m, as({ kind: 'service', role: 'datanode', id: 'dn' })), 'PERMISSION_DENIED', `datanode ${m}`)
    assert.is(await denied(m, as({ kind: 'service', role: 'om', id: 'om2' })), 'OK', `om ${m}`)
    assert.is(await denied(m, user('root')), 'OK', `administrator ${m}`)
  }
  for (const m of ['s3Authenticate', 'createBucket', 'openKey', 'commitKey', 'lookupKey', 'deleteKey', 'setBucketS3']) assert.is(await denied(m, s3g), 'OK', `s3g ${m}`)
})

test('callers: open passes unchecked, anonymous is UNAUTHENTICATED, om/scm/s3g are trusted, recon reads, a datanode nothing', async () => {
  const denied = async (ctx: RpcContext, method = 'deleteVolume') => errorCode(Promise.resolve().then(() => authorize(method, { volume: 'vol' }, ctx)))
  authorize('deleteVolume', { volume: 'vol' }, as({ kind: 'open' }))
  assert.is(await denied(as({ kind: 'anonymous' })), 'UNAUTHENTICATED')
  assert.is(await denied(as({ kind: 'anonymous' }), 'getVolume'), 'UNAUTHENTICATED')
  for (const role of ['om', 'scm'] as const) authorize('deleteVolume', { volume: 'vol' }, as({ kind: 'service', role, id: 'x' }))
  authorize('deleteBucket', { volume: 'vol', bucket: 'bkt' }, as({ kind: 'service', role: 's3g', id: 'x' }, 'bob'))
  authorize('getVolume', { volume: 'vol' }, as({ kind: 'service', role: 'recon', id: 'r' }))
  assert.is(await denied(as({ kind: 'service', role: 'recon', id: 'r' })), 'PERMISSION_DENIED')
  assert.is(await denied(as({ kind: 'service', role: 'datanode', id: 'dn' }), 'getVolume'), 'PERMISSION_DENIED')
  // A user cannot act for another by naming onBehalfOf: only the gateway's is honoured.
  assert.is(await denied(as({ kind: 'user', user: 'bob' }, 'alice')), 'PERMISSION_DENIED')
})

test('another writer\'s open key is refused; a missing record passes to the handler (which answers not found)', async () => {
  await grant(VOL_READ)
  await grant(['bucket', 'user:bob:c'])
  await grant(['bucket', 'user:carol:c'])
  const open = await run('openKey', { volume: 'vol', bucket: 'bkt', key: 'w', owner: 'bob' }) as OpenKeyResult
  authorize('commitKey', { clientId: open.clientId }, user('bob'))
  assert.is(await errorCode(Promise.resolve().then(() => authorize('commitKey', { clientId: open.clientId }, user('carol')))), 'PERMISSION_DENIED')
  await run('abortKey', { clientId: open.clientId })
  for (const g of [VOL_READ, ['bucket', 'user:bob:c'], ['bucket', 'user:carol:c']] as Grant[]) await revoke(g)
  authorize('getVolume', { volume: 'nope' }, user('bob'))
  authorize('lookupKey', { volume: 'vol', bucket: 'nope', key: 'nope' }, user('alice'))
  // A bucket not there is checked on its volume: bob may not delete one about to be made in alice's volume.
  assert.is(await errorCode(Promise.resolve().then(() => authorize('deleteBucket', { volume: 'vol', bucket: 'soon' }, user('bob')))), 'PERMISSION_DENIED')
  authorize('deleteBucket', { volume: 'vol', bucket: 'soon' }, user('alice'))
  // A key not there is checked on its bucket: its owner passes (the handler answers KEY_NOT_FOUND), others do not.
  authorize('lookupKey', { volume: 'vol', bucket: 'bkt', key: 'nope' }, user('alice'))
  assert.is(await errorCode(Promise.resolve().then(() => authorize('lookupKey', { volume: 'vol', bucket: 'bkt', key: 'nope' }, user('bob')))), 'PERMISSION_DENIED')
})

test('a delete or rename of a key not committed yet needs the right on its bucket: it cannot pass authorize and then remove the key its writer commits meanwhile', async () => {
  await grant(VOL_READ)
  await grant(['bucket', 'user:bob:r'])
  for (const [method, args] of [['deleteKey', { key: 'soon' }], ['renameKey', { key: 'soon', toKey: 'mine' }]] as const) {
    // bob is refused before the key exists, as he would be after (he has no DELETE on bkt or the key).
    assert.is(await errorCode(Promise.resolve().then(() => authorize(method, { volume: 'vol', bucket: 'bkt', ...args }, user('bob')))), 'PERMISSION_DENIED', method)
  }
  await writeKey('soon', 'carol')
  assert.is(await errorCode(Promise.resolve().then(() => authorize('deleteKey', { volume: 'vol', bucket: 'bkt', key: 'soon' }, user('bob')))), 'PERMISSION_DENIED')
  await run('deleteKey', { volume: 'vol', bucket: 'bkt', key: 'soon' })
  for (const g of [VOL_READ, ['bucket', 'user:bob:r']] as Grant[]) await revoke(g)
})

test('volumeVisible(): a user sees the volumes they own or may READ or LIST; administrators see all', async () => {
  await run('createVolume', { volume: 'other', owner: 'zed' })
  const other = volume('other')
  assert.ok(volumeVisible(config, user('zed'), other))
  assert.not.ok(volumeVisible(config, user('bob'), other))
  assert.ok(volumeVisible(config, user('root'), other))
  assert.ok(volumeVisible(config, as({ kind: 'open' }), other))
  await run('addAcl', { kind: 'volume', volume: 'other', acl: 'user:bob:l' })
  assert.ok(volumeVisible(config, user('bob'), volume('other')))
})

test.run()
