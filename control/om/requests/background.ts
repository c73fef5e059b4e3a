/** @module
 * The OM's own housekeeping, decided by the leader and applied by every replica:
 * expireOpenKeys (open keys older than om.openKey.expireMs by the leader's clock; their
 * blocks go to the deleted blocks) and forgetDeleted (deleted-block entries the SCM took).
 */
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { recordDeleted } from '../tables.ts'
import type { OmRequestContext } from './context.ts'

export function expireOpenKeys(ctx: OmRequestContext): ReplicatedRequest<{ clientIds: string[]; cutoffMs: number }, { clientIds: string[]; cutoffMs: number; nowMs: number }, number> {
  return {
    name: 'expireOpenKeys',
    prepare: (a) => ({ clientIds: a.clientIds, cutoffMs: a.cutoffMs, nowMs: Date.now() }),
    apply: (_db, p) => {
      const t = ctx.tables()
      let expired = 0
      for (const clientId of p.clientIds) {
        // Read again: a key committed since the leader's scan keeps its blocks.
        const info = t.openKeys.get(clientId)
        if (info === undefined || info.createdAtMs >= p.cutoffMs) continue
        recordDeleted(t, `${info.volume}/${info.bucket}/${info.name}`, info.allocated.map((b) => b.blockId), p.nowMs)
        t.openKeys.removeSync(clientId)
        expired++
      }
      return expired
    },
  }
}

export function forgetDeleted(ctx: OmRequestContext): ReplicatedRequest<{ ids: number[] }, { ids: number[] }, null> {
  return {
    name: 'forgetDeleted',
    prepare: (a) => ({ ids: a.ids }),
    apply: (_db, p) => {
      const t = ctx.tables()
      for (const id of p.ids) t.deleted.removeSync(id)
      return null
    },
  }
}
