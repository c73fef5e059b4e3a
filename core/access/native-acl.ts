/** @module
 * Ozone's native ACLs (OzoneAcl, IAccessAuthorizer.ACLType, OzoneAclUtil): the record, its
 * string form `type:name:rights[scope]` as `ozone sh ... addacl -a` takes it, and what a list
 * of them grants a principal. Pure: no I/O, no clock.
 */
import { O3Error } from '../errors.ts'
import { NATIVE_ACL_COUNT_MAX } from '../limits.ts'

/** The rights of an ACL (IAccessAuthorizer.ACLType), with their letters in Ozone's short form. */
export const ACL_RIGHTS = ['READ', 'WRITE', 'CREATE', 'LIST', 'DELETE', 'READ_ACL', 'WRITE_ACL', 'ALL', 'NONE'] as const
export type AclRight = (typeof ACL_RIGHTS)[number]
const LETTERS: Record<string, AclRight> = { r: 'READ', w: 'WRITE', c: 'CREATE', l: 'LIST', d: 'DELETE', x: 'READ_ACL', y: 'WRITE_ACL', a: 'ALL', n: 'NONE' }
const LETTER_OF = Object.fromEntries(Object.entries(LETTERS).map(([l, r]) => [r, l])) as Record<AclRight, string>

/**
 * Whom an ACL names: a user, a group (members from `o3.groups`), `world` (every authenticated
 * user) or `anonymous` (anyone, signed or not: Ozone's "ignore the user field completely").
 */
export type AclIdentityType = 'user' | 'group' | 'world' | 'anonymous'
const TYPES: readonly AclIdentityType[] = ['user', 'group', 'world', 'anonymous']

/** ACCESS: grants on the object. DEFAULT: handed down, as ACCESS, to what is created inside it. */
export type AclScope = 'ACCESS' | 'DEFAULT'

export interface OzoneAcl {
  type: AclIdentityType
  /** The user or group; '' for world and anonymous. */
  name: string
  /** Sorted, without repeats (in ACL_RIGHTS order). */
  rights: AclRight[]
  scope: AclScope
}

/** Who asks: a user and its groups, or an anonymous caller (S3 requests without a signature). */
export interface AclPrincipal {
  user?: string
  groups: readonly string[]
}

const NAME = /^[A-Za-z0-9._@$-][A-Za-z0-9._@$-]{0,127}$/

/** Parses Ozone's `user:bob:rw`, `group:dev:a[DEFAULT]`, `world::r`, `anonymous::r`; INVALID_ARGUMENT on anything else. */
export function parseAcl(text: string): OzoneAcl {
  const bad = (why: string) => new O3Error('INVALID_ARGUMENT', `Cannot parse ACL ${JSON.stringify(text)}: ${why} (expected type:name:rights[scope], e.g. user:bob:rw or group:dev:a[DEFAULT])`)
  let body = text.trim()
  let scope: AclScope = 'ACCESS'
  // Any bracketed suffix is a scope, so that a wrong one is named as a scope, not read as rights.
  const m = /\[([^\]]*)\]$/.exec(body)
  if (m !== null) {
    const named = m[1]!.trim().toUpperCase()
    if (named !== 'ACCESS' && named !== 'DEFAULT') throw bad(`unknown scope ${m[1]}: use ACCESS or DEFAULT`)
    scope = named
    body = body.slice(0, m.index)
  }
  const parts = body.split(':')
  if (parts.length !== 3) throw bad('it needs three fields separated by colons')
  const [typeText, name, letters] = parts as [string, string, string]
  const type = typeText.toLowerCase() as AclIdentityType
  if (!TYPES.includes(type)) throw bad(`the type must be one of ${TYPES.join(', ')}`)
  if (type === 'user' || type === 'group') {
    if (!NAME.test(name)) throw bad(`a ${type} ACL names its ${type}`)
  } else if (name !== '') throw bad(`a ${type} ACL names nobody`)
  return { type, name, rights: parseRights(letters, bad), scope }
}

/** Rights as letters (`rw`) or names (`READ,WRITE`, Ozone's long form). */
function parseRights(text: string, bad: (why: string) => O3Error): AclRight[] {
  if (text.length === 0) throw bad('it grants no rights')
  const out = new Set<AclRight>()
  if (/^[a-z]+$/.test(text)) {
    for (const l of text) {
      const r = LETTERS[l]
      if (r === undefined) throw bad(`unknown right ${l}: use r w c l d x y a n`)
      out.add(r)
    }
  } else {
    for (const word of text.split(',')) {
      const r = word.trim().toUpperCase() as AclRight
      if (!ACL_RIGHTS.includes(r)) throw bad(`unknown right ${word}: use ${ACL_RIGHTS.join(', ')}`)
      out.add(r)
    }
  }
  return normalizeRights([...out])
}

/** Rights sorted in ACL_RIGHTS order without repeats. */
export function normalizeRights(rights: readonly AclRight[]): AclRight[] {
  return ACL_RIGHTS.filter((r) => rights.includes(r))
}

/** Ozone's short form: `user:bob:rw`, `group:dev:a[DEFAULT]` (ACCESS is left out). */
export function formatAcl(acl: OzoneAcl): string {
  return `${acl.type}:${acl.name}:${acl.rights.map((r) => LETTER_OF[r]).join('')}${acl.scope === 'DEFAULT' ? '[DEFAULT]' : ''}`
}

/** An ACL off the wire or from storage, checked: what parseAcl would have made of it. */
export function checkAcl(raw: unknown): OzoneAcl {
  if (typeof raw === 'string') return parseAcl(raw)
  if (typeof raw !== 'object' || raw === null) throw new O3Error('INVALID_ARGUMENT', 'An ACL must be an object or a string like user:bob:rw')
  const a = raw as Partial<OzoneAcl>
  const rights = Array.isArray(a.rights) ? a.rights.map((r) => LETTER_OF[r as AclRight] ?? '?').join('') : ''
  return parseAcl(`${String(a.type)}:${String(a.name ?? '')}:${rights}[${a.scope === 'DEFAULT' ? 'DEFAULT' : 'ACCESS'}]`)
}

const sameIdentity = (a: OzoneAcl, b: OzoneAcl) => a.type === b.type && a.name === b.name && a.scope === b.scope

/**
 * `acls` with `add` merged in (OzoneAclUtil.addAcl): an ACL for the same identity and scope
 * gains the rights; `changed` is false when it had them all already.
 */
export function addAcl(acls: readonly OzoneAcl[], add: OzoneAcl): { acls: OzoneAcl[]; changed: boolean } {
  const i = acls.findIndex((a) => sameIdentity(a, add))
  if (i < 0) return { acls: [...acls, add], changed: true }
  const rights = normalizeRights([...acls[i]!.rights, ...add.rights])
  if (rights.length === acls[i]!.rights.length) return { acls: [...acls], changed: false }
  const out = [...acls]
  out[i] = { ...acls[i]!, rights }
  return { acls: out, changed: true }
}

/**
 * `acls` without the rights of `remove` (OzoneAclUtil.removeAcl): the ACL of the same identity
 * and scope loses them, and goes when none are left; `changed` is false when it had none of them.
 */
export function removeAcl(acls: readonly OzoneAcl[], remove: OzoneAcl): { acls: OzoneAcl[]; changed: boolean } {
  const i = acls.findIndex((a) => sameIdentity(a, remove))
  if (i < 0) return { acls: [...acls], changed: false }
  const removeAll = remove.rights.includes('ALL')
  const rights = removeAll ? [] : acls[i]!.rights.filter((r) => !remove.rights.includes(r))
  if (rights.length === acls[i]!.rights.length) return { acls: [...acls], changed: false }
  const out = [...acls]
  if (rights.length === 0) out.splice(i, 1)
  else out[i] = { ...acls[i]!, rights }
  return { acls: out, changed: true }
}

/** A list with each identity and scope once (later entries merged into earlier ones), as setAcl stores it. */
export function mergeAcls(acls: readonly OzoneAcl[]): OzoneAcl[] {
  let out: OzoneAcl[] = []
  for (const a of acls) out = addAcl(out, a).acls
  checkAclCount(out)
  return out
}

/** INVALID_ARGUMENT when a record would hold more than NATIVE_ACL_COUNT_MAX ACLs. */
export function checkAclCount(acls: readonly OzoneAcl[]): void {
  if (acls.length > NATIVE_ACL_COUNT_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot keep ${acls.length} ACLs on one object: at most ${NATIVE_ACL_COUNT_MAX}`)
}

/** The owner's ACL every new volume, bucket and key gets (Ozone: the creator's user ALL). */
export function ownerAcl(owner: string): OzoneAcl {
  return { type: 'user', name: owner, rights: ['ALL'], scope: 'ACCESS' }
}

/**
 * The ACLs a new object starts with (OzoneAclUtil.inheritDefaultAcls): its owner's ALL and its
 * parent's DEFAULT ACLs as ACCESS ones; a bucket (`keepDefaults`) keeps them as DEFAULT too,
 * so that its keys inherit them in turn.
 */
export function inheritedAcls(owner: string | undefined, parent: readonly OzoneAcl[] | undefined, keepDefaults: boolean): OzoneAcl[] {
  let out: OzoneAcl[] = owner === undefined ? [] : [ownerAcl(owner)]
  for (const a of parent ?? []) {
    if (a.scope !== 'DEFAULT') continue
    out = addAcl(out, { ...a, scope: 'ACCESS' }).acls
    if (keepDefaults) out = addAcl(out, a).acls
  }
  return out
}

/** Whether `acl` names `principal` (OzoneAcl matching in the native authorizer). */
function names(acl: OzoneAcl, p: AclPrincipal): boolean {
  switch (acl.type) {
    case 'user': return p.user !== undefined && acl.name === p.user
    case 'group': return p.user !== undefined && p.groups.includes(acl.name)
    case 'world': return p.user !== undefined
    case 'anonymous': return true
  }
}

/**
 * Whether the ACCESS ACLs in `acls` grant `principal` the right (OzoneAcl.checkAccess): an ACL
 * naming it with the right or ALL; NONE grants nothing. DEFAULT ACLs grant nothing here.
 */
export function evaluate(principal: AclPrincipal, acls: readonly OzoneAcl[] | undefined, right: AclRight): boolean {
  if (right === 'NONE') return false
  for (const a of acls ?? []) {
    if (a.scope !== 'ACCESS' || !names(a, principal)) continue
    if (a.rights.includes('ALL') || a.rights.includes(right)) return true
  }
  return false
}

/**
 * The groups of `o3.groups` (`dev:alice,bob;ops:carol`) by user: Ozone asks Hadoop's group
 * mapping; O3 reads its members from this one setting.
 */
export function parseGroups(setting: string): Map<string, string[]> {
  const byUser = new Map<string, string[]>()
  for (const entry of setting.split(';')) {
    const e = entry.trim()
    if (e.length === 0) continue
    const colon = e.indexOf(':')
    if (colon <= 0) throw new O3Error('INVALID_ARGUMENT', `Cannot read o3.groups entry ${JSON.stringify(e)}: expected group:user1,user2`)
    const group = e.slice(0, colon).trim()
    for (const u of e.slice(colon + 1).split(',')) {
      const user = u.trim()
      if (user.length === 0) continue
      const list = byUser.get(user) ?? []
      if (!list.includes(group)) list.push(group)
      byUser.set(user, list)
    }
  }
  return byUser
}
