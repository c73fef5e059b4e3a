/** @module deleteVolume: removes an empty volume. */
import { O3Error } from '../../../core/errors.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkVolumeName } from '../names.ts'
import { volumeOf } from '../tables.ts'
import type { OmRequestContext } from './context.ts'

export function deleteVolume(ctx: OmRequestContext): ReplicatedRequest<{ volume?: unknown }, { name: string }, null> {
  return {
    name: 'deleteVolume',
    prepare: (a) => ({ name: checkVolumeName(a.volume) }),
    apply: (_db, p) => {
      const t = ctx.tables()
      volumeOf(t, p.name)
      for (const { key } of t.buckets.getRange({ start: `${p.name}/`, limit: 1 })) {
        if (key.startsWith(`${p.name}/`)) throw new O3Error('VOLUME_NOT_EMPTY', `Cannot delete volume ${p.name}: it has buckets`)
      }
      t.volumes.removeSync(p.name)
      return null
    },
  }
}
