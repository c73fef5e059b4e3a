/** @module
 * initCluster: the SCM group's cluster id, drawn once by the first leader (prepare) and kept
 * by every replica; a second proposal keeps the first id.
 */
import { randomUUID } from 'node:crypto'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ScmTables } from '../tables.ts'

export function initCluster(t: () => ScmTables): ReplicatedRequest<Record<string, never>, { clusterId: string }, string> {
  return {
    name: 'initCluster',
    prepare: () => ({ clusterId: `CID-${randomUUID()}` }),
    apply: (_db, p) => {
      const existing = t().meta.get('clusterId') as string | undefined
      if (existing !== undefined) return existing
      t().meta.putSync('clusterId', p.clusterId)
      return p.clusterId
    },
  }
}
