/** @module
 * CopyObject (metadata directive COPY or REPLACE, x-amz-copy-source-if-* conditions on the
 * source, If-None-Match: * and If-Match on the destination as PutObject's) and
 * UploadPartCopy (with x-amz-copy-source-range). Bytes stream from the source key through the
 * gateway into the new key, hashed as they pass for the ETag and the copy's checksum (the
 * algorithm asked for, else the source's; an upload's own for a part); a copy onto itself
 * with REPLACE rewrites only the metadata.
 */
import { O3Error } from '../../core/errors.ts'
import type { KeyInfo } from '../client/index.ts'
import type { DigestName } from '../workers/index.ts'
import { bodyDigest, InlineDigest } from './inline-digest.ts'
import {
  checkWriteCondition, conditionFailure, describingMetadata, etagOf, evaluateConditions, metadataFromHeaders, preconditionFailed, requestBucket, S3_VOLUME, storePayload, WEBSITE_REDIRECT_HEADER, websiteRedirect,
  writeCondition, type ConditionHeaders, type S3Context, type WriteCondition } from './context.ts'
import { authorizeAction, expectOwner, keyFor } from './access.ts'
import { uploadAclMetadata } from './acl.ts'
import { checksumHeader, checksumXml, parseAlgorithm, PART_CHECKSUMS_METADATA, storedChecksum, type ChecksumAlgorithm } from './checksums.ts'
import { S3Error } from './errors.ts'
import { partTarget } from './multipart.ts'
import { checkVersionId } from './objects.ts'
import type { Payload, PayloadResult } from './payload.ts'
import { xmlResponse } from './xml.ts'

function copySource(ctx: S3Context): { bucket: string; key: string } {
  const raw = ctx.req.headers.get('x-amz-copy-source')!
  const question = raw.indexOf('?')
  // bucket/key?versionId=ID: only the null version exists here (objects.ts checkVersionId).
  if (question >= 0) checkVersionId(new URLSearchParams(raw.slice(question + 1)).get('versionId'))
  let decoded: string
  try { decoded = decodeURIComponent(question >= 0 ? raw.slice(0, question) : raw) } catch { throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey') }
  decoded = decoded.replace(/^\//, '')
  const slash = decoded.indexOf('/')
  if (slash <= 0 || slash === decoded.length - 1) throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey')
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) }
}

const COPY_SOURCE_CONDITIONS: ConditionHeaders = {
  ifMatch: 'x-amz-copy-source-if-match', ifNoneMatch: 'x-amz-copy-source-if-none-match',
  ifUnmodifiedSince: 'x-amz-copy-source-if-unmodified-since', ifModifiedSince: 'x-amz-copy-source-if-modified-since',
}

/** The copy's source, once the requester may read it (s3:GetObject on it, as S3 asks of a copy). */
async function sourceObject(ctx: S3Context): Promise<{ bucket: string; key: string; info: KeyInfo }> {
  const src = copySource(ctx)
  const bucket = await requestBucket(ctx, src.bucket)
  expectOwner(ctx, bucket, 'x-amz-source-expected-bucket-owner')
  const info = await keyFor(ctx, bucket, src.key)
  authorizeAction(ctx, 's3:GetObject', { bucket, key: src.key, keyInfo: info })
  // A copy whose source is "not modified" is refused like a failed condition.
  if (evaluateConditions(ctx.req.headers, COPY_SOURCE_CONDITIONS, info) !== undefined) throw preconditionFailed()
  return { ...src, info }
}

/**
 * A source key's bytes as an upload payload, MD5 computed inline when small, else in the
 * worker pool (over the writer's slabs when storePayload gives a stored digest). The pieces
 * are views of the client's pooled read buffers: each is valid until the consumer asks for
 * the next (storePayload's writer copies it into a slab first), then goes back.
 */
function keyPayload(ctx: S3Context, info: KeyInfo, range: { offset: number; length: number }, algorithm?: ChecksumAlgorithm): Payload {
  let resolve!: (r: PayloadResult) => void, reject!: (e: unknown) => void
  const result = new Promise<PayloadResult>((res, rej) => { resolve = res; reject = rej })
  result.catch(() => {})
  const names: DigestName[] = algorithm === undefined ? ['md5'] : ['md5', algorithm]
  const done = (d: Partial<Record<DigestName, Buffer>>): PayloadResult => ({
    sizeBytes: range.length, md5Hex: d.md5!.toString('hex'), checksums: algorithm === undefined ? {} : { [checksumHeader(algorithm)]: d[algorithm]!.toString('base64') },
  })
  const payload: Payload = { sizeBytes: range.length, source: source(), result, digestNames: names }
  async function* source(): AsyncGenerator<Uint8Array> {
    const stored = payload.storedDigest
    const digest = stored === undefined ? bodyDigest(names, range.length) : undefined
    // A StreamDigest borrows pieces until it has hashed them: with one, pieces are not pooled.
    const pooled = digest === undefined || digest instanceof InlineDigest
    try {
      if (range.length > 0) {
        const buffers = ctx.client.readBuffers
        for await (const piece of await ctx.client.openKeyPieces(info, range, { pooled })) {
          try {
            await digest?.update(piece)
            yield piece
          } finally {
            buffers.releaseIfMine(piece.buffer)
          }
        }
      }
      if (stored !== undefined) stored.finish().then(done).then(resolve, reject)
      else resolve(done(await digest!.finish()))
    } finally {
      // A copy that failed, or that its consumer stopped reading: its digest ends unfinished.
      digest?.drop()
    }
  }
  return payload
}

export async function copyObject(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  // The copy is the requester's, with the ACL of this request (never the source's).
  const acl = uploadAclMetadata(ctx, bucket, ctx.req.headers)
  const src = await sourceObject(ctx)
  const directive = (ctx.req.headers.get('x-amz-metadata-directive') ?? 'COPY').toUpperCase()
  if (directive !== 'COPY' && directive !== 'REPLACE') throw new S3Error('InvalidArgument', 'Unknown metadata directive')
  let metadata = directive === 'COPY' ? describingMetadata(src.info) : metadataFromHeaders(ctx.req.headers)
  // The source's website redirect location is never copied (describingMetadata): the copy has the request's, if any.
  const redirect = directive === 'COPY' ? websiteRedirect(ctx.req.headers) : undefined
  if (redirect !== undefined) metadata[WEBSITE_REDIRECT_HEADER] = redirect
  const taggingDirective = (ctx.req.headers.get('x-amz-tagging-directive') ?? 'COPY').toUpperCase()
  if (taggingDirective === 'REPLACE') {
    const tags = metadataFromHeaders(ctx.req.headers)['x-amz-tagging']
    metadata = { ...metadata }
    delete metadata['x-amz-tagging']
    if (tags !== undefined) metadata['x-amz-tagging'] = tags
  } else if (directive === 'REPLACE' && src.info.metadata['x-amz-tagging'] !== undefined) {
    metadata = { ...metadata, 'x-amz-tagging': src.info.metadata['x-amz-tagging'] }
  }
  // The destination's condition (S3's conditional writes), checked first and again by the OM as it commits.
  const condition = writeCondition(ctx.req.headers)
  await checkWriteCondition(ctx, condition)
  try {
    return await copyInto(ctx, src, directive, metadata, acl, condition)
  } catch (err) {
    throw conditionFailure(condition, err) ?? err
  }
}

async function copyInto(ctx: S3Context, src: { bucket: string; key: string; info: KeyInfo }, directive: string, metadata: Record<string, string>, acl: Record<string, string>, condition: WriteCondition): Promise<Response> {
  let info: KeyInfo
  const onItself = src.bucket === ctx.bucket && src.key === ctx.key
  // Onto itself, a copy is committed only over the very key authorized and read as the source
  // (its ETag): a PUT landing meanwhile keeps its own metadata, ACL and owner, and this copy is refused.
  const over = onItself && condition.ifMatchEtag === undefined ? { ifMatchEtag: src.info.metadata.etag } : {}
  // A new checksum algorithm needs the bytes read again: a copy onto itself then goes the
  // way of any copy (below).
  const newAlgorithm = ctx.req.headers.has('x-amz-checksum-algorithm')
  try {
    if (onItself && !newAlgorithm) {
      // Naming a storage class is a change S3 accepts (how tools set one); every object here is
      // STANDARD, so the copy changes its metadata only when the directive says REPLACE.
      if (directive === 'COPY' && !ctx.req.headers.has('x-amz-storage-class') && !ctx.req.headers.has(WEBSITE_REDIRECT_HEADER)) throw new S3Error('InvalidRequest', "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
      const kept: Record<string, string> = {}
      for (const [k, v] of Object.entries(src.info.metadata)) if (k === 'etag' || k.startsWith('x-amz-checksum-') || k === PART_CHECKSUMS_METADATA) kept[k] = v
      info = await ctx.client.commitMultipartKey(S3_VOLUME, ctx.bucket!, ctx.key!, [{ volume: S3_VOLUME, bucket: ctx.bucket!, key: ctx.key! }], { ...metadata, ...kept, ...acl }, { ...condition, ifMatchEtag: src.info.metadata.etag })
    } else {
      // The copy is written in one piece: its checksum is a FULL_OBJECT one, of the algorithm
      // asked for, else of the source's.
      const algorithm = parseAlgorithm(ctx.req.headers.get('x-amz-checksum-algorithm')) ?? storedChecksum(src.info.metadata)?.algorithm
      info = await storePayload(ctx, { volume: S3_VOLUME, bucket: ctx.bucket!, key: ctx.key!, ...condition, ...over }, keyPayload(ctx, src.info, { offset: 0, length: src.info.size }, algorithm), { ...metadata, ...acl })
    }
  } catch (err) {
    if ('ifMatchEtag' in over && err instanceof O3Error && err.code === 'ETAG_MISMATCH') throw new S3Error('OperationAborted', 'A conflicting operation replaced the object while it was copied onto itself. Please try again.')
    throw err
  }
  return xmlResponse('CopyObjectResult', { LastModified: new Date(info.modifiedAtMs).toISOString(), ETag: etagOf(info), ...checksumXml(info.metadata) })
}

export async function uploadPartCopy(ctx: S3Context): Promise<Response> {
  const where = await partTarget(ctx)
  const src = await sourceObject(ctx)
  let range = { offset: 0, length: src.info.size }
  const header = ctx.req.headers.get('x-amz-copy-source-range')
  if (header !== null) {
    const m = /^bytes=(\d+)-(\d+)$/.exec(header.trim())
    if (m === null) throw new S3Error('InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last')
    const first = Number(m[1]), last = Number(m[2])
    // AWS's answer (not GET's InvalidRange 416), word for word.
    if (last < first || last >= src.info.size) throw new S3Error('InvalidArgument', `Range specified is not valid for source object of size: ${src.info.size}`)
    range = { offset: first, length: last - first + 1 }
  }
  const info = await storePayload(ctx, where, keyPayload(ctx, src.info, range, where.checksumAlgorithm), {})
  const { ChecksumType: _, ...checksum } = checksumXml(info.metadata)
  return xmlResponse('CopyPartResult', { LastModified: new Date(info.modifiedAtMs).toISOString(), ETag: etagOf(info), ...checksum })
}
