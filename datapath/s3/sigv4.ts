/** @module
 * Verifies AWS Signature Version 4 (the S3 flavour: paths encoded once, payload hash from
 * x-amz-content-sha256): header auth and presigned query auth, plus the chunk and trailer
 * signatures of aws-chunked bodies. Signing follows the AWS "Create a signed AWS API request"
 * guide; the verification side is ours. The request's own signature is checked by the OM,
 * which holds the secret: this module builds what it checks (proofV4). Pure but for
 * node:crypto; time comes in as nowMs.
 */
import { createHash, createHmac } from 'node:crypto'
import { isValidScope, type S3SignatureProof } from '../../core/s3-signature.ts'
import { S3Error } from './errors.ts'
import { wholeNumber } from './whole-number.ts'

export { safeEqual } from '../../core/s3-signature.ts'

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
/** S3 refuses requests whose date is more than 15 minutes off (RequestTimeTooSkewed). */
export const CLOCK_SKEW_MS_MAX = 15 * 60_000
/** Presigned URLs live at most 7 days (X-Amz-Expires). */
export const PRESIGN_EXPIRES_SECONDS_MAX = 7 * 24 * 3600

export interface SignedRequest {
  method: string
  /** The raw path as sent, percent-encoded. */
  rawPath: string
  /** The raw query string, without '?'. */
  rawQuery: string
  headers: Headers
}

/** The parsed, not yet verified credentials of a request. */
export interface AuthParams {
  kind: 'header' | 'presigned'
  accessKey: string
  /** yyyymmdd/region/s3/aws4_request */
  scope: string
  amzDate: string
  signedHeaders: string[]
  signature: string
  /** x-amz-content-sha256 (header auth) or UNSIGNED-PAYLOAD (presigned). */
  payloadHash: string
  /** Presigned only: lifetime in seconds. */
  expiresSeconds?: number
}

export const sha256Hex = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex')

/** RFC 3986 encoding as SigV4 wants it: unreserved characters kept, '/' kept for paths. */
export function awsEncode(s: string, keepSlash: boolean): string {
  let out = encodeURIComponent(s).replace(/[!'()*]/g, (ch) => '%' + ch.charCodeAt(0).toString(16).toUpperCase())
  if (keepSlash) out = out.replace(/%2F/g, '/')
  return out
}

function decodeOrRaw(s: string): string {
  try { return decodeURIComponent(s) } catch { return s }
}

/** Each path segment decoded and encoded again, so clients' encoding choices do not matter. */
export function canonicalPath(rawPath: string): string {
  return rawPath.split('/').map((seg) => {
    try { return awsEncode(decodeURIComponent(seg), false) } catch { return seg }
  }).join('/')
}

export function canonicalQuery(rawQuery: string, omit?: string): string {
  if (rawQuery === '') return ''
  const pairs: [string, string][] = []
  for (const part of rawQuery.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const k = awsEncode(decodeOrRaw(eq < 0 ? part : part.slice(0, eq)), false)
    const v = awsEncode(decodeOrRaw(eq < 0 ? '' : part.slice(eq + 1)), false)
    if (k === omit) continue
    pairs.push([k, v])
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
  return pairs.map(([k, v]) => `${k}=${v}`).join('&')
}

function parseAmzDate(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s)
  if (m === null) throw new S3Error('AccessDenied', `Invalid X-Amz-Date ${s}`)
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])
}

/** Reads the credentials from the Authorization header or the presigned query; throws AccessDenied when there are none. */
export function parseAuth(req: SignedRequest, query: URLSearchParams): AuthParams {
  const header = req.headers.get('authorization')
  if (header !== null && header.startsWith('AWS4-HMAC-SHA256 ')) {
    const fields: Record<string, string> = {}
    for (const part of header.slice('AWS4-HMAC-SHA256 '.length).split(',')) {
      const eq = part.indexOf('=')
      if (eq > 0) fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim()
    }
    const { Credential: credential, SignedHeaders: signed, Signature: signature } = fields
    if (!credential || !signed || !signature) throw new S3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature.')
    const slash = credential.indexOf('/')
    if (slash <= 0 || credential.split('/').length !== 5) throw new S3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
    // S3 asks every header-signed request to name its payload's hash (or UNSIGNED-PAYLOAD), which the signature covers.
    const payloadHash = req.headers.get('x-amz-content-sha256')
    if (payloadHash === null) throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256')
    let amzDate = req.headers.get('x-amz-date')
    if (amzDate === null) {
      const date = req.headers.get('date')
      if (date === null || Number.isNaN(Date.parse(date))) throw new S3Error('AccessDenied', 'Request has no X-Amz-Date or Date header')
      amzDate = new Date(Date.parse(date)).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
    }
    return {
      kind: 'header', accessKey: credential.slice(0, slash), scope: credential.slice(slash + 1), amzDate,
      signedHeaders: signed.split(';'), signature, payloadHash,
    }
  }
  if (query.get('X-Amz-Algorithm') === 'AWS4-HMAC-SHA256') {
    const credential = query.get('X-Amz-Credential') ?? ''
    const slash = credential.indexOf('/')
    const expires = wholeNumber(query.get('X-Amz-Expires'))
    if (slash < 0 || !query.get('X-Amz-Date') || !query.get('X-Amz-SignedHeaders') || !query.get('X-Amz-Signature')) throw new S3Error('AccessDenied', 'Presigned URL lacks X-Amz-Credential, -Date, -SignedHeaders or -Signature')
    if (!Number.isSafeInteger(expires) || expires < 1 || expires > PRESIGN_EXPIRES_SECONDS_MAX) throw new S3Error('AuthorizationQueryParametersError', `X-Amz-Expires must be a whole number of seconds from 1 to ${PRESIGN_EXPIRES_SECONDS_MAX} (a week)`)
    return {
      kind: 'presigned', accessKey: credential.slice(0, slash), scope: credential.slice(slash + 1), amzDate: query.get('X-Amz-Date')!,
      signedHeaders: query.get('X-Amz-SignedHeaders')!.split(';'), signature: query.get('X-Amz-Signature')!,
      payloadHash: req.headers.get('x-amz-content-sha256') ?? 'UNSIGNED-PAYLOAD', expiresSeconds: expires,
    }
  }
  if (header !== null) throw new S3Error('AccessDenied', 'Unsupported Authorization header: sign with AWS Signature Version 4 or 2')
  throw new S3Error('AccessDenied', 'Anonymous requests are denied')
}

/** Checks the request time: skew for header auth, expiry for presigned URLs. */
export function checkTime(auth: AuthParams, nowMs: number): void {
  const at = parseAmzDate(auth.amzDate)
  if (auth.kind === 'presigned') {
    if (at - nowMs > CLOCK_SKEW_MS_MAX) throw new S3Error('RequestTimeTooSkewed', 'The presigned URL is dated in the future')
    if (nowMs > at + auth.expiresSeconds! * 1000) throw new S3Error('AccessDenied', 'Request has expired')
    return
  }
  if (Math.abs(nowMs - at) > CLOCK_SKEW_MS_MAX) throw new S3Error('RequestTimeTooSkewed', 'The difference between the request time and the server time is too large')
}

/** S3's code for a malformed signature of each kind (a browser form's x-amz-credential counts as presigned). */
const MALFORMED = { header: 'AuthorizationHeaderMalformed', presigned: 'AuthorizationQueryParametersError' } as const

/**
 * Throws AccessDenied for a credential scope we do not sign with (date/region/s3/aws4_request),
 * and, as S3 does, a malformed-authorization error for a scope dated another day than the
 * request (X-Amz-Date: a signing key is derived for one day and must not sign for others) or
 * naming another region than the endpoint's `region` (wrongRegion).
 */
export function checkScope(auth: Pick<AuthParams, 'scope' | 'amzDate' | 'kind'>, region: string): void {
  if (!isValidScope(auth.scope)) throw new S3Error('AccessDenied', `Invalid credential scope ${auth.scope}`)
  const date = auth.scope.slice(0, 8)
  if (date !== auth.amzDate.slice(0, 8)) {
    throw new S3Error(MALFORMED[auth.kind], `Invalid credential date ${date}: the date is not the same as X-Amz-Date (${auth.amzDate.slice(0, 8)})`)
  }
  const scopeRegion = auth.scope.split('/')[1]!
  if (scopeRegion !== region) throw wrongRegion(scopeRegion, region, auth.kind)
}

/**
 * S3's answer to a signature for `signed` at an endpoint of `region`: the region in the body
 * (<Region>) and in x-amz-bucket-region, as S3 sends it; a HEAD's answer has no body, and SDKs
 * look for the header there (botocore's region redirector, the JS SDK's followRegionRedirects).
 */
export function wrongRegion(signed: string, region: string, kind: AuthParams['kind']): S3Error {
  const what = kind === 'presigned' ? 'Error parsing the X-Amz-Credential parameter' : 'The authorization header is malformed'
  return new S3Error(MALFORMED[kind], `${what}; the region '${signed}' is wrong; expecting '${region}'`, { 'x-amz-bucket-region': region }, { xml: { Region: region } })
}

export function canonicalRequest(req: SignedRequest, auth: AuthParams): string {
  const headers = auth.signedHeaders.map((name) => {
    const value = req.headers.get(name)
    return `${name}:${(value ?? '').trim().replace(/\s+/g, ' ')}\n`
  }).join('')
  const query = canonicalQuery(req.rawQuery, auth.kind === 'presigned' ? 'X-Amz-Signature' : undefined)
  return [req.method, canonicalPath(req.rawPath), query, headers, auth.signedHeaders.join(';'), auth.payloadHash].join('\n')
}

/** The answer to a request whose signature does not verify, whatever the reason. */
export const signatureDoesNotMatch = () => new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided')

/**
 * The bytes a client signed, from text built of what it sent: header values reach us as
 * latin1 strings, one character per byte on the wire (Node's parser and the Fetch Headers
 * alike), so a UTF-8 metadata value is several characters here and must be hashed as those
 * bytes, not encoded again (s3cmd's non-ASCII metadata failed to verify); the rest is ASCII.
 * A character past 0xFF cannot have been sent: such text matches no signature.
 */
export function sentBytes(text: string): Buffer {
  if (/[^\x00-\xff]/.test(text)) throw signatureDoesNotMatch()
  return Buffer.from(text, 'latin1')
}

/**
 * What the OM needs to verify the request's signature with the secret only it holds
 * (core/s3-signature.ts): the parts of the string to sign and the signature. Throws
 * for a scope we do not sign with or dated another day, and for an unsigned host.
 */
export function proofV4(req: SignedRequest, auth: AuthParams, region: string): S3SignatureProof {
  checkScope(auth, region)
  if (!auth.signedHeaders.includes('host')) throw new S3Error('AccessDenied', 'host must be a signed header')
  return { version: 4, amzDate: auth.amzDate, scope: auth.scope, canonicalRequestSha256: sha256Hex(sentBytes(canonicalRequest(req, auth))), signature: auth.signature }
}

/** The signature of one aws-chunked chunk, chained from the previous one. */
export function chunkSignature(key: Buffer, auth: AuthParams, previous: string, dataSha256Hex: string): string {
  const toSign = ['AWS4-HMAC-SHA256-PAYLOAD', auth.amzDate, auth.scope, previous, EMPTY_SHA256, dataSha256Hex].join('\n')
  return createHmac('sha256', key).update(toSign).digest('hex')
}

/** The signature of the trailing headers of an aws-chunked body. */
export function trailerSignature(key: Buffer, auth: AuthParams, previous: string, trailer: string): string {
  const toSign = ['AWS4-HMAC-SHA256-TRAILER', auth.amzDate, auth.scope, previous, sha256Hex(trailer)].join('\n')
  return createHmac('sha256', key).update(toSign).digest('hex')
}
