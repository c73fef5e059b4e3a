/** @module
 * The one native authorizer (Ozone's OzoneNativeAuthorizer): whether a principal has a right
 * on a volume, bucket or key, from the objects' native ACLs and their S3 ACLs mapped to native
 * rights. The OM asks it for every user call (control/om/access.ts) and the S3 gateway's
 * authorizer (core/s3-access/authorize.ts) asks it where S3's own ACL says no. Pure.
 */
import type { BucketInfo, KeyInfo, VolumeInfo } from '../om-wire.ts'
import { objectAcl } from '../s3-access/acl.ts'
import { ALL_USERS_GROUP, AUTHENTICATED_USERS_GROUP, OBJECT_ACL_METADATA, type S3Acl, type S3Permission } from '../s3-access/model.ts'
import { evaluate, type AclPrincipal, type AclRight, type OzoneAcl } from './native-acl.ts'

/** What a right is asked on: the object and the records above it. */
export type NativeTarget =
  | { kind: 'volume'; volume: VolumeInfo }
  | { kind: 'bucket'; volume?: VolumeInfo; bucket: BucketInfo }
  | { kind: 'key'; volume?: VolumeInfo; bucket: BucketInfo; key?: KeyInfo }

export interface NativeRequest {
  principal: AclPrincipal
  /** An administrator (o3.administrators): every right on everything. */
  admin: boolean
  right: AclRight
  /**
   * The object. The volume above a bucket or key is left out where every user may read it
   * (the S3 volumes: S3's namespace is one flat list of buckets). A key left out is one
   * being created: CREATE is asked on its bucket then.
   */
  target: NativeTarget
  /**
   * The S3 gateway asks with `s3Acls: false`, having judged the S3 ACLs itself, and with
   * `ignorePublic` under PublicAccessBlock's IgnorePublicAcls (world and anonymous ACLs left out).
   */
  s3Acls?: boolean
  ignorePublic?: boolean
}

/** Which ACLs of a record count (NativeRequest.s3Acls, ignorePublic). */
export interface AclView {
  s3Acls?: boolean
  ignorePublic?: boolean
}

export interface NativeDecision {
  allowed: boolean
  /** Why, for the error and the log. */
  reason: string
}

/**
 * Decides as Ozone's native authorizer does: administrators may do anything; a volume's owner
 * anything on it; a bucket's owner anything on it and its keys; anyone else needs the right
 * in the object's ACLs and READ on each record above it (its owner has that). CREATE on a
 * volume (making buckets) or a bucket (making keys) is asked on that container.
 */
export function authorizeNative(req: NativeRequest): NativeDecision {
  const { principal, right, target } = req
  const view: AclView = { s3Acls: req.s3Acls, ignorePublic: req.ignorePublic }
  const who = principal.user === undefined ? 'an anonymous caller' : `user ${principal.user}`
  const allow = (why: string): NativeDecision => ({ allowed: true, reason: `${who} may ${right}: ${why}` })
  if (req.admin) return allow('an administrator')
  const deny = (on: string, r: AclRight): NativeDecision => ({ allowed: false, reason: `${who} has no ${r} on ${on}` })
  const owns = (owner: string) => principal.user !== undefined && principal.user === owner
  if (target.kind === 'volume') {
    const v = target.volume
    if (owns(v.owner)) return allow(`owns volume ${v.name}`)
    return evaluate(principal, volumeAcls(v, view), right) ? allow(`volume ${v.name}'s ACL`) : deny(`volume ${v.name}`, right)
  }
  const b = target.bucket
  const bucketName = `${b.volume}/${b.name}`
  if (owns(b.owner)) return allow(`owns bucket ${bucketName}`)
  const v = target.volume
  if (v !== undefined && !owns(v.owner) && !evaluate(principal, volumeAcls(v, view), 'READ')) return deny(`volume ${v.name}`, 'READ')
  if (target.kind === 'bucket') return evaluate(principal, bucketAcls(b, view), right) ? allow(`bucket ${bucketName}'s ACL`) : deny(`bucket ${bucketName}`, right)
  const k = target.key
  if (k === undefined) return evaluate(principal, bucketAcls(b, view), right) ? allow(`bucket ${bucketName}'s ACL`) : deny(`bucket ${bucketName}`, right)
  if (!evaluate(principal, bucketAcls(b, view), 'READ')) return deny(`bucket ${bucketName}`, 'READ')
  return evaluate(principal, keyAcls(k, b.owner, view), right) ? allow(`key ${bucketName}/${k.name}'s ACL`) : deny(`key ${bucketName}/${k.name}`, right)
}

/** A volume's ACLs; a volume written before ACLs has its owner's alone (which owning gives anyway). */
export function volumeAcls(v: VolumeInfo, view: AclView = {}): OzoneAcl[] {
  return visible(v.acls ?? [], view)
}

const visible = (acls: OzoneAcl[], view: AclView) => view.ignorePublic === true ? acls.filter((a) => a.type === 'user' || a.type === 'group') : acls

/** A bucket's native ACLs and its S3 ACL's grants as native ones. */
export function bucketAcls(b: BucketInfo, view: AclView = {}): OzoneAcl[] {
  const s3 = b.s3?.acl
  return visible(s3 === undefined || view.s3Acls === false ? b.acls ?? [] : [...b.acls ?? [], ...s3ToNative(s3, 'bucket')], view)
}

/** A key's native ACLs and, when S3 set one, its S3 ACL's grants as native ones. */
export function keyAcls(k: KeyInfo, bucketOwner: string, view: AclView = {}): OzoneAcl[] {
  if (k.metadata[OBJECT_ACL_METADATA] === undefined || view.s3Acls === false) return visible(k.acls ?? [], view)
  return visible([...k.acls ?? [], ...s3ToNative(objectAcl(k.metadata, bucketOwner), 'key')], view)
}

/**
 * The native rights an S3 permission gives (Ozone's S3 ACL mapping): READ lists a bucket and
 * reads a key, WRITE creates, deletes and writes in a bucket, READ_ACP and WRITE_ACP read and
 * write the ACL, FULL_CONTROL all of them.
 */
export function nativeRightsOf(permission: S3Permission, on: 'bucket' | 'key'): AclRight[] {
  switch (permission) {
    case 'READ': return on === 'bucket' ? ['READ', 'LIST'] : ['READ']
    case 'WRITE': return ['WRITE', 'CREATE', 'DELETE']
    case 'READ_ACP': return ['READ_ACL']
    case 'WRITE_ACP': return ['WRITE_ACL']
    case 'FULL_CONTROL': return ['ALL']
  }
}

/** An S3 ACL's grants as native ACCESS ACLs: AllUsers is `anonymous`, AuthenticatedUsers `world`; LogDelivery grants nothing. */
export function s3ToNative(acl: S3Acl, on: 'bucket' | 'key'): OzoneAcl[] {
  const out: OzoneAcl[] = []
  for (const g of acl.grants) {
    const e = g.grantee
    const rights = nativeRightsOf(g.permission, on)
    if (e.type === 'CanonicalUser') out.push({ type: 'user', name: e.id, rights, scope: 'ACCESS' })
    else if (e.uri === ALL_USERS_GROUP) out.push({ type: 'anonymous', name: '', rights, scope: 'ACCESS' })
    else if (e.uri === AUTHENTICATED_USERS_GROUP) out.push({ type: 'world', name: '', rights, scope: 'ACCESS' })
  }
  return out
}

/**
 * The native right an S3 action needs, and on what, for the S3 gateway (the reverse of
 * nativeRightsOf); undefined for actions only owners take (configuration, tags, uploads).
 */
export function nativeRightForS3(action: string): { on: 'bucket' | 'key'; right: AclRight } | undefined {
  return S3_ACTION_RIGHTS[action]
}

const S3_ACTION_RIGHTS: Record<string, { on: 'bucket' | 'key'; right: AclRight }> = {
  's3:ListBucket': { on: 'bucket', right: 'LIST' },
  's3:ListBucketVersions': { on: 'bucket', right: 'LIST' },
  's3:ListBucketMultipartUploads': { on: 'bucket', right: 'LIST' },
  's3:PutObject': { on: 'bucket', right: 'CREATE' },
  's3:DeleteObject': { on: 'bucket', right: 'DELETE' },
  's3:GetBucketAcl': { on: 'bucket', right: 'READ_ACL' },
  's3:PutBucketAcl': { on: 'bucket', right: 'WRITE_ACL' },
  's3:GetObject': { on: 'key', right: 'READ' },
  's3:GetObjectAttributes': { on: 'key', right: 'READ' },
  's3:GetObjectAcl': { on: 'key', right: 'READ_ACL' },
  's3:PutObjectAcl': { on: 'key', right: 'WRITE_ACL' },
}
