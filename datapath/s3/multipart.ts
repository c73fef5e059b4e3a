/** @module
 * Multipart uploads. In volume s3v-multipart, bucket <bucket>: `u/<uploadId>` records an
 * upload (empty key; its metadata holds the target key and the object's metadata) and
 * `p/<uploadId>/<partNumber>` holds each part as a committed key with its MD5 ETag.
 * CompleteMultipartUpload asks the OM (commitMultipartKey) to make the object from the parts'
 * blocks: part bytes are stored once and never copied; the object keeps its upload's id
 * (UPLOAD_ID_METADATA), so that a retried completion answers as the first did. An upload's
 * checksum algorithm and type (x-amz-checksum-algorithm, x-amz-checksum-type) are kept in its
 * record; every part is hashed with that algorithm, and the object's checksum is made from the
 * parts' (checksums.ts).
 */
import { createHash, randomBytes } from 'node:crypto'
import type { KeyInfo, S3OpenIntent } from '../client/index.ts'
import { O3Error } from '../../core/errors.ts'
import { KEY_METADATA_BYTES_MAX } from '../../core/limits.ts'
import { UPLOAD_ID_METADATA } from '../../core/s3-access/model.ts'
import { withVolume } from './buckets.ts'
import {
  conditionFailure, currentKey, declaredSizeBytes, etagOf, fromLookup, metadataFromHeaders, MULTIPART_VOLUME, requestBucket, requestPayload, S3_VOLUME, storePayload, writeCondition, type S3Context,
  type UnverifiedRequest } from './context.ts'
import { wholeNumber } from './whole-number.ts'
import { privateAcl } from '../../core/s3-access/acl.ts'
import { authorizeAction } from './access.ts'
import { uploadAclMetadata } from './acl.ts'
import {
  CHECKSUM_ALGORITHMS, checksumField, checksumHeader, checksumXml, compositeChecksum, encodePartChecksums, fullObjectChecksum, parseAlgorithm, PART_CHECKSUMS_METADATA, uploadChecksumType,
  type ChecksumAlgorithm, type ChecksumType } from './checksums.ts'
import { S3Error } from './errors.ts'
import { encoder } from './list.ts'
import { readXml, xmlResponse } from './xml.ts'

/** S3's limits: parts 1..10000, each but the last at least 5 MiB. */
export const PART_NUMBER_MAX = 10_000
export const PART_SIZE_BYTES_MIN = 5 * 1024 * 1024
const LIST_PARTS_MAX = 1000

const markerKey = (uploadId: string) => `u/${uploadId}`
/** An upload's record named in full: what its parts and its completion require (whileKeyExists). */
const recordOf = (ctx: S3Context, uploadId: string) => ({ volume: MULTIPART_VOLUME, bucket: ctx.bucket!, key: markerKey(uploadId) })
const partPrefix = (uploadId: string) => `p/${uploadId}/`
const partKey = (uploadId: string, n: number) => `${partPrefix(uploadId)}${String(n).padStart(5, '0')}`

/** Whether a key of the multipart bucket is an upload's record as CreateMultipartUpload writes it. */
function isUploadRecord(k: KeyInfo): boolean {
  const at = Number(k.metadata['s3:initiatedAtMs'] ?? NaN)
  // A time a Date can hold (its ISO form is the listing's Initiated).
  return /^u\/[0-9a-f]{32}$/.test(k.name) && typeof k.metadata['s3:key'] === 'string' && Number.isSafeInteger(at) && Math.abs(at) <= 8.64e15
}

const noSuchUpload = () => new S3Error('NoSuchUpload', 'The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.')

/** The upload's record, checked against the request's key; NoSuchUpload otherwise. */
async function upload(ctx: S3Context): Promise<{ uploadId: string; marker: KeyInfo }> {
  const uploadId = ctx.query.get('uploadId') ?? ''
  if (!/^[0-9a-f]{32}$/.test(uploadId)) throw noSuchUpload()
  try {
    // UploadPart's authentication call read the record (when it opened the part's key early).
    const required = ctx.found.required?.key === markerKey(uploadId) ? ctx.found.required.result : undefined
    const marker = required !== undefined ? fromLookup<KeyInfo>(required) : await ctx.client.headKey(MULTIPART_VOLUME, ctx.bucket!, markerKey(uploadId))
    if (marker.metadata['s3:key'] !== ctx.key) throw noSuchUpload()
    return { uploadId, marker }
  } catch (err) {
    if (err instanceof O3Error && (err.code === 'KEY_NOT_FOUND' || err.code === 'BUCKET_NOT_FOUND' || err.code === 'VOLUME_NOT_FOUND')) throw noSuchUpload()
    throw err
  }
}

function partNumber(ctx: S3Context): number {
  const n = wholeNumber(ctx.query.get('partNumber'))
  if (!Number.isSafeInteger(n) || n < 1 || n > PART_NUMBER_MAX) throw new S3Error('InvalidArgument', `Part number must be an integer between 1 and ${PART_NUMBER_MAX}, inclusive`)
  return n
}

/**
 * The part UploadPart writes, for the OM to open in the call that verifies the signature, if
 * the upload's record exists: the same key and size storePayload will ask for.
 */
export function uploadPartIntent(r: UnverifiedRequest): S3OpenIntent | undefined {
  const uploadId = r.query.get('uploadId') ?? ''
  const n = wholeNumber(r.query.get('partNumber'))
  const sizeBytes = declaredSizeBytes(r.req)
  if (r.bucket === undefined || !/^[0-9a-f]{32}$/.test(uploadId) || !Number.isSafeInteger(n) || n < 1 || n > PART_NUMBER_MAX || sizeBytes === undefined) return undefined
  return { volume: MULTIPART_VOLUME, bucket: r.bucket, key: partKey(uploadId, n), sizeBytes, metadata: {}, requireKey: { volume: MULTIPART_VOLUME, bucket: r.bucket, key: markerKey(uploadId) } }
}

/** The checksum algorithm and type a multipart upload was created with (its record keeps them). */
function uploadChecksum(marker: KeyInfo): { algorithm: ChecksumAlgorithm; type: ChecksumType } | undefined {
  const algorithm = marker.metadata['s3:checksumAlgorithm'] as ChecksumAlgorithm | undefined
  const type = marker.metadata['s3:checksumType'] as ChecksumType | undefined
  return algorithm === undefined || type === undefined ? undefined : { algorithm, type }
}

/**
 * Where UploadPart and UploadPartCopy write the part, and the checksum algorithm every part of
 * the upload gets. The part commits only while the upload's record exists: an upload aborted
 * or completed while the part was in flight refuses it (NoSuchUpload), where it would have
 * stayed behind, unlisted and counted against the bucket's quota.
 */
export async function partTarget(ctx: S3Context): Promise<{ volume: string; bucket: string; key: string; checksumAlgorithm?: ChecksumAlgorithm; whileKeyExists: { volume: string; bucket: string; key: string } }> {
  await requestBucket(ctx)
  const n = partNumber(ctx)
  const { uploadId, marker } = await upload(ctx)
  return {
    volume: MULTIPART_VOLUME, bucket: ctx.bucket!, key: partKey(uploadId, n), checksumAlgorithm: uploadChecksum(marker)?.algorithm,
    whileKeyExists: recordOf(ctx, uploadId),
  }
}

/**
 * An upload id: 32 hex digits, the first 12 the time it was started in milliseconds, the rest
 * random. Uploads of one key are listed by id (ListMultipartUploads), and S3 lists them in the
 * order they were started.
 */
export function newUploadId(nowMs: number): string {
  return nowMs.toString(16).padStart(12, '0') + randomBytes(10).toString('hex')
}

/**
 * CreateMultipartUpload: the upload's record holds the object's metadata, its ACL (x-o3-acl,
 * from this request's headers: CompleteMultipartUpload carries it to the object) and its
 * initiator (an anonymous one's uploads are the bucket owner's, as its keys are).
 */
export async function createMultipartUpload(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const algorithm = parseAlgorithm(ctx.req.headers.get('x-amz-checksum-algorithm'))
  const type = uploadChecksumType(algorithm, ctx.req.headers.get('x-amz-checksum-type'))
  const nowMs = Date.now()
  const uploadId = newUploadId(nowMs)
  const metadata: Record<string, string> = {
    ...metadataFromHeaders(ctx.req.headers), ...uploadAclMetadata(ctx, bucket, ctx.req.headers),
    's3:key': ctx.key!, 's3:initiatedAtMs': String(nowMs), 's3:initiator': ctx.user ?? bucket.owner,
  }
  if (algorithm !== undefined && type !== undefined) Object.assign(metadata, { 's3:checksumAlgorithm': algorithm, 's3:checksumType': type })
  const putMarker = () => ctx.client.putKey(MULTIPART_VOLUME, ctx.bucket!, markerKey(uploadId), new Uint8Array(0), { metadata })
  try {
    await putMarker()
  } catch (err) {
    // The bucket's first upload: make its multipart bucket (and the volume), then write again.
    if (!(err instanceof O3Error && (err.code === 'BUCKET_NOT_FOUND' || err.code === 'VOLUME_NOT_FOUND'))) throw err
    await withVolume(ctx, MULTIPART_VOLUME, () => ctx.client.createBucket(MULTIPART_VOLUME, ctx.bucket!, { owner: bucket.owner })).catch((e: unknown) => {
      if (!(e instanceof O3Error && e.code === 'BUCKET_ALREADY_EXISTS')) throw e
    })
    await putMarker()
  }
  const headers: Record<string, string> = algorithm !== undefined && type !== undefined ? { 'x-amz-checksum-algorithm': algorithm.toUpperCase(), 'x-amz-checksum-type': type } : {}
  return xmlResponse('InitiateMultipartUploadResult', { Bucket: ctx.bucket, Key: ctx.key, UploadId: uploadId }, 200, headers)
}

export async function uploadPart(ctx: S3Context): Promise<Response> {
  const where = await partTarget(ctx)
  const info = await storePayload(ctx, where, requestPayload(ctx, where.checksumAlgorithm), {})
  const headers: Record<string, string> = { etag: etagOf(info) }
  for (const [k, v] of Object.entries(info.metadata)) if (k.startsWith('x-amz-checksum-')) headers[k] = v
  return new Response(null, { status: 200, headers })
}

async function listPartKeys(ctx: S3Context, uploadId: string): Promise<KeyInfo[]> {
  const out: KeyInfo[] = []
  let startAfter: string | undefined
  for (;;) {
    const page = await ctx.client.listKeys(MULTIPART_VOLUME, ctx.bucket!, { prefix: partPrefix(uploadId), startAfter })
    out.push(...page.keys)
    if (!page.truncated || page.nextStartAfter === null) return out
    startAfter = page.nextStartAfter
  }
}

const person = (id: string) => ({ ID: id, DisplayName: id })

const partNumberOf = (k: KeyInfo) => Number(k.name.slice(k.name.lastIndexOf('/') + 1))

/**
 * CompleteMultipartUpload: the object made of the listed parts, with If-None-Match: * or
 * If-Match conditioning the OM's commit (writeCondition). Repeated after it succeeded (a
 * client that lost the answer retries), S3 answers the same result again: the key the upload
 * made says so (UPLOAD_ID_METADATA), whether the first call still runs, failed after its
 * commit, or is long done.
 */
export async function completeMultipartUpload(ctx: S3Context): Promise<Response> {
  await requestBucket(ctx)
  const condition = writeCondition(ctx.req.headers)
  let record: { uploadId: string; marker: KeyInfo }
  try {
    record = await upload(ctx)
  } catch (err) {
    const done = err instanceof S3Error && err.code === 'NoSuchUpload' ? await completedBy(ctx, ctx.query.get('uploadId') ?? '') : undefined
    if (done === undefined) throw err
    return completeAnswer(ctx, done.metadata)
  }
  const { uploadId, marker } = record
  const body = await readXml(ctx, 'CompleteMultipartUpload', { objectChecksums: true })
  const listed = (body.Part ?? []) as { PartNumber?: unknown; ETag?: unknown }[]
  if (!Array.isArray(listed) || listed.length === 0) throw new S3Error('MalformedXML', 'You must specify at least one part')
  const stored = new Map((await listPartKeys(ctx, uploadId)).map((k) => [partNumberOf(k), k]))
  const parts: KeyInfo[] = []
  let previous = 0
  for (const p of listed) {
    // xs:int's lexical form allows one leading +.
    const n = wholeNumber(typeof p.PartNumber === 'string' ? p.PartNumber.trim().replace(/^\+/, '') : undefined)
    if (!Number.isSafeInteger(n) || n < 1 || n > PART_NUMBER_MAX) throw new S3Error('InvalidPart', `Part number ${String(p.PartNumber)} is not valid`)
    if (n <= previous) throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order of the part number.')
    previous = n
    const part = stored.get(n)
    const etag = String(p.ETag ?? '').trim().replace(/^"|"$/g, '')
    if (part === undefined || part.metadata.etag !== etag) {
      // The parts are gone when the upload was completed and its record not yet dropped, or
      // it was aborted meanwhile (its record goes first).
      const done = part === undefined ? await completedBy(ctx, uploadId) : undefined
      if (done !== undefined) return await finishCompleted(ctx, uploadId, done)
      if (part === undefined) await upload(ctx)
      throw new S3Error('InvalidPart', `One or more of the specified parts could not be found or its ETag did not match (part ${n})`)
    }
    parts.push(part)
  }
  for (let i = 0; i < parts.length - 1; i++) {
    if (parts[i].size < PART_SIZE_BYTES_MIN) throw new S3Error('EntityTooSmall', `Your proposed upload is smaller than the minimum allowed object size (part ${partNumberOf(parts[i])} has ${parts[i].size} bytes)`)
  }
  // S3's multipart ETag: MD5 of the concatenated binary MD5s of the parts, then -N.
  const md5s = Buffer.concat(parts.map((p) => Buffer.from(p.metadata.etag!, 'hex')))
  const etag = `${createHash('md5').update(md5s).digest('hex')}-${parts.length}`
  const checksums = objectChecksums(ctx, uploadChecksum(marker), listed, parts)
  const metadata: Record<string, string> = { etag, ...checksums }
  for (const [k, v] of Object.entries(marker.metadata)) if (!k.startsWith('s3:')) metadata[k] = v
  metadata[UPLOAD_ID_METADATA] = uploadId
  // The parts' checksums are kept only while the key's metadata stays within half its bound:
  // the rest is for what may come later (tags, an ACL).
  if (metadataBytes(metadata) > KEY_METADATA_BYTES_MAX / 2) delete metadata[PART_CHECKSUMS_METADATA]
  try {
    await ctx.client.commitMultipartKey(S3_VOLUME, ctx.bucket!, ctx.key!, parts.map((p) => ({ volume: MULTIPART_VOLUME, bucket: ctx.bucket!, key: p.name })), metadata, { asParts: true, ...condition, whileKeyExists: recordOf(ctx, uploadId) })
  } catch (err) {
    if (!(err instanceof O3Error && (err.code === 'KEY_NOT_FOUND' || err.code === 'REQUIRED_KEY_NOT_FOUND'))) throw conditionFailure(condition, err) ?? err
    // A part or the upload's record vanished: another CompleteMultipartUpload of this upload
    // committed first (then this one answers as it did), or an abort dropped it; or If-Match
    // found no object.
    const done = await completedBy(ctx, uploadId)
    if (done !== undefined) return await finishCompleted(ctx, uploadId, done)
    if (condition.ifMatchEtag !== undefined && await currentKey(ctx) === undefined) throw conditionFailure(condition, err)!
    throw noSuchUpload()
  }
  await dropUpload(ctx, uploadId)
  return completeAnswer(ctx, metadata)
}

/** The request's key if the upload `uploadId` made it (UPLOAD_ID_METADATA), else undefined. */
async function completedBy(ctx: S3Context, uploadId: string): Promise<KeyInfo | undefined> {
  if (!/^[0-9a-f]{32}$/.test(uploadId)) return undefined
  try {
    const info = await ctx.client.headKey(S3_VOLUME, ctx.bucket!, ctx.key!)
    return info.metadata[UPLOAD_ID_METADATA] === uploadId ? info : undefined
  } catch (err) {
    if (err instanceof O3Error && err.code === 'KEY_NOT_FOUND') return undefined
    throw err
  }
}

/** Answers a completion found done: drops what is left of its upload, as the first call would have. */
async function finishCompleted(ctx: S3Context, uploadId: string, done: KeyInfo): Promise<Response> {
  await dropUpload(ctx, uploadId)
  return completeAnswer(ctx, done.metadata)
}

/** CompleteMultipartUploadResult from the completed key's metadata: the same answer for a retry. */
function completeAnswer(ctx: S3Context, metadata: Record<string, string>): Response {
  // S3 answers the checksum HEAD shows (SDKs and rclone read it here), with its type.
  // The object's URL as the client addressed it (path or virtual-hosted style), as S3 gives it.
  const location = new URL(ctx.req.url)
  location.protocol = ctx.secureTransport === true ? 'https:' : 'http:'
  location.search = ''
  return xmlResponse('CompleteMultipartUploadResult', { Location: location.toString(), Bucket: ctx.bucket, Key: ctx.key, ETag: `"${metadata.etag ?? ''}"`, ...checksumXml(metadata) })
}

/**
 * The checksum metadata of a completed multipart object: `x-amz-checksum-<algorithm>` (the
 * COMPOSITE checksum of the parts' checksums, or their CRCs combined into the FULL_OBJECT
 * one) and, for COMPOSITE, the parts' own checksums while they fit. Checks the request
 * against the upload: its x-amz-checksum-type, each listed part's checksum (required for
 * COMPOSITE, as S3 does), and the object checksum the client sends as
 * x-amz-checksum-<algorithm> (BadDigest). An upload created without an algorithm gets one
 * only if every part carries the same one (as before S3 had checksum types). Reads metadata
 * only, never part bytes.
 */
function objectChecksums(ctx: S3Context, declared: { algorithm: ChecksumAlgorithm; type: ChecksumType } | undefined, listed: Record<string, unknown>[], parts: KeyInfo[]): Record<string, string> {
  const askedType = ctx.req.headers.get('x-amz-checksum-type')?.trim().toUpperCase()
  if (declared !== undefined && askedType !== undefined && askedType !== declared.type) {
    throw new S3Error('InvalidRequest', `The upload was created using the ${declared.type} checksum mode. The complete request must use the same checksum mode.`)
  }
  for (const [i, p] of listed.entries()) {
    const n = partNumberOf(parts[i])
    for (const a of CHECKSUM_ALGORITHMS) {
      const given = p[checksumField(a)]
      if (given === undefined) {
        if (declared?.algorithm === a && declared.type === 'COMPOSITE') {
          throw new S3Error('InvalidRequest', `The upload was created using a ${a} checksum. The complete request must include the checksum for each part. It was missing for part ${n} in the request.`)
        }
        continue
      }
      if (String(given).trim() !== parts[i].metadata[checksumHeader(a)]) throw new S3Error('InvalidPart', `One or more of the specified parts could not be found or its ${a} checksum did not match (part ${n})`)
    }
  }
  let chosen = declared
  if (chosen === undefined) {
    const common = CHECKSUM_ALGORITHMS.find((a) => parts.every((p) => p.metadata[checksumHeader(a)] !== undefined))
    if (common === undefined) return {}
    chosen = { algorithm: common, type: common === 'crc64nvme' ? 'FULL_OBJECT' : 'COMPOSITE' }
  }
  const { algorithm, type } = chosen
  const values = parts.map((p) => p.metadata[checksumHeader(algorithm)])
  const missing = values.findIndex((v) => v === undefined || v.includes('-'))
  if (missing >= 0) throw new S3Error('InvalidPart', `Part ${partNumberOf(parts[missing])} has no ${algorithm} checksum`)
  const value = type === 'COMPOSITE' ? compositeChecksum(algorithm, values) : fullObjectChecksum(algorithm, parts.map((p, i) => ({ value: values[i], sizeBytes: p.size })))
  // The object's checksum the client sends is checked as S3 checks it: a FULL_OBJECT one as is,
  // one of an upload declared COMPOSITE with or without its -N (clients send either). An upload
  // that declared no algorithm has a COMPOSITE checksum only by inference here, and a client may
  // send the CRC of its bytes instead: not compared, as before.
  const sent = ctx.req.headers.get(checksumHeader(algorithm))?.trim()
  const compared = type === 'FULL_OBJECT' || declared !== undefined
  if (compared && sent !== undefined && sent !== value && !(type === 'COMPOSITE' && value.startsWith(sent) && /^-\d+$/.test(value.slice(sent.length)))) {
    throw new S3Error('BadDigest', `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum`)
  }
  const out: Record<string, string> = { [checksumHeader(algorithm)]: value }
  // A COMPOSITE object's parts' checksums are what a partNumber read and GetObjectAttributes
  // answer; S3 answers none for the parts of a FULL_OBJECT one (only their count).
  const kept = type === 'COMPOSITE' ? encodePartChecksums(algorithm, values) : undefined
  if (kept !== undefined) out[PART_CHECKSUMS_METADATA] = kept
  return out
}

/** The size of metadata as the OM counts it against KEY_METADATA_BYTES_MAX. */
function metadataBytes(metadata: Record<string, string>): number {
  let n = 0
  for (const [k, v] of Object.entries(metadata)) n += k.length + v.length
  return n
}

/**
 * Removes an upload: its parts, its record, then the parts again. No part outlives it: one
 * that commits before the record goes is deleted by one of the passes, and none can commit
 * after (partTarget's whileKeyExists). The record goes after the first pass so that a gateway
 * stopped midway leaves an upload still listed, which an abort can take again.
 */
async function dropUpload(ctx: S3Context, uploadId: string): Promise<void> {
  const dropParts = async () => {
    for (const k of await listPartKeys(ctx, uploadId)) await ctx.client.deleteKey(MULTIPART_VOLUME, ctx.bucket!, k.name).catch(() => {})
  }
  await dropParts()
  await ctx.client.deleteKey(MULTIPART_VOLUME, ctx.bucket!, markerKey(uploadId)).catch(() => {})
  await dropParts()
}

/** Who started an upload (its record's s3:initiator; uploads started before it was recorded: the bucket owner). */
const initiatorOf = (marker: KeyInfo, bucketOwner: string) => marker.metadata['s3:initiator'] ?? bucketOwner

/** The upload of the request, once the requester may `action` it (its initiator and the bucket owner may). */
async function authorizedUpload(ctx: S3Context, action: string): Promise<{ uploadId: string; marker: KeyInfo; initiator: string }> {
  const bucket = await requestBucket(ctx)
  const { uploadId, marker } = await upload(ctx)
  const initiator = initiatorOf(marker, bucket.owner)
  authorizeAction(ctx, action, { bucket, key: ctx.key, objectAcl: privateAcl(initiator) })
  return { uploadId, marker, initiator }
}

export async function abortMultipartUpload(ctx: S3Context): Promise<Response> {
  const { uploadId } = await authorizedUpload(ctx, 's3:AbortMultipartUpload')
  await dropUpload(ctx, uploadId)
  return new Response(null, { status: 204 })
}

export async function listParts(ctx: S3Context): Promise<Response> {
  const { uploadId, marker, initiator } = await authorizedUpload(ctx, 's3:ListMultipartUploadParts')
  const markerN = wholeNumber(ctx.query.get('part-number-marker') ?? '0')
  const max = Math.min(LIST_PARTS_MAX, wholeNumber(ctx.query.get('max-parts') ?? String(LIST_PARTS_MAX)))
  if (!Number.isSafeInteger(markerN) || markerN < 0 || !Number.isSafeInteger(max) || max < 0) throw new S3Error('InvalidArgument', 'part-number-marker and max-parts must be non-negative integers')
  const all = (await listPartKeys(ctx, uploadId)).filter((k) => partNumberOf(k) > markerN)
  const page = all.slice(0, max)
  const truncated = all.length > page.length
  return xmlResponse('ListPartsResult', {
    Bucket: ctx.bucket, Key: ctx.key, UploadId: uploadId,
    Initiator: { ID: initiator, DisplayName: initiator }, Owner: { ID: initiator, DisplayName: initiator }, StorageClass: 'STANDARD',
    PartNumberMarker: markerN, NextPartNumberMarker: page.length > 0 ? partNumberOf(page[page.length - 1]) : markerN, MaxParts: max, IsTruncated: truncated,
    ...uploadChecksumXml(marker),
    Part: page.map((k) => ({ PartNumber: partNumberOf(k), LastModified: new Date(k.modifiedAtMs).toISOString(), ETag: etagOf(k), Size: k.size, ...partChecksumXml(k) })),
  })
}

/** An upload's checksum algorithm and type, as ListParts and ListMultipartUploads show them. */
function uploadChecksumXml(marker: KeyInfo): Record<string, string> {
  const declared = uploadChecksum(marker)
  return declared === undefined ? {} : { ChecksumAlgorithm: declared.algorithm.toUpperCase(), ChecksumType: declared.type }
}

/** A part's own checksum, as ListParts shows it. */
function partChecksumXml(part: KeyInfo): Record<string, string> {
  const out: Record<string, string> = {}
  for (const a of CHECKSUM_ALGORITHMS) {
    const v = part.metadata[checksumHeader(a)]
    if (v !== undefined) out[checksumField(a)] = v
  }
  return out
}

export async function listMultipartUploads(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const enc = encoder(ctx)
  const prefix = ctx.query.get('prefix') ?? ''
  const keyMarker = ctx.query.get('key-marker') ?? ''
  const max = Math.min(1000, wholeNumber(ctx.query.get('max-uploads') ?? '1000'))
  if (!Number.isSafeInteger(max) || max < 0) throw new S3Error('InvalidArgument', 'max-uploads must be a non-negative integer')
  let markers: KeyInfo[] = []
  try {
    let startAfter: string | undefined
    for (;;) {
      const page = await ctx.client.listKeys(MULTIPART_VOLUME, ctx.bucket!, { prefix: 'u/', startAfter })
      markers.push(...page.keys)
      if (!page.truncated || page.nextStartAfter === null) break
      startAfter = page.nextStartAfter
    }
  } catch (err) {
    if (!(err instanceof O3Error && (err.code === 'BUCKET_NOT_FOUND' || err.code === 'VOLUME_NOT_FOUND'))) throw err
  }
  // S3: after key-marker; uploads of the key-marker's own key only past upload-id-marker
  // (ignored without a key-marker). Uploads of one key are ordered by upload id, so that
  // the pair (NextKeyMarker, NextUploadIdMarker) resumes exactly where a page ended.
  const idMarker = keyMarker === '' ? '' : (ctx.query.get('upload-id-marker') ?? '')
  const keyOf = (m: KeyInfo) => Buffer.from(m.metadata['s3:key'] ?? '')
  const idOf = (m: KeyInfo) => m.name.slice(2)
  const after = Buffer.from(keyMarker)
  markers = markers.filter((m) => {
    // Only records this gateway wrote (a key put into the internal volume by other means is
    // not an upload, and made every listing of the bucket an InternalError).
    if (!isUploadRecord(m)) return false
    if (!(m.metadata['s3:key'] ?? '').startsWith(prefix)) return false
    if (keyMarker === '') return true
    const order = Buffer.compare(keyOf(m), after)
    return order > 0 || (order === 0 && idMarker !== '' && idOf(m) > idMarker)
  })
  markers.sort((a, b) => Buffer.compare(keyOf(a), keyOf(b)) || (idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : 0))
  // With a delimiter, the keys that have it past the prefix roll up into one common prefix each,
  // which counts as one upload toward max-uploads (as ListObjects' do); a page that ended on
  // one resumes past every key under it.
  const delimiter = ctx.query.get('delimiter') ?? ''
  const entries: ({ upload: KeyInfo; key: string } | { prefix: string; key: string })[] = []
  let truncated = false
  for (const m of markers) {
    const key = m.metadata['s3:key'] ?? ''
    const at = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length)
    const common = at < 0 ? undefined : key.slice(0, at + delimiter.length)
    if (common !== undefined && ((entries.at(-1) as { prefix?: string } | undefined)?.prefix === common || (keyMarker !== '' && Buffer.compare(Buffer.from(common), after) <= 0))) continue
    if (entries.length >= max) { truncated = true; break }
    entries.push(common !== undefined ? { prefix: common, key: common } : { upload: m, key })
  }
  const last = entries.at(-1)
  return xmlResponse('ListMultipartUploadsResult', {
    Bucket: ctx.bucket, KeyMarker: enc(keyMarker), UploadIdMarker: ctx.query.get('upload-id-marker') ?? '', Prefix: enc(prefix), ...(delimiter !== '' ? { Delimiter: enc(delimiter) } : {}),
    MaxUploads: max, IsTruncated: truncated,
    ...(truncated && last !== undefined ? { NextKeyMarker: enc(last.key), NextUploadIdMarker: 'upload' in last ? idOf(last.upload) : '' } : {}),
    ...(ctx.query.get('encoding-type') === 'url' ? { EncodingType: 'url' } : {}),
    Upload: entries.flatMap((e) => 'upload' in e ? [e.upload] : []).map((m) => ({
      Key: enc(m.metadata['s3:key'] ?? ''), UploadId: idOf(m), Initiator: person(initiatorOf(m, bucket.owner)), Owner: person(initiatorOf(m, bucket.owner)),
      StorageClass: 'STANDARD', Initiated: new Date(Number(m.metadata['s3:initiatedAtMs'])).toISOString(),
      ...uploadChecksumXml(m),
    })),
    CommonPrefixes: entries.flatMap((e) => 'prefix' in e ? [{ Prefix: enc(e.prefix) }] : []),
  })
}
