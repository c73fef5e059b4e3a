/** @module deleteBucket: removes a bucket that holds no keys; its volume holds one bucket less (Ozone's usedNamespace). */
import { O3Error } from '../../../core/errors.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkBucketName, checkVolumeName } from '../names.ts'
import { bucketsOf } from '../quota.ts'
import { bucketOf, keyPath, startsWith, volumeOf } from '../tables.ts'
import type { OmRequestContext } from './context.ts'

export function deleteBucket(ctx: OmRequestContext): ReplicatedRequest<{ volume?: unknown; bucket?: unknown }, { volume: string; name: string }, null> {
  return {
    name: 'deleteBucket',
    prepare: (a) => ({ volume: checkVolumeName(a.volume), name: checkBucketName(a.bucket) }),
    apply: (_db, p) => {
      const t = ctx.tables()
      bucketOf(t, p.volume, p.name)
      const prefix = keyPath(p.volume, p.name, '')
      for (const { key } of t.keys.getRange({ start: prefix, limit: 1 })) {
        if (startsWith(key, prefix)) throw new O3Error('BUCKET_NOT_EMPTY', `Cannot delete bucket ${p.volume}/${p.name}: it holds keys`)
      }
      t.buckets.removeSync(`${p.volume}/${p.name}`)
      const v = volumeOf(t, p.volume)
      // A volume from before quotas has no count: its buckets are counted, after the removal.
      t.volumes.putSync(v.name, { ...v, usedNamespace: typeof v.usedNamespace === 'number' ? v.usedNamespace - 1 : bucketsOf(t, v.name).length })
      return null
    },
  }
}
