/** @module
 * Bucket policies and Block Public Access: Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus,
 * Put/Get/DeletePublicAccessBlock, kept with the bucket in the OM (BucketInfo.s3) so every
 * gateway answers alike; and the public-access checks other handlers call
 * (checkPublicAclAllowed). A policy is checked (core/s3-access/policy.ts) before the OM stores
 * it, as the client sent it, so a refused one changes nothing.
 */
import { BUCKET_S3_FIELD_BYTES_MAX } from '../../core/limits.ts'
import type { PublicAccessBlockConfig, S3Acl } from '../../core/s3-access/model.ts'
import { isPublicAcl } from '../../core/s3-access/acl.ts'
import { isPublicPolicy, parsePolicy, POLICY_NORMALIZED_BYTES_MAX } from '../../core/s3-access/policy.ts'
import type { BucketInfo } from '../client/index.ts'
import { requestBucket, S3_VOLUME, type S3Context } from './context.ts'
import { S3Error } from './errors.ts'
import { readBodyText } from './payload.ts'
import { readXml, xmlResponse } from './xml.ts'

const accessDenied = () => new S3Error('AccessDenied', 'Access Denied')

/**
 * PutBucketPolicy: the body is the policy document. A document S3 refuses is MalformedPolicy
 * (400); a public one under BlockPublicPolicy is AccessDenied (403), as S3 answers. S3 answers
 * 204 (its sample, and s3-tests), not the 200 of its response syntax.
 */
export async function putBucketPolicy(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const text = await readPolicyText(ctx)
  const policy = parsePolicy(text, bucket.name)
  if (bucket.s3?.publicAccessBlock?.blockPublicPolicy === true && isPublicPolicy(policy)) throw accessDenied()
  await ctx.client.setBucketS3(S3_VOLUME, bucket.name, 'policy', text)
  return new Response(null, { status: 204 })
}

/** The request body as text: verified as its headers declare (Content-MD5, checksums, aws-chunked), UTF-8. */
async function readPolicyText(ctx: S3Context): Promise<string> {
  const tooLarge = () => new S3Error('MalformedPolicy', `Normalized policy document exceeds the maximum allowed size of ${POLICY_NORMALIZED_BYTES_MAX} bytes`)
  // The OM keeps at most BUCKET_S3_FIELD_BYTES_MAX of JSON per field; past the 20 KiB of a
  // normalized policy, what room is left holds the sender's whitespace.
  const text = await readBodyText({ body: ctx.body, headers: ctx.req.headers, auth: ctx.auth, sizeMaxBytes: BUCKET_S3_FIELD_BYTES_MAX / 2, idleTimeoutMs: ctx.bodyIdleTimeoutMs }, {
    tooLarge,
    // IAM: "all policies must be in UTF-8".
    notUtf8: () => new S3Error('MalformedPolicy', 'This policy contains invalid Json'),
  })
  if (Buffer.byteLength(JSON.stringify(text)) > BUCKET_S3_FIELD_BYTES_MAX) throw tooLarge()
  return text
}

/** GetBucketPolicy: the document as it was sent; NoSuchBucketPolicy (404) when there is none. */
export async function getBucketPolicy(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const policy = bucket.s3?.policy
  if (policy === undefined) throw noSuchBucketPolicy()
  return new Response(policy, { status: 200, headers: { 'content-type': 'application/json' } })
}

/** DeleteBucketPolicy: 204, with a policy or without one (as S3). */
export async function deleteBucketPolicy(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  if (bucket.s3?.policy !== undefined) await ctx.client.setBucketS3(S3_VOLUME, bucket.name, 'policy', null)
  return new Response(null, { status: 204 })
}

/** GetBucketPolicyStatus: whether the policy is public; NoSuchBucketPolicy without one (as S3 answers). */
export async function getBucketPolicyStatus(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const policy = bucket.s3?.policy
  if (policy === undefined) throw noSuchBucketPolicy()
  // Lower case: botocore reads a boolean as text == 'true' (S3's sample's TRUE reads false).
  return xmlResponse('PolicyStatus', { IsPublic: String(isPublicPolicy(parsePolicy(policy, bucket.name))) })
}

function noSuchBucketPolicy(): S3Error {
  return new S3Error('NoSuchBucketPolicy', 'The bucket policy does not exist')
}

const PUBLIC_ACCESS_BLOCK_FIELDS = [
  ['BlockPublicAcls', 'blockPublicAcls'],
  ['IgnorePublicAcls', 'ignorePublicAcls'],
  ['BlockPublicPolicy', 'blockPublicPolicy'],
  ['RestrictPublicBuckets', 'restrictPublicBuckets'],
] as const satisfies readonly (readonly [string, keyof PublicAccessBlockConfig])[]

/** PutPublicAccessBlock: a PublicAccessBlockConfiguration whose four flags default to false. */
export async function putPublicAccessBlock(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const body = await readXml(ctx, 'PublicAccessBlockConfiguration')
  const config: PublicAccessBlockConfig = { blockPublicAcls: false, ignorePublicAcls: false, blockPublicPolicy: false, restrictPublicBuckets: false }
  for (const [element, field] of PUBLIC_ACCESS_BLOCK_FIELDS) {
    const v = body[element]
    if (v === undefined) continue
    const text = typeof v === 'string' ? v.trim().toLowerCase() : undefined
    if (text !== 'true' && text !== 'false') throw new S3Error('MalformedXML', `The XML you provided was not well-formed or did not validate against our published schema: ${element} must be true or false`)
    config[field] = text === 'true'
  }
  await ctx.client.setBucketS3(S3_VOLUME, bucket.name, 'publicAccessBlock', config)
  return new Response(null, { status: 200 })
}

/** GetPublicAccessBlock; NoSuchPublicAccessBlockConfiguration (404) when none was set. */
export async function getPublicAccessBlock(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const config = bucket.s3?.publicAccessBlock
  if (config === undefined) throw new S3Error('NoSuchPublicAccessBlockConfiguration', 'The public access block configuration was not found')
  const body: Record<string, string> = {}
  for (const [element, field] of PUBLIC_ACCESS_BLOCK_FIELDS) body[element] = String(config[field])
  return xmlResponse('PublicAccessBlockConfiguration', body)
}

/** DeletePublicAccessBlock: 204. */
export async function deletePublicAccessBlock(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  if (bucket.s3?.publicAccessBlock !== undefined) await ctx.client.setBucketS3(S3_VOLUME, bucket.name, 'publicAccessBlock', null)
  return new Response(null, { status: 204 })
}

/**
 * BlockPublicAcls: "PUT Bucket ACL and PUT Object ACL calls fail if the specified ACL is
 * public. PUT Object calls fail if the request includes a public ACL" (AccessDenied). For
 * the handlers that set an ACL: PutBucketAcl, PutObjectAcl, PutObject, CopyObject,
 * CreateMultipartUpload, PostObject; a public ACL is one with a grant to AllUsers or
 * AuthenticatedUsers.
 */
export function checkPublicAclAllowed(bucket: BucketInfo, acl: S3Acl): void {
  if (bucket.s3?.publicAccessBlock?.blockPublicAcls === true && isPublicAcl(acl)) throw accessDenied()
}
