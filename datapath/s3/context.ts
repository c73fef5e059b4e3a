/** @module
 * What every S3 handler gets (the authenticated request, its bucket and key, and what the
 * OM said about them when it checked the access key) and the helpers they share:
 * the request's bucket, object metadata to and from headers, streaming a body into a key
 * with its ETag and checksums. Handlers return web `Response`s.
 */
import type { ResponseWatch } from '../../core/http/body-out.ts'
import { KeyDigest, type BucketInfo, type KeyInfo, type O3Client, type S3AuthResult, type S3OpenIntent } from '../client/index.ts'
import { assert } from '../../core/assert.ts'
import { O3Error, fromWire } from '../../core/errors.ts'
import type { OpenKeyResult } from '../../core/om-wire.ts'
import { DIGEST_INLINE_BYTES_MAX, S3G_SLAB_HOLD_MS_MAX } from '../../core/limits.ts'
import { RESERVED_METADATA_PREFIX } from '../../core/s3-access/model.ts'
import { checkWriteCondition as checkCommitCondition } from '../../core/write-condition.ts'
import { checksumHeaders, type ChecksumAlgorithm } from './checksums.ts'
import { S3Error } from './errors.ts'
import { readPayload, type Payload } from './payload.ts'
import { wholeNumber } from './whole-number.ts'
import type { RequestAuth } from './auth.ts'
import type { RequestBody } from '../../core/http/body.ts'

/** S3 buckets are buckets of this volume (Ozone's s3v). */
export const S3_VOLUME = 's3v'
/** Multipart parts and upload records live in a bucket of the same name in this volume. */
export const MULTIPART_VOLUME = 's3v-multipart'
/** S3's limit for one PUT (and one part). */
export const OBJECT_SIZE_BYTES_MAX = 5 * 1024 ** 3

export interface S3Context {
  client: O3Client
  req: Request
  /** The request's raw body (core/http/body.ts): what handlers read uploads from. */
  body: RequestBody | null
  method: string
  query: URLSearchParams
  bucket: string | undefined
  key: string | undefined
  /** Who signed the request; undefined when it is anonymous (no signature at all). */
  user: string | undefined
  /** The client's IP address, as the connection shows it (aws:SourceIp), when the runtime tells. */
  remoteAddress?: string
  /** Whether the connection itself is TLS (aws:SecureTransport): never the request line's word, which a client writes. */
  secureTransport?: boolean
  /** How the request was signed (SigV2 or SigV4; 0: unsigned): only reading its body cares. */
  auth: RequestAuth
  /**
   * The request's own bucket and key as the OM found them in the call that verified its
   * signature (OM.s3Authenticate), for this request only: requestBucket, headObject and
   * UploadPart's upload check answer from it instead of asking again, and storePayload writes
   * into the key it opened (`opened`, taken by the first storePayload of that very key; the
   * gateway aborts it if no handler does). Absent parts are asked for as before.
   */
  found: Found
  region: string
  requestId: string
  /** Reports a response body that failed after its status line was sent (logged and counted). */
  bodyFailed(err: unknown): void
  /** Counts payload bytes received (a verified request body) or handed to the response (/prom's bytes_in/out). */
  countBytes(direction: 'in' | 'out', bytes: number): void
  /** What the runtime tells of the response's progress (undefined: nothing, never reuse its buffers). */
  responseWatch?: ResponseWatch
  /** How long an upload body may send nothing before RequestTimeout (config s3g.bodyIdleTimeoutMs). */
  bodyIdleTimeoutMs: number
  /** How long a GET's client may take no 1 MiB slice of the body before it is cut (config s3g.sendIdleTimeoutMs). */
  sendIdleTimeoutMs: number
  /** The user's groups (o3.groups), for native group ACLs. */
  groups?: readonly string[]
}

/** What OM.s3Authenticate read for a request's handler (S3Context.found). */
export interface Found extends Pick<S3AuthResult, 'bucket' | 'key'> {
  /** The key an early open required (S3OpenIntent.requireKey), by name, as the OM found it. */
  required?: { key: string; result: NonNullable<S3AuthResult['required']> }
  opened?: { intent: S3OpenIntent; result: NonNullable<S3AuthResult['opened']> }
}

/** The record the request's lookup holds, or its error thrown as the OM call would have. */
export function fromLookup<T>(part: NonNullable<S3AuthResult['bucket'] | S3AuthResult['key']>): T {
  if (part.ok) return part.value as T
  throw fromWire(part.error, 'lookup failed')
}

/**
 * The bucket if it exists (NoSuchBucket otherwise, for anyone, as S3 answers), from the
 * request's lookup when it is the request's own. Whether the requester may use it was decided
 * before the handler ran (datapath/s3/access.ts).
 */
export async function requestBucket(ctx: S3Context, bucket = ctx.bucket!): Promise<BucketInfo> {
  try {
    const found = bucket === ctx.bucket ? ctx.found.bucket : undefined
    return found !== undefined ? fromLookup<BucketInfo>(found) : await ctx.client.getBucket(S3_VOLUME, bucket)
  } catch (err) {
    if (err instanceof O3Error && (err.code === 'BUCKET_NOT_FOUND' || err.code === 'VOLUME_NOT_FOUND' || err.code === 'INVALID_BUCKET_NAME')) throw new S3Error('NoSuchBucket', `The specified bucket ${bucket} does not exist`)
    throw err
  }
}

/** The requester of a request that authorization let through only signed (ListBuckets, CreateBucket). */
export function signedUser(ctx: S3Context): string {
  assert(ctx.user !== undefined, 'an anonymous request reached a handler for signed requests')
  return ctx.user
}

/** Looks up a key; NoSuchKey when absent. */
export async function headObject(ctx: S3Context, bucket: string, key: string): Promise<KeyInfo> {
  try {
    const found = bucket === ctx.bucket && key === ctx.key ? ctx.found.key : undefined
    return found !== undefined ? fromLookup<KeyInfo>(found) : await ctx.client.headKey(S3_VOLUME, bucket, key)
  } catch (err) {
    if (err instanceof O3Error && err.code === 'KEY_NOT_FOUND') throw new S3Error('NoSuchKey', 'The specified key does not exist')
    throw err
  }
}

/** The request's key as it is now (as the request's lookup found it, when it read it), undefined when absent. */
export async function currentKey(ctx: S3Context): Promise<KeyInfo | undefined> {
  try {
    return await headObject(ctx, ctx.bucket!, ctx.key!)
  } catch (err) {
    if (err instanceof S3Error && err.code === 'NoSuchKey') return undefined
    throw err
  }
}

/** Where a website endpoint would redirect a GET of the object: stored and answered as sent, never followed here (O3 serves no website endpoint). */
export const WEBSITE_REDIRECT_HEADER = 'x-amz-website-redirect-location'
const STORED_HEADERS = ['content-type', 'content-encoding', 'content-disposition', 'content-language', 'cache-control', 'expires', WEBSITE_REDIRECT_HEADER] as const

/** S3's bound on a website redirect location (2 KB). */
const WEBSITE_REDIRECT_BYTES_MAX = 2048

/** A request's x-amz-website-redirect-location, checked as S3 checks it (InvalidRedirectLocation); undefined when absent. */
export function websiteRedirect(headers: Headers): string | undefined {
  const v = headers.get(WEBSITE_REDIRECT_HEADER)
  if (v === null) return undefined
  if (!/^(\/|https?:\/\/)/.test(v)) throw new S3Error('InvalidRedirectLocation', "The website redirect location must have a prefix of 'http://' or 'https://' or '/'.")
  // A header value is one character per byte sent (see sigv4.ts sentBytes).
  if (v.length > WEBSITE_REDIRECT_BYTES_MAX) throw new S3Error('InvalidRedirectLocation', `The length of the website redirect location cannot exceed ${WEBSITE_REDIRECT_BYTES_MAX} characters.`)
  return v
}

/** S3's bound on user-defined metadata: the bytes of its names (without x-amz-meta-) and values. */
export const USER_METADATA_BYTES_MAX = 2048

/** The metadata an upload stores: system headers, x-amz-meta-* (MetadataTooLarge past S3's bound), x-amz-tagging. */
export function metadataFromHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = { 'content-type': 'binary/octet-stream' }
  for (const h of STORED_HEADERS) {
    let v = h === WEBSITE_REDIRECT_HEADER ? websiteRedirect(headers) ?? null : headers.get(h)
    if (h === 'content-encoding' && v !== null) v = v.split(',').map((s) => s.trim()).filter((s) => s.toLowerCase() !== 'aws-chunked' && s !== '').join(', ') || null
    if (v !== null) out[h] = v
  }
  let userBytes = 0
  headers.forEach((value, name) => {
    if (!name.startsWith('x-amz-meta-')) return
    out[name] = value
    // A header value is one character per byte sent (see sigv4.ts sentBytes).
    userBytes += name.length - 'x-amz-meta-'.length + value.length
  })
  if (userBytes > USER_METADATA_BYTES_MAX) throw new S3Error('MetadataTooLarge', `Your metadata headers exceed the maximum allowed metadata size: ${userBytes} bytes of user metadata, at most ${USER_METADATA_BYTES_MAX}`)
  const tagging = headers.get('x-amz-tagging')
  if (tagging !== null) out['x-amz-tagging'] = checkTagging(new URLSearchParams(tagging))
  return out
}

/** S3's limits on tags: per object, per bucket, and the characters of a key and of a value. */
export const OBJECT_TAGS_COUNT_MAX = 10
export const BUCKET_TAGS_COUNT_MAX = 50
const TAG_KEY_CHARS_MAX = 128
const TAG_VALUE_CHARS_MAX = 256

/**
 * Validates tags in the order sent (S3's InvalidTag): at most `countMax`, each key 1..128 and
 * each value 0..256 Unicode characters, no key twice, none under the `aws:` prefix S3 keeps
 * for its own tags.
 */
export function checkTags(tags: readonly (readonly [string, string])[], countMax: number, what: 'Object' | 'Bucket'): void {
  if (tags.length > countMax) throw new S3Error('InvalidTag', `${what} tags cannot be greater than ${countMax}`)
  const seen = new Set<string>()
  for (const [k, v] of tags) {
    if (seen.has(k)) throw new S3Error('InvalidTag', 'Cannot provide multiple Tags with the same key')
    seen.add(k)
    const keyChars = [...k].length
    if (keyChars === 0 || keyChars > TAG_KEY_CHARS_MAX) throw new S3Error('InvalidTag', 'The TagKey you have provided is invalid')
    if ([...v].length > TAG_VALUE_CHARS_MAX) throw new S3Error('InvalidTag', 'The TagValue you have provided is invalid')
    if (k.toLowerCase().startsWith('aws:')) throw new S3Error('InvalidTag', 'Your TagKey cannot be prefixed with aws:')
  }
}

/** Validates an object's tag set (checkTags) and gives its stored form: the query string, in the order sent. */
export function checkTagging(tags: URLSearchParams): string {
  checkTags([...tags], OBJECT_TAGS_COUNT_MAX, 'Object')
  return tags.toString()
}

/** The headers an object answers with (GET, HEAD). */
export function objectHeaders(info: KeyInfo, withChecksums: boolean): Record<string, string> {
  const out: Record<string, string> = {
    'last-modified': new Date(info.modifiedAtMs).toUTCString(),
    'accept-ranges': 'bytes',
  }
  if (info.metadata.etag !== undefined) out.etag = `"${info.metadata.etag}"`
  for (const [k, v] of Object.entries(info.metadata)) {
    if ((STORED_HEADERS as readonly string[]).includes(k) || k.startsWith('x-amz-meta-')) out[k] = v
  }
  if (withChecksums) Object.assign(out, checksumHeaders(info.metadata))
  const tagging = info.metadata['x-amz-tagging']
  if (tagging !== undefined && tagging !== '') out['x-amz-tagging-count'] = String([...new URLSearchParams(tagging).keys()].length)
  return out
}

/** The metadata of a key that describe the object (everything but the ETag, checksums, the
 *  website redirect location, which S3 never copies, and O3's own records such as its ACL: a
 *  copy gets those from its own request). */
export function describingMetadata(info: KeyInfo): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(info.metadata)) if (k !== 'etag' && k !== WEBSITE_REDIRECT_HEADER && !k.startsWith('x-amz-checksum-') && !k.startsWith(RESERVED_METADATA_PREFIX)) out[k] = v
  return out
}

/** What a route sees of a request before it is authenticated (S3Gateway.route). */
export type UnverifiedRequest = Pick<S3Context, 'req' | 'method' | 'query' | 'bucket' | 'key'>

/**
 * The body length a request declares, as readPayload will read it, or undefined where it
 * declares none or readPayload will refuse it (that request then opens nothing early). Only a SigV4 request
 * reads x-amz-decoded-content-length; one that is not gets the early key at the wrong size,
 * which storePayload then does not take.
 */
export function declaredSizeBytes(req: Request): number | undefined {
  const streaming = req.headers.get('x-amz-content-sha256')?.startsWith('STREAMING-') === true
  const header = req.headers.get(streaming ? 'x-amz-decoded-content-length' : 'content-length')
  // Not req.body: on Node, reading that property starts a web stream that takes the body
  // from the raw one handlers read (core/http/body.ts). A body with no length opens nothing early.
  if (header === null) return undefined
  const n = wholeNumber(header)
  return Number.isSafeInteger(n) && n >= 0 && n <= OBJECT_SIZE_BYTES_MAX ? n : undefined
}

/** metadataFromHeaders, or undefined where it would refuse the headers (their error is answered later, in order). */
export function metadataIfValid(headers: Headers): Record<string, string> | undefined {
  try {
    return metadataFromHeaders(headers)
  } catch {
    return undefined
  }
}

/** The request's body, verified as its headers declare (and with a multipart upload's checksum algorithm, for a part). */
export function requestPayload(ctx: S3Context, checksumAlgorithm?: ChecksumAlgorithm): Payload {
  const payload = readPayload({ body: ctx.body, headers: ctx.req.headers, auth: ctx.auth, sizeMaxBytes: OBJECT_SIZE_BYTES_MAX, idleTimeoutMs: ctx.bodyIdleTimeoutMs, checksumAlgorithm })
  // Counted once whole and verified; a failed body is the handler's to answer.
  payload.result.then((r) => ctx.countBytes('in', r.sizeBytes), () => undefined)
  return payload
}

/**
 * Streams a payload into a key; the key appears only after every byte arrived and verified,
 * with its ETag (MD5) and checksums in its metadata. Any failure aborts the open key. With
 * `ifNotExists`, the OM commits only if the key does not exist then (KEY_ALREADY_EXISTS),
 * with `ifMatchEtag` only if it exists with that ETag (KEY_NOT_FOUND, ETAG_MISMATCH).
 */
export async function storePayload(ctx: S3Context, where: { volume: string; bucket: string; key: string } & WriteCondition, payload: Payload, metadata: Record<string, string>): Promise<KeyInfo> {
  // Past the inline limit, the digests are computed over the writer's slabs in the worker
  // pool, beside each chunk's checksums: the payload is copied once, into the slab.
  const digest = (payload.sizeBytes ?? Infinity) > DIGEST_INLINE_BYTES_MAX ? new KeyDigest(payload.digestNames) : undefined
  payload.storedDigest = digest
  const options = { sizeBytes: payload.sizeBytes, metadata, ifNotExists: where.ifNotExists, ifMatchEtag: where.ifMatchEtag, whileKeyExists: where.whileKeyExists, digest }
  const session = takeOpened(ctx, where, payload.sizeBytes, metadata)
  const writer = session !== undefined ? await ctx.client.keyWriterFor(session, options) : await ctx.client.openKeyWriter(where.volume, where.bucket, where.key, options)
  // A client that stalls mid-body must not keep payload slabs from others: while its body is
  // quiet and someone waits for a slab, its writer commits what it has and gives them back.
  // One that trickles does the same once it has held a slab for S3G_SLAB_HOLD_MS_MAX.
  const slabs = ctx.client.slabs
  payload.onIdle = async () => { if (slabs.waiting > 0) await writer.park() }
  try {
    for await (const piece of payload.source) {
      await writer.write(piece)
      if (slabs.waiting > 0 && writer.slabHeldMs > S3G_SLAB_HOLD_MS_MAX) await writer.park()
    }
    // The writer makes its last chunk in close(), then waits here for the digests' verdict
    // before it commits the key.
    return await writer.close(async () => {
      const r = await payload.result
      return { ...metadata, ...r.checksums, etag: r.md5Hex }
    })
  } catch (err) {
    await writer.abort()
    throw err
  }
}

/**
 * The key the OM opened for this request in its authentication call, if it is the very key,
 * size and metadata asked for here: taken, so that it is written once (and the gateway does
 * not abort it). An open the OM could not make is asked again by the caller, whose own
 * openKey then fails or succeeds as it would have without the early one.
 */
function takeOpened(ctx: S3Context, where: { volume: string; bucket: string; key: string } & WriteCondition, sizeBytes: number | undefined, metadata: Record<string, string>): OpenKeyResult | undefined {
  const opened = ctx.found.opened
  if (opened === undefined || !opened.result.ok || where.ifMatchEtag !== undefined) return undefined
  const i = opened.intent
  if (i.volume !== where.volume || i.bucket !== where.bucket || i.key !== where.key || (i.ifNotExists === true) !== (where.ifNotExists === true)) return undefined
  if (i.sizeBytes !== sizeBytes || JSON.stringify(i.metadata) !== JSON.stringify(metadata)) return undefined
  ctx.found.opened = undefined
  return opened.result.value
}

export function etagOf(info: KeyInfo): string {
  return `"${info.metadata.etag ?? ''}"`
}

/** The condition of a conditional write, as the OM checks it when it commits (O3Client.PutKeyOptions). */
export interface WriteCondition {
  ifNotExists?: boolean
  ifMatchEtag?: string
  /** Commit only while this other key exists (an upload's record, for its parts), else REQUIRED_KEY_NOT_FOUND (NoSuchUpload). */
  whileKeyExists?: { volume: string; bucket: string; key: string }
}

/**
 * The condition of a PutObject or CompleteMultipartUpload (S3's conditional writes):
 * `If-None-Match: *` (create only) and `If-Match: <etag>` (replace only that object; `*` any).
 * S3 takes no other If-None-Match on a write (NotImplemented) and one ETag in If-Match.
 */
export function writeCondition(headers: Headers): WriteCondition {
  const out: WriteCondition = {}
  const noneMatch = headers.get('if-none-match')
  if (noneMatch !== null) {
    if (noneMatch.trim() !== '*') throw new S3Error('NotImplemented', 'A header you provided implies functionality that is not implemented', { 'x-amz-header': 'If-None-Match' })
    out.ifNotExists = true
  }
  const match = headers.get('if-match')
  if (match !== null) out.ifMatchEtag = oneEtag(match, 'If-Match')
  return out
}

/** The one ETag a conditional write or delete names (quotes and a weak W/ taken off; `*` as is), else InvalidArgument. */
export function oneEtag(value: string, what: string): string {
  const etag = value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1')
  if (etag === '' || etag.includes(',')) throw new S3Error('InvalidArgument', `${what} must name one ETag`)
  return etag
}

/**
 * The S3 error a conditional write's refusal by the OM is (else undefined): the key exists
 * (If-None-Match) or has another ETag (If-Match): PreconditionFailed; it is gone (If-Match):
 * NoSuchKey, as S3 answers an If-Match write with no object to match.
 */
export function conditionFailure(condition: WriteCondition, err: unknown): S3Error | undefined {
  if (!(err instanceof O3Error)) return undefined
  if (err.code === 'KEY_ALREADY_EXISTS' && condition.ifNotExists === true) return preconditionFailed()
  if (err.code === 'ETAG_MISMATCH' && condition.ifMatchEtag !== undefined) return preconditionFailed()
  if (err.code === 'KEY_NOT_FOUND' && condition.ifMatchEtag !== undefined) return new S3Error('NoSuchKey', 'The specified key does not exist')
  return undefined
}

/**
 * Refuses a conditional write before its body is read, by the very check the OM makes when it
 * commits (core/write-condition.ts), against the request's key as it is now.
 */
export async function checkWriteCondition(ctx: S3Context, condition: WriteCondition): Promise<void> {
  if (condition.ifNotExists !== true && condition.ifMatchEtag === undefined) return
  try {
    checkCommitCondition({ ifNotExists: condition.ifNotExists === true, ifMatchEtag: condition.ifMatchEtag ?? null }, await currentKey(ctx), `${ctx.bucket!}/${ctx.key!}`)
  } catch (err) {
    throw conditionFailure(condition, err) ?? err
  }
}

/** S3's answer when a conditional request's precondition does not hold. */
export function preconditionFailed(): S3Error {
  return new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold')
}

/** The four conditional headers of a request, by name: GET's own, or CopyObject's
 *  x-amz-copy-source-if-* for its source. */
export interface ConditionHeaders {
  readonly ifMatch: string
  readonly ifNoneMatch: string
  readonly ifUnmodifiedSince: string
  readonly ifModifiedSince: string
}

/** Evaluates the conditions in RFC 7232 order, as S3 does: If-Match, else
 *  If-Unmodified-Since, can fail; If-None-Match, else If-Modified-Since, can find the object
 *  not modified. Unparseable dates are ignored. */
export function evaluateConditions(headers: Headers, names: ConditionHeaders, info: KeyInfo): 'failed' | 'notModified' | undefined {
  const lastModifiedS = Math.floor(info.modifiedAtMs / 1000)
  const seconds = (name: string) => {
    const t = Date.parse(headers.get(name) ?? '')
    return Number.isNaN(t) ? undefined : Math.floor(t / 1000)
  }
  const ifMatch = headers.get(names.ifMatch), ifNoneMatch = headers.get(names.ifNoneMatch)
  const ifUnmodified = seconds(names.ifUnmodifiedSince), ifModified = seconds(names.ifModifiedSince)
  if (ifMatch !== null ? !etagMatches(ifMatch, info) : ifUnmodified !== undefined && lastModifiedS > ifUnmodified) return 'failed'
  if (ifNoneMatch !== null ? etagMatches(ifNoneMatch, info) : ifModified !== undefined && lastModifiedS <= ifModified) return 'notModified'
  return undefined
}

/** Unquoted ETag comparison for If-Match style headers ("*" matches anything). */
export function etagMatches(header: string, info: KeyInfo): boolean {
  return header.split(',').map((s) => s.trim().replace(/^W\//, '').replace(/^"|"$/g, '')).some((t) => t === '*' || t === info.metadata.etag)
}
