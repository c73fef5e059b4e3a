/** @module
 * PostObject: an upload from an HTML form (S3 "Browser-Based Uploads Using POST", boto3's
 * generate_presigned_post). The signature is in the form, not the headers, so this handler
 * authenticates its request itself: it reads the fields (up to the `file` part), has the OM
 * verify the signed policy (SigV4 `x-amz-*` fields or SigV2 `AWSAccessKeyId`/`signature`;
 * a form with neither is anonymous), checks the form against the policy (post-policy.ts),
 * authorizes s3:PutObject (access.ts), stores the `acl` field as PutObject's x-amz-acl, then
 * streams the file into the key, verifying the Content-MD5 and x-amz-checksum-* fields, and
 * refusing it past content-length-range before anything is committed. It answers as the form
 * asks: a 303 to success_action_redirect, else success_action_status 200, 201 (PostResponse
 * XML) or 204. Fields after the file are ignored, as S3 does.
 */
import type { KeyInfo } from '../client/index.ts'
import type { S3SignatureProof } from '../../core/s3-signature.ts'
import type { DigestName } from '../workers/index.ts'
import { authorizeAction } from './access.ts'
import { uploadAclMetadata } from './acl.ts'
import { verifySignature } from './auth.ts'
import { checkTagging, etagOf, metadataFromHeaders, OBJECT_SIZE_BYTES_MAX, requestBucket, S3_VOLUME, storePayload, WEBSITE_REDIRECT_HEADER, type S3Context } from './context.ts'
import { checkChecksumValue, checksumHeader, CHECKSUM_ALGORITHMS, parseAlgorithm, type ChecksumAlgorithm } from './checksums.ts'
import { S3Error } from './errors.ts'
import { FormDataReader, formBoundary, malformedPost } from './form-data.ts'
import { bodyDigest } from './inline-digest.ts'
import { bodyPieces, type Payload, type PayloadResult } from './payload.ts'
import { checkPostPolicy, parsePostPolicy } from './post-policy.ts'
import { wrongRegion } from './sigv4.ts'
import { parseXml, toXml } from './xml.ts'

/** The form's fields before the file, all together (S3's limit: MaxPostPreDataLengthExceeded past it). */
export const POST_FORM_FIELDS_BYTES_MAX = 20 * 1024
/** The fields an upload stores as the object's headers, when the form gives them. */
const STORED_FIELDS = ['content-type', 'cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires', WEBSITE_REDIRECT_HEADER]

/** The form up to its file: fields by lower-case name, and the file part. */
interface Form {
  fields: Map<string, string>
  filename: string | undefined
  reader: FormDataReader
}

export async function postObject(ctx: S3Context): Promise<Response> {
  const bucket = ctx.bucket!
  const boundary = formBoundary(ctx.req.headers.get('content-type'))
  const declared = ctx.req.headers.get('content-length')
  const lengthBytes = declared === null ? NaN : Number(declared)
  if (!Number.isSafeInteger(lengthBytes) || lengthBytes < 0) throw new S3Error('MissingContentLength', 'You must provide the Content-Length HTTP header')
  if (ctx.body === null) throw malformedPost('the request has no body')
  const form = await readFields(new FormDataReader(bodyPieces(ctx.body, ctx.bodyIdleTimeoutMs), boundary))
  const { fields } = form

  const rawKey = fields.get('key')
  if (rawKey === undefined) throw new S3Error('InvalidArgument', "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.")
  // S3 replaces ${filename} with the name of the file the user chose; the policy sees the result.
  const key = rawKey.replaceAll('${filename}', form.filename ?? '')
  checkKey(key)
  fields.set('key', key)

  await authenticateForm(ctx, fields)
  const policyField = fields.get('policy')
  const range = policyField === undefined ? undefined : checkPostPolicy(parsePostPolicy(policyField), { fields, bucket, nowMs: Date.now() })
  const described = formMetadata(fields)
  // The acl field is a canned ACL, as PutObject's x-amz-acl.
  const acl = fields.get('acl')
  const aclHeaders = new Headers(acl === undefined ? {} : { 'x-amz-acl': acl })
  // Authorized as a PutObject of the form's key, by the user its signature named (or anyone),
  // with the fields S3 reads as a PUT's headers for the policy's condition keys
  // (s3:x-amz-acl, s3:RequestObjectTag/<key>).
  const asHeaders: Record<string, string> = {}
  if (acl !== undefined) asHeaders['x-amz-acl'] = acl
  if (described['x-amz-tagging'] !== undefined) asHeaders['x-amz-tagging'] = described['x-amz-tagging']
  const bucketInfo = await requestBucket(ctx)
  authorizeAction(asPut(ctx, asHeaders), 's3:PutObject', { bucket: bucketInfo, key })
  const metadata = { ...described, ...uploadAclMetadata(ctx, bucketInfo, aclHeaders) }
  // The file's size is at most what is left of the body; the key is opened for that much.
  const payload = filePayload(form.reader.body(), { sizeMaxBytes: Math.max(0, lengthBytes - form.reader.consumedBytes), range, digests: fileDigests(fields) })
  const info = await storePayload(ctx, { volume: S3_VOLUME, bucket, key }, payload, metadata)
  return answer(ctx, fields, key, info)
}

/** Reads the parts before the file; MaxPostPreDataLengthExceeded when they pass POST_FORM_FIELDS_BYTES_MAX. */
async function readFields(reader: FormDataReader): Promise<Form> {
  const fields = new Map<string, string>()
  const tooLarge = () => new S3Error('MaxPostPreDataLengthExceeded', 'Your POST request fields preceding the upload file were too large.')
  for (let part = await reader.next(); part !== undefined; part = await reader.next()) {
    const name = part.name.toLowerCase()
    // S3: "file: File or text content. The file or content must be the last field in the form."
    if (name === 'file') return { fields, filename: part.filename, reader }
    if (reader.consumedBytes > POST_FORM_FIELDS_BYTES_MAX) throw tooLarge()
    const value = await reader.text(POST_FORM_FIELDS_BYTES_MAX - reader.consumedBytes, tooLarge)
    if (fields.has(name)) throw new S3Error('InvalidArgument', `The form field ${part.name} appears more than once`)
    fields.set(name, value)
  }
  throw new S3Error('IncorrectNumberOfFilesInPostRequest', 'POST requires exactly one file upload per request.')
}

/** The checks the gateway makes on a key named in the URL (S3Gateway.locate), for one named in a form. */
function checkKey(key: string): void {
  if (key === '') throw new S3Error('InvalidArgument', 'User key must have a length greater than 0.')
  if (key.includes('\0')) throw new S3Error('InvalidArgument', 'Object key must not contain NUL')
  if (!key.isWellFormed()) throw new S3Error('InvalidArgument', 'Object key must be valid UTF-8')
  if (Buffer.byteLength(key) > 1024) throw new S3Error('KeyTooLongError', 'Your key is too long')
}

/**
 * Has the OM verify the form's signature: SigV4 (x-amz-algorithm, x-amz-credential,
 * x-amz-date, x-amz-signature over the policy) or SigV2 (AWSAccessKeyId, signature over the
 * policy). The request then runs as the access key's user, with the bucket the OM read.
 */
async function authenticateForm(ctx: S3Context, fields: Map<string, string>): Promise<void> {
  /** A field's value by lower-case name; `shown` is how S3 names it in its error. */
  const required = (name: string, shown = name) => {
    const v = fields.get(name)
    if (v === undefined || v === '') throw new S3Error('InvalidArgument', `Bucket POST must contain a field named '${shown}'.  If it is specified, please check the order of the fields.`)
    return v
  }
  let accessKey: string
  let proof: S3SignatureProof
  const algorithm = fields.get('x-amz-algorithm')
  if (algorithm !== undefined) {
    if (algorithm !== 'AWS4-HMAC-SHA256') throw new S3Error('InvalidArgument', `Unsupported x-amz-algorithm ${algorithm}: only AWS4-HMAC-SHA256 is`)
    const credential = required('x-amz-credential')
    const slash = credential.indexOf('/')
    const scope = credential.slice(slash + 1)
    const date = required('x-amz-date')
    if (slash <= 0 || !/^\d{8}T\d{6}Z$/.test(date) || !scope.startsWith(date.slice(0, 8) + '/')) {
      throw new S3Error('InvalidArgument', `Invalid x-amz-credential ${credential} or x-amz-date ${date}: the credential must be <key>/<date of x-amz-date>/<region>/s3/aws4_request`)
    }
    accessKey = credential.slice(0, slash)
    const region = scope.split('/')[1]!
    if (region !== ctx.region) {
      // As a header's scope: answered only once the access key is known to exist.
      await verifySignature({ verify: (k, p) => ctx.client.s3Authenticate({ accessKey: k, proof: p }) }, accessKey, null, false)
      throw wrongRegion(region, ctx.region, 'presigned')
    }
    proof = { version: 'post-v4', scope, policy: required('policy'), signature: required('x-amz-signature') }
  } else if (fields.has('awsaccesskeyid')) {
    accessKey = required('awsaccesskeyid', 'AWSAccessKeyId')
    proof = { version: 2, stringsToSign: [required('policy')], signature: required('signature') }
  } else {
    // An unsigned form is anonymous: it may write only where anyone may (a bucket whose ACL or
    // policy lets everyone write). A policy needs a signature to mean anything.
    if (fields.has('policy')) required('awsaccesskeyid', 'AWSAccessKeyId')
    return
  }
  const found = await verifySignature({
    verify: (k, p) => ctx.client.s3Authenticate({ accessKey: k, proof: p, volume: S3_VOLUME, bucket: ctx.bucket }),
  }, accessKey, proof, false)
  ctx.user = found.user
  ctx.auth = { version: 'form', signatureVersion: proof.version === 2 ? 2 : 4 }
  // In place: the gateway answers CORS from the bucket found here.
  ctx.found.bucket = found.bucket
}

/** The context as a PUT of the form's upload would have it: the request's headers and `headers` (fields S3 reads as headers). */
function asPut(ctx: S3Context, headers: Record<string, string>): S3Context {
  const merged = new Headers(ctx.req.headers)
  for (const [k, v] of Object.entries(headers)) merged.set(k, v)
  return { ...ctx, req: new Request(ctx.req.url, { method: ctx.req.method, headers: merged }) }
}

/** The object's metadata from the form's fields, as a PUT's from its headers (tags from the `tagging` XML). */
function formMetadata(fields: Map<string, string>): Record<string, string> {
  const headers = new Headers()
  for (const [name, value] of fields) {
    if (!STORED_FIELDS.includes(name) && !name.startsWith('x-amz-meta-')) continue
    try {
      headers.set(name, value)
    } catch {
      throw new S3Error('InvalidArgument', `The form field ${name} cannot be stored as a header`)
    }
  }
  const metadata = metadataFromHeaders(headers)
  const tagging = fields.get('tagging')
  if (tagging !== undefined) {
    const tags = tagsFromXml(tagging)
    if (tags !== '') metadata['x-amz-tagging'] = tags
  }
  return metadata
}

/** `<Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>` as the stored query-string form. */
function tagsFromXml(xml: string): string {
  const body = parseXml(xml, 'Tagging')
  const set = body.TagSet as { Tag?: unknown } | undefined
  if (set === undefined || typeof set !== 'object') throw new S3Error('MalformedXML', 'Tagging needs a TagSet')
  const list = set.Tag === undefined ? [] : Array.isArray(set.Tag) ? set.Tag : [set.Tag]
  const tags = new URLSearchParams()
  for (const t of list as { Key?: unknown; Value?: unknown }[]) {
    if (typeof t !== 'object' || t === null || typeof t.Key !== 'string') throw new S3Error('MalformedXML', 'Every Tag needs a Key')
    tags.append(t.Key, typeof t.Value === 'string' ? t.Value : '')
  }
  return checkTagging(tags)
}

/** The digests a form asks of its file, as a PUT's headers would: Content-MD5, and one x-amz-checksum-<algorithm> (or x-amz-checksum-algorithm alone, to have it computed). */
interface FileDigests {
  contentMd5?: string
  algorithm?: ChecksumAlgorithm
  /** The checksum the form gave for `algorithm`, if it gave one. */
  expected?: string
}

/** The form's digest fields, checked as PutObject checks its headers (InvalidDigest, InvalidRequest). */
function fileDigests(fields: Map<string, string>): FileDigests {
  const out: FileDigests = {}
  const named: ChecksumAlgorithm[] = []
  for (const a of CHECKSUM_ALGORITHMS) {
    const v = fields.get(checksumHeader(a))
    if (v === undefined) continue
    checkChecksumValue(a, v)
    named.push(a)
    out.expected = v
  }
  if (named.length > 1) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.')
  const declared = parseAlgorithm(fields.get('x-amz-checksum-algorithm'))
  if (named[0] !== undefined && declared !== undefined && declared !== named[0]) throw new S3Error('InvalidRequest', 'Value for x-amz-checksum-algorithm header is invalid.')
  const algorithm = named[0] ?? declared
  if (algorithm !== undefined) out.algorithm = algorithm
  const md5 = fields.get('content-md5')
  if (md5 !== undefined) {
    if (!/^[A-Za-z0-9+/]{22}==$/.test(md5)) throw new S3Error('InvalidDigest', 'The Content-MD5 you specified is not valid')
    out.contentMd5 = md5
  }
  return out
}

/**
 * The file part as a Payload for storePayload: MD5 (the ETag) and the form's checksum over
 * its bytes, its length checked against content-length-range (EntityTooLarge as soon as it
 * passes the maximum, EntityTooSmall at its end) and its digests against the form's
 * (BadDigest), before anything is committed. `sizeMaxBytes` bounds it from the request's length.
 */
function filePayload(content: AsyncIterable<Uint8Array>, o: { sizeMaxBytes: number; range: { min: number; max: number } | undefined; digests: FileDigests }): Payload {
  const { sizeMaxBytes, range, digests } = o
  const algorithm = digests.algorithm
  const names: DigestName[] = algorithm === undefined ? ['md5'] : ['md5', algorithm]
  const max = Math.min(range?.max ?? OBJECT_SIZE_BYTES_MAX, OBJECT_SIZE_BYTES_MAX)
  let resolve!: (r: PayloadResult) => void, reject!: (e: unknown) => void
  const result = new Promise<PayloadResult>((res, rej) => { resolve = res; reject = rej })
  result.catch(() => {})
  const payload: Payload = { sizeBytes: sizeMaxBytes, source: source(), result, digestNames: names }
  async function* source(): AsyncGenerator<Uint8Array> {
    const stored = payload.storedDigest
    const digest = stored === undefined ? bodyDigest(names, sizeMaxBytes) : undefined
    try {
      let total = 0
      for await (const piece of content) {
        total += piece.length
        if (total > max) throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size')
        await digest?.update(piece)
        yield piece
      }
      if (range !== undefined && total < range.min) throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed size')
      const done = (d: Partial<Record<DigestName, Buffer>>): PayloadResult => {
        if (digests.contentMd5 !== undefined && d.md5!.toString('base64') !== digests.contentMd5) throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received')
        const checksums: Record<string, string> = {}
        if (algorithm !== undefined) {
          const actual = d[algorithm]!.toString('base64')
          if (digests.expected !== undefined && digests.expected !== actual) throw new S3Error('BadDigest', `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum`)
          checksums[checksumHeader(algorithm)] = actual
        }
        return { sizeBytes: total, md5Hex: d.md5!.toString('hex'), checksums }
      }
      if (stored !== undefined) stored.finish().then(done).then(resolve, reject)
      else resolve(done(await digest!.finish()))
    } catch (err) {
      reject(err)
      throw err
    }
  }
  return payload
}

/** S3's answer to a stored form upload: a redirect, or the status the form asked for. */
function answer(ctx: S3Context, fields: Map<string, string>, key: string, info: KeyInfo): Response {
  const etag = etagOf(info)
  const url = new URL(ctx.req.url)
  // Path-style forms post to /bucket; virtual-hosted ones to / of bucket.<domain>.
  const virtualHosted = url.pathname === '/'
  const encodedKey = key.split('/').map(encodeURIComponent).join('/')
  const location = `${url.origin}${virtualHosted ? '' : `/${encodeURIComponent(ctx.bucket!)}`}/${encodedKey}`
  const headers: Record<string, string> = { etag, location }
  for (const [k, v] of Object.entries(info.metadata)) if (k.startsWith('x-amz-checksum-')) headers[k] = v
  const redirect = fields.get('success_action_redirect') ?? fields.get('redirect')
  const target = redirect === undefined ? undefined : URL.canParse(redirect) ? new URL(redirect) : undefined
  // A redirect S3 cannot follow (not an http(s) URL) is ignored, as S3 ignores it.
  if (target !== undefined && (target.protocol === 'http:' || target.protocol === 'https:')) {
    target.searchParams.append('bucket', ctx.bucket!)
    target.searchParams.append('key', key)
    target.searchParams.append('etag', etag)
    return new Response(null, { status: 303, headers: { ...headers, location: target.toString() } })
  }
  switch (fields.get('success_action_status')) {
    case '200': return new Response(null, { status: 200, headers })
    case '201': {
      const body = toXml('PostResponse', { Location: location, Bucket: ctx.bucket!, Key: key, ETag: etag }, false)
      return new Response(body, { status: 201, headers: { ...headers, 'content-type': 'application/xml' } })
    }
    default: return new Response(null, { status: 204, headers })
  }
}
