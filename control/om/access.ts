/** @module
 * The OM's `authorize` option (Ozone's OzoneManager.checkAcls over OzoneNativeAuthorizer): for
 * every RPC, which right on which volume, bucket or key the caller needs, decided by
 * core/access/authorize.ts. Open callers (security off) pass unchecked; anonymous ones are
 * refused; the OM's and SCM's own calls are trusted, the S3 gateway's for the calls it makes
 * (GATEWAY_METHODS: it authorizes its users itself, onBehalfOf) and no others; recon reads;
 * users need the right, administrators have them all. A
 * key that does not exist is checked on its bucket, a bucket on its volume; a missing volume
 * passes: the handler answers it not found (or NOT_LEADER).
 * Reads the tables; writes nothing.
 */
import { authorizeNative, type NativeTarget } from '../../core/access/authorize.ts'
import { evaluate, parseGroups, type AclPrincipal, type AclRight } from '../../core/access/native-acl.ts'
import type { O3Config } from '../../core/config.ts'
import { O3Error } from '../../core/errors.ts'
import { log } from '../../core/log.ts'
import type { BucketInfo, KeyInfo, VolumeInfo } from '../../core/om-wire.ts'
import { administratorsOf, isAdministrator } from '../../core/security/administrators.ts'
import { describeCaller, type RpcContext } from '../../core/security/caller.ts'
import { deleteConditionReads } from '../../core/write-condition.ts'
import { checkBucketName, checkKeyName, checkVolumeName } from './names.ts'
import { MULTIPART_VOLUME, S3_VOLUME } from './quota.ts'
import { isClientId } from './requests/open-key.ts'
import { keyPath, type OmTables } from './tables.ts'

/** What a method needs of a user. */
type Rule =
  /** Administrators alone (and trusted services). */
  | { admin: true }
  /** Any authenticated caller: the handler shows each only what is theirs (listVolumes) or nothing secret. */
  | { anyone: true }
  /** The handler decides (control/om/authenticate.ts: S3 secrets for their user or an administrator, s3Authenticate for the gateway). */
  | { handler: true }
  /** A right on the object the args name. `newKey`: CREATE on the bucket a key is made in. */
  | { on: 'volume' | 'bucket' | 'key' | 'newKey'; right: AclRight }
  /** An ACL request: READ_ACL or WRITE_ACL on the object its `kind` names. */
  | { acl: 'READ_ACL' | 'WRITE_ACL' }
  /** A call on an open key (by clientId): CREATE on its bucket, and it must be the caller's. */
  | { openKey: true }
  /** Special cases checked by their own code below. */
  | { special: 'renameKey' | 'commitMultipartKey' }

/** Ozone's per-request checks (OMVolumeCreateRequest, OMBucketCreateRequest, OMKeyCreateRequest...). */
const RULES: Record<string, Rule> = {
  createVolume: { admin: true },
  getVolume: { on: 'volume', right: 'READ' },
  listVolumes: { anyone: true },
  deleteVolume: { on: 'volume', right: 'DELETE' },
  // Ozone: a volume's quota is the administrators' to set.
  setVolumeQuota: { admin: true },
  createBucket: { on: 'volume', right: 'CREATE' },
  getBucket: { on: 'bucket', right: 'READ' },
  listBuckets: { on: 'volume', right: 'LIST' },
  deleteBucket: { on: 'bucket', right: 'DELETE' },
  setBucketQuota: { on: 'bucket', right: 'WRITE' },
  // S3's bucket configuration (ACL, policy, public access block, CORS, tags) is set through
  // the S3 gateway, which decides who may as S3 does (the owner; a policy's or WRITE_ACP's
  // grant) and checks the value's shape: a user calling the OM itself would skip both (an
  // upload grant replacing the owner's policy). Administrators may.
  setBucketS3: { admin: true },
  openKey: { on: 'newKey', right: 'CREATE' },
  allocateBlock: { openKey: true },
  commitKey: { openKey: true },
  abortKey: { openKey: true },
  lookupKey: { on: 'key', right: 'READ' },
  listKeys: { on: 'bucket', right: 'LIST' },
  deleteKey: { on: 'key', right: 'DELETE' },
  renameKey: { special: 'renameKey' },
  commitMultipartKey: { special: 'commitMultipartKey' },
  getAcl: { acl: 'READ_ACL' },
  addAcl: { acl: 'WRITE_ACL' },
  removeAcl: { acl: 'WRITE_ACL' },
  setAcl: { acl: 'WRITE_ACL' },
  getS3Secret: { handler: true },
  revokeS3Secret: { handler: true },
  lookupS3Secret: { handler: true },
  s3Authenticate: { handler: true },
  // Group administration (roles, transferLeadership, members, stateDigest) has no rule: administrators only.
}

/**
 * The calls the S3 gateway makes (its users' namespace calls, onBehalfOf, whose authorization
 * it did itself, and the signature check): nothing else. Group administration (members,
 * leadership, roles, stateDigest), volume quotas and the like are never the gateway's, so an
 * s3g certificate alone cannot reshape the OM group.
 */
const GATEWAY_METHODS = [
  'createVolume', 'getVolume', 'listVolumes', 'createBucket', 'getBucket', 'listBuckets', 'deleteBucket', 'setBucketS3', 'openKey', 'allocateBlock',
  'commitKey', 'abortKey', 'lookupKey', 'listKeys', 'deleteKey', 'renameKey', 'commitMultipartKey', 'getAcl', 's3Authenticate', 'lookupS3Secret', 'getS3Secret',
]

/** Recon reads the namespace; these are the calls it may make. */
const RECON_METHODS = ['getVolume', 'listVolumes', 'getBucket', 'listBuckets', 'lookupKey', 'listKeys', 'getAcl', 'roles', 'stateDigest']

export interface OmAccessOptions {
  tables: () => OmTables
  config: O3Config
}

export type OmAuthorize = (method: string, args: Record<string, unknown>, ctx: RpcContext) => void

/**
 * The user a call acts as: a signed user, or the user the S3 gateway names (onBehalfOf, honoured
 * from the gateway alone); undefined for open callers and other services.
 */
export function actingUser(ctx: RpcContext): string | undefined {
  const c = ctx.caller
  if (c.kind === 'user') return c.user
  if (c.kind === 'service' && c.role === 's3g' && ctx.onBehalfOf !== undefined) return ctx.onBehalfOf
  return undefined
}

/** The OM's authorize option (see the module header). */
export function omAuthorizer(options: OmAccessOptions): OmAuthorize {
  const groups = parseGroups(options.config['o3.groups'])
  const administrators = administratorsOf(options.config['o3.administrators'])
  return (method, args, ctx) => {
    const c = ctx.caller
    if (c.kind === 'open') return
    if (c.kind === 'anonymous') throw new O3Error('UNAUTHENTICATED', `Cannot call OM.${method}: the call is neither signed by a user nor made with a cluster certificate`)
    if (c.kind === 'service') {
      if (c.role === 'om' || c.role === 'scm') return
      if (c.role === 's3g' && GATEWAY_METHODS.includes(method)) return
      if (c.role === 'recon' && RECON_METHODS.includes(method)) return
      throw new O3Error('PERMISSION_DENIED', `Cannot call OM.${method}: ${describeCaller(c)} may not`)
    }
    const user = c.user
    const principal: AclPrincipal = { user, groups: groups.get(user) ?? [] }
    const admin = isAdministrator(c, administrators)
    const refuse = (why: string) => new O3Error('PERMISSION_DENIED', `Cannot call OM.${method}: ${why}`)
    const rule = RULES[method]
    if (admin) return
    if (rule === undefined || 'admin' in rule) throw refuse(`user ${user} is not an administrator`)
    if ('anyone' in rule || 'handler' in rule) return
    const t = options.tables()
    const need = (target: NativeTarget | undefined, right: AclRight) => {
      if (target === undefined) return
      const d = authorizeNative({ principal, admin, right, target })
      if (!d.allowed) {
        log.debug(`OM: ${method} by user ${user} denied: ${d.reason}`)
        throw refuse(d.reason)
      }
    }
    if ('on' in rule) {
      if (rule.on === 'volume') return need(volumeTarget(t, args.volume), rule.right)
      if (rule.on === 'bucket' || rule.on === 'newKey') return need(bucketTarget(t, args.volume, args.bucket), rule.right)
      const key = keyTarget(t, args.volume, args.bucket, args.key)
      need(key, rule.right)
      // A conditional delete tells whether the key has that ETag, size or time: READ as well.
      if (method === 'deleteKey' && deleteConditionReads(args)) need(key, 'READ')
      return
    }
    if ('acl' in rule) {
      const target = args.kind === 'volume' ? volumeTarget(t, args.volume) : args.kind === 'bucket' ? bucketTarget(t, args.volume, args.bucket) : args.kind === 'key' ? keyTarget(t, args.volume, args.bucket, args.key) : undefined
      return need(target, rule.acl)
    }
    if ('openKey' in rule) {
      const open = isClientId(args.clientId) ? t.openKeys.get(args.clientId) : undefined
      if (open === undefined) return
      if (open.owner !== undefined && open.owner !== user) throw refuse(`open key ${open.volume}/${open.bucket}/${open.name} is being written by another user`)
      return need(bucketTarget(t, open.volume, open.bucket), 'CREATE')
    }
    switch (rule.special) {
      case 'renameKey':
        // Ozone's OMKeyRenameRequest: DELETE on the key it moves, CREATE where it lands.
        need(keyTarget(t, args.volume, args.bucket, args.key), 'DELETE')
        return need(bucketTarget(t, args.volume, args.bucket), 'CREATE')
      case 'commitMultipartKey': {
        need(bucketTarget(t, args.volume, args.bucket), 'CREATE')
        // Its parts are read into the new key and removed: each must be the caller's to delete.
        const parts = Array.isArray(args.parts) ? args.parts as { volume?: unknown; bucket?: unknown; key?: unknown }[] : []
        for (const p of parts) need(keyTarget(t, p?.volume, p?.bucket, p?.key), 'DELETE')
        return
      }
    }
  }
}

/**
 * Whether a user sees a volume in listVolumes (Ozone lists a user's own volumes): one they own,
 * or may READ or LIST; administrators and services see them all.
 */
export function volumeVisible(config: O3Config, ctx: RpcContext, v: VolumeInfo): boolean {
  const c = ctx.caller
  if (c.kind !== 'user' || isAdministrator(c, administratorsOf(config['o3.administrators']))) return true
  if (v.owner === c.user) return true
  const principal: AclPrincipal = { user: c.user, groups: parseGroups(config['o3.groups']).get(c.user) ?? [] }
  return evaluate(principal, v.acls, 'READ') || evaluate(principal, v.acls, 'LIST')
}

// The records a check reads; undefined (let through to the handler) when a name is bad or missing.

function volumeOf(t: OmTables, raw: unknown): VolumeInfo | undefined {
  try {
    return t.volumes.get(checkVolumeName(raw))
  } catch { return undefined }
}

/** The volume above a bucket, left out where every user may read it (the S3 volumes). */
function parentVolume(t: OmTables, volume: string): VolumeInfo | undefined {
  return volume === S3_VOLUME || volume === MULTIPART_VOLUME ? undefined : volumeOf(t, volume)
}

function volumeTarget(t: OmTables, volume: unknown): NativeTarget | undefined {
  const v = volumeOf(t, volume)
  return v === undefined ? undefined : { kind: 'volume', volume: v }
}

function bucketOf(t: OmTables, volume: unknown, bucket: unknown): BucketInfo | undefined {
  try {
    return t.buckets.get(`${checkVolumeName(volume)}/${checkBucketName(bucket)}`)
  } catch { return undefined }
}

function bucketTarget(t: OmTables, volume: unknown, bucket: unknown): NativeTarget | undefined {
  const b = bucketOf(t, volume, bucket)
  // A bucket not there (yet) is checked on its volume, as a missing key on its bucket (keyTarget).
  return b === undefined ? volumeTarget(t, volume) : { kind: 'bucket', bucket: b, volume: parentVolume(t, b.volume) }
}

function keyTarget(t: OmTables, volume: unknown, bucket: unknown, key: unknown): NativeTarget | undefined {
  const b = bucketOf(t, volume, bucket)
  if (b === undefined) return undefined
  let k: KeyInfo | undefined
  try {
    k = t.keys.get(keyPath(b.volume, b.name, checkKeyName(key)))
  } catch { return undefined }
  // A key not there (yet) is checked on its bucket, as Ozone's checkAccess does: let through
  // unchecked, a deleteKey or renameKey refused nothing at authorize and then applied to a key
  // its owner committed meanwhile (another user's delete racing the commit), and told anyone
  // which keys exist.
  return k === undefined ? { kind: 'bucket', bucket: b, volume: parentVolume(t, b.volume) } : { kind: 'key', bucket: b, key: k, volume: parentVolume(t, b.volume) }
}
