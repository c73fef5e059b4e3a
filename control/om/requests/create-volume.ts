/** @module createVolume: a new volume, owned by the caller's user or 'o3', with its quotas if given (`ozone sh volume create --space-quota --namespace-quota`)
 * and its owner's ALL ACL, plus any ACLs the request names (OmVolumeArgs.acls). */
import { O3Error } from '../../../core/errors.ts'
import { checkAcl, mergeAcls, ownerAcl, type OzoneAcl } from '../../../core/access/native-acl.ts'
import type { VolumeInfo } from '../../../core/om-wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkVolumeName } from '../names.ts'
import { checkQuota, QUOTA_RESET } from '../quota.ts'
import type { OmRequestContext } from './context.ts'

type Args = { volume?: unknown; owner?: unknown; quotaBytes?: unknown; quotaNamespace?: unknown; acls?: unknown }

export function createVolume(ctx: OmRequestContext): ReplicatedRequest<Args, VolumeInfo, VolumeInfo> {
  return {
    name: 'createVolume',
    prepare: (a) => {
      const name = checkVolumeName(a.volume)
      const now = Date.now()
      const owner = typeof a.owner === 'string' && a.owner.length > 0 ? a.owner : 'o3'
      return {
        name, owner, admin: owner, createdAtMs: now, modifiedAtMs: now,
        quotaBytes: checkQuota(a.quotaBytes, 'space') ?? QUOTA_RESET, quotaNamespace: checkQuota(a.quotaNamespace, 'namespace') ?? QUOTA_RESET, usedNamespace: 0,
        acls: initialAcls(owner, a.acls),
      }
    },
    apply: (_db, v) => {
      const t = ctx.tables()
      if (t.volumes.get(v.name) !== undefined) throw new O3Error('VOLUME_ALREADY_EXISTS', `Volume ${v.name} already exists`)
      t.volumes.putSync(v.name, v)
      return v
    },
  }
}

/** The owner's ALL and the ACLs a create request names (checked; each identity and scope once). */
export function initialAcls(owner: string, raw: unknown): OzoneAcl[] {
  if (raw === undefined || raw === null) return [ownerAcl(owner)]
  if (!Array.isArray(raw)) throw new O3Error('INVALID_ARGUMENT', 'acls must be a list of ACLs')
  return mergeAcls([ownerAcl(owner), ...raw.map(checkAcl)])
}
