/** @module
 * Whether a principal may do an S3 action on a bucket or key, in AWS's order ("How Amazon S3
 * authorizes a request"): the bucket policy's explicit Deny wins; else its Allow (unless
 * PublicAccessBlock's RestrictPublicBuckets ignores a public policy for all but the bucket
 * owner); else the ACL: the bucket's for bucket actions and for writing or deleting keys (WRITE
 * on the bucket), the key's for reading it and its ACL, public grants left out under
 * IgnorePublicAcls. Resource owners keep what AWS gives them whatever the ACL: the bucket owner
 * its bucket's configuration (ACL, policy, CORS, tags, PublicAccessBlock...), a key's owner
 * READ_ACP and WRITE_ACP on it; the bucket owner is never denied managing its policy, nobody
 * else is ever allowed to, and a policy's Allow reaches only keys the bucket owner owns (AWS).
 * Where the S3 ACL says no, the native ACLs may say yes (core/access/authorize.ts, the OM's
 * one authorizer), for the actions an S3 ACL could grant. Pure (policy.ts remembers parsed documents, which changes no answer).
 */
import { authorizeNative, nativeRightForS3 } from '../access/authorize.ts'
import type { BucketInfo, KeyInfo } from '../om-wire.ts'
import { aclAllows, privateAcl } from './acl.ts'
import type { S3Acl, S3Permission } from './model.ts'
import { evaluateStoredPolicy, type PolicyRequest, type PolicyVerdict } from './policy.ts'

export interface AuthorizeInput extends PolicyRequest {
  bucket: BucketInfo
  /** The key's ACL, for actions on an existing key (objectAcl() of its metadata). */
  objectAcl?: S3Acl
  /** The key acted on, for its native ACLs (the S3 ACL is objectAcl). */
  key?: KeyInfo
  /** The principal's groups (o3.groups), for native group ACLs. */
  groups?: readonly string[]
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
  's3:GetObjectAttributes': { on: 'object', permission: 'READ' },
  's3:GetObjectAcl': { on: 'object', permission: 'READ_ACP', ownerKeeps: true },
  's3:PutObjectAcl': { on: 'object', permission: 'WRITE_ACP', ownerKeeps: true },
  // AWS maps an object's READ to GetObject alone: its tags are its owner's, or a policy's to share.
  's3:GetObjectTagging': { on: 'objectOwner' },
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

/** Policy actions the bucket owner is never denied by its own policy (AWS: the root user can always manage the bucket policy). */
const OWNER_POLICY_ACTIONS = ['s3:GetBucketPolicy', 's3:PutBucketPolicy', 's3:DeleteBucketPolicy']

/**
 * Decides one request (see the module header). The bucket's policy document is evaluated by
 * core/s3-access/policy.ts (evaluateStoredPolicy, parsed once per document).
 */
export function authorize(input: AuthorizeInput): Decision {
  const { bucket, principal, action } = input
  const pab = bucket.s3?.publicAccessBlock
  const document = bucket.s3?.policy
  let ignored: string | undefined
  if (document !== undefined) {
    let verdict: PolicyVerdict | undefined
    try {
      verdict = evaluateStoredPolicy(document, bucket.name, { principal, action, resource: input.resource, conditions: input.conditions })
    } catch {
      // A stored document this version cannot read (it was parsed when put): nobody but the
      // bucket owner, who can replace it, is let through on ACLs it might deny.
      if (principal !== bucket.owner) return { allowed: false, reason: `the policy of bucket ${bucket.name} cannot be read: only its owner is let in` }
    }
    const owner = principal !== undefined && principal === bucket.owner
    if (verdict?.effect === 'Deny' && !(owner && OWNER_POLICY_ACTIONS.includes(action))) return { allowed: false, reason: `${action} denied by the bucket policy` }
    if (verdict?.effect === 'Allow') {
      // AWS: only the bucket owner's account manages the bucket policy, whatever the policy
      // allows (others get 405 where AWS would grant it; here AccessDenied, as without it).
      if (OWNER_POLICY_ACTIONS.includes(action) && !owner) ignored = `the bucket policy's Allow of ${action} reaches only the owner of bucket ${bucket.name}`
      else if (pab?.restrictPublicBuckets === true && verdict.isPublic && !owner) ignored = 'the public bucket policy\'s Allow is ignored (RestrictPublicBuckets)'
      // AWS: a bucket policy grants on the objects the bucket owner owns; another's key is
      // its owner's to share, by its ACL.
      else if (input.objectAcl !== undefined && !isUploadAction(action) && input.objectAcl.owner !== bucket.owner) ignored = `the bucket policy's Allow does not reach a key ${input.objectAcl.owner} owns`
      else return { allowed: true, reason: `${action} allowed by the bucket policy` }
    }
  }
  const s3 = aclDecision(input, pab?.ignorePublicAcls === true)
  const acl = s3.allowed ? s3 : nativeDecision(input, pab?.ignorePublicAcls === true) ?? s3
  return ignored !== undefined && !acl.allowed ? { allowed: false, reason: `${acl.reason}; ${ignored}` } : acl
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

/**
 * Where the S3 ACL says no: the bucket's or key's native ACLs (core/access/authorize.ts), as the
 * OM would decide the same right for an `o3 sh` call, so `ozone sh bucket addacl -a user:bob:l`
 * lets bob list through S3 too. Only the actions S3 ACLs could grant are asked (nativeRightForS3);
 * a key's right needs READ on its bucket, as in Ozone. Undefined: native ACLs do not decide it.
 */
function nativeDecision(input: AuthorizeInput, ignorePublic: boolean): Decision | undefined {
  const mapped = nativeRightForS3(input.action)
  if (mapped === undefined) return undefined
  if (mapped.on === 'key' && input.key === undefined) return undefined
  // An owner's rights through S3 are S3's to decide (AWS: an owner who granted itself nothing
  // has only what ownership keeps), not the ALL its native owner ACL gives it.
  if (input.principal !== undefined && (input.principal === input.bucket.owner || (mapped.on === 'key' && input.principal === input.objectAcl?.owner))) return undefined
  const target = mapped.on === 'bucket' ? { kind: 'bucket' as const, bucket: input.bucket } : { kind: 'key' as const, bucket: input.bucket, key: input.key }
  const d = authorizeNative({ principal: { user: input.principal, groups: input.groups ?? [] }, admin: false, right: mapped.right, target, s3Acls: false, ignorePublic })
  return d.allowed ? { allowed: true, reason: `${input.action}: native ACLs: ${d.reason}` } : undefined
}

const isUploadAction = (action: string) => action === 's3:ListMultipartUploadParts' || action === 's3:AbortMultipartUpload'
