/** @module
 * createBucket: a new bucket with its replication and checksum defaults and its quotas if
 * given. As Ozone's OMBucketCreateRequest: one more bucket must fit the volume's namespace
 * quota; in a volume with a space quota the bucket needs one too (QUOTA_ERROR), and the
 * buckets' space quotas must add up to no more than the volume's (QUOTA_EXCEEDED). Its ACLs:
 * its owner's ALL and the volume's DEFAULT ACLs (kept as DEFAULT for its keys too).
 */
import { O3Error } from '../../../core/errors.ts'
import { formatReplication, parseChecksumType, parseReplication } from '../../../core/wire.ts'
import type { BucketInfo } from '../../../core/om-wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkBucketName, checkVolumeName } from '../names.ts'
import { bucketQuotaSum, checkQuota, checkVolumeNamespace, checkVolumeSpace, QUOTA_RESET, volumeWithUsage } from '../quota.ts'
import { volumeOf } from '../tables.ts'
import { checkAcl, inheritedAcls, mergeAcls, type OzoneAcl } from '../../../core/access/native-acl.ts'
import type { OmRequestContext } from './context.ts'
import { checkEcCell } from './open-key.ts'

type Args = { volume?: unknown; bucket?: unknown; owner?: unknown; replication?: unknown; checksumType?: unknown; quotaBytes?: unknown; quotaNamespace?: unknown; acls?: unknown }
/** The bucket as decided, but its owner (the volume's unless given, read in apply) and its ACLs (the volume's DEFAULT ones are read in apply). */
type Payload = Omit<BucketInfo, 'owner' | 'acls'> & { owner: string | null; acls: OzoneAcl[] }

export function createBucket(ctx: OmRequestContext): ReplicatedRequest<Args, Payload, BucketInfo> {
  return {
    name: 'createBucket',
    prepare: (a) => {
      const volume = checkVolumeName(a.volume)
      const name = checkBucketName(a.bucket)
      const parsed = parseReplication(typeof a.replication === 'string' ? a.replication : ctx.config['client.replication'])
      checkEcCell(parsed, ctx.config['client.bytesPerChecksum'])
      const replication = formatReplication(parsed)
      const checksumType = parseChecksumType(typeof a.checksumType === 'string' ? a.checksumType : ctx.config['client.checksumType'])
      const now = Date.now()
      return {
        volume, name, owner: typeof a.owner === 'string' && a.owner.length > 0 ? a.owner : null, layout: 'OBJECT_STORE', replication, checksumType,
        createdAtMs: now, modifiedAtMs: now, quotaBytes: checkQuota(a.quotaBytes, 'space') ?? QUOTA_RESET,
        quotaNamespace: checkQuota(a.quotaNamespace, 'namespace') ?? QUOTA_RESET, usedBytes: 0, usedNamespace: 0,
        acls: checkAcls(a.acls),
      }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      const v = volumeWithUsage(t, volumeOf(t, p.volume))
      const id = `${p.volume}/${p.name}`
      if (t.buckets.get(id) !== undefined) throw new O3Error('BUCKET_ALREADY_EXISTS', `Bucket ${id} already exists`)
      checkVolumeNamespace(v, 1)
      if (v.quotaBytes > 0) {
        if (p.quotaBytes <= 0) throw new O3Error('QUOTA_ERROR', `Cannot create bucket ${id}: volume ${p.volume} has a space quota, so the bucket needs one too (--space-quota)`)
        checkVolumeSpace(v, bucketQuotaSum(t, p.volume).sumBytes + p.quotaBytes, `create bucket ${id}`)
      }
      const owner = p.owner ?? v.owner
      // Ozone's OMBucketCreateRequest: the owner's ALL, the volume's DEFAULT ACLs as ACCESS and DEFAULT ones, then the request's.
      const info: BucketInfo = { ...p, owner, acls: mergeAcls([...inheritedAcls(owner, v.acls, true), ...p.acls]) }
      t.buckets.putSync(id, info)
      t.volumes.putSync(v.name, { ...v, usedNamespace: v.usedNamespace + 1 })
      return info
    },
  }
}

function checkAcls(raw: unknown): OzoneAcl[] {
  if (raw === undefined || raw === null) return []
  if (!Array.isArray(raw)) throw new O3Error('INVALID_ARGUMENT', 'acls must be a list of ACLs')
  return mergeAcls(raw.map(checkAcl))
}
