/** @module
 * recordCertificate: a certificate the leader issued, kept per identity (role, id). An
 * enrollment spends its one-time token and is refused for an identity that holds a
 * certificate for another key (an identity enrolls once: a token cannot take over a running
 * datanode's id); the same key again (a retry whose answer was lost) gets the same
 * certificate. A renewal replaces the certificate of an enrolled identity. Apply re-checks
 * the token and the identity, as entries may race.
 */
import { O3Error } from '../../../core/errors.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { BootstrapTokenRecord, EnrolledRecord, ScmTables } from '../tables.ts'

/** The record to keep (EnrolledRecord), and how it came. */
export interface CertificatePayload extends EnrolledRecord {
  kind: 'enroll' | 'renew'
  /** enroll: the token it used. */
  tokenId?: string
}

export function enrolledKey(role: string, id: string): string {
  return `cert/${role}/${id}`
}

export function recordCertificate(t: () => ScmTables): ReplicatedRequest<CertificatePayload, CertificatePayload, { cert: string }> {
  return {
    name: 'recordCertificate',
    // The handler (control/scm/ca.ts) checked the proof and issued the certificate on the leader.
    prepare: (a) => a,
    apply: (_db, p) => {
      const { ca } = t()
      const key = enrolledKey(p.role, p.id)
      const existing = ca.get(key) as EnrolledRecord | undefined
      if (p.kind === 'renew') {
        if (existing === undefined) throw new O3Error('CERTIFICATE_ERROR', `Cannot renew the certificate of ${p.role} ${p.id}: it never enrolled`)
        ca.putSync(key, { ...existing, publicKey: p.publicKey, cert: p.cert, issuedAtMs: p.issuedAtMs })
        return { cert: p.cert }
      }
      if (existing !== undefined) {
        if (existing.nonce === p.nonce) throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${p.role} ${p.id}: the request is a replay (its nonce was used)`)
        if (existing.publicKey === p.publicKey) return { cert: existing.cert }
        throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${p.role} ${p.id}: that identity is enrolled already (with another key); it renews its certificate over mutual TLS`)
      }
      const tokenKey = `token/${p.tokenId ?? ''}`
      const token = ca.get(tokenKey) as BootstrapTokenRecord | undefined
      if (token === undefined || token.scope === 'admin') throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${p.role} ${p.id}: unknown bootstrap token`)
      if (token.spent) throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${p.role} ${p.id}: the bootstrap token was used already (it is one-time)`)
      if (token.expiresAtMs !== 0 && token.expiresAtMs < p.issuedAtMs) throw new O3Error('CERTIFICATE_ERROR', `Cannot enroll ${p.role} ${p.id}: the bootstrap token expired`)
      if (!token.reusable) ca.putSync(tokenKey, { ...token, spent: true })
      const record: EnrolledRecord = { role: p.role, id: p.id, publicKey: p.publicKey, cert: p.cert, issuedAtMs: p.issuedAtMs, nonce: p.nonce }
      ca.putSync(key, record)
      return { cert: p.cert }
    },
  }
}
