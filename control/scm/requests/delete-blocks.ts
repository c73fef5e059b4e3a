/** @module
 * addDeleteTxs and ackDeletes: the SCM's deleted-block log (Ozone's DeletedBlockLog). A
 * transaction per container lists the datanodes that may hold it; each datanode's
 * acknowledgement takes it off the list, and a transaction with nobody left is done;
 * addDeleteHolder puts a datanode that got a replica later (a copy) on the lists.
 */
import { O3Error } from '../../../core/errors.ts'
import { SCM_DELETE_TXS_MAX } from '../../../core/limits.ts'
import { entryCount } from '../../../core/metadata-db.ts'
import type { ContainerId, DatanodeId, LocalId } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ScmTables } from '../tables.ts'

type NewTx = { containerId: ContainerId; localIds: LocalId[]; pending: DatanodeId[] }

export function addDeleteTxs(t: () => ScmTables): ReplicatedRequest<{ txs: NewTx[] }, { txs: NewTx[] }, number[]> {
  return {
    name: 'addDeleteTxs',
    prepare: (a) => ({ txs: a.txs }),
    apply: (_db, p) => {
      const { meta, deletes } = t()
      if (entryCount(deletes) + p.txs.length > SCM_DELETE_TXS_MAX) {
        throw new O3Error('UNAVAILABLE', `Cannot accept block deletions: ${SCM_DELETE_TXS_MAX} are waiting for datanodes already`)
      }
      let next = (meta.get('nextDeleteTxId') as number | undefined) ?? 1
      const ids: number[] = []
      for (const tx of p.txs) {
        deletes.putSync(next, { id: next, ...tx })
        ids.push(next++)
      }
      meta.putSync('nextDeleteTxId', next)
      return ids
    },
  }
}

export function ackDeletes(t: () => ScmTables): ReplicatedRequest<{ datanodeId: DatanodeId; ids: number[] }, { datanodeId: DatanodeId; ids: number[] }, number> {
  return {
    name: 'ackDeletes',
    prepare: (a) => ({ datanodeId: a.datanodeId, ids: a.ids }),
    apply: (_db, p) => {
      const { deletes } = t()
      let done = 0
      for (const id of p.ids) {
        const tx = deletes.get(id)
        if (tx === undefined) continue
        const pending = tx.pending.filter((x) => x !== p.datanodeId)
        if (pending.length === 0) {
          deletes.removeSync(id)
          done++
        } else if (pending.length < tx.pending.length) deletes.putSync(id, { ...tx, pending })
      }
      return done
    },
  }
}

/** A datanode that got a replica of the transactions' container later: it is on their lists too. Answers the ids it was added to. */
export function addDeleteHolder(t: () => ScmTables): ReplicatedRequest<{ datanodeId: DatanodeId; ids: number[] }, { datanodeId: DatanodeId; ids: number[] }, number[]> {
  return {
    name: 'addDeleteHolder',
    prepare: (a) => ({ datanodeId: a.datanodeId, ids: a.ids }),
    apply: (_db, p) => {
      const { deletes } = t()
      const added: number[] = []
      for (const id of p.ids) {
        const tx = deletes.get(id)
        if (tx === undefined || tx.pending.includes(p.datanodeId)) continue
        deletes.putSync(id, { ...tx, pending: [...tx.pending, p.datanodeId] })
        added.push(id)
      }
      return added
    },
  }
}
