/** @module
 * Authenticates an S3 request: finds which scheme signed it (SigV4 or SigV2, each in a header
 * or a presigned URL), checks its time, looks up the secret of its access key and verifies the
 * signature. Its result is all the rest of the gateway learns about the signing: the user,
 * and what the body must satisfy (payload.ts). Secrets are looked up every time, never cached,
 * so a revoked key stops at once.
 */
import { O3Error } from '../../core/errors.ts'
import { S3Error } from './errors.ts'
import { checkTimeV2, parseAuthV2, verifySignatureV2 } from './sigv2.ts'
import { checkTime, parseAuth, signingKey, verifySignature, type AuthParams, type SignedRequest } from './sigv4.ts'

/** How a verified request was signed, as far as reading its body is concerned. */
export type RequestAuth =
  /** SigV2 signs no body: it is read as UNSIGNED-PAYLOAD (Content-MD5 and x-amz-checksum-* still checked). */
  | { version: 2 }
  /** SigV4: the body is read as x-amz-content-sha256 declares; aws-chunked chunk signatures chain from the seed signature. */
  | { version: 4; params: AuthParams; signingKey: Buffer; seedSignature: string }

export interface AuthenticateOptions {
  nowMs: number
  /** The bucket named by the Host header of a virtual-hosted-style request (SigV2 signs it as a path prefix). */
  hostBucket: string | undefined
  /** The OM's s3SecretTable: throws PERMISSION_DENIED or INVALID_ARGUMENT for an unknown key. */
  lookupSecret: (accessKey: string) => Promise<{ user: string; awsSecret: string }>
}

/** Throws the S3 error of the first check that fails; else returns the user and how the request was signed. */
export async function authenticate(req: SignedRequest, query: URLSearchParams, o: AuthenticateOptions): Promise<{ user: string; auth: RequestAuth }> {
  const v2 = parseAuthV2(req, query)
  if (v2 !== undefined) {
    checkTimeV2(v2, o.nowMs)
    const secret = await lookup(o, v2.accessKey)
    verifySignatureV2(req, v2, secret.awsSecret, o.hostBucket)
    return { user: secret.user, auth: { version: 2 } }
  }
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
