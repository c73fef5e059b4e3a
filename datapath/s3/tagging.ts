/** @module
 * Tagging: Get/Put/DeleteObjectTagging and Get/Put/DeleteBucketTagging. An object's tags live
 * in the key's metadata as `x-amz-tagging` (query-string form, in the order sent); a change
 * rewrites only the key's metadata through commitMultipartKey with the key as its own part,
 * so no bytes move and Last-Modified stays. A bucket's tags live with the bucket in the OM
 * (BucketS3Config.tags, setBucketS3). Both are checked against S3's limits (checkTags: InvalidTag).
 */
import { BUCKET_TAGS_COUNT_MAX, checkTagging, checkTags, headObject, requestBucket, S3_VOLUME, type S3Context } from './context.ts'
import type { BucketInfo } from '../client/index.ts'
import { rewriteKeyMetadata } from './access.ts'
import { S3Error } from './errors.ts'
import { readXml, xmlResponse } from './xml.ts'

/** Rewrites the key's tags (rewriteKeyMetadata): `tagging` in stored form, '' for none. */
function setTags(ctx: S3Context, bucket: BucketInfo, action: 's3:PutObjectTagging' | 's3:DeleteObjectTagging', tagging: string): Promise<void> {
  return rewriteKeyMetadata(ctx, bucket, action, (info) => {
    const metadata: Record<string, string> = { ...info.metadata, 'x-amz-tagging': tagging }
    if (tagging === '') delete metadata['x-amz-tagging']
    return metadata
  })
}

/** The tags of a Tagging request body, in the order sent (MalformedXML when it has no TagSet or a Tag no Key). */
async function readTagSet(ctx: S3Context): Promise<[string, string][]> {
  const body = await readXml(ctx, 'Tagging')
  const set = body.TagSet as { Tag?: { Key?: unknown; Value?: unknown }[] } | undefined
  if (set === undefined || typeof set !== 'object') throw new S3Error('MalformedXML', 'Tagging needs a TagSet')
  const tags: [string, string][] = []
  for (const t of set.Tag ?? []) {
    if (typeof t.Key !== 'string') throw new S3Error('MalformedXML', 'Every Tag needs a Key')
    tags.push([t.Key, typeof t.Value === 'string' ? t.Value : ''])
  }
  return tags
}

const tagSetXml = (tags: Iterable<[string, string]>) => xmlResponse('Tagging', { TagSet: { Tag: [...tags].map(([Key, Value]) => ({ Key, Value })) } })

export async function getObjectTagging(ctx: S3Context): Promise<Response> {
  await requestBucket(ctx)
  const info = await headObject(ctx, ctx.bucket!, ctx.key!)
  return tagSetXml(new URLSearchParams(info.metadata['x-amz-tagging'] ?? ''))
}

export async function putObjectTagging(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  await setTags(ctx, bucket, 's3:PutObjectTagging', checkTagging(new URLSearchParams(await readTagSet(ctx))))
  return new Response(null, { status: 200 })
}

export async function deleteObjectTagging(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  await setTags(ctx, bucket, 's3:DeleteObjectTagging', '')
  return new Response(null, { status: 204 })
}

/** GetBucketTagging: the bucket's tags in the order they were put; NoSuchTagSet when it has none. */
export async function getBucketTagging(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const tags = bucket.s3?.tags
  if (tags === undefined || tags.length === 0) throw new S3Error('NoSuchTagSet', 'The TagSet does not exist')
  return tagSetXml(tags)
}

/** PutBucketTagging: replaces the bucket's tag set whole (an empty one clears it, as S3 then has none). */
export async function putBucketTagging(ctx: S3Context): Promise<Response> {
  await requestBucket(ctx)
  const tags = await readTagSet(ctx)
  checkTags(tags, BUCKET_TAGS_COUNT_MAX, 'Bucket')
  await ctx.client.setBucketS3(S3_VOLUME, ctx.bucket!, 'tags', tags.length === 0 ? null : tags)
  return new Response(null, { status: 204 })
}

export async function deleteBucketTagging(ctx: S3Context): Promise<Response> {
  await requestBucket(ctx)
  await ctx.client.setBucketS3(S3_VOLUME, ctx.bucket!, 'tags', null)
  return new Response(null, { status: 204 })
}
