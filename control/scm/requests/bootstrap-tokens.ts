/** @module
 * addBootstrapToken: a new token services enroll with (`o3 admin cert token`): the leader
 * draws it; one-time (spent by its first enrollment) or reusable, with an expiry. Spent and
 * expired tokens are dropped when a new one is added, so the table stays bounded.
 */
import { O3Error } from '../../../core/errors.ts'
import { formatBootstrapToken } from '../../../core/security/enrollment.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { BootstrapTokenRecord, ScmTables } from '../tables.ts'
import { drawToken } from './init-ca.ts'

/** Live tokens at most (a token is a few hundred bytes; an operator makes them by hand). */
export const BOOTSTRAP_TOKENS_MAX = 10_000
/** The longest a made token may live: a year. */
export const BOOTSTRAP_TOKEN_TTL_MS_MAX = 365 * 24 * 3600_000

interface TokenArgs { ttlMs?: unknown; reusable?: unknown }
interface TokenPayload { id: string; secret: string; createdAtMs: number; expiresAtMs: number; reusable: boolean }

export function addBootstrapToken(t: () => ScmTables): ReplicatedRequest<TokenArgs, TokenPayload, { token: string; expiresAtMs: number; reusable: boolean }> {
  return {
    name: 'addBootstrapToken',
    prepare: (a) => {
      const ttlMs = a.ttlMs ?? 24 * 3600_000
      if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs < 1000 || ttlMs > BOOTSTRAP_TOKEN_TTL_MS_MAX) {
        throw new O3Error('INVALID_ARGUMENT', `Cannot make a bootstrap token: ttlMs must be 1000..${BOOTSTRAP_TOKEN_TTL_MS_MAX}`)
      }
      const nowMs = Date.now()
      return { ...drawToken(), createdAtMs: nowMs, expiresAtMs: nowMs + ttlMs, reusable: a.reusable === true }
    },
    apply: (_db, p) => {
      const { ca } = t()
      let live = 0
      for (const { key, value } of ca.getRange({ start: 'token/', end: 'token0' })) {
        const r = value as BootstrapTokenRecord
        if (r.spent || (r.expiresAtMs !== 0 && r.expiresAtMs < p.createdAtMs)) ca.removeSync(key)
        else live++
      }
      if (live >= BOOTSTRAP_TOKENS_MAX) throw new O3Error('UNAVAILABLE', `Cannot make a bootstrap token: ${BOOTSTRAP_TOKENS_MAX} are live already (they expire, or are spent by an enrollment)`)
      const record: BootstrapTokenRecord = { secret: p.secret, createdAtMs: p.createdAtMs, expiresAtMs: p.expiresAtMs, reusable: p.reusable, spent: false }
      ca.putSync(`token/${p.id}`, record)
      return { token: formatBootstrapToken(p.id, p.secret), expiresAtMs: p.expiresAtMs, reusable: p.reusable }
    },
  }
}
