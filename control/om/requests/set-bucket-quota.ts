/** @module
 * setBucketQuota (the quota part of Ozone's OMBucketSetPropertyRequest): sets or clears (-1)
 * a bucket's space and namespace quotas; a quota left out stays. As Ozone: a quota below what
 * the bucket uses is refused (QUOTA_ERROR: usage is never cut to fit, so nothing is lost); a
 * space quota cannot be cleared while the volume has one (QUOTA_ERROR); the volume's buckets'
 * space quotas must add up to no more than its own (QUOTA_EXCEEDED).
 */
import { O3Error } from '../../../core/errors.ts'
import type { BucketInfo } from '../../../core/om-wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkBucketName, checkVolumeName } from '../names.ts'
import { bucketQuotaSum, checkQuota, checkVolumeSpace, spaceCounted, withUsage } from '../quota.ts'
import { bucketOf, volumeOf } from '../tables.ts'
import type { OmRequestContext } from './context.ts'

type Args = { volume?: unknown; bucket?: unknown; quotaBytes?: unknown; quotaNamespace?: unknown }
type Payload = { volume: string; bucket: string; quotaBytes?: number; quotaNamespace?: number; nowMs: number }

export function setBucketQuota(ctx: OmRequestContext): ReplicatedRequest<Args, Payload, BucketInfo> {
  return {
    name: 'setBucketQuota',
    prepare: (a) => {
      const volume = checkVolumeName(a.volume)
      const bucket = checkBucketName(a.bucket)
      const quotaBytes = checkQuota(a.quotaBytes, 'space')
      const quotaNamespace = checkQuota(a.quotaNamespace, 'namespace')
      if (quotaBytes === undefined && quotaNamespace === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot set the quota of bucket ${volume}/${bucket}: give a space quota, a namespace quota or both`)
      return { volume, bucket, quotaBytes, quotaNamespace, nowMs: Date.now() }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      const id = `${p.volume}/${p.bucket}`
      const b = withUsage(t, bucketOf(t, p.volume, p.bucket))
      const v = volumeOf(t, p.volume)
      const next = { ...b, modifiedAtMs: p.nowMs }
      if (p.quotaBytes !== undefined) {
        if (p.quotaBytes <= 0 && v.quotaBytes > 0) throw new O3Error('QUOTA_ERROR', `Cannot clear the space quota of bucket ${id}: volume ${v.name} has a space quota (clear it first)`)
        if (p.quotaBytes > 0) {
          const used = spaceCounted(t, id)
          if (p.quotaBytes < used) throw new O3Error('QUOTA_ERROR', `Cannot set the space quota of bucket ${id} to ${p.quotaBytes} bytes: it uses ${used} (replicated)`)
          checkVolumeSpace(v, bucketQuotaSum(t, v.name, b.name).sumBytes + p.quotaBytes, `set the space quota of bucket ${id} to ${p.quotaBytes} bytes`)
        }
        next.quotaBytes = p.quotaBytes
      }
      if (p.quotaNamespace !== undefined) {
        if (p.quotaNamespace > 0 && p.quotaNamespace < b.usedNamespace) {
          throw new O3Error('QUOTA_ERROR', `Cannot set the namespace quota of bucket ${id} to ${p.quotaNamespace}: it holds ${b.usedNamespace} keys`)
        }
        next.quotaNamespace = p.quotaNamespace
      }
      t.buckets.putSync(id, next)
      return next
    },
  }
}
