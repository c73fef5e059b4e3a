/** @module
 * Authenticates an S3 request: finds which scheme signed it (SigV4 or SigV2, each in a header
 * or a presigned URL), checks its time, and has the OM verify the signature with the access
 * key's secret, which never leaves the OM (core/s3-signature.ts), refusing a presigned URL
 * that carries x-amz-* headers it did not sign; a request with no signature
 * at all is anonymous (no user), for the gateway's authorization to judge. Its result is all the rest
 * of the gateway learns about the signing: the user, what the body must satisfy (payload.ts),
 * and what the OM read in the same call. Nothing is cached, so a revoked key stops at once.
 */
import { assert } from '../../core/assert.ts'
import { O3Error } from '../../core/errors.ts'
import type { S3SignatureProof } from '../../core/s3-signature.ts'
import type { S3AuthResult } from '../client/index.ts'
import { S3Error } from './errors.ts'
import { checkTimeV2, parseAuthV2, proofV2 } from './sigv2.ts'
import { checkTime, parseAuth, proofV4, signatureDoesNotMatch, type AuthParams, type SignedRequest } from './sigv4.ts'

/** How a verified request was signed, as far as reading its body is concerned. */
export type RequestAuth =
  /** No signature at all (anonymous): the body is read as UNSIGNED-PAYLOAD, as SigV2's. */
  | { version: 0 }
  /** SigV2 signs no body: it is read as UNSIGNED-PAYLOAD (Content-MD5 and x-amz-checksum-* still checked). */
  | { version: 2 }
  /**
   * SigV4: the body is read as x-amz-content-sha256 declares; aws-chunked chunk signatures
   * chain from the seed signature with the signing key of the request's scope, which the OM
   * returns only for such bodies (empty otherwise).
   */
  | { version: 4; params: AuthParams; signingKey: Buffer; seedSignature: string }
  /** A browser form's signature (PostObject), SigV2 or SigV4 over its policy: its handler reads the body as a form. */
  | { version: 'form'; signatureVersion: 2 | 4 }

export interface AuthenticateOptions {
  nowMs: number
  /** The bucket named by the Host header of a virtual-hosted-style request (SigV2 signs it as a path prefix). */
  hostBucket: string | undefined
  /** The endpoint's region (s3g.region): a SigV4 scope must name it. */
  region: string
  /**
   * OM.s3Authenticate for this request: throws PERMISSION_DENIED or INVALID_ARGUMENT for an
   * unknown key, SIGNATURE_MISMATCH for a signature that does not verify. A null proof asks
   * only whether the key exists; `signingKey` asks for the SigV4 signing key. No access key
   * (an anonymous request): only the bucket and key are read.
   */
  verify: (accessKey: string | undefined, proof: S3SignatureProof | null, signingKey: boolean) => Promise<S3AuthResult>
}

/**
 * Whether a request carries no signature at all: no Authorization header and none of the
 * presigned URL's parameters (SigV4's X-Amz-Algorithm/-Credential/-Signature, SigV2's
 * AWSAccessKeyId/Signature). Such a request is anonymous, and S3 evaluates it (a public-read
 * object is readable); one that tries to sign and fails is refused as before.
 */
export function isAnonymous(req: SignedRequest, query: URLSearchParams): boolean {
  if (req.headers.has('authorization')) return false
  return !['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'AWSAccessKeyId', 'Signature'].some((p) => query.has(p))
}

/**
 * Throws the S3 error of the first check that fails; else returns the user (undefined for an
 * anonymous request, whose bucket and key the OM still reads), how the request was signed and
 * what the OM read.
 */
export async function authenticate(req: SignedRequest, query: URLSearchParams, o: AuthenticateOptions): Promise<{ user: string | undefined; auth: RequestAuth; found: S3AuthResult }> {
  if (isAnonymous(req, query)) return { user: undefined, auth: { version: 0 }, found: await o.verify(undefined, null, false) }
  const v2 = parseAuthV2(req, query)
  if (v2 !== undefined) {
    checkTimeV2(v2, o.nowMs)
    const found = await verifySignature(o, v2.accessKey, proofV2(req, v2, o.hostBucket), false)
    return { user: signedUser(found), auth: { version: 2 }, found }
  }
  const params = parseAuth(req, query)
  checkTime(params, o.nowMs)
  // A bad scope or an unsigned host is answered only once the access key is known to exist,
  // as when the gateway checked signatures itself: an unknown key is InvalidAccessKeyId first.
  let proof: S3SignatureProof | null = null
  let malformed: unknown
  try {
    proof = proofV4(req, params, o.region)
  } catch (err) {
    malformed = err
  }
  const signedChunks = params.payloadHash.startsWith('STREAMING-AWS4-HMAC-SHA256-PAYLOAD')
  const found = await verifySignature(o, params.accessKey, proof, signedChunks)
  if (proof === null) throw malformed
  refuseUnsignedAmzHeaders(req, params.signedHeaders)
  const signingKey = found.signingKeyHex === undefined ? Buffer.alloc(0) : Buffer.from(found.signingKeyHex, 'hex')
  return { user: signedUser(found), auth: { version: 4, params, signingKey, seedSignature: params.signature }, found }
}

/**
 * A SigV4 signature binds only the headers it names (SignedHeaders, X-Amz-SignedHeaders): any
 * other x-amz-* header (x-amz-acl, x-amz-copy-source, x-amz-tagging...) would let whoever
 * holds a presigned URL, or replays a signed request, do more than its signer allowed. S3
 * refuses them ("There were headers present in the request which were not signed"), as here;
 * x-amz-content-sha256 may go unsigned, as S3 allows.
 */
function refuseUnsignedAmzHeaders(req: SignedRequest, signedHeaders: string[]): void {
  const signed = new Set(signedHeaders.map((h) => h.toLowerCase()))
  const unsigned: string[] = []
  req.headers.forEach((_, name) => { if (name.startsWith('x-amz-') && name !== 'x-amz-content-sha256' && !signed.has(name)) unsigned.push(name) })
  if (unsigned.length > 0) throw new S3Error('AccessDenied', `There were headers present in the request which were not signed: ${unsigned.join(', ')}`)
}

/** The user of a verified signature: the OM names one for every access key. */
function signedUser(found: S3AuthResult): string {
  assert(found.user !== undefined, 'the OM verified a signature without naming its user')
  return found.user
}

/** Has the OM verify a proof (also a browser form's, PostObject): its failures answered as S3 does. */
export async function verifySignature(o: Pick<AuthenticateOptions, 'verify'>, accessKey: string, proof: S3SignatureProof | null, signingKey: boolean): Promise<S3AuthResult> {
  try {
    return await o.verify(accessKey, proof, signingKey)
  } catch (err) {
    if (err instanceof O3Error && (err.code === 'PERMISSION_DENIED' || err.code === 'INVALID_ARGUMENT')) throw new S3Error('InvalidAccessKeyId', 'The AWS access key Id you provided does not exist in our records')
    if (err instanceof O3Error && err.code === 'SIGNATURE_MISMATCH') throw signatureDoesNotMatch()
    throw err
  }
}
