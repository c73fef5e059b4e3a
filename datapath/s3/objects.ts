/** @module
 * Object operations: PutObject (conditional with If-None-Match: * or If-Match), GetObject and HeadObject
 * (Range or partNumber, If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since,
 * response-* overrides (signed requests only, as S3), checksum mode: the object's checksum,
 * or a part's), DeleteObject and DeleteObjects (conditional with If-Match, a size or a
 * Last-Modified). Bodies stream both ways; a GET answers its status only once the first piece
 * of its body has been read.
 */
import { allPieces, type BucketInfo, type KeyInfo, type Pieces, type S3OpenIntent } from '../client/index.ts'
import { O3Error } from '../../core/errors.ts'
import { SEND_SLICE_BYTES, streamBody } from '../../core/http/body-out.ts'
import { partCount, partRange } from '../../core/om-wire.ts'
import { S3Error, toS3Error } from './errors.ts'
import {
  checkWriteCondition, conditionFailure, declaredSizeBytes, etagOf, evaluateConditions, headObject, metadataFromHeaders, metadataIfValid, objectHeaders, preconditionFailed,
  oneEtag, requestBucket, requestPayload, storePayload, S3_VOLUME, writeCondition, type ConditionHeaders, type S3Context, type UnverifiedRequest,
} from './context.ts'
import { deleteConditionReads, type DeleteCondition } from '../../core/write-condition.ts'
import { authorizeAction, keyFor } from './access.ts'
import { uploadAclMetadata } from './acl.ts'
import { CHECKSUM_ALGORITHMS, checksumHeader, checksumHeaders, partChecksums, storedChecksum } from './checksums.ts'
import { PART_NUMBER_MAX } from './multipart.ts'
import { readXml, xmlResponse } from './xml.ts'

/** DeleteObjects takes at most this many keys (S3's limit). */
const DELETE_OBJECTS_COUNT_MAX = 1000

/**
 * The key PutObject writes, for the OM to open in the call that verifies the signature: the
 * same key, size, metadata and create-only condition storePayload will ask for. A write
 * conditioned on an ETag (If-Match) opens nothing early: it looks at the key first.
 */
export function putObjectIntent(r: UnverifiedRequest): S3OpenIntent | undefined {
  const sizeBytes = declaredSizeBytes(r.req)
  const metadata = metadataIfValid(r.req.headers)
  if (sizeBytes === undefined || metadata === undefined || r.bucket === undefined || r.key === undefined || r.req.headers.has('if-match')) return undefined
  const createOnly = r.req.headers.get('if-none-match') === '*'
  return { volume: S3_VOLUME, bucket: r.bucket, key: r.key, sizeBytes, metadata, ...(createOnly ? { ifNotExists: true } : {}) }
}

/**
 * PutObject; with If-None-Match: * or If-Match: <etag> a conditional write. The early look
 * spares uploading a body that will be refused; the OM's conditional commit is what makes it
 * atomic when writers race (S3 answers the loser 412 or 409; here it is always 412).
 */
export async function putObject(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const metadata = { ...metadataFromHeaders(ctx.req.headers), ...uploadAclMetadata(ctx, bucket, ctx.req.headers) }
  const condition = writeCondition(ctx.req.headers)
  await checkWriteCondition(ctx, condition)
  const payload = requestPayload(ctx)
  let info: KeyInfo
  try {
    info = await storePayload(ctx, { volume: S3_VOLUME, bucket: ctx.bucket!, key: ctx.key!, ...condition }, payload, metadata)
  } catch (err) {
    throw conditionFailure(condition, err) ?? err
  }
  return new Response(null, { status: 200, headers: { etag: etagOf(info), ...checksumHeaders(info.metadata) } })
}

const GET_CONDITIONS: ConditionHeaders = { ifMatch: 'if-match', ifNoneMatch: 'if-none-match', ifUnmodifiedSince: 'if-unmodified-since', ifModifiedSince: 'if-modified-since' }

/** A 304 response when GET's conditions find the object not modified; throws 412 when they fail. */
function checkConditions(headers: Headers, info: KeyInfo): Response | undefined {
  const outcome = evaluateConditions(headers, GET_CONDITIONS, info)
  if (outcome === 'failed') throw preconditionFailed()
  if (outcome === 'notModified') return new Response(null, { status: 304, headers: { etag: etagOf(info), 'last-modified': new Date(info.modifiedAtMs).toUTCString() } })
  return undefined
}

/** Parses `bytes=a-b`, `bytes=a-`, `bytes=-n`; undefined means the whole object (also for forms S3 ignores). */
export function parseRange(header: string | null, size: number): { offset: number; length: number } | undefined {
  if (header === null) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (m === null || (m[1] === '' && m[2] === '')) return undefined
  const unsatisfiable = () => new S3Error('InvalidRange', 'The requested range is not satisfiable', { 'content-range': `bytes */${size}` })
  if (m[1] === '') {
    const n = Number(m[2])
    if (n === 0 || size === 0) throw unsatisfiable()
    const length = Math.min(n, size)
    return { offset: size - length, length }
  }
  const first = Number(m[1])
  const last = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (m[2] !== '' && Number(m[2]) < first) return undefined
  if (first >= size) throw unsatisfiable()
  return { offset: first, length: last - first + 1 }
}

const OVERRIDES = ['content-type', 'content-language', 'expires', 'cache-control', 'content-disposition', 'content-encoding'] as const

/**
 * The bytes a `partNumber` GET or HEAD reads (S3 GetObject / HeadObject: "effectively performs
 * a 'ranged' GET request for the part specified"). Part N is the Nth part of the completed
 * upload, counting from 1 in part order (as MinIO and AWS's transfer managers, which fetch
 * parts 1..x-amz-mp-parts-count, take it). An object written in one piece has exactly one
 * part, itself, and no parts count. Past the last part: 416 InvalidPartNumber.
 */
function partOf(info: KeyInfo, n: number): { range: { offset: number; length: number }; partsCount: number | undefined } {
  if (info.parts === undefined) {
    if (n !== 1) throw new S3Error('InvalidPartNumber', `The requested partnumber is not satisfiable: the object has 1 part, not ${n}`)
    return { range: { offset: 0, length: info.size }, partsCount: undefined }
  }
  const range = partRange(info.parts, n)
  const partsCount = partCount(info.parts)
  if (range === undefined) throw new S3Error('InvalidPartNumber', `The requested partnumber is not satisfiable: the object has ${partsCount} parts, not ${n}`)
  return { range, partsCount }
}

/** The headers of part `n`'s checksum, if the object is a COMPOSITE one that keeps its
 *  parts' checksums (S3 answers them on a partNumber read). */
function partChecksumHeaders(metadata: Record<string, string>, n: number): Record<string, string> | undefined {
  const parts = partChecksums(metadata)
  const value = parts?.values[n - 1]
  if (parts === undefined || value === undefined || storedChecksum(metadata)?.type !== 'COMPOSITE') return undefined
  return { [checksumHeader(parts.algorithm)]: value, 'x-amz-checksum-type': 'COMPOSITE' }
}

/**
 * A response-* override as the header's value: its UTF-8 bytes (one character per byte, as
 * headers are written), so that a non-ASCII file name is served as sent; a control character,
 * which no header may carry, is InvalidArgument (it was a 500 from the header check).
 */
function overrideHeader(name: string, value: string): string {
  const bytes = Buffer.from(value, 'utf8').toString('latin1')
  if (/[^\t\x20-\x7e\x80-\xff]/.test(bytes)) throw new S3Error('InvalidArgument', `response-${name} cannot be sent as a header: it holds a control character`)
  return bytes
}

export async function getObject(ctx: S3Context, head: boolean): Promise<Response> {
  await requestBucket(ctx)
  let partNumber: number | undefined
  if (ctx.query.has('partNumber')) {
    const raw = ctx.query.get('partNumber')!
    partNumber = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN
    if (!Number.isSafeInteger(partNumber) || partNumber < 1 || partNumber > PART_NUMBER_MAX) throw new S3Error('InvalidArgument', `Part number must be an integer between 1 and ${PART_NUMBER_MAX}, inclusive`)
    if (ctx.req.headers.has('range')) throw new S3Error('InvalidRequest', 'Cannot specify both Range header and partNumber query parameter')
  }
  const info = await headObject(ctx, ctx.bucket!, ctx.key!)
  const early = checkConditions(ctx.req.headers, info)
  if (early !== undefined) return early
  const part = partNumber === undefined ? undefined : partOf(info, partNumber)
  const range = part?.range ?? parseRange(ctx.req.headers.get('range'), info.size)
  // The object's checksum covers the whole object: S3 returns it only for a read of all of it
  // (a Range or part that spans the object too). A part of a COMPOSITE multipart object
  // answers with that part's own checksum, when the object keeps it; a part of a FULL_OBJECT
  // one with none.
  const checksumMode = ctx.req.headers.get('x-amz-checksum-mode')?.toUpperCase() === 'ENABLED'
  const partSum = checksumMode && part?.partsCount !== undefined ? partChecksumHeaders(info.metadata, partNumber!) : undefined
  const whole = range === undefined || (range.offset === 0 && range.length === info.size)
  const headers = objectHeaders(info, checksumMode && partSum === undefined && whole)
  if (partSum !== undefined) Object.assign(headers, partSum)
  for (const o of OVERRIDES) {
    const v = ctx.query.get(`response-${o}`)
    if (v === null) continue
    // AWS: only a signed request may (else anyone could serve a public object as text/html).
    if (ctx.user === undefined) throw new S3Error('InvalidRequest', 'Request specific response headers cannot be used for anonymous GET requests.')
    headers[o] = overrideHeader(o, v)
  }
  // The ETag stays the object's (a multipart ETag "-N" for a part too), as S3 answers.
  if (part?.partsCount !== undefined) headers['x-amz-mp-parts-count'] = String(part.partsCount)
  let status = 200
  let length = info.size
  if (range !== undefined) {
    length = range.length
    // A part of no bytes (an empty object's or an empty last part) has no byte range to name.
    if (range.length > 0) {
      status = 206
      headers['content-range'] = `bytes ${range.offset}-${range.offset + range.length - 1}/${info.size}`
    }
  }
  headers['content-length'] = String(length)
  if (head || length === 0) return new Response(null, { status, headers })
  // The first piece is read before the status line goes out: when no replica can serve it the
  // client gets an S3 error it retries (503 ServiceUnavailable for unreachable datanodes, 500
  // InternalError for corrupt or missing data), not a 200 with a cut body.
  // The pieces go out as they are (Readable.toWeb copied each one). They land in the client's
  // pooled buffers when the runtime says when each has been sent (Node), fresh ones otherwise.
  const watch = ctx.responseWatch
  const started = await ctx.client.startKeyPieces(info, range ?? { offset: 0, length: info.size }, { pooled: watch !== undefined })
  const buffers = ctx.client.readBuffers
  const release = (p: Uint8Array) => buffers.releaseIfMine(p.buffer)
  const first = started.first
  if (first !== undefined && first.length === length && length <= SEND_SLICE_BYTES) {
    // All of it in one slice (a small object): one body, no stream; its buffer comes back once
    // sent. A larger piece goes out in slices, so that a client that stops reading is cut.
    void watch?.done.then(() => release(first))
    await started.rest.return(undefined)
    ctx.countBytes('out', first.length)
    // (On Node the piece may view a SharedArrayBuffer, which Node's response writes as it is.)
    return new Response(first as Uint8Array<ArrayBuffer>, { status, headers })
  }
  // The first piece again, then the rest; returned early, even unstarted, it gives them back.
  const all = counted(allPieces(started, buffers), (n) => ctx.countBytes('out', n))
  // After the status line a failure can only cut the connection; the gateway logs and counts it.
  return new Response(streamBody(all, { onError: (err) => ctx.bodyFailed(err), watch, release, sendIdleMs: ctx.sendIdleTimeoutMs }), { status, headers })
}

/**
 * DeleteObject. A missing key is deleted already (204), unless the request names an ETag to
 * match (If-Match: NoSuchKey, as S3's conditional deletes answer). The conditions are checked
 * by the OM as it deletes (PreconditionFailed when one fails): one naming the ETag read is
 * never met by an object a writer put there meanwhile.
 */
export async function deleteObject(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const h = ctx.req.headers
  const condition = deleteCondition({ etag: h.get('if-match'), size: h.get('x-amz-if-match-size'), modified: h.get('x-amz-if-match-last-modified-time') }, DELETE_HEADERS)
  await deleteKeyIf(ctx, bucket, ctx.key!, condition)
  return new Response(null, { status: 204 })
}

/** What a delete's conditions are called where they come from, for the errors that name them. */
type ConditionNames = { etag: string; size: string; modified: string }
const DELETE_HEADERS: ConditionNames = { etag: 'If-Match', size: 'x-amz-if-match-size', modified: 'x-amz-if-match-last-modified-time' }
const DELETE_ENTRY_FIELDS: ConditionNames = { etag: 'ETag', size: 'Size', modified: 'LastModifiedTime' }

/** An HTTP date (IMF-fixdate, as Last-Modified is written) or ISO 8601 with its zone (as XML's timestamps). */
const TIMESTAMP = /^(?:[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2}))$/

/**
 * A delete's condition from what S3 names it with: an ETag, a size in bytes, a Last-Modified
 * time (matched to the second, as Last-Modified names it); InvalidArgument for a malformed one.
 */
function deleteCondition(given: { etag: string | null; size: string | null; modified: string | null }, names: ConditionNames): Partial<DeleteCondition> {
  const out: Partial<DeleteCondition> = {}
  if (given.etag !== null) out.ifMatchEtag = oneEtag(given.etag, names.etag)
  if (given.size !== null) {
    if (!/^\d{1,15}$/.test(given.size.trim())) throw new S3Error('InvalidArgument', `${names.size} must be a whole number of bytes, not ${JSON.stringify(given.size)}`)
    out.ifMatchSize = Number(given.size.trim())
  }
  if (given.modified !== null) {
    const text = given.modified.trim()
    const ms = TIMESTAMP.test(text) ? Date.parse(text) : NaN
    if (!Number.isFinite(ms) || ms < 0) throw new S3Error('InvalidArgument', `${names.modified} must be an HTTP date or an ISO 8601 time with its zone, not ${JSON.stringify(given.modified)}`)
    out.ifMatchModifiedSeconds = Math.floor(ms / 1000)
  }
  return out
}

/**
 * Deletes a key on the OM's check of `condition`. A conditional delete first looks the key up
 * as a read does (keyFor: a missing key is NoSuchKey only to who may list the bucket, else
 * AccessDenied), and one that tells more than the key's existence (an ETag other than `*`, a
 * size, a time) needs s3:GetObject, as S3 asks of a delete with an ETag. A missing key is
 * NoSuchKey when an ETag (or `*`) was to match it, else deleted already.
 */
async function deleteKeyIf(ctx: S3Context, bucket: BucketInfo, key: string, condition: Partial<DeleteCondition>): Promise<void> {
  if (Object.keys(condition).length > 0) {
    let current: KeyInfo
    try {
      current = await keyFor(ctx, bucket, key)
    } catch (err) {
      if (err instanceof S3Error && err.code === 'NoSuchKey' && condition.ifMatchEtag === undefined) return
      throw err
    }
    if (deleteConditionReads(condition)) authorizeAction(ctx, 's3:GetObject', { bucket, key, keyInfo: current })
  }
  try {
    await ctx.client.deleteKey(S3_VOLUME, bucket.name, key, condition)
  } catch (err) {
    if (!(err instanceof O3Error && err.code === 'KEY_NOT_FOUND')) throw err
    if (condition.ifMatchEtag !== undefined) throw new S3Error('NoSuchKey', 'The specified key does not exist')
  }
}

/**
 * A version id other than `null` (the only version an object has here: versioning is never
 * enabled) names nothing: S3 answers InvalidArgument for it on an unversioned bucket. Taken
 * as the current object, a DeleteObject for an old version would delete the live one.
 */
export function checkVersionId(versionId: string | null | undefined): void {
  if (versionId !== null && versionId !== undefined && versionId !== 'null') throw new S3Error('InvalidArgument', 'Invalid version id specified')
}

/** The pieces as they come, each counted as it is handed on; returned early (even unstarted), so are they. */
function counted(pieces: Pieces, count: (bytes: number) => void): Pieces {
  return {
    next: async () => {
      const r = await pieces.next()
      if (r.done !== true) count(r.value.length)
      return r
    },
    return: (value?: unknown) => pieces.return(value),
    [Symbol.asyncIterator]() { return this },
  }
}

/** DeleteObjects: each key is authorized as a DeleteObject of its own; a refused one is an Error entry (AccessDenied), all refused is AccessDenied. The body's digest is required. */
export async function deleteObjects(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  // S3 takes a multi-object delete only with a digest of its body (Content-MD5 or an
  // x-amz-checksum-*, sent or declared as a trailer), which readXml verifies; one without is
  // refused once its keys are known to be the caller's (a stranger is AccessDenied first).
  const h = ctx.req.headers
  const trailed = (h.get('x-amz-content-sha256') ?? '').endsWith('-TRAILER') && /x-amz-checksum-/i.test(h.get('x-amz-trailer') ?? '')
  const digested = h.get('content-md5') !== null || CHECKSUM_ALGORITHMS.some((a) => h.get(checksumHeader(a)) !== null) || trailed
  const body = await readXml(ctx, 'Delete')
  const objects = (body.Object ?? []) as { Key?: unknown; VersionId?: unknown; ETag?: unknown; Size?: unknown; LastModifiedTime?: unknown }[]
  if (!Array.isArray(objects) || objects.length === 0 || objects.length > DELETE_OBJECTS_COUNT_MAX) throw new S3Error('MalformedXML', `Delete must list 1..${DELETE_OBJECTS_COUNT_MAX} objects`)
  // An xs:boolean, as S3's schema has it; anything else is no answer to "quiet?".
  const quietText = String(body.Quiet ?? 'false').trim()
  if (!['true', 'false', '1', '0'].includes(quietText)) throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema: Quiet must be true or false')
  const quiet = quietText === 'true' || quietText === '1'
  const keys = objects.map((o) => {
    if (typeof o.Key !== 'string') throw new S3Error('MalformedXML', 'Every Object needs a Key')
    for (const field of ['VersionId', 'ETag', 'Size', 'LastModifiedTime'] as const) {
      if (o[field] !== undefined && typeof o[field] !== 'string') throw new S3Error('MalformedXML', `An Object's ${field} must be text`)
    }
    return o.Key
  })
  const text = (v: unknown) => (v as string | undefined) ?? null
  // Each key is a DeleteObject of its own (a policy may allow some keys and not others); a
  // request that may delete none of them is refused whole, as any other refused call is.
  // Its s3:if-match is the entry's ETag, never the request's If-Match header, which no entry obeys.
  const refused = keys.map((key, i) => {
    try {
      authorizeAction(ctx, 's3:DeleteObject', { bucket, key }, { 's3:if-match': text(objects[i]!.ETag) ?? undefined })
      return undefined
    } catch (err) {
      return toS3Error(err)
    }
  })
  if (refused.every((e) => e !== undefined)) throw refused[0]!
  if (!digested) throw new S3Error('InvalidRequest', 'Missing required header for this request: Content-MD5')
  // Each entry's condition (S3's conditional deletes); a malformed one refuses the request.
  const deleteConditions = objects.map((o) => deleteCondition({ etag: text(o.ETag), size: text(o.Size), modified: text(o.LastModifiedTime) }, DELETE_ENTRY_FIELDS))
  const deleted: { Key: string; VersionId?: string }[] = []
  const errors: { Key: string; VersionId?: string; Code: string; Message: string }[] = []
  for (const [i, key] of keys.entries()) {
    // The version named is echoed back, as S3 does.
    const versionId = objects[i]!.VersionId as string | undefined
    const version = versionId === undefined ? {} : { VersionId: versionId }
    try {
      if (refused[i] !== undefined) throw refused[i]
      checkVersionId(versionId)
      await deleteKeyIf(ctx, bucket, key, deleteConditions[i]!)
      deleted.push({ Key: key, ...version })
    } catch (err) {
      if (err instanceof O3Error && err.code === 'KEY_NOT_FOUND') deleted.push({ Key: key, ...version })
      else {
        // S3's code and words, never the O3 message (it names internal volumes).
        const e = toS3Error(err)
        errors.push({ Key: key, ...version, Code: e.code, Message: e.message })
      }
    }
  }
  return xmlResponse('DeleteResult', { Deleted: quiet ? [] : deleted, Error: errors })
}
