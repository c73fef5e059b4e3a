/** @module
 * Whether a principal may do an S3 action on a bucket or key, in AWS's order ("How Amazon S3
 * authorizes a request"): the bucket policy's explicit Deny wins; else its Allow (unless
 * PublicAccessBlock's RestrictPublicBuckets ignores a public policy for all but the bucket
 * owner); else the ACL: the bucket's for bucket actions and for writing or deleting keys (WRITE
 * on the bucket), the key's for reading it and its ACL, public grants left out under
 * IgnorePublicAcls. Resource owners keep what AWS gives them whatever the ACL: the bucket owner
 * its bucket's configuration (ACL, policy, CORS, tags, PublicAccessBlock...), a key's owner
 * READ_ACP and WRITE_ACP on it. Pure but for a bounded memo of parsed policies (parsedPolicy).
 */
import type { BucketInfo } from '../om-wire.ts'
import { S3_POLICY_CACHE_COUNT_MAX } from '../limits.ts'
import { aclAllows, privateAcl } from './acl.ts'
import type { S3Acl, S3Permission } from './model.ts'
import { evaluatePolicy, isPublicPolicy, parsePolicy, type BucketPolicy, type PolicyRequest } from './policy.ts'

export interface AuthorizeInput extends PolicyRequest {
  bucket: BucketInfo
  /** The key's ACL, for actions on an existing key (objectAcl() of its metadata). */
  objectAcl?: S3Acl
}

export interface Decision {
  allowed: boolean
  /** Why, for the log (never shown to the client, who sees AccessDenied). */
  reason: string
}

/** How the ACL step decides an action. */
type Rule =
  /** A permission on the bucket's ACL; `ownerKeeps`: the bucket owner has it whatever the ACL. */
  | { on: 'bucket'; permission: S3Permission; ownerKeeps?: boolean }
  /** A permission on the key's ACL; `ownerKeeps`: the key's owner has it whatever the ACL. */
  | { on: 'object'; permission: S3Permission; ownerKeeps?: boolean }
  /** Only the key's owner (no ACL permission maps to it). */
  | { on: 'objectOwner' }

/**
 * AWS's "Mapping of ACL permissions and access policy permissions". Bucket actions not listed
 * (the bucket's configuration, location, versioning, deleting it) are the bucket owner's alone,
 * and any action O3 does not know is too.
 */
const RULES: Record<string, Rule> = {
  's3:ListBucket': { on: 'bucket', permission: 'READ' },
  's3:ListBucketVersions': { on: 'bucket', permission: 'READ' },
  's3:ListBucketMultipartUploads': { on: 'bucket', permission: 'READ' },
  's3:PutObject': { on: 'bucket', permission: 'WRITE' },
  's3:DeleteObject': { on: 'bucket', permission: 'WRITE' },
  's3:GetBucketAcl': { on: 'bucket', permission: 'READ_ACP', ownerKeeps: true },
  's3:PutBucketAcl': { on: 'bucket', permission: 'WRITE_ACP', ownerKeeps: true },
  's3:GetObject': { on: 'object', permission: 'READ' },
  's3:GetObjectTagging': { on: 'object', permission: 'READ' },
  's3:GetObjectAttributes': { on: 'object', permission: 'READ' },
  's3:GetObjectAcl': { on: 'object', permission: 'READ_ACP', ownerKeeps: true },
  's3:PutObjectAcl': { on: 'object', permission: 'WRITE_ACP', ownerKeeps: true },
  's3:PutObjectTagging': { on: 'objectOwner' },
  's3:DeleteObjectTagging': { on: 'objectOwner' },
  // A multipart upload's key is the upload's until it completes: its initiator owns it (the
  // gateway passes the upload's ACL as objectAcl), and the bucket owner may end it too.
  's3:ListMultipartUploadParts': { on: 'objectOwner' },
  's3:AbortMultipartUpload': { on: 'objectOwner' },
}

/** Actions on a key that need its ACL (the key must exist): the gateway reads it before authorizing. */
export function needsObjectAcl(action: string): boolean {
  const r = RULES[action]
  return r !== undefined && r.on !== 'bucket'
}

/** The bucket's ACL: set, or its owner's FULL_CONTROL alone. */
export function bucketAcl(bucket: BucketInfo): S3Acl {
  return bucket.s3?.acl ?? privateAcl(bucket.owner)
}

/**
 * Decides one request (see the module header). A bucket's policy is parsed once per document
 * (parsedPolicy) and evaluated by core/s3-access/policy.ts.
 */
export function authorize(input: AuthorizeInput): Decision {
  const { bucket, principal } = input
  const pab = bucket.s3?.publicAccessBlock
  const json = bucket.s3?.policy
  let restricted = false
  if (json !== undefined) {
    const policy = parsedPolicy(json, bucket.name)
    // A stored document this version cannot read (stored policies were parsed when put):
    // nobody but the bucket owner, who can replace it, is let through on ACLs it might deny.
    if (policy === undefined) {
      if (principal !== bucket.owner) return { allowed: false, reason: `the policy of bucket ${bucket.name} cannot be read: only its owner is let in` }
    } else {
      const effect = evaluatePolicy(policy, { principal, action: input.action, resource: input.resource, conditions: input.conditions })
      if (effect === 'Deny') return { allowed: false, reason: `${input.action} denied by the bucket policy` }
      if (effect === 'Allow') {
        if (pab?.restrictPublicBuckets !== true || principal === bucket.owner || !isPublicPolicy(policy)) return { allowed: true, reason: `${input.action} allowed by the bucket policy` }
        restricted = true
      }
    }
  }
  const acl = aclDecision(input, pab?.ignorePublicAcls === true)
  return restricted && !acl.allowed ? { allowed: false, reason: `${acl.reason}; the public bucket policy's Allow is ignored (RestrictPublicBuckets)` } : acl
}

/** Parsed policies by bucket and document: a bucket's policy is parsed once, not on every request. */
const parsed = new Map<string, BucketPolicy | undefined>()

/** parsePolicy, remembered (the oldest forgotten past S3_POLICY_CACHE_COUNT_MAX); undefined if the document does not parse. */
export function parsedPolicy(json: string, bucket: string): BucketPolicy | undefined {
  const k = `${bucket}\0${json}`
  if (parsed.has(k)) return parsed.get(k)
  let policy: BucketPolicy | undefined
  try {
    policy = parsePolicy(json, bucket)
  } catch {
    policy = undefined
  }
  if (parsed.size >= S3_POLICY_CACHE_COUNT_MAX) parsed.delete(parsed.keys().next().value!)
  parsed.set(k, policy)
  return policy
}

function aclDecision(input: AuthorizeInput, ignorePublic: boolean): Decision {
  const { bucket, principal, action } = input
  const who = principal ?? 'anonymous'
  const rule = RULES[action]
  if (rule === undefined) {
    return principal === bucket.owner ? { allowed: true, reason: `${action}: ${who} owns bucket ${bucket.name}` } : { allowed: false, reason: `${action} is for the owner of bucket ${bucket.name} alone` }
  }
  if (rule.on === 'bucket') {
    if (rule.ownerKeeps === true && principal === bucket.owner) return { allowed: true, reason: `${action}: ${who} owns bucket ${bucket.name}` }
    return aclAllows(bucketAcl(bucket), principal, rule.permission, { ignorePublic })
      ? { allowed: true, reason: `${action}: bucket ${bucket.name}'s ACL grants ${who} ${rule.permission}` }
      : { allowed: false, reason: `${action}: bucket ${bucket.name}'s ACL does not grant ${who} ${rule.permission}` }
  }
  const acl = input.objectAcl ?? privateAcl(bucket.owner)
  if (rule.on === 'objectOwner') {
    const allowed = principal !== undefined && (principal === acl.owner || (isUploadAction(action) && principal === bucket.owner))
    return { allowed, reason: `${action}: ${who} ${allowed ? 'owns' : 'does not own'} the key` }
  }
  if (rule.ownerKeeps === true && principal !== undefined && principal === acl.owner) return { allowed: true, reason: `${action}: ${who} owns the key` }
  return aclAllows(acl, principal, rule.permission, { ignorePublic })
    ? { allowed: true, reason: `${action}: the key's ACL grants ${who} ${rule.permission}` }
    : { allowed: false, reason: `${action}: the key's ACL does not grant ${who} ${rule.permission}` }
}

const isUploadAction = (action: string) => action === 's3:ListMultipartUploadParts' || action === 's3:AbortMultipartUpload'
