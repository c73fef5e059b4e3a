/** @module
 * GetObjectAttributes: what x-amz-object-attributes asks for of an object (ETag, Checksum,
 * ObjectParts paged by x-amz-max-parts / x-amz-part-number-marker, StorageClass, ObjectSize),
 * from its key's record alone: no bytes are read. Authorized as S3 does: s3:GetObjectAttributes
 * (the gateway) and s3:GetObject (here, on the key read).
 */
import type { KeyInfo } from '../client/index.ts'
import { partCount, partRange } from '../../core/om-wire.ts'
import { authorizeAction } from './access.ts'
import { checksumField, partChecksums, storedChecksum } from './checksums.ts'
import { headObject, requestBucket, type S3Context } from './context.ts'
import { S3Error } from './errors.ts'
import { PART_NUMBER_MAX } from './multipart.ts'
import { xmlResponse } from './xml.ts'

const ATTRIBUTES = ['ETag', 'Checksum', 'ObjectParts', 'StorageClass', 'ObjectSize'] as const
type Attribute = (typeof ATTRIBUTES)[number]
/** S3's default and largest page of parts. */
const PARTS_PAGE_MAX = 1000

function requestedAttributes(headers: Headers): Set<Attribute> {
  const raw = headers.get('x-amz-object-attributes') ?? ''
  const names = raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (names.length === 0) throw new S3Error('InvalidArgument', 'The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty')
  for (const n of names) if (!(ATTRIBUTES as readonly string[]).includes(n)) throw new S3Error('InvalidArgument', `Invalid attribute name specified: ${n}`)
  return new Set(names as Attribute[])
}

/** A non-negative integer header, or `fallback` when absent; InvalidArgument otherwise. */
function integerHeader(headers: Headers, name: string, fallback: number): number {
  const raw = headers.get(name)
  if (raw === null) return fallback
  const n = /^\d{1,9}$/.test(raw.trim()) ? Number(raw.trim()) : NaN
  if (!Number.isSafeInteger(n)) throw new S3Error('InvalidArgument', `${name} must be a non-negative integer`)
  return n
}

/**
 * A multipart object's parts after the marker, one page of them. The parts count as the parts
 * of a partNumber GET do, 1..count in part order (S3 shows the numbers they were uploaded
 * as, which differ only where the upload skipped some). Each part is listed with its size and
 * checksum only for a COMPOSITE object that keeps its parts' checksums: S3 lists parts only
 * for an object with a COMPOSITE checksum, and shows just the count otherwise.
 */
function objectParts(info: KeyInfo, headers: Headers): Record<string, unknown> | undefined {
  if (info.parts === undefined) return undefined
  const total = partCount(info.parts)
  const max = Math.min(integerHeader(headers, 'x-amz-max-parts', PARTS_PAGE_MAX), PARTS_PAGE_MAX)
  const marker = integerHeader(headers, 'x-amz-part-number-marker', 0)
  if (marker > PART_NUMBER_MAX) throw new S3Error('InvalidArgument', `x-amz-part-number-marker must be at most ${PART_NUMBER_MAX}`)
  const kept = partChecksums(info.metadata)
  if (kept === undefined) return { PartsCount: total }
  const page: Record<string, unknown>[] = []
  for (let n = marker + 1; n <= total && page.length < max; n++) {
    page.push({ [checksumField(kept.algorithm)]: kept.values[n - 1], PartNumber: n, Size: partRange(info.parts, n)!.length })
  }
  const last = marker + page.length
  return {
    PartsCount: total, PartNumberMarker: marker, NextPartNumberMarker: last, MaxParts: max, IsTruncated: last < total, Part: page,
  }
}

export async function getObjectAttributes(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const wanted = requestedAttributes(ctx.req.headers)
  const info = await headObject(ctx, ctx.bucket!, ctx.key!)
  // S3 asks s3:GetObject as well as s3:GetObjectAttributes (the gateway judged that one).
  authorizeAction(ctx, 's3:GetObject', { bucket, key: ctx.key, keyInfo: info })
  const body: Record<string, unknown> = {}
  // S3 gives the ETag here without its quotes.
  if (wanted.has('ETag')) body.ETag = info.metadata.etag ?? ''
  const checksum = storedChecksum(info.metadata)
  if (wanted.has('Checksum') && checksum !== undefined) {
    // A COMPOSITE checksum without its "-<parts>": the parts count is in ObjectParts.
    body.Checksum = { [checksumField(checksum.algorithm)]: checksum.value.replace(/-\d+$/, ''), ChecksumType: checksum.type }
  }
  if (wanted.has('ObjectParts')) body.ObjectParts = objectParts(info, ctx.req.headers)
  if (wanted.has('StorageClass')) body.StorageClass = 'STANDARD'
  if (wanted.has('ObjectSize')) body.ObjectSize = info.size
  return xmlResponse('GetObjectAttributesResponse', body, 200, { 'last-modified': new Date(info.modifiedAtMs).toUTCString() })
}
