/** @module
 * rotateSecretKey: a new secret key for block tokens (Ozone's SecretKeyManager rotation,
 * replicated through SCM Ratis as its SecretKeyState is). The leader draws the 32 random
 * bytes, the id and the times in prepare; every replica stores the key and drops the keys
 * expired by the new key's creation time, so every SCM answers getSecretKeys alike.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { O3Error } from '../../../core/errors.ts'
import type { SecretKey } from '../../../core/security/secret-keys.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ScmTables } from '../tables.ts'

/** The key that signs new tokens: the newest one not expired at `nowMs`. */
export function currentSecretKey(t: ScmTables, nowMs: number): SecretKey | undefined {
  let current: SecretKey | undefined
  for (const { value } of t.secretKeys.getRange()) {
    if (value.expiresAtMs > nowMs && (current === undefined || value.createdAtMs > current.createdAtMs)) current = value
  }
  return current
}

/** Every key not expired at `nowMs`, oldest first. */
export function liveSecretKeys(t: ScmTables, nowMs: number): SecretKey[] {
  return [...t.secretKeys.getRange()].map((e) => e.value).filter((k) => k.expiresAtMs > nowMs).sort((a, b) => a.createdAtMs - b.createdAtMs)
}

export function rotateSecretKey(t: () => ScmTables): ReplicatedRequest<{ expiryMs: number }, SecretKey, SecretKey> {
  return {
    name: 'rotateSecretKey',
    prepare: (a) => {
      if (typeof a.expiryMs !== 'number' || !Number.isSafeInteger(a.expiryMs) || a.expiryMs < 1) {
        throw new O3Error('INVALID_ARGUMENT', `Cannot make a secret key: expiryMs ${String(a.expiryMs)}`)
      }
      const createdAtMs = Date.now()
      return { id: randomUUID(), createdAtMs, expiresAtMs: createdAtMs + a.expiryMs, secret: randomBytes(32).toString('base64') }
    },
    apply: (_db, p) => {
      for (const { key, value } of t().secretKeys.getRange()) if (value.expiresAtMs <= p.createdAtMs) t().secretKeys.removeSync(key)
      t().secretKeys.putSync(p.id, p)
      return p
    },
  }
}
