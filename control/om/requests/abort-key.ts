/** @module abortKey: drops an open key (a failed or cancelled write); the blocks it was given are deleted. */
import { O3Error } from '../../../core/errors.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { recordDeleted } from '../tables.ts'
import { checkClientId } from './open-key.ts'
import type { OmRequestContext } from './context.ts'

export function abortKey(ctx: OmRequestContext): ReplicatedRequest<{ clientId?: unknown }, { clientId: string; nowMs: number }, null> {
  return {
    name: 'abortKey',
    prepare: (a) => {
      const clientId = checkClientId(a.clientId)
      if (ctx.tables().openKeys.get(clientId) === undefined) throw new O3Error('OPEN_KEY_NOT_FOUND', `Open key ${clientId} not found (expired, committed or aborted)`)
      return { clientId, nowMs: Date.now() }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      // A commit that won the race owns the blocks now; one allocated meanwhile is in the record.
      const current = t.openKeys.get(p.clientId)
      if (current === undefined) return null
      recordDeleted(t, `${current.volume}/${current.bucket}/${current.name}`, current.allocated.map((b) => b.blockId), p.nowMs)
      t.openKeys.removeSync(p.clientId)
      return null
    },
  }
}
