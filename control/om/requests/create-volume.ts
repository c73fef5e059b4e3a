/** @module createVolume: a new volume, owned by the caller's user or 'o3'. */
import { O3Error } from '../../../core/errors.ts'
import type { VolumeInfo } from '../../../core/om-wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkVolumeName } from '../names.ts'
import type { OmRequestContext } from './context.ts'

export function createVolume(ctx: OmRequestContext): ReplicatedRequest<{ volume?: unknown; owner?: unknown; quotaBytes?: unknown }, VolumeInfo, VolumeInfo> {
  return {
    name: 'createVolume',
    prepare: (a) => {
      const name = checkVolumeName(a.volume)
      const now = Date.now()
      const owner = typeof a.owner === 'string' && a.owner.length > 0 ? a.owner : 'o3'
      return { name, owner, admin: owner, createdAtMs: now, modifiedAtMs: now, quotaBytes: typeof a.quotaBytes === 'number' ? a.quotaBytes : -1, quotaNamespace: -1 }
    },
    apply: (_db, v) => {
      const t = ctx.tables()
      if (t.volumes.get(v.name) !== undefined) throw new O3Error('VOLUME_ALREADY_EXISTS', `Volume ${v.name} already exists`)
      t.volumes.putSync(v.name, v)
      return v
    },
  }
}
