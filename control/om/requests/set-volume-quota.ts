/** @module
 * setVolumeQuota (Ozone's OMVolumeSetQuotaRequest): sets or clears (-1) a volume's space
 * and namespace quotas; a quota left out stays. As Ozone: a space quota needs every bucket of
 * the volume to have one (QUOTA_ERROR) and theirs to add up to no more (QUOTA_EXCEEDED); a
 * namespace quota below the buckets the volume holds is refused (QUOTA_EXCEEDED).
 */
import { O3Error } from '../../../core/errors.ts'
import type { VolumeInfo } from '../../../core/om-wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkVolumeName } from '../names.ts'
import { bucketQuotaSum, checkQuota, checkVolumeSpace, volumeWithUsage } from '../quota.ts'
import { volumeOf } from '../tables.ts'
import type { OmRequestContext } from './context.ts'

type Args = { volume?: unknown; quotaBytes?: unknown; quotaNamespace?: unknown }
type Payload = { volume: string; quotaBytes?: number; quotaNamespace?: number; nowMs: number }

export function setVolumeQuota(ctx: OmRequestContext): ReplicatedRequest<Args, Payload, VolumeInfo> {
  return {
    name: 'setVolumeQuota',
    prepare: (a) => {
      const volume = checkVolumeName(a.volume)
      const quotaBytes = checkQuota(a.quotaBytes, 'space')
      const quotaNamespace = checkQuota(a.quotaNamespace, 'namespace')
      if (quotaBytes === undefined && quotaNamespace === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot set the quota of volume ${volume}: give a space quota, a namespace quota or both`)
      return { volume, quotaBytes, quotaNamespace, nowMs: Date.now() }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      const v = volumeWithUsage(t, volumeOf(t, p.volume))
      const next = { ...v, modifiedAtMs: p.nowMs }
      if (p.quotaBytes !== undefined) {
        if (p.quotaBytes > 0) {
          const { sumBytes, unset } = bucketQuotaSum(t, v.name)
          if (unset > 0) throw new O3Error('QUOTA_ERROR', `Cannot set a space quota on volume ${v.name}: ${unset} of its buckets ${unset === 1 ? 'has' : 'have'} none (set theirs first)`)
          checkVolumeSpace({ ...v, quotaBytes: p.quotaBytes }, sumBytes, `set the space quota of volume ${v.name} to ${p.quotaBytes} bytes`)
        }
        next.quotaBytes = p.quotaBytes
      }
      if (p.quotaNamespace !== undefined) {
        if (p.quotaNamespace > 0 && v.usedNamespace > p.quotaNamespace) {
          throw new O3Error('QUOTA_EXCEEDED', `Cannot set the namespace quota of volume ${v.name} to ${p.quotaNamespace}: it holds ${v.usedNamespace} buckets`)
        }
        next.quotaNamespace = p.quotaNamespace
      }
      t.volumes.putSync(v.name, next)
      return next
    },
  }
}
