/** Goal: quotas as Ozone keeps them, enforced in apply (issue 11): bucket space quotas in
 * replicated bytes, bucket namespace quotas in keys, volume namespace quotas in buckets, a
 * volume space quota capping its buckets' quotas; usage kept exactly through commit,
 * overwrite, delete, rename and multipart commit; of two commits racing for the last bytes
 * only the first applied wins; quota changes below usage refused. Method: the requests'
 * prepare once, then apply of the same payloads on two real LMDB databases in a temp dir,
 * which must answer alike and end with identical tables. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import type { BucketInfo, KeyInfo, OpenKeyResult, VolumeInfo } from '../../../core/om-wire.ts'
import { MULTIPART_VOLUME, replicatedBytes, S3_VOLUME } from '../../../control/om/quota.ts'
import { MULTIPART_VOLUME as GATEWAY_MULTIPART_VOLUME, S3_VOLUME as GATEWAY_S3_VOLUME } from '../../../datapath/s3/index.ts'
import { errorCode } from '../../helpers.ts'
import { digest, OmReplicas } from './replicas.ts'

const om = new OmReplicas('o3-om-quota-')
const { leader, follower, prepare, apply, run } = om

/** Opens a key of `size` bytes (declared) and commits it. */
async function put(volume: string, bucket: string, key: string, size: number): Promise<KeyInfo> {
  const o = await run('openKey', { volume, bucket, key, sizeBytes: size }) as OpenKeyResult
  return await run('commitKey', { clientId: o.clientId, blocks: size === 0 ? [] : [{ blockId: o.blocks[0].blockId, length: size }], size }) as KeyInfo
}

const bucket = (v: string, b: string): BucketInfo => leader.t.buckets.get(`${v}/${b}`)!
const usage = (v: string, b: string) => [bucket(v, b).usedBytes, bucket(v, b).usedNamespace]

test('replicatedBytes() counts replicas as Ozone\'s QuotaUtil: x1, x3, EC data plus parity cells', () => {
  assert.is(replicatedBytes(1000, 'RATIS/ONE'), 1000)
  assert.is(replicatedBytes(1000, 'RATIS/THREE'), 3000)
  const cell = 1024 * 1024
  // rs-3-2: a full stripe of 3 cells has 2 parity cells; a partial stripe's parity is as long as its first cell.
  assert.is(replicatedBytes(3 * cell, 'EC/rs-3-2-1024k'), 5 * cell)
  assert.is(replicatedBytes(100, 'EC/rs-3-2-1024k'), 300)
  assert.is(replicatedBytes(3 * cell + 2 * cell, 'EC/rs-3-2-1024k'), 5 * cell + 2 * cell + 2 * cell)
  assert.is(replicatedBytes(0, 'RATIS/THREE'), 0)
})

test('the OM\'s names for the S3 volumes are the gateway\'s', () => {
  assert.is(S3_VOLUME, GATEWAY_S3_VOLUME)
  assert.is(MULTIPART_VOLUME, GATEWAY_MULTIPART_VOLUME)
})

test('commit, overwrite, rename and delete keep usage in replicated bytes and keys; a commit past the space quota fails', async () => {
  await run('createVolume', { volume: 'vol' })
  const b = await run('createBucket', { volume: 'vol', bucket: 'three', replication: 'RATIS/THREE', quotaBytes: 100 }) as BucketInfo
  assert.equal([b.quotaBytes, b.quotaNamespace, b.usedBytes, b.usedNamespace], [100, -1, 0, 0])
  await put('vol', 'three', 'a', 30)
  assert.equal(usage('vol', 'three'), [90, 1])
  // 90 + 12 > 100: refused already at open (declared size), and at commit when the size was not declared.
  assert.is(await errorCode(run('openKey', { volume: 'vol', bucket: 'three', key: 'b', sizeBytes: 4 })), 'QUOTA_EXCEEDED')
  const undeclared = await run('openKey', { volume: 'vol', bucket: 'three', key: 'b' }) as OpenKeyResult
  assert.is(await errorCode(run('commitKey', { clientId: undeclared.clientId, blocks: [{ blockId: undeclared.blocks[0].blockId, length: 4 }], size: 4 })), 'QUOTA_EXCEEDED')
  assert.equal(usage('vol', 'three'), [90, 1], 'a refused commit changes nothing')
  assert.ok(leader.t.keys.get(new TextEncoder().encode('vol/three/b')) === undefined)
  assert.ok(leader.t.openKeys.get(undeclared.clientId) !== undefined, 'the refused writer\'s open key stays for it to abort')
  await run('abortKey', { clientId: undeclared.clientId })
  await put('vol', 'three', 'b', 3)
  assert.equal(usage('vol', 'three'), [99, 2], 'exactly up to the quota')
  // Overwrite: the replaced key's bytes are released in the same entry; the namespace stays.
  await put('vol', 'three', 'a', 10)
  assert.equal(usage('vol', 'three'), [39, 2])
  assert.is(await errorCode(put('vol', 'three', 'a', 31)), 'QUOTA_EXCEEDED', '31 x 3 + 9 = 102 > 100')
  await put('vol', 'three', 'a', 30)
  assert.equal(usage('vol', 'three'), [99, 2])
  // An overwrite with less passes even when nothing is left.
  await put('vol', 'three', 'b', 1)
  assert.equal(usage('vol', 'three'), [93, 2])
  await run('renameKey', { volume: 'vol', bucket: 'three', key: 'b', toKey: 'c' })
  assert.equal(usage('vol', 'three'), [93, 2], 'a rename changes no usage')
  await run('deleteKey', { volume: 'vol', bucket: 'three', key: 'a' })
  assert.equal(usage('vol', 'three'), [3, 1])
  await run('deleteKey', { volume: 'vol', bucket: 'three', key: 'c' })
  assert.equal(usage('vol', 'three'), [0, 0])
})

test('of two commits racing for the last bytes, the one applied first wins and the other gets QUOTA_EXCEEDED', async () => {
  await run('createBucket', { volume: 'vol', bucket: 'race', replication: 'RATIS/ONE', quotaBytes: 100 })
  await put('vol', 'race', 'base', 60)
  // Both writers open while 40 bytes are free: nothing is reserved at open.
  const w1 = await run('openKey', { volume: 'vol', bucket: 'race', key: 'w1', sizeBytes: 40 }) as OpenKeyResult
  const w2 = await run('openKey', { volume: 'vol', bucket: 'race', key: 'w2', sizeBytes: 40 }) as OpenKeyResult
  // Both commits prepared (the leader saw room for each) before either applies.
  const c1 = await prepare('commitKey', { clientId: w1.clientId, blocks: [{ blockId: w1.blocks[0].blockId, length: 40 }], size: 40 })
  const c2 = await prepare('commitKey', { clientId: w2.clientId, blocks: [{ blockId: w2.blocks[0].blockId, length: 40 }], size: 40 })
  assert.is((apply('commitKey', c2) as KeyInfo).name, 'w2')
  assert.throws(() => apply('commitKey', c1), (err: O3Error) => err.code === 'QUOTA_EXCEEDED' && /vol\/race would use 140 bytes.*quota of 100/.test(err.message))
  assert.equal(usage('vol', 'race'), [100, 2])
})

test('a bucket\'s namespace quota counts its keys: a new key past it fails, an overwrite does not', async () => {
  await run('createBucket', { volume: 'vol', bucket: 'names', replication: 'RATIS/ONE', quotaNamespace: 2 })
  const early = await run('openKey', { volume: 'vol', bucket: 'names', key: 'late' }) as OpenKeyResult
  await put('vol', 'names', 'k1', 1)
  await put('vol', 'names', 'k2', 1)
  assert.is(await errorCode(run('openKey', { volume: 'vol', bucket: 'names', key: 'k3' })), 'QUOTA_EXCEEDED')
  // Opened while there was room; its commit is the check that counts.
  assert.is(await errorCode(run('commitKey', { clientId: early.clientId, blocks: [{ blockId: early.blocks[0].blockId, length: 1 }], size: 1 })), 'QUOTA_EXCEEDED')
  await put('vol', 'names', 'k2', 5)
  assert.equal(usage('vol', 'names'), [6, 2])
  await run('deleteKey', { volume: 'vol', bucket: 'names', key: 'k1' })
  await put('vol', 'names', 'k3', 1)
  assert.equal(usage('vol', 'names'), [6, 2])
})

test('multipart: parts in s3v-multipart/<b> count against s3v/<b>\'s space quota; completing moves them, counted once', async () => {
  await run('createVolume', { volume: S3_VOLUME })
  await run('createVolume', { volume: MULTIPART_VOLUME })
  await run('createBucket', { volume: S3_VOLUME, bucket: 'photos', replication: 'RATIS/ONE', quotaBytes: 100, quotaNamespace: 1 })
  await run('createBucket', { volume: MULTIPART_VOLUME, bucket: 'photos', replication: 'RATIS/ONE' })
  await put(MULTIPART_VOLUME, 'photos', 'p/1', 50)
  await put(MULTIPART_VOLUME, 'photos', 'p/2', 40)
  assert.equal(usage(MULTIPART_VOLUME, 'photos'), [90, 2])
  assert.is(await errorCode(put(S3_VOLUME, 'photos', 'other', 11)), 'QUOTA_EXCEEDED', 'the parts take 90 of the bucket\'s 100 bytes')
  assert.is(await errorCode(put(MULTIPART_VOLUME, 'photos', 'p/3', 11)), 'QUOTA_EXCEEDED', 'and a part past the quota fails too')
  const parts = ['p/1', 'p/2'].map((key) => ({ volume: MULTIPART_VOLUME, bucket: 'photos', key }))
  const whole = await run('commitMultipartKey', { volume: S3_VOLUME, bucket: 'photos', key: 'big', parts, asParts: true }) as KeyInfo
  assert.is(whole.size, 90)
  assert.equal(usage(MULTIPART_VOLUME, 'photos'), [0, 0])
  assert.equal(usage(S3_VOLUME, 'photos'), [90, 1])
  // The namespace quota of 1 is full: a second upload's completion into a new key fails.
  await put(MULTIPART_VOLUME, 'photos', 'p/9', 5)
  assert.is(await errorCode(run('commitMultipartKey', { volume: S3_VOLUME, bucket: 'photos', key: 'second', parts: [{ volume: MULTIPART_VOLUME, bucket: 'photos', key: 'p/9' }], asParts: true })), 'QUOTA_EXCEEDED')
  // Completing over the existing key replaces it: 5 bytes instead of 90.
  await run('commitMultipartKey', { volume: S3_VOLUME, bucket: 'photos', key: 'big', parts: [{ volume: MULTIPART_VOLUME, bucket: 'photos', key: 'p/9' }], asParts: true })
  assert.equal(usage(S3_VOLUME, 'photos'), [5, 1])
})

test('a volume\'s namespace quota counts its buckets; deleting one frees its place', async () => {
  const v = await run('createVolume', { volume: 'nsvol', quotaNamespace: 2 }) as VolumeInfo
  assert.equal([v.quotaBytes, v.quotaNamespace, v.usedNamespace], [-1, 2, 0])
  await run('createBucket', { volume: 'nsvol', bucket: 'bk1' })
  await run('createBucket', { volume: 'nsvol', bucket: 'bk2' })
  assert.is(await errorCode(run('createBucket', { volume: 'nsvol', bucket: 'bk3' })), 'QUOTA_EXCEEDED')
  assert.is(leader.t.volumes.get('nsvol')!.usedNamespace, 2)
  await run('deleteBucket', { volume: 'nsvol', bucket: 'bk1' })
  assert.is(leader.t.volumes.get('nsvol')!.usedNamespace, 1)
  await run('createBucket', { volume: 'nsvol', bucket: 'bk3' })
  assert.is(await errorCode(run('setVolumeQuota', { volume: 'nsvol', quotaNamespace: 1 })), 'QUOTA_EXCEEDED', 'not below the buckets it holds')
  assert.is((await run('setVolumeQuota', { volume: 'nsvol', quotaNamespace: -1 }) as VolumeInfo).quotaNamespace, -1)
  await run('createBucket', { volume: 'nsvol', bucket: 'bk4' })
  assert.is(leader.t.volumes.get('nsvol')!.usedNamespace, 3)
})

test('a volume\'s space quota caps the sum of its buckets\' space quotas, as Ozone\'s', async () => {
  await run('createVolume', { volume: 'spvol' })
  await run('createBucket', { volume: 'spvol', bucket: 'free' })
  assert.is(await errorCode(run('setVolumeQuota', { volume: 'spvol', quotaBytes: 1000 })), 'QUOTA_ERROR', 'a bucket without a quota')
  await run('setBucketQuota', { volume: 'spvol', bucket: 'free', quotaBytes: 600 })
  assert.is(await errorCode(run('setVolumeQuota', { volume: 'spvol', quotaBytes: 500 })), 'QUOTA_EXCEEDED', 'less than its buckets\' 600')
  assert.is((await run('setVolumeQuota', { volume: 'spvol', quotaBytes: 1000 }) as VolumeInfo).quotaBytes, 1000)
  assert.is(await errorCode(run('createBucket', { volume: 'spvol', bucket: 'none' })), 'QUOTA_ERROR', 'a new bucket needs a quota')
  assert.is(await errorCode(run('createBucket', { volume: 'spvol', bucket: 'big', quotaBytes: 401 })), 'QUOTA_EXCEEDED')
  await run('createBucket', { volume: 'spvol', bucket: 'big', quotaBytes: 400 })
  assert.is(await errorCode(run('setBucketQuota', { volume: 'spvol', bucket: 'big', quotaBytes: 401 })), 'QUOTA_EXCEEDED')
  assert.is(await errorCode(run('setBucketQuota', { volume: 'spvol', bucket: 'big', quotaBytes: -1 })), 'QUOTA_ERROR', 'not cleared under a volume quota')
  await run('setBucketQuota', { volume: 'spvol', bucket: 'big', quotaBytes: 300 })
  await run('setVolumeQuota', { volume: 'spvol', quotaBytes: -1 })
  assert.is((await run('setBucketQuota', { volume: 'spvol', bucket: 'big', quotaBytes: -1 }) as BucketInfo).quotaBytes, -1)
})

test('setBucketQuota refuses a quota below usage, keeps what it is not given, and checks its input', async () => {
  await run('createBucket', { volume: 'vol', bucket: 'set', replication: 'RATIS/THREE' })
  await put('vol', 'set', 'k1', 10)
  await put('vol', 'set', 'k2', 10)
  assert.is(await errorCode(run('setBucketQuota', { volume: 'vol', bucket: 'set', quotaBytes: 59 })), 'QUOTA_ERROR')
  assert.is(await errorCode(run('setBucketQuota', { volume: 'vol', bucket: 'set', quotaNamespace: 1 })), 'QUOTA_ERROR')
  const b = await run('setBucketQuota', { volume: 'vol', bucket: 'set', quotaBytes: 60, quotaNamespace: 2 }) as BucketInfo
  assert.equal([b.quotaBytes, b.quotaNamespace, b.usedBytes, b.usedNamespace], [60, 2, 60, 2])
  assert.is((await run('setBucketQuota', { volume: 'vol', bucket: 'set', quotaNamespace: 5 }) as BucketInfo).quotaBytes, 60, 'the space quota stays')
  assert.is(await errorCode(put('vol', 'set', 'k3', 1)), 'QUOTA_EXCEEDED')
  for (const bad of [0, -2, 1.5, '10', Number.MAX_SAFE_INTEGER + 1]) {
    assert.is(await errorCode(run('setBucketQuota', { volume: 'vol', bucket: 'set', quotaBytes: bad })), 'INVALID_ARGUMENT', `space quota ${String(bad)}`)
  }
  assert.is(await errorCode(run('setBucketQuota', { volume: 'vol', bucket: 'set' })), 'INVALID_ARGUMENT', 'neither quota given')
  assert.is(await errorCode(run('setVolumeQuota', { volume: 'vol', quotaNamespace: 0 })), 'INVALID_ARGUMENT')
  assert.is(await errorCode(run('setBucketQuota', { volume: 'vol', bucket: 'nope', quotaBytes: 1 })), 'BUCKET_NOT_FOUND')
  assert.is(await errorCode(run('setVolumeQuota', { volume: 'nope', quotaBytes: 1 })), 'VOLUME_NOT_FOUND')
})

test('records from before quotas (keyCount, logical bytes, no bucket count) are counted afresh from their keys', async () => {
  await run('createVolume', { volume: 'oldvol' })
  await run('createBucket', { volume: 'oldvol', bucket: 'bkt', replication: 'RATIS/THREE' })
  await put('oldvol', 'bkt', 'k', 10)
  for (const r of [leader, follower]) {
    r.db.transactionSync(() => {
      const { usedNamespace: _n, ...rest } = r.t.buckets.get('oldvol/bkt')!
      r.t.buckets.putSync('oldvol/bkt', { ...rest, usedBytes: 10, keyCount: 1 } as never)
      const { usedNamespace: _v, ...vol } = r.t.volumes.get('oldvol')!
      r.t.volumes.putSync('oldvol', vol)
    })
  }
  await run('setBucketQuota', { volume: 'oldvol', bucket: 'bkt', quotaBytes: 60 })
  assert.equal(usage('oldvol', 'bkt'), [30, 1], 'recounted: 10 bytes x 3')
  assert.is((bucket('oldvol', 'bkt') as BucketInfo & { keyCount?: number }).keyCount, undefined)
  await put('oldvol', 'bkt', 'k2', 10)
  assert.is(await errorCode(put('oldvol', 'bkt', 'k3', 1)), 'QUOTA_EXCEEDED')
  await run('createBucket', { volume: 'oldvol', bucket: 'ckt' })
  assert.is(leader.t.volumes.get('oldvol')!.usedNamespace, 2, 'the volume\'s buckets counted')
})

test('both replicas hold identical tables after every quota request', () => {
  assert.is(digest(follower), digest(leader))
})

test.after(om.close)

test.run()
