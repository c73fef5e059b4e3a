/** @module
 * A user's native calls to the OM, signed as AWS Signature Version 4 with service `o3` (scope
 * date/region/o3/aws4_request) and the user's S3 key pair: the client signs (signRequest,
 * requestSigner), the OM reads the signed parts into the same proof the S3 gateway sends it
 * (readSignedRequest) and checks it with the secret it holds (core/s3-signature.ts verifyProof,
 * service `o3`: an S3 signature never passes for a native one, nor the reverse).
 * Signed: POST, the path, x-amz-date, x-amz-content-sha256 (SHA-256 of the exact body). The
 * host is not: the signer does not know which member of the OM group a call reaches, and any
 * member may answer it. A captured call verifies for REQUEST_SIGNATURE_SKEW_MS_MAX; the OM's
 * calls carry a caller id that its retry cache answers once, so a replayed change does nothing
 * twice. Pure but for node:crypto; time comes in as nowMs.
 */
import { createHash, createHmac } from 'node:crypto'
import { O3Error } from '../errors.ts'
import { REQUEST_AUTHORIZATION_BYTES_MAX, REQUEST_SIGNATURE_SKEW_MS_MAX, REQUEST_SIGNED_HEADERS_COUNT_MAX } from '../limits.ts'
import type { RequestSigner } from '../rpc/client.ts'
import { isValidScope, signingKeyV4, stringToSignV4, type S3SignatureProof } from '../s3-signature.ts'

/** The SigV4 service name of native calls. */
export const NATIVE_SIGNING_SERVICE = 'o3'
/** The region native calls are signed for: any verifies (the OM derives the key for the signed scope); this is ours. */
export const NATIVE_SIGNING_REGION = 'o3'
const ALGORITHM = 'AWS4-HMAC-SHA256'
/** What our client signs besides method, path and body hash. */
const SIGNED_HEADERS = ['x-amz-content-sha256', 'x-amz-date'] as const
/** Headers every signed call must sign: without them the date or the body could be swapped. */
const REQUIRED_SIGNED = ['x-amz-content-sha256', 'x-amz-date'] as const
/** RPC paths (/rpc/OM.createVolume) need no percent-encoding; anything else is refused, not guessed at. */
const PATH = /^\/[A-Za-z0-9._~/-]*$/

/** A user's key pair, as getS3Secret gives it. */
export interface UserCredentials {
  readonly accessKey: string
  readonly secret: string
}

const sha256Hex = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex')

/** yyyymmddThhmmssZ, as x-amz-date has it. */
export function amzDateOf(nowMs: number): string {
  return new Date(nowMs).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
}

function parseAmzDate(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s)
  return m === null ? undefined : Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])
}

/** SigV4's canonical request of a POST without a query, from the signed headers' values. */
function canonicalRequest(path: string, signed: readonly string[], header: (name: string) => string | undefined, payloadSha256: string): string {
  const headers = signed.map((name) => `${name}:${(header(name) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('')
  return ['POST', path, '', headers, signed.join(';'), payloadSha256].join('\n')
}

/** The headers that sign one call (x-amz-date, x-amz-content-sha256, authorization). */
export function signRequest(call: { credentials: UserCredentials; path: string; body: string; nowMs: number }): Record<string, string> {
  if (!PATH.test(call.path)) throw new TypeError(`Cannot sign a call to ${call.path}: not an RPC path`)
  const amzDate = amzDateOf(call.nowMs)
  const scope = `${amzDate.slice(0, 8)}/${NATIVE_SIGNING_REGION}/${NATIVE_SIGNING_SERVICE}/aws4_request`
  const payload = sha256Hex(call.body)
  const values: Record<string, string> = { 'x-amz-date': amzDate, 'x-amz-content-sha256': payload }
  const canonical = canonicalRequest(call.path, SIGNED_HEADERS, (n) => values[n], payload)
  const toSign = stringToSignV4({ amzDate, scope, canonicalRequestSha256: sha256Hex(canonical) })
  const signature = createHmac('sha256', signingKeyV4(call.credentials.secret, scope, NATIVE_SIGNING_SERVICE)).update(toSign).digest('hex')
  return {
    ...values,
    authorization: `${ALGORITHM} Credential=${call.credentials.accessKey}/${scope}, SignedHeaders=${SIGNED_HEADERS.join(';')}, Signature=${signature}`,
  }
}

/** An RpcClient signer (RpcClientOptions.signer) that signs every call with `credentials` at the time it is sent. */
export function requestSigner(credentials: UserCredentials, nowMs: () => number = Date.now): RequestSigner {
  if (credentials.accessKey.length === 0 || credentials.secret.length === 0) throw new TypeError('Cannot sign calls: the access key and secret must not be empty')
  return ({ path, body }) => signRequest({ credentials, path, body, nowMs: nowMs() })
}

/**
 * The access key a request claims and the SigV4 proof to check against its secret
 * (verifyProof(secret, proof, 'o3')); undefined when the request carries no Authorization
 * header at all. Throws UNAUTHENTICATED for an authorization that cannot be one of ours (other
 * scheme, malformed, scope of another service, date missing, too far off the clock, or not
 * the scope's day) and SIGNATURE_MISMATCH when the body is not the one whose hash was signed.
 */
export function readSignedRequest(request: { path: string; header: (name: string) => string | undefined; body: string; nowMs: number }): { accessKey: string; proof: S3SignatureProof & { version: 4 } } | undefined {
  const authorization = request.header('authorization')
  if (authorization === undefined) return undefined
  const refuse = (why: string) => new O3Error('UNAUTHENTICATED', `Cannot authenticate the call to ${request.path}: ${why}`)
  if (authorization.length > REQUEST_AUTHORIZATION_BYTES_MAX) throw refuse(`its Authorization header exceeds ${REQUEST_AUTHORIZATION_BYTES_MAX} characters`)
  if (!authorization.startsWith(`${ALGORITHM} `)) throw refuse(`its Authorization header is not ${ALGORITHM} (sign with the user's access key and secret: client.accessKey, client.secret)`)
  const fields: Record<string, string> = {}
  for (const part of authorization.slice(ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=')
    if (eq > 0) fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim()
  }
  const { Credential: credential, SignedHeaders: signedList, Signature: signature } = fields
  if (!credential || !signedList || !signature) throw refuse('its Authorization header lacks Credential, SignedHeaders or Signature')
  const slash = credential.indexOf('/')
  const accessKey = slash > 0 ? credential.slice(0, slash) : ''
  const scope = credential.slice(slash + 1)
  if (accessKey.length === 0 || !isValidScope(scope, NATIVE_SIGNING_SERVICE)) throw refuse(`credential scope ${JSON.stringify(scope)} is not date/region/${NATIVE_SIGNING_SERVICE}/aws4_request`)
  const signed = signedList.split(';')
  if (signed.length > REQUEST_SIGNED_HEADERS_COUNT_MAX || signed.some((n) => !/^[a-z0-9-]+$/.test(n))) throw refuse('its SignedHeaders are not a list of lower-case header names')
  for (const name of REQUIRED_SIGNED) if (!signed.includes(name)) throw refuse(`${name} is not a signed header`)
  const amzDate = request.header('x-amz-date') ?? ''
  const at = parseAmzDate(amzDate)
  if (at === undefined) throw refuse(`x-amz-date ${JSON.stringify(amzDate)} is not yyyymmddThhmmssZ`)
  const skewMs = Math.abs(request.nowMs - at)
  if (skewMs > REQUEST_SIGNATURE_SKEW_MS_MAX) throw refuse(`it was signed at ${amzDate}, ${Math.round(skewMs / 60_000)} min off the OM's clock (at most ${REQUEST_SIGNATURE_SKEW_MS_MAX / 60_000} min)`)
  if (scope.slice(0, 8) !== amzDate.slice(0, 8)) throw refuse(`its credential scope's date is not the day of x-amz-date ${amzDate}`)
  const payload = request.header('x-amz-content-sha256') ?? ''
  if (payload !== sha256Hex(request.body)) throw new O3Error('SIGNATURE_MISMATCH', `Cannot authenticate the call to ${request.path}: its body is not the one whose SHA-256 was signed`)
  if (!PATH.test(request.path)) throw refuse('its path is not an RPC path')
  const canonical = canonicalRequest(request.path, signed, request.header, payload)
  return { accessKey, proof: { version: 4, amzDate, scope, canonicalRequestSha256: sha256Hex(canonical), signature } }
}
