/** @module
 * allocateBlock: one more block for an open key, from the SCM (prepare). If the open key
 * expired or was aborted by the time the entry applies, the block goes to the deleted
 * blocks like the key's others rather than being forgotten, and the writer is told.
 */
import { O3Error } from '../../../core/errors.ts'
import type { AllocatedBlock, ExcludeList } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { recordDeleted } from '../tables.ts'
import type { OmRequestContext } from './context.ts'
import { checkClientId } from './open-key.ts'

type Payload = { clientId: string; key: string; block: AllocatedBlock; nowMs: number }

export function allocateBlock(ctx: OmRequestContext): ReplicatedRequest<{ clientId?: unknown; excludeList?: Partial<ExcludeList> }, Payload, AllocatedBlock | { lost: true }> {
  return {
    name: 'allocateBlock',
    prepare: async (a) => {
      const info = openKeyOf(ctx, a.clientId)
      const exclude: ExcludeList = { datanodes: a.excludeList?.datanodes ?? [], containers: a.excludeList?.containers ?? [], pipelines: a.excludeList?.pipelines ?? [] }
      const [block] = await ctx.blocksFor(info.replication, 1, exclude)
      return { clientId: info.clientId, key: `${info.volume}/${info.bucket}/${info.name}`, block, nowMs: Date.now() }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      const current = t.openKeys.get(p.clientId)
      if (current === undefined) {
        recordDeleted(t, p.key, [p.block.blockId], p.nowMs)
        return { lost: true }
      }
      t.openKeys.putSync(p.clientId, { ...current, allocated: [...current.allocated, p.block] })
      return p.block
    },
  }
}

export function openKeyOf(ctx: OmRequestContext, clientId: unknown) {
  const info = ctx.tables().openKeys.get(checkClientId(clientId))
  if (info === undefined) throw new O3Error('OPEN_KEY_NOT_FOUND', `Open key ${clientId} not found (expired, committed or aborted)`)
  return info
}
