/** @module
 * reserveIds: a batch of container or block ids for the leader to hand out (Ozone's
 * SequenceIdGenerator): the ceiling moves in the log, so no id is handed out twice, not even
 * by the next leader after a failover (it starts past the last batch reserved).
 */
import { O3Error } from '../../../core/errors.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ScmTables } from '../tables.ts'

export type IdKind = 'containerId' | 'localId'
/** Ids per batch: one log entry per this many allocations. */
export const ID_BATCH = 1000

export function reserveIds(t: () => ScmTables): ReplicatedRequest<{ kind: IdKind; count: number }, { kind: IdKind; count: number }, { first: number; last: number }> {
  return {
    name: 'reserveIds',
    prepare: (a) => {
      if ((a.kind !== 'containerId' && a.kind !== 'localId') || !Number.isSafeInteger(a.count) || a.count < 1) {
        throw new O3Error('INVALID_ARGUMENT', `Cannot reserve ids: kind ${String(a.kind)} count ${String(a.count)}`)
      }
      return { kind: a.kind, count: Math.max(a.count, ID_BATCH) }
    },
    apply: (_db, p) => {
      const ceiling = (t().meta.get(`ceiling.${p.kind}`) as number | undefined) ?? 0
      t().meta.putSync(`ceiling.${p.kind}`, ceiling + p.count)
      return { first: ceiling + 1, last: ceiling + p.count }
    },
  }
}
