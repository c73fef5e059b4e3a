/** @module
 * forgetEnrollment: an administrator lets an identity enroll again (`o3 admin cert forget`),
 * for a service whose data folder (and key) is lost: its record goes, so a new token may
 * enroll the same role and id with a new key. The old certificate stays valid until it
 * expires (there is no revocation list): forget only an identity whose key is gone.
 */
import { O3Error } from '../../../core/errors.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ScmTables } from '../tables.ts'
import { enrolledKey } from './record-certificate.ts'

export function forgetEnrollment(t: () => ScmTables): ReplicatedRequest<{ role: string; id: string }, { role: string; id: string }, { forgotten: boolean }> {
  return {
    name: 'forgetEnrollment',
    prepare: (a) => {
      if (typeof a.role !== 'string' || typeof a.id !== 'string' || a.role.length > 16 || a.id.length > 128) throw new O3Error('INVALID_ARGUMENT', 'Cannot forget an enrollment: role and id must be strings')
      return { role: a.role, id: a.id }
    },
    apply: (_db, p) => {
      const key = enrolledKey(p.role, p.id)
      if (t().ca.get(key) === undefined) return { forgotten: false }
      t().ca.removeSync(key)
      return { forgotten: true }
    },
  }
}
