/** @module
 * initCa: the cluster's root CA, its first bootstrap token and its admin token (user
 * certificates; issue 16, Ozone's SCM root CA), made once by the first leader (prepare draws
 * the key pair and the tokens) and kept by every
 * replica in the `ca` table, so that every SCM of the group issues with the same CA. A second
 * proposal keeps the first CA.
 */
import { randomBytes } from 'node:crypto'
import { createRootCa } from '../../../core/security/pki.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { BootstrapTokenRecord, CaRoot, ScmTables } from '../tables.ts'

/** The root CA's lifetime (Ozone's hdds.x509.max.duration is 5 years; service certificates are capped by it). */
export const CA_VALIDITY_MS = 10 * 365 * 24 * 3600_000

interface InitCaPayload { root: CaRoot; tokenId: string; tokenSecret: string; adminTokenId: string; adminTokenSecret: string }

/** A bootstrap token's id and secret, drawn by a leader's prepare. */
export function drawToken(): { id: string; secret: string } {
  return { id: randomBytes(8).toString('hex'), secret: randomBytes(32).toString('base64url') }
}

export function initCa(t: () => ScmTables): ReplicatedRequest<{ clusterId: string }, InitCaPayload, { cert: string; created: boolean }> {
  return {
    name: 'initCa',
    prepare: async (a) => {
      const nowMs = Date.now()
      const ca = await createRootCa({ clusterId: a.clusterId, nowMs, validityMs: CA_VALIDITY_MS })
      const token = drawToken()
      const admin = drawToken()
      return { root: { cert: ca.cert, privateKey: ca.privateKey, createdAtMs: nowMs }, tokenId: token.id, tokenSecret: token.secret, adminTokenId: admin.id, adminTokenSecret: admin.secret }
    },
    apply: (_db, p) => {
      const { ca } = t()
      const existing = ca.get('root') as CaRoot | undefined
      if (existing !== undefined) return { cert: existing.cert, created: false }
      ca.putSync('root', p.root)
      const token: BootstrapTokenRecord = { secret: p.tokenSecret, createdAtMs: p.root.createdAtMs, expiresAtMs: 0, reusable: true, spent: false }
      ca.putSync(`token/${p.tokenId}`, token)
      ca.putSync('firstToken', p.tokenId)
      const admin: BootstrapTokenRecord = { secret: p.adminTokenSecret, createdAtMs: p.root.createdAtMs, expiresAtMs: 0, reusable: true, spent: false, scope: 'admin' }
      ca.putSync(`token/${p.adminTokenId}`, admin)
      ca.putSync('adminToken', p.adminTokenId)
      return { cert: p.root.cert, created: true }
    },
  }
}
