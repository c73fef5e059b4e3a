/** @module
 * Authenticates an S3 request: finds which scheme signed it (SigV4, in a header or a
 * presigned URL), checks its time, looks up the secret of its access key and verifies the
 * signature. Its result is all the rest of the gateway learns about the signing: the user,
 * and what the body must satisfy (payload.ts). Secrets are looked up every time, never cached,
 * so a revoked key stops at once.
 */
import { O3Error } from '../../core/errors.ts'
import { S3Error } from './errors.ts'
import { checkTime, parseAuth, signingKey, verifySignature, type AuthParams, type SignedRequest } from './sigv4.ts'

/** How a verified request was signed, as far as reading its body is concerned. */
export type RequestAuth =
  /** SigV4: the body is read as x-amz-content-sha256 declares; aws-chunked chunk signatures chain from the seed signature. */
  | { version: 4; params: AuthParams; signingKey: Buffer; seedSignature: string }

export interface AuthenticateOptions {
  nowMs: number
  /** The OM's s3SecretTable: throws PERMISSION_DENIED or INVALID_ARGUMENT for an unknown key. */
  lookupSecret: (accessKey: string) => Promise<{ user: string; awsSecret: string }>
}

/** Throws the S3 error of the first check that fails; else returns the user and how the request was signed. */
export async function authenticate(req: SignedRequest, query: URLSearchParams, o: AuthenticateOptions): Promise<{ user: string; auth: RequestAuth }> {
  const params = parseAuth(req, query)
  checkTime(params, o.nowMs)
  const secret = await lookup(o, params.accessKey)
  const key = signingKey(secret.awsSecret, params.scope)
  const seedSignature = verifySignature(req, params, key)
  return { user: secret.user, auth: { version: 4, params, signingKey: key, seedSignature } }
}

async function lookup(o: AuthenticateOptions, accessKey: string): Promise<{ user: string; awsSecret: string }> {
  try {
    return await o.lookupSecret(accessKey)
  } catch (err) {
    if (err instanceof O3Error && (err.code === 'PERMISSION_DENIED' || err.code === 'INVALID_ARGUMENT')) throw new S3Error('InvalidAccessKeyId', 'The AWS access key Id you provided does not exist in our records')
    throw err
  }
}
