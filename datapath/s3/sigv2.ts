/** @module
 * Verifies AWS Signature Version 2 (HMAC-SHA1), which older clients still use by default
 * (botocore's `signature_version='s3'`, its HmacV1QueryAuth presigned URLs, s3cmd, minio-go's
 * V2 signer): header auth `Authorization: AWS AccessKeyId:Signature` and presigned query auth
 * `?AWSAccessKeyId=..&Expires=..&Signature=..`. The OM, which holds the secret, checks the
 * strings to sign this module builds (proofV2). The string to sign follows the AWS guide
 * "Signing and authenticating REST requests (AWS signature version 2)"; the verification side
 * is ours. V2 signs no body (the gateway reads it as UNSIGNED-PAYLOAD) and carries no signing
 * time in presigned URLs, so V4's 7-day lifetime cap cannot apply: only Expires does.
 * Pure but for node:crypto; time comes in as nowMs.
 */
import { verifyProof, type S3SignatureProof } from '../../core/s3-signature.ts'
import { S3Error } from './errors.ts'
import { CLOCK_SKEW_MS_MAX, sentBytes, signatureDoesNotMatch, type SignedRequest } from './sigv4.ts'

/**
 * The query parameters that name a subresource and so are part of the signed resource: the
 * guide's list (acl, delete, lifecycle, location, logging, notification, partNumber, policy,
 * requestPayment, torrent, uploadId, uploads, versionId, versioning, versions, website and the
 * response-* overrides), plus those botocore's HmacV1Auth.QSAOfInterest and MinIO's
 * resourceList add for newer APIs. Every other parameter is unsigned in V2.
 */
export const SUBRESOURCES: ReadonlySet<string> = new Set([
  'accelerate', 'acl', 'analytics', 'cors', 'defaultObjectAcl', 'delete', 'encryption', 'inventory', 'legal-hold', 'lifecycle', 'location',
  'logging', 'metrics', 'notification', 'object-lock', 'partNumber', 'policy', 'replication', 'requestPayment', 'response-cache-control',
  'response-content-disposition', 'response-content-encoding', 'response-content-language', 'response-content-type', 'response-expires',
  'restore', 'retention', 'select', 'select-type', 'storageClass', 'tagging', 'torrent', 'uploadId', 'uploads', 'versionId', 'versioning',
  'versions', 'website',
])

/** The parsed, not yet verified V2 credentials of a request. */
export type V2Params =
  | {
    kind: 'header'
    accessKey: string
    /** Base64 HMAC-SHA1, as sent. */
    signature: string
    /** When the request says it was made: x-amz-date if present, else Date. */
    dateMs: number
  }
  | {
    kind: 'presigned'
    accessKey: string
    signature: string
    /** Expires as sent (epoch seconds): it stands in for Date in the string to sign. */
    expires: string
  }

/**
 * Reads V2 credentials from the Authorization header (`AWS key:signature`) or, when there is
 * no header and no X-Amz-Algorithm, from the query; undefined when the request has none.
 * Throws AccessDenied when they are malformed.
 */
export function parseAuthV2(req: SignedRequest, query: URLSearchParams): V2Params | undefined {
  const header = req.headers.get('authorization')
  if (header !== null) {
    if (!header.startsWith('AWS ')) return undefined
    const credentials = header.slice('AWS '.length).trim()
    const colon = credentials.lastIndexOf(':')
    if (colon <= 0 || colon === credentials.length - 1) throw new S3Error('AccessDenied', 'AWS authorization header is invalid. Expected AwsAccessKeyId:signature')
    const date = req.headers.get('x-amz-date') ?? req.headers.get('date')
    const dateMs = date === null ? undefined : parseHttpDate(date)
    if (dateMs === undefined) throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header')
    return { kind: 'header', accessKey: credentials.slice(0, colon), signature: credentials.slice(colon + 1), dateMs }
  }
  if (query.has('X-Amz-Algorithm') || !(query.has('AWSAccessKeyId') || query.has('Signature'))) return undefined
  const accessKey = query.get('AWSAccessKeyId'), signature = query.get('Signature'), expires = query.get('Expires')
  if (!accessKey || !signature || !expires) throw new S3Error('AccessDenied', 'Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters')
  if (!/^\d{1,12}$/.test(expires)) throw new S3Error('AccessDenied', `Invalid Expires ${expires}: must be seconds since the epoch`)
  return { kind: 'presigned', accessKey, signature, expires }
}

/** Checks the request time: skew for header auth (as V4), expiry for presigned URLs. */
export function checkTimeV2(auth: V2Params, nowMs: number): void {
  if (auth.kind === 'presigned') {
    if (nowMs > Number(auth.expires) * 1000) throw new S3Error('AccessDenied', 'Request has expired')
    return
  }
  if (Math.abs(nowMs - auth.dateMs) > CLOCK_SKEW_MS_MAX) throw new S3Error('RequestTimeTooSkewed', 'The difference between the request time and the server time is too large')
}

/**
 * The string to sign up to the resource: VERB, Content-MD5, Content-Type, Date (empty when
 * x-amz-date is sent; Expires for presigned URLs), then the canonicalized x-amz-* headers.
 */
export function stringToSignHead(req: SignedRequest, auth: V2Params): string {
  // botocore's HmacV1QueryAuth moves x-amz-*, Content-Type and Content-MD5 into the query of
  // a presigned URL, signed as headers; a header sent with the request wins.
  const presignedQuery = auth.kind === 'presigned' ? parseQuery(req.rawQuery) : []
  const header = (name: string) => {
    const value = req.headers.get(name)
    return (value !== null ? signedText(value) : presignedQuery.find(([k]) => k.toLowerCase() === name)?.[1] ?? '').trim()
  }
  const date = auth.kind === 'presigned' ? auth.expires : req.headers.has('x-amz-date') ? '' : header('date')
  return [req.method, header('content-md5'), header('content-type'), date, ''].join('\n') + canonicalAmzHeaders(req.headers, presignedQuery)
}

/**
 * The CanonicalizedResource: `/bucket` for a virtual-hosted request (`hostBucket`), the path
 * as sent (not decoded), then the subresources sorted by name with values decoded. Clients
 * differ where the guide is silent, so each form they sign is a candidate: botocore signs a
 * path-style bucket `/b` as `/b/` (the guide's form for the bucket root), and signs
 * `?uploads=` as sent where minio-go and MinIO write it bare (`?uploads`).
 */
export function canonicalResources(req: SignedRequest, hostBucket: string | undefined): string[] {
  const path = (hostBucket === undefined ? '' : '/' + hostBucket) + req.rawPath
  const paths = /^\/[^/]+$/.test(path) ? [path, path + '/'] : [path]
  const pairs = parseQuery(req.rawQuery).filter(([k]) => SUBRESOURCES.has(k)).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  const asSent = pairs.map(([k, v, hasEquals]) => (hasEquals ? `${k}=${v}` : k)).join('&')
  const bare = pairs.map(([k, v]) => (v === '' ? k : `${k}=${v}`)).join('&')
  const out = new Set<string>()
  for (const p of paths) for (const q of [asSent, bare]) out.add(q === '' ? p : `${p}?${q}`)
  return [...out]
}

/** The strings to sign the request may have been signed over (one per canonical resource), for the OM to check. */
export function proofV2(req: SignedRequest, auth: V2Params, hostBucket: string | undefined): S3SignatureProof {
  const head = stringToSignHead(req, auth)
  return { version: 2, stringsToSign: canonicalResources(req, hostBucket).map((resource) => head + resource), signature: auth.signature }
}

/** Throws SignatureDoesNotMatch unless the request is signed with `secret` over one of its canonical resources (tests; the gateway asks the OM). */
export function verifySignatureV2(req: SignedRequest, auth: V2Params, secret: string, hostBucket: string | undefined): void {
  if (!verifyProof(secret, proofV2(req, auth, hostBucket)).ok) throw signatureDoesNotMatch()
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * A header value as the text the client signed: the OM signs the string to sign as UTF-8, and a
 * header arrives one character per byte (see sigv4.ts sentBytes), so its bytes go as the UTF-8
 * text they spell. Bytes that are not UTF-8 spell no text: such a request matches no signature.
 * (A presigned URL's values come from its query, decoded already.)
 */
function signedText(value: string): string {
  try {
    return strictUtf8.decode(sentBytes(value))
  } catch (err) {
    if (err instanceof S3Error) throw err
    throw signatureDoesNotMatch()
  }
}

/** `name:value\n` for each x-amz-* header, names lower-cased and sorted, values trimmed. */
function canonicalAmzHeaders(headers: Headers, presignedQuery: [string, string, boolean][]): string {
  const amz = new Map<string, string>()
  for (const [k, v] of presignedQuery) if (k.toLowerCase().startsWith('x-amz-')) amz.set(k.toLowerCase(), v.trim())
  // Headers are lower-case here; a repeated header arrives joined by ", " (WHATWG Headers),
  // where the guide joins with ",": such requests do not verify.
  headers.forEach((value, name) => { if (name.startsWith('x-amz-')) amz.set(name, signedText(value).trim()) })
  return [...amz.keys()].sort().map((name) => `${name}:${amz.get(name)!}\n`).join('')
}

/** The query's pairs in order, decoded ('+' stays '+', as the gateway reads it); the third item says whether '=' was sent. */
function parseQuery(rawQuery: string): [string, string, boolean][] {
  const out: [string, string, boolean][] = []
  for (const part of rawQuery.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    out.push(eq < 0 ? [decodeOrRaw(part), '', false] : [decodeOrRaw(part.slice(0, eq)), decodeOrRaw(part.slice(eq + 1)), true])
  }
  return out
}

function decodeOrRaw(s: string): string {
  try { return decodeURIComponent(s) } catch { return s }
}

/** An HTTP date (RFC 1123, as Date and most x-amz-date values are) or an ISO 8601 basic one (20130524T000000Z). */
function parseHttpDate(s: string): number | undefined {
  const iso = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s.trim())
  if (iso !== null) return Date.UTC(+iso[1], +iso[2] - 1, +iso[3], +iso[4], +iso[5], +iso[6])
  const ms = Date.parse(s)
  return Number.isNaN(ms) ? undefined : ms
}
