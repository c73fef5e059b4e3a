/** @module
 * addAcl, removeAcl, setAcl (Ozone's OMVolumeAddAclRequest, OMBucketSetAclRequest,
 * OMKeyRemoveAclRequest...): change the native ACLs of a volume, bucket or key. Prepare checks
 * the names and ACLs; apply reads the record and writes it back with its new ACLs (pure).
 */
import { addAcl, checkAcl, checkAclCount, mergeAcls, removeAcl, type OzoneAcl } from '../../../core/access/native-acl.ts'
import { O3Error } from '../../../core/errors.ts'
import type { AclObject, KeyInfo } from '../../../core/om-wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkBucketName, checkKeyName, checkVolumeName } from '../names.ts'
import { bucketOf, keyPath, volumeOf, type OmTables } from '../tables.ts'
import type { OmRequestContext } from './context.ts'
import { keyOf } from './keys.ts'


type Args = { kind?: unknown; volume?: unknown; bucket?: unknown; key?: unknown; acl?: unknown; acls?: unknown }
type Op = 'addAcl' | 'removeAcl' | 'setAcl'
type Payload = { object: AclObject; acls: OzoneAcl[]; nowMs: number }
/** The object's ACLs after the request, and whether it changed them. */
export type AclResult = { acls: OzoneAcl[]; changed: boolean }

/** The object an ACL request names, its names checked. */
export function checkAclObject(a: { kind?: unknown; volume?: unknown; bucket?: unknown; key?: unknown }): AclObject {
  const volume = checkVolumeName(a.volume)
  switch (a.kind) {
    case 'volume': return { kind: 'volume', volume }
    case 'bucket': return { kind: 'bucket', volume, bucket: checkBucketName(a.bucket) }
    case 'key': return { kind: 'key', volume, bucket: checkBucketName(a.bucket), key: checkKeyName(a.key) }
    default: throw new O3Error('INVALID_ARGUMENT', `Cannot change ACLs of ${String(a.kind)}: kind must be volume, bucket or key`)
  }
}

export function describeObject(o: AclObject): string {
  return o.kind === 'volume' ? `volume ${o.volume}` : o.kind === 'bucket' ? `bucket ${o.volume}/${o.bucket}` : `key ${o.volume}/${o.bucket}/${o.key}`
}

/** The ACLs an object has now (records written before ACLs have none). */
export function aclsOf(t: OmTables, o: AclObject): OzoneAcl[] {
  if (o.kind === 'volume') return volumeOf(t, o.volume).acls ?? []
  if (o.kind === 'bucket') return bucketOf(t, o.volume, o.bucket).acls ?? []
  bucketOf(t, o.volume, o.bucket)
  return keyOf(t, { volume: o.volume, bucket: o.bucket, name: o.key }).acls ?? []
}

function writeAcls(t: OmTables, o: AclObject, acls: OzoneAcl[], nowMs: number): void {
  if (o.kind === 'volume') {
    const v = volumeOf(t, o.volume)
    t.volumes.putSync(v.name, { ...v, acls, modifiedAtMs: nowMs })
  } else if (o.kind === 'bucket') {
    const b = bucketOf(t, o.volume, o.bucket)
    t.buckets.putSync(`${o.volume}/${o.bucket}`, { ...b, acls, modifiedAtMs: nowMs })
  } else {
    const k: KeyInfo = keyOf(t, { volume: o.volume, bucket: o.bucket, name: o.key })
    // An ACL change is not a write of the key's bytes: its modification time stays (as Ozone's).
    t.keys.putSync(keyPath(o.volume, o.bucket, o.key), { ...k, acls })
  }
}

function aclRequest(ctx: OmRequestContext, op: Op): ReplicatedRequest<Args, Payload, AclResult> {
  return {
    name: op,
    prepare: (a) => {
      const object = checkAclObject(a)
      let acls: OzoneAcl[]
      if (op === 'setAcl') {
        if (!Array.isArray(a.acls)) throw new O3Error('INVALID_ARGUMENT', `Cannot set the ACLs of ${describeObject(object)}: acls must be a list`)
        acls = mergeAcls(a.acls.map(checkAcl))
      } else {
        if (a.acl === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot change the ACLs of ${describeObject(object)}: no acl given`)
        acls = [checkAcl(a.acl)]
      }
      return { object, acls, nowMs: Date.now() }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      const current = aclsOf(t, p.object)
      const next = op === 'setAcl' ? { acls: p.acls, changed: JSON.stringify(p.acls) !== JSON.stringify(current) }
        : op === 'addAcl' ? addAcl(current, p.acls[0]!) : removeAcl(current, p.acls[0]!)
      checkAclCount(next.acls)
      if (next.changed) writeAcls(t, p.object, next.acls, p.nowMs)
      return next
    },
  }
}

export const addAclRequest = (ctx: OmRequestContext) => aclRequest(ctx, 'addAcl')
export const removeAclRequest = (ctx: OmRequestContext) => aclRequest(ctx, 'removeAcl')
export const setAclRequest = (ctx: OmRequestContext) => aclRequest(ctx, 'setAcl')
