/** @module
 * The gateway's authorization: once per request in S3Gateway.handle, after authentication and
 * before the handler (authorizeRequest), and where a handler must check more itself: a copy's
 * source, each key of DeleteObjects, a multipart upload's initiator, a browser form once its
 * signature verifies (authorizeAction). It builds the request's policy condition keys and asks
 * core/s3-access/authorize.ts; a refusal is AccessDenied. A key that does not exist is NoSuchKey
 * only for those who may list its bucket, else AccessDenied (S3's rule, so that nobody learns
 * which keys exist in a bucket they cannot list); a missing bucket is NoSuchBucket for anyone.
 */
import type { BucketInfo, KeyInfo } from '../client/index.ts'
import { objectAcl } from '../../core/s3-access/acl.ts'
import { authorize, needsObjectAcl, type AuthorizeInput } from '../../core/s3-access/authorize.ts'
import type { S3Acl } from '../../core/s3-access/model.ts'
import { log } from '../../core/log.ts'
import { O3Error } from '../../core/errors.ts'
import { headObject, requestBucket, S3_VOLUME, type S3Context } from './context.ts'
import { S3Error } from './errors.ts'

/** Actions any signed request may take, with no bucket to judge them by. */
const SIGNED_ONLY_ACTIONS = ['s3:ListAllMyBuckets', 's3:CreateBucket']

/** What a route tells authorizeRequest: its action, and whether its handler authorizes it instead (after reading what it needs). */
export interface RouteAccess {
  action?: string
  byHandler?: boolean
  /** Answered to anyone, unjudged (a CORS preflight, which browsers never sign). */
  anyone?: boolean
}

/**
 * Authorizes a request before its handler runs, or throws AccessDenied, NoSuchBucket or
 * NoSuchKey. A route with no action (NotImplemented, MethodNotAllowed) is for signed requests. A
 * route whose handler authorizes (byHandler) only has its bucket checked to exist here.
 */
export async function authorizeRequest(ctx: S3Context, route: RouteAccess): Promise<void> {
  if (route.anyone === true) return
  const action = route.action
  // Calls O3 does not do (NotImplemented, MethodNotAllowed) are answered as such to signed
  // requests only: nothing is public about them.
  if (action === undefined) {
    if (ctx.user === undefined) throw accessDenied(ctx, 'unknown', 'anonymous requests may only make calls O3 implements')
    return
  }
  if (SIGNED_ONLY_ACTIONS.includes(action)) {
    if (ctx.user === undefined) throw accessDenied(ctx, action, 'anonymous requests cannot')
    return
  }
  const bucket = await requestBucket(ctx)
  expectOwner(ctx, bucket, 'x-amz-expected-bucket-owner')
  if (route.byHandler === true) return
  // The key itself, not only its ACL: its tags are the policy's s3:ExistingObjectTag/<tag>.
  const keyInfo = needsObjectAcl(action) ? await keyFor(ctx, bucket, ctx.key!) : undefined
  authorizeAction(ctx, action, { bucket, key: ctx.key, keyInfo })
  // S3: an upload that tags its object (PutObject, CopyObject, CreateMultipartUpload with
  // x-amz-tagging) needs s3:PutObjectTagging too, which ACLs never grant.
  if (action === 's3:PutObject' && ctx.req.headers.has('x-amz-tagging')) authorizeAction(ctx, 's3:PutObjectTagging', { bucket, key: ctx.key })
}

/**
 * x-amz-expected-bucket-owner (and x-amz-source-expected-bucket-owner for a copy's source):
 * a client that names the owner it expects is refused, AccessDenied, by a bucket someone else
 * owns, so that a bucket deleted and re-created by another user never gets its data.
 */
export function expectOwner(ctx: S3Context, bucket: BucketInfo, header: 'x-amz-expected-bucket-owner' | 'x-amz-source-expected-bucket-owner'): void {
  const expected = ctx.req.headers.get(header)
  if (expected !== null && expected !== bucket.owner) throw accessDenied(ctx, header, `bucket ${bucket.name} is not owned by ${expected}`)
}

/**
 * The key an action needs the ACL of (the request's own is read in the authentication call):
 * NoSuchKey when it does not exist and the requester may list the bucket, else AccessDenied.
 */
export async function keyFor(ctx: S3Context, bucket: BucketInfo, key: string): Promise<KeyInfo> {
  try {
    return await headObject(ctx, bucket.name, key)
  } catch (err) {
    if (!(err instanceof S3Error && err.code === 'NoSuchKey')) throw err
    // Whether the requester could have listed this very key: s3:ListBucket with the key as
    // its s3:prefix (s3-tests head_object_404_with_policy_prefix: a policy allowing listing
    // under public/ makes a missing public/object 404 and a missing private/object 403).
    if (decide(ctx, 's3:ListBucket', { bucket }, { 's3:prefix': key }).allowed) throw err
    throw accessDenied(ctx, 's3:GetObject', `key ${key} does not exist and the requester may not list bucket ${bucket.name}`)
  }
}

/**
 * Throws AccessDenied unless the requester may do `action` on `target` (its bucket, and key if
 * any: `objectAcl`, or the ACL in `keyInfo`'s metadata, for actions judged by the key's ACL).
 * `override` replaces condition keys the request's headers would give (a DeleteObjects entry's
 * own ETag is its s3:if-match).
 */
export function authorizeAction(ctx: S3Context, action: string, target: { bucket: BucketInfo; key?: string; keyInfo?: KeyInfo; objectAcl?: S3Acl }, override: ConditionOverride = {}): void {
  const d = decide(ctx, action, target, override)
  if (!d.allowed) throw accessDenied(ctx, action, d.reason)
}

/**
 * Rewrites the request's key's metadata (its ACL, its tags) as `edit` makes it from the key,
 * without moving its bytes or its Last-Modified. The OM commits only over the key version read
 * (its ETag), so a PUT racing it never gets the old metadata with its new bytes; a lost race
 * reads the key again, once, and authorizes `action` again, since the new key may be another
 * writer's.
 */
export async function rewriteKeyMetadata(ctx: S3Context, bucket: BucketInfo, action: string, edit: (info: KeyInfo) => Record<string, string>): Promise<void> {
  const key = ctx.key!
  for (let attempt = 1; ; attempt++) {
    const info = await keyFor(ctx, bucket, key)
    if (attempt > 1) authorizeAction(ctx, action, { bucket, key, keyInfo: info })
    try {
      await ctx.client.commitMultipartKey(S3_VOLUME, bucket.name, key, [{ volume: S3_VOLUME, bucket: bucket.name, key }], edit(info), { ifMatchEtag: info.metadata.etag, keepTimes: true })
      return
    } catch (err) {
      if (!(err instanceof O3Error && err.code === 'ETAG_MISMATCH') || attempt >= 2) throw err
      // The next read asks the OM, not the request's lookup.
      ctx.found.key = undefined
    }
  }
}

/** Condition keys set for one decision; undefined: absent, whatever the request says. */
type ConditionOverride = Record<string, string | undefined>

/** `override` replaces condition keys the request itself would give (s3:prefix for a key's listing check). */
function decide(ctx: S3Context, action: string, target: { bucket: BucketInfo; key?: string; keyInfo?: KeyInfo; objectAcl?: S3Acl }, override: ConditionOverride = {}) {
  const { bucket, key, keyInfo } = target
  const input: AuthorizeInput = {
    principal: ctx.user, action, bucket, key: keyInfo, groups: ctx.groups,
    resource: key === undefined ? `arn:aws:s3:::${bucket.name}` : `arn:aws:s3:::${bucket.name}/${key}`,
    objectAcl: target.objectAcl ?? (keyInfo === undefined ? undefined : objectAcl(keyInfo.metadata, bucket.owner)),
    // Only a policy reads conditions: most buckets have none, and their requests skip building them.
    conditions: bucket.s3?.policy !== undefined ? { ...conditions(ctx, keyInfo), ...override } : {},
  }
  return authorize(input)
}

function accessDenied(ctx: S3Context, action: string, reason: string): S3Error {
  log.debug(`S3 gateway: ${action} by ${ctx.user ?? 'anonymous'} denied (request ${ctx.requestId}): ${reason}`)
  return new S3Error('AccessDenied', 'Access Denied')
}

/** s3:signatureversion: AWS4-HMAC-SHA256 for SigV4 (a form's too), AWS for SigV2, none unsigned. */
function signatureVersion(auth: S3Context['auth']): string | undefined {
  const v = auth.version === 'form' ? auth.signatureVersion : auth.version
  return v === 4 ? 'AWS4-HMAC-SHA256' : v === 2 ? 'AWS' : undefined
}

/** Request headers S3 offers as condition keys `s3:<header>`. */
const HEADER_KEYS = [
  'x-amz-acl', 'x-amz-grant-read', 'x-amz-grant-write', 'x-amz-grant-read-acp', 'x-amz-grant-write-acp', 'x-amz-grant-full-control', 'x-amz-copy-source',
  'x-amz-metadata-directive', 'x-amz-server-side-encryption', 'x-amz-storage-class', 'x-amz-content-sha256', 'x-amz-website-redirect-location',
  // S3's keys for enforcing conditional writes and deletes (s3:if-match, s3:if-none-match).
  'if-match', 'if-none-match',
]

/**
 * The condition keys of a request (AWS "Actions, resources, and condition keys for Amazon S3"
 * and the global condition keys): an absent key is undefined, so that a Null condition sees it
 * missing. `keyInfo`, the key acted on, gives s3:ExistingObjectTag/<tag>.
 */
export function conditions(ctx: S3Context, keyInfo?: KeyInfo): Record<string, string | string[] | undefined> {
  const h = ctx.req.headers
  const q = ctx.query
  const nowMs = Date.now()
  const out: Record<string, string | string[] | undefined> = {
    'aws:SourceIp': ctx.remoteAddress?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, ''),
    'aws:SecureTransport': String(ctx.secureTransport === true),
    'aws:CurrentTime': new Date(nowMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    'aws:EpochTime': String(Math.floor(nowMs / 1000)),
    'aws:UserAgent': h.get('user-agent') ?? undefined,
    'aws:Referer': h.get('referer') ?? undefined,
    'aws:username': ctx.user,
    // IAM: for an anonymous caller (S3, SQS, SNS) aws:userid is `anonymous`; aws:username is absent.
    'aws:userid': ctx.user ?? 'anonymous',
    'aws:PrincipalType': ctx.user === undefined ? 'Anonymous' : 'User',
    's3:signatureversion': signatureVersion(ctx.auth),
    's3:authType': ctx.user === undefined ? undefined : ctx.auth.version === 'form' ? 'POST' : h.has('authorization') ? 'REST-HEADER' : 'REST-QUERY-STRING',
    's3:prefix': q.get('prefix') ?? undefined,
    's3:delimiter': q.get('delimiter') ?? undefined,
    's3:max-keys': q.get('max-keys') ?? undefined,
  }
  for (const name of HEADER_KEYS) out[`s3:${name}`] = h.get(name) ?? undefined
  const requestTags = h.get('x-amz-tagging')
  if (requestTags !== null) {
    const tags = new URLSearchParams(requestTags)
    for (const [k, v] of tags) out[`s3:RequestObjectTag/${k}`] = v
    out['s3:RequestObjectTagKeys'] = [...tags.keys()]
  }
  const existing = keyInfo?.metadata['x-amz-tagging']
  if (existing !== undefined) for (const [k, v] of new URLSearchParams(existing)) out[`s3:ExistingObjectTag/${k}`] = v
  return out
}
