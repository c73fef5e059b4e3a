/** @module
 * getS3Secret and revokeS3Secret (Ozone's S3SecretManager): a user's key pair, drawn by the
 * leader on first request and kept by every replica; revoking removes every pair of the user.
 */
import { randomBytes } from 'node:crypto'
import { O3Error } from '../../../core/errors.ts'
import type { S3Secret } from '../../../core/om-wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { OmTables } from '../tables.ts'
import type { OmRequestContext } from './context.ts'

/** Longer access keys name no pair (ours are 20 characters, AWS's at most 128) and are not looked up: LMDB's keys are bounded. */
const ACCESS_KEY_LENGTH_MAX = 128

/** The key pair of `accessKey`, if there is one. */
export function secretOf(t: OmTables, accessKey: string): S3Secret | undefined {
  return accessKey.length > ACCESS_KEY_LENGTH_MAX ? undefined : t.s3Secrets.get(accessKey)
}

export function checkUser(raw: unknown): string {
  if (typeof raw !== 'string' || !/^[A-Za-z0-9._@-]{1,64}$/.test(raw)) throw new O3Error('INVALID_ARGUMENT', `Invalid user name ${JSON.stringify(raw)}: 1-64 letters, digits, '.', '_', '@' or '-'`)
  return raw
}

/**
 * The user's pair, created on first call: one per user, even when two calls race. The secret
 * is 40 characters of base64, AWS's own format: base64url began one secret in 64 with '-', which
 * a command line (`--secret-key -…`) reads as an option.
 */
export function getS3Secret(ctx: OmRequestContext): ReplicatedRequest<{ user?: unknown }, S3Secret, S3Secret> {
  return {
    name: 'getS3Secret',
    prepare: (a) => {
      const user = checkUser(a.user)
      return { user, awsAccessKey: `O3${randomBytes(9).toString('hex').toUpperCase()}`, awsSecret: randomBytes(30).toString('base64') }
    },
    apply: (_db, s) => {
      const t = ctx.tables()
      for (const { value } of t.s3Secrets.getRange()) if (value.user === s.user) return value
      t.s3Secrets.putSync(s.awsAccessKey, s)
      return s
    },
  }
}

export function revokeS3Secret(ctx: OmRequestContext): ReplicatedRequest<{ user?: unknown }, { user: string }, { revoked: number }> {
  return {
    name: 'revokeS3Secret',
    prepare: (a) => ({ user: checkUser(a.user) }),
    apply: (_db, p) => {
      const t = ctx.tables()
      const keys: string[] = []
      for (const { key, value } of t.s3Secrets.getRange()) if (value.user === p.user) keys.push(key)
      for (const k of keys) t.s3Secrets.removeSync(k)
      return { revoked: keys.length }
    },
  }
}
