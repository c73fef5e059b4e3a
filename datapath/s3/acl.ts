/** @module
 * S3 ACLs at the gateway: Get/PutBucketAcl (the bucket's, kept by the OM in BucketInfo.s3),
 * Get/PutObjectAcl (a key's, in its `x-o3-acl` metadata, rewritten as object tagging is, no
 * bytes moved), and the ACL an upload stores (PutObject, CopyObject, CreateMultipartUpload,
 * PostObject): from x-amz-acl or x-amz-grant-*, the writer owning what it writes. Who may call
 * these was decided before (access.ts); the ACLs themselves are core/s3-access/acl.ts.
 */
import type { BucketInfo } from '../client/index.ts'
import { aclFromHeaders, aclToXml, isPrivateAcl, objectAcl, parseAclXml, privateAcl } from '../../core/s3-access/acl.ts'
import { bucketAcl } from '../../core/s3-access/authorize.ts'
import { OBJECT_ACL_METADATA, type S3Acl } from '../../core/s3-access/model.ts'
import { rewriteKeyMetadata } from './access.ts'
import { headObject, requestBucket, S3_VOLUME, type S3Context } from './context.ts'
import { S3Error } from './errors.ts'
import { checkPublicAclAllowed } from './policy.ts'
import { readXml, xmlResponse } from './xml.ts'

/**
 * The ACL a PutBucketAcl or PutObjectAcl sets, for the resource's owner: from its headers or
 * its AccessControlPolicy body, never both (InvalidRequest), nor neither (MalformedACLError).
 * A body that is not an AccessControlPolicy of S3's shape is MalformedACLError, and changes
 * nothing. The body is read once; the ACL is made for whichever owner the key has when it is
 * written (a key replaced meanwhile may have another).
 */
async function requestedAcl(ctx: S3Context, bucketOwner: string): Promise<(owner: string) => S3Acl> {
  const hasBody = Number(ctx.req.headers.get('content-length') ?? 0) > 0 || ctx.req.headers.has('transfer-encoding')
  const fromHeaders = (owner: string) => aclFromHeaders(ctx.req.headers, owner, bucketOwner)
  if (fromHeaders(bucketOwner) !== undefined) {
    if (hasBody) throw new S3Error('InvalidRequest', 'Specifying both an ACL in headers and an AccessControlPolicy body is not allowed')
    return (owner) => fromHeaders(owner)!
  }
  if (!hasBody) throw new S3Error('MalformedACLError', 'The XML you provided was not well-formed or did not validate against our published schema: give x-amz-acl, x-amz-grant-* or an AccessControlPolicy body')
  let doc: Record<string, unknown>
  try {
    doc = await readXml(ctx, 'AccessControlPolicy', { attributes: true })
  } catch (err) {
    // S3 names a bad ACL document MalformedACLError, whatever is wrong with it.
    if (err instanceof S3Error && err.code === 'MalformedXML') throw new S3Error('MalformedACLError', err.message)
    throw err
  }
  return (owner) => parseAclXml(doc, owner)
}

export async function getBucketAcl(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  return xmlResponse('AccessControlPolicy', aclToXml(bucketAcl(bucket)))
}

export async function putBucketAcl(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const acl = (await requestedAcl(ctx, bucket.owner))(bucket.owner)
  checkPublicAclAllowed(bucket, acl)
  await ctx.client.setBucketS3(S3_VOLUME, bucket.name, 'acl', acl)
  return new Response(null, { status: 200 })
}

export async function getObjectAcl(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const info = await headObject(ctx, bucket.name, ctx.key!)
  return xmlResponse('AccessControlPolicy', aclToXml(objectAcl(info.metadata, bucket.owner)))
}

/** Sets a key's ACL (rewriteKeyMetadata); the key keeps its owner (an ACL cannot give a key away) and its bytes. */
export async function putObjectAcl(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const build = await requestedAcl(ctx, bucket.owner)
  await rewriteKeyMetadata(ctx, bucket, 's3:PutObjectAcl', (info) => {
    const acl = build(objectAcl(info.metadata, bucket.owner).owner)
    checkPublicAclAllowed(bucket, acl)
    const metadata = { ...info.metadata }
    delete metadata[OBJECT_ACL_METADATA]
    return Object.assign(metadata, aclMetadata(acl, bucket))
  })
  return new Response(null, { status: 200 })
}

/**
 * The metadata that records a key's ACL: none for the default (the bucket owner's key,
 * private), so that most keys carry nothing and their metadata is what PutObject's early open
 * (putObjectIntent) asked for.
 */
function aclMetadata(acl: S3Acl, bucket: BucketInfo): Record<string, string> {
  return isPrivateAcl(acl, bucket.owner) ? {} : { [OBJECT_ACL_METADATA]: JSON.stringify(acl) }
}

/**
 * The ACL metadata a new key gets (PutObject, CopyObject, CreateMultipartUpload for the key it
 * completes, PostObject with its form's `acl` field given as x-amz-acl): the writer owns it,
 * with the grants `headers` name (x-amz-acl or x-amz-grant-*), else privately. An anonymous
 * writer's key belongs to the bucket owner, who answers for the bucket. Throws the headers'
 * S3 error (InvalidArgument, InvalidRequest...) and AccessDenied under BlockPublicAcls (checkPublicAclAllowed).
 */
export function uploadAclMetadata(ctx: Pick<S3Context, 'user'>, bucket: BucketInfo, headers: Headers): Record<string, string> {
  const writer = ctx.user ?? bucket.owner
  const acl = aclFromHeaders(headers, writer, bucket.owner) ?? privateAcl(writer)
  checkPublicAclAllowed(bucket, acl)
  return aclMetadata(acl, bucket)
}

/** The owner of a key as listings show it (ListObjects, fetch-owner, ListObjectVersions). */
export function keyOwner(metadata: Record<string, string>, bucket: BucketInfo): { ID: string; DisplayName: string } {
  const owner = objectAcl(metadata, bucket.owner).owner
  return { ID: owner, DisplayName: owner }
}
