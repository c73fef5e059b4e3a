/** @module
 * Bucket operations: ListBuckets (the requester's, paged), CreateBucket (in volume s3v, created
 * on first use; with a canned or explicit ACL), HeadBucket, DeleteBucket (with its incomplete multipart uploads),
 * GetBucketLocation, GetBucketVersioning (never versioned).
 */
import { O3Error } from '../../core/errors.ts'
import { LIST_VOLUMES_COUNT_MAX } from '../../core/limits.ts'
import type { BucketInfo } from '../client/index.ts'
import { S3Error } from './errors.ts'
import { aclFromHeaders, isPrivateAcl } from '../../core/s3-access/acl.ts'
import { MULTIPART_VOLUME, requestBucket, S3_VOLUME, signedUser, type S3Context } from './context.ts'
import { readXml, xmlResponse } from './xml.ts'
import { checkPublicAclAllowed } from './policy.ts'

/** Runs `op`, which needs `volume`; the first time the gateway uses a volume it does not
 *  exist yet, so on VOLUME_NOT_FOUND it is created and `op` runs again. Asking first would
 *  cost every request a round trip to the OM. */
export async function withVolume<T>(ctx: S3Context, volume: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op()
  } catch (err) {
    if (!(err instanceof O3Error && err.code === 'VOLUME_NOT_FOUND')) throw err
    await ctx.client.createVolume(volume, { owner: 's3' }).catch((e: unknown) => {
      if (!(e instanceof O3Error && e.code === 'VOLUME_ALREADY_EXISTS')) throw e
    })
    return op()
  }
}

/** S3's ceiling of max-buckets (and the page it answers without one). */
const LIST_BUCKETS_COUNT_MAX = 10_000

/**
 * ListBuckets: the requester's buckets in name order, from `prefix` (in `bucket-region`), after the bucket a
 * continuation-token names, at most max-buckets (1..10000); a page that stops short of the
 * last one carries the token of the next. The OM lists a volume's buckets by name, whoever
 * owns them, in pages: they are read until the page is full (one more tells it is not the last).
 */
export async function listBuckets(ctx: S3Context): Promise<Response> {
  const user = signedUser(ctx)
  const prefix = ctx.query.get('prefix') ?? ''
  const rawMax = ctx.query.get('max-buckets')
  const max = rawMax === null ? LIST_BUCKETS_COUNT_MAX : Number(rawMax)
  if (rawMax !== null && (!/^\d+$/.test(rawMax) || max < 1 || max > LIST_BUCKETS_COUNT_MAX)) throw new S3Error('InvalidArgument', `Argument max-buckets must be an integer between 1 and ${LIST_BUCKETS_COUNT_MAX}`)
  const token = ctx.query.get('continuation-token')
  let after: string | undefined
  if (token !== null && token !== '') {
    after = Buffer.from(token, 'base64url').toString('utf8')
    if (!/^[a-z0-9][a-z0-9.-]{0,62}$/.test(after)) throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect')
  }
  // A token from before the prefix starts the page at the prefix (the OM's listing stops at the first name outside it).
  if (after !== undefined && after < prefix) after = undefined
  const owned: BucketInfo[] = []
  while (owned.length <= max) {
    const page = await withVolume(ctx, S3_VOLUME, () => ctx.client.listBuckets(S3_VOLUME, { prefix, startAfter: after }))
    owned.push(...page.filter((b) => b.owner === user))
    if (page.length < LIST_VOLUMES_COUNT_MAX) break
    after = page[page.length - 1].name
  }
  // bucket-region: every bucket here is in this endpoint's region.
  const region = ctx.query.get('bucket-region')
  if (region !== null && region !== ctx.region) owned.length = 0
  const shown = owned.slice(0, max)
  const truncated = owned.length > max
  return xmlResponse('ListAllMyBucketsResult', {
    Buckets: { Bucket: shown.map((b) => ({ Name: b.name, CreationDate: new Date(b.createdAtMs).toISOString(), BucketRegion: ctx.region })) },
    Owner: { ID: user, DisplayName: user },
    ...(truncated ? { ContinuationToken: Buffer.from(shown[shown.length - 1].name).toString('base64url') } : {}),
    ...(ctx.query.has('prefix') ? { Prefix: prefix } : {}),
  })
}

/**
 * S3's reserved bucket name prefixes and suffixes (Punycode, access point aliases, S3 Express
 * directory buckets, Object Lambda aliases), on top of the OM's naming rules: a client that
 * made such a bucket here could not make it on S3, and one named like an alias could be
 * mistaken for one. Checked at creation only: existing buckets keep being served.
 */
const RESERVED_BUCKET_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-']
const RESERVED_BUCKET_SUFFIXES = ['-s3alias', '--ol-s3', '--x-s3', '.mrap']

/**
 * A CreateBucket's x-amz-object-ownership: ObjectWriter is what O3 does (a key belongs to its
 * writer, ACLs apply); the two settings that change that, BucketOwnerPreferred and
 * BucketOwnerEnforced (ACLs off), are NotImplemented rather than taken and not kept, which would
 * leave ACLs granting what the client believes disabled; any other value is InvalidArgument, as S3.
 */
function checkObjectOwnership(value: string | null): void {
  if (value === null || value === 'ObjectWriter') return
  if (value === 'BucketOwnerPreferred' || value === 'BucketOwnerEnforced') {
    throw new S3Error('NotImplemented', `Object ownership ${value} is not supported by the O3 S3 gateway: keys belong to their writers and ACLs apply (ObjectWriter)`, { 'x-amz-header': 'x-amz-object-ownership' })
  }
  throw new S3Error('InvalidArgument', `Invalid x-amz-object-ownership ${JSON.stringify(value)}: ObjectWriter, BucketOwnerPreferred or BucketOwnerEnforced`)
}

/**
 * A CreateBucketConfiguration's LocationConstraint: never us-east-1 (S3 makes its buckets
 * without one: InvalidLocationConstraint); any region but the endpoint's is
 * IllegalLocationConstraintException, as a regional S3 endpoint answers (one gateway serves one
 * region; S3's global endpoint would make the bucket in the region named).
 */
function checkLocationConstraint(region: string, endpointRegion: string): void {
  if (region === 'us-east-1') throw new S3Error('InvalidLocationConstraint', 'The specified location-constraint is not valid')
  if (region !== endpointRegion) throw new S3Error('IllegalLocationConstraintException', `The ${region} location constraint is incompatible for the region specific endpoint this request was sent to (${endpointRegion}).`)
}

/**
 * CreateBucket, with the ACL of x-amz-acl or x-amz-grant-* (checked before the bucket is made,
 * so a bad one makes nothing; set right after, the bucket being private meanwhile).
 */
export async function createBucket(ctx: S3Context): Promise<Response> {
  const name = ctx.bucket!
  const reserved = RESERVED_BUCKET_PREFIXES.find((p) => name.startsWith(p)) ?? RESERVED_BUCKET_SUFFIXES.find((x) => name.endsWith(x))
  if (reserved !== undefined) throw new S3Error('InvalidBucketName', `The specified bucket is not valid: names with ${JSON.stringify(reserved)} are reserved by S3`)
  const user = signedUser(ctx)
  const acl = aclFromHeaders(ctx.req.headers, user, user)
  checkObjectOwnership(ctx.req.headers.get('x-amz-object-ownership'))
  const length = Number(ctx.req.headers.get('content-length') ?? 0)
  if (length > 0) {
    const body = await readXml(ctx, 'CreateBucketConfiguration')
    const region = body.LocationConstraint
    if (region !== undefined && typeof region === 'string' && region !== '') checkLocationConstraint(region, ctx.region)
  }
  let created: BucketInfo
  try {
    created = await withVolume(ctx, S3_VOLUME, () => ctx.client.createBucket(S3_VOLUME, ctx.bucket!, { owner: user }))
  } catch (err) {
    if (err instanceof O3Error && err.code === 'BUCKET_ALREADY_EXISTS') {
      const existing = await ctx.client.getBucket(S3_VOLUME, ctx.bucket!)
      // S3 in us-east-1 (its legacy behaviour) answers its owner's re-creation 200 and resets
      // the bucket's ACL to the request's (private without one); other regions BucketAlreadyOwnedByYou.
      if (existing.owner === user && ctx.region === 'us-east-1') {
        const reset = acl === undefined || isPrivateAcl(acl, user) ? null : acl
        if (reset !== null) checkPublicAclAllowed(existing, reset)
        if (reset !== null || existing.s3?.acl !== undefined) await ctx.client.setBucketS3(S3_VOLUME, ctx.bucket!, 'acl', reset)
        return new Response(null, { status: 200, headers: { location: `/${ctx.bucket}` } })
      }
      if (existing.owner === user) throw new S3Error('BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it')
      throw new S3Error('BucketAlreadyExists', 'The requested bucket name is not available')
    }
    throw err
  }
  if (acl !== undefined && !isPrivateAcl(acl, user)) await ctx.client.setBucketS3(S3_VOLUME, ctx.bucket!, 'acl', acl)
  await dropUploadsBefore(ctx, name, created.createdAtMs)
  return new Response(null, { status: 200, headers: { location: `/${ctx.bucket}` } })
}

/**
 * Uploads left by an earlier bucket of this name that went without S3 (`o3 sh bucket delete`
 * before it dropped them too, a gateway stopped midway) are not the new bucket's: every key of
 * its multipart bucket older than the bucket goes (both times are the OM's clock), and none
 * an upload started since wrote.
 */
async function dropUploadsBefore(ctx: S3Context, bucket: string, createdAtMs: number): Promise<void> {
  let startAfter: string | undefined
  try {
    for (;;) {
      const page = await ctx.client.listKeys(MULTIPART_VOLUME, bucket, { startAfter })
      for (const k of page.keys) {
        if (k.createdAtMs >= createdAtMs) continue
        await ctx.client.deleteKey(MULTIPART_VOLUME, bucket, k.name).catch((err: unknown) => {
          if (!(err instanceof O3Error && err.code === 'KEY_NOT_FOUND')) throw err
        })
      }
      if (!page.truncated || page.nextStartAfter === null) return
      startAfter = page.nextStartAfter
    }
  } catch (err) {
    if (!(err instanceof O3Error && (err.code === 'BUCKET_NOT_FOUND' || err.code === 'VOLUME_NOT_FOUND'))) throw err
  }
}

export async function headBucket(ctx: S3Context): Promise<Response> {
  await requestBucket(ctx)
  return new Response(null, { status: 200, headers: { 'x-amz-bucket-region': ctx.region } })
}

/**
 * S3 deletes a bucket that holds no objects even with multipart uploads in progress, and
 * the uploads with it. The OM deletes the bucket only if it holds no keys, atomically, so
 * that comes first: a bucket with objects answers BucketNotEmpty and keeps its uploads. Then
 * every part and upload record goes, and the bucket's multipart bucket with them.
 */
export async function deleteBucket(ctx: S3Context): Promise<Response> {
  await requestBucket(ctx)
  await ctx.client.deleteBucket(S3_VOLUME, ctx.bucket!)
  await ctx.client.deleteBucketWithKeys(MULTIPART_VOLUME, ctx.bucket!)
  return new Response(null, { status: 204 })
}

/**
 * GetBucketVersioning: O3 keeps one version of a key, so every bucket is one S3 never
 * versioned, which S3 answers with an empty VersioningConfiguration (no Status).
 */
export async function getBucketVersioning(ctx: S3Context): Promise<Response> {
  await requestBucket(ctx)
  return xmlResponse('VersioningConfiguration', {})
}

export async function getBucketLocation(ctx: S3Context): Promise<Response> {
  await requestBucket(ctx)
  return xmlResponse('LocationConstraint', { '#text': ctx.region === 'us-east-1' ? '' : ctx.region })
}
