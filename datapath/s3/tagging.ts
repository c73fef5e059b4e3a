/** @module
 * Object tagging: Get/Put/DeleteObjectTagging. Tags live in the key's metadata as
 * `x-amz-tagging` (query-string form); a change rewrites only the key's metadata through
 * commitMultipartKey with the key as its own part, so no bytes move.
 */
import { checkTagging, headObject, requestBucket, S3_VOLUME, type S3Context } from './context.ts'
import { S3Error } from './errors.ts'
import { readXml, xmlResponse } from './xml.ts'

async function setTags(ctx: S3Context, tagging: string): Promise<void> {
  const info = await headObject(ctx, ctx.bucket!, ctx.key!)
  const metadata: Record<string, string> = { ...info.metadata, 'x-amz-tagging': tagging }
  if (tagging === '') delete metadata['x-amz-tagging']
  await ctx.client.commitMultipartKey(S3_VOLUME, ctx.bucket!, ctx.key!, [{ volume: S3_VOLUME, bucket: ctx.bucket!, key: ctx.key! }], metadata)
}

export async function getObjectTagging(ctx: S3Context): Promise<Response> {
  await requestBucket(ctx)
  const info = await headObject(ctx, ctx.bucket!, ctx.key!)
  const tags = [...new URLSearchParams(info.metadata['x-amz-tagging'] ?? '')].map(([Key, Value]) => ({ Key, Value }))
  return xmlResponse('Tagging', { TagSet: { Tag: tags } })
}

export async function putObjectTagging(ctx: S3Context): Promise<Response> {
  await requestBucket(ctx)
  const body = await readXml(ctx.req, 'Tagging', ctx.bodyIdleTimeoutMs)
  const set = body.TagSet as { Tag?: { Key?: unknown; Value?: unknown }[] } | undefined
  if (set === undefined || typeof set !== 'object') throw new S3Error('MalformedXML', 'Tagging needs a TagSet')
  const tags = new URLSearchParams()
  for (const t of set.Tag ?? []) {
    if (typeof t.Key !== 'string') throw new S3Error('MalformedXML', 'Every Tag needs a Key')
    tags.append(t.Key, typeof t.Value === 'string' ? t.Value : '')
  }
  await setTags(ctx, checkTagging(tags))
  return new Response(null, { status: 200 })
}

export async function deleteObjectTagging(ctx: S3Context): Promise<Response> {
  await requestBucket(ctx)
  await setTags(ctx, '')
  return new Response(null, { status: 204 })
}
