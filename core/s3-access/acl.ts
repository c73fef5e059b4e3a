/** @module
 * S3 access control lists (AWS "Access control list (ACL) overview"): canned ACLs and the
 * x-amz-grant-* headers made into an S3Acl, the AccessControlPolicy document to and from an
 * S3Acl (as element trees: the gateway's XML code reads and writes the text), the ACL a bucket
 * or key has (absent: its owner's FULL_CONTROL alone) and what an ACL grants a principal.
 * Pure: no I/O, no clock.
 */
import { S3_ACL_GRANTS_MAX } from '../limits.ts'
import { S3AccessError } from './errors.ts'
import {
  ALL_USERS_GROUP, AUTHENTICATED_USERS_GROUP, LOG_DELIVERY_GROUP, OBJECT_ACL_METADATA, type S3Acl, type S3Grant, type S3Grantee, type S3Permission,
} from './model.ts'

export const S3_PERMISSIONS = ['FULL_CONTROL', 'READ', 'WRITE', 'READ_ACP', 'WRITE_ACP'] as const satisfies readonly S3Permission[]

/** The canned ACLs S3 knows (x-amz-acl). aws-exec-read grants EC2, which O3 has not: only the owner's grant is kept. */
export const CANNED_ACLS = [
  'private', 'public-read', 'public-read-write', 'authenticated-read', 'aws-exec-read', 'bucket-owner-read', 'bucket-owner-full-control', 'log-delivery-write',
] as const
export type CannedAcl = (typeof CANNED_ACLS)[number]

/** The groups a grant may name; anything else is refused (InvalidArgument). */
const GROUPS: readonly string[] = [ALL_USERS_GROUP, AUTHENTICATED_USERS_GROUP, LOG_DELIVERY_GROUP]

/** xsi:type's namespace, which AWS declares on every Grantee it writes. */
export const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance'

const user = (id: string): S3Grantee => ({ type: 'CanonicalUser', id })
const group = (uri: string): S3Grantee => ({ type: 'Group', uri })

/** The ACL of a resource nobody set one on: its owner has FULL_CONTROL, nobody else anything. */
export function privateAcl(owner: string): S3Acl {
  return { owner, grants: [{ grantee: user(owner), permission: 'FULL_CONTROL' }] }
}

/** Whether `acl` is `owner`'s private default (privateAcl), which is stored as no ACL at all. */
export function isPrivateAcl(acl: S3Acl, owner: string): boolean {
  return JSON.stringify(acl) === JSON.stringify(privateAcl(owner))
}

/**
 * The ACL a canned ACL name stands for (AWS "Canned ACL" table). `owner` owns the resource
 * (the writer of an object, the creator of a bucket); `bucketOwner` owns its bucket
 * (bucket-owner-read and bucket-owner-full-control grant it; on a bucket they are the same
 * user and those two are plain private). Grants repeated by that sameness appear once.
 * An unknown name is InvalidArgument, as S3 answers it.
 */
export function cannedAcl(name: string, owner: string, bucketOwner: string): S3Acl {
  if (!(CANNED_ACLS as readonly string[]).includes(name)) throw new S3AccessError('InvalidArgument', `Invalid canned ACL ${JSON.stringify(name)}: use one of ${CANNED_ACLS.join(', ')}`)
  const acl = privateAcl(owner)
  const add = (grantee: S3Grantee, permission: S3Permission) => acl.grants.push({ grantee, permission })
  switch (name as CannedAcl) {
    case 'private': case 'aws-exec-read': break
    case 'public-read': add(group(ALL_USERS_GROUP), 'READ'); break
    case 'public-read-write': add(group(ALL_USERS_GROUP), 'READ'); add(group(ALL_USERS_GROUP), 'WRITE'); break
    case 'authenticated-read': add(group(AUTHENTICATED_USERS_GROUP), 'READ'); break
    case 'bucket-owner-read': add(user(bucketOwner), 'READ'); break
    case 'bucket-owner-full-control': add(user(bucketOwner), 'FULL_CONTROL'); break
    case 'log-delivery-write': add(group(LOG_DELIVERY_GROUP), 'WRITE'); add(group(LOG_DELIVERY_GROUP), 'READ_ACP'); break
  }
  return { owner, grants: dedupe(acl.grants) }
}

/** The x-amz-grant-* headers, in the order their grants are listed. */
const GRANT_HEADERS: readonly [string, S3Permission][] = [
  ['x-amz-grant-read', 'READ'], ['x-amz-grant-write', 'WRITE'], ['x-amz-grant-read-acp', 'READ_ACP'], ['x-amz-grant-write-acp', 'WRITE_ACP'], ['x-amz-grant-full-control', 'FULL_CONTROL'],
]

/**
 * The ACL a request's headers set: x-amz-acl (a canned ACL, see cannedAcl) or x-amz-grant-*
 * (each a comma-separated list of `id="user"`, `uri="group URI"`; exactly the grants listed,
 * as S3 makes them); undefined when it has neither. Both at once is InvalidRequest; a grantee
 * by `emailAddress` is UnresolvableGrantByEmailAddress (O3 users have no e-mail address, and
 * AWS has dropped such grants); anything else malformed is InvalidArgument.
 */
export function aclFromHeaders(headers: Headers, owner: string, bucketOwner: string): S3Acl | undefined {
  const canned = headers.get('x-amz-acl')
  const granted = GRANT_HEADERS.filter(([h]) => headers.has(h))
  if (canned !== null && granted.length > 0) throw new S3AccessError('InvalidRequest', 'Specifying both Canned ACLs and Header Grants is not allowed')
  if (canned !== null) return cannedAcl(canned.trim(), owner, bucketOwner)
  if (granted.length === 0) return undefined
  const grants: S3Grant[] = []
  for (const [h, permission] of granted) for (const grantee of parseGrantees(headers.get(h)!)) grants.push({ grantee, permission })
  if (grants.length > S3_ACL_GRANTS_MAX) throw new S3AccessError('InvalidArgument', `Cannot set an ACL of ${grants.length} grants: at most ${S3_ACL_GRANTS_MAX}`)
  return { owner, grants: dedupe(grants) }
}

/** `id="a", uri="http://..."`: S3's grantee list of one x-amz-grant-* header (quotes optional). */
function parseGrantees(value: string): S3Grantee[] {
  const out: S3Grantee[] = []
  for (const raw of value.split(',')) {
    const item = raw.trim()
    if (item === '') continue
    const m = /^([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([^"\s]+))$/.exec(item)
    if (m === null) throw new S3AccessError('InvalidArgument', `Invalid grantee ${JSON.stringify(item)}: use id="...", uri="..." or emailAddress="..."`)
    const type = m[1].toLowerCase()
    const v = m[2] ?? m[3]
    if (type === 'id') out.push(checkedUser(v, 'InvalidArgument'))
    else if (type === 'uri') out.push(checkedGroup(v, 'InvalidArgument'))
    else if (type === 'emailaddress') throw unresolvableEmail()
    else throw new S3AccessError('InvalidArgument', `Invalid grantee type ${JSON.stringify(m[1])}: use id, uri or emailAddress`)
  }
  if (out.length === 0) throw new S3AccessError('InvalidArgument', 'An x-amz-grant-* header names no grantee')
  return out
}

function unresolvableEmail(): S3AccessError {
  return new S3AccessError('UnresolvableGrantByEmailAddress', 'The e-mail address you provided does not match any account on record: grant by canonical user id (the user name) instead')
}

function checkedUser(id: string, code: 'InvalidArgument' | 'MalformedACLError'): S3Grantee {
  if (id.trim() === '' || id.length > 256) throw new S3AccessError(code, 'Invalid id')
  return user(id.trim())
}

function checkedGroup(uri: string, code: 'InvalidArgument' | 'MalformedACLError'): S3Grantee {
  if (!GROUPS.includes(uri.trim())) throw new S3AccessError(code, `Invalid group uri ${JSON.stringify(uri)}`)
  return group(uri.trim())
}

/** Grants with the same grantee and permission kept once, first first. */
function dedupe(grants: S3Grant[]): S3Grant[] {
  const seen = new Set<string>()
  return grants.filter((g) => {
    const k = `${granteeKey(g.grantee)} ${g.permission}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

const granteeKey = (g: S3Grantee) => g.type === 'CanonicalUser' ? `id:${g.id}` : `uri:${g.uri}`

const MALFORMED = 'The XML you provided was not well-formed or did not validate against our published schema'
const malformed = (detail: string) => new S3AccessError('MalformedACLError', `${MALFORMED}: ${detail}`)

/**
 * The ACL an AccessControlPolicy document sets (PutBucketAcl, PutObjectAcl). `doc` is the
 * root element's content as the gateway's parser reads it: child elements by name (`Grant`
 * always an array), text as strings, attributes as `@_name` with namespace prefixes removed
 * (xsi:type is `@_type`). `owner` owns the resource: an Owner/ID naming anyone else is
 * AccessDenied (an ACL cannot give a resource away); Owner may be left out. A document that
 * does not have S3's shape is MalformedACLError; an e-mail grantee UnresolvableGrantByEmailAddress.
 */
export function parseAclXml(doc: Record<string, unknown>, owner: string): S3Acl {
  const ownerEl = doc.Owner
  if (ownerEl !== undefined) {
    if (!isElement(ownerEl)) throw malformed('Owner must hold an ID')
    const id = text(ownerEl.ID)
    if (id === undefined) throw malformed('Owner must hold an ID')
    if (id.trim() !== owner) throw new S3AccessError('AccessDenied', 'Access Denied: the Owner of an ACL must be the resource\'s owner')
  }
  const list = doc.AccessControlList
  if (list === undefined) throw malformed('AccessControlPolicy must hold an AccessControlList')
  const grantEls = list === '' ? [] : isElement(list) ? (list.Grant ?? []) : undefined
  if (!Array.isArray(grantEls)) throw malformed('AccessControlList must hold Grant elements')
  if (grantEls.length > S3_ACL_GRANTS_MAX) throw malformed(`an ACL holds at most ${S3_ACL_GRANTS_MAX} grants, not ${grantEls.length}`)
  const grants: S3Grant[] = []
  for (const g of grantEls) {
    if (!isElement(g) || !isElement(g.Grantee)) throw malformed('every Grant must hold a Grantee')
    const permission = text(g.Permission)?.trim()
    if (permission === undefined || !(S3_PERMISSIONS as readonly string[]).includes(permission)) throw malformed(`Permission must be one of ${S3_PERMISSIONS.join(', ')}`)
    grants.push({ grantee: parseGrantee(g.Grantee), permission: permission as S3Permission })
  }
  return { owner, grants: dedupe(grants) }
}

function parseGrantee(el: Record<string, unknown>): S3Grantee {
  const type = text(el['@_type'])
  const id = text(el.ID), uri = text(el.URI), email = text(el.EmailAddress)
  // xsi:type says which; AWS's own SDKs always send it, but a grantee with one identifying
  // element is read by that element.
  const kind = type ?? (id !== undefined ? 'CanonicalUser' : uri !== undefined ? 'Group' : email !== undefined ? 'AmazonCustomerByEmail' : undefined)
  switch (kind) {
    case 'CanonicalUser':
      if (id === undefined) throw malformed('a CanonicalUser Grantee must hold an ID')
      return checkedUser(id, 'MalformedACLError')
    case 'Group':
      if (uri === undefined) throw malformed('a Group Grantee must hold a URI')
      return checkedGroup(uri, 'MalformedACLError')
    case 'AmazonCustomerByEmail':
      throw unresolvableEmail()
    default:
      throw malformed(`Grantee type ${JSON.stringify(kind ?? '')} is not CanonicalUser, Group or AmazonCustomerByEmail`)
  }
}

const isElement = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const text = (v: unknown): string | undefined => typeof v === 'string' ? v : undefined

/**
 * The AccessControlPolicy element tree of an ACL (GetBucketAcl, GetObjectAcl), for the
 * gateway's XML builder: attributes as `@_name`. A user's display name is its id.
 */
export function aclToXml(acl: S3Acl): Record<string, unknown> {
  return {
    Owner: { ID: acl.owner, DisplayName: acl.owner },
    AccessControlList: {
      Grant: acl.grants.map((g) => ({
        Grantee: g.grantee.type === 'CanonicalUser'
          ? { '@_xmlns:xsi': XSI_NS, '@_xsi:type': 'CanonicalUser', ID: g.grantee.id, DisplayName: g.grantee.id }
          : { '@_xmlns:xsi': XSI_NS, '@_xsi:type': 'Group', URI: g.grantee.uri },
        Permission: g.permission,
      })),
    },
  }
}

/** Whether a grant is public (S3 "The meaning of public"): to AllUsers or AuthenticatedUsers. */
export function isPublicGrant(grant: S3Grant): boolean {
  return grant.grantee.type === 'Group' && (grant.grantee.uri === ALL_USERS_GROUP || grant.grantee.uri === AUTHENTICATED_USERS_GROUP)
}

/** Whether an ACL grants anything to the public (BlockPublicAcls refuses it, IgnorePublicAcls ignores its public grants). */
export function isPublicAcl(acl: S3Acl): boolean {
  return acl.grants.some(isPublicGrant)
}

/**
 * Whether `acl` grants `principal` (a user; undefined: anonymous) `permission`: a grant to the
 * user, to AllUsers, or (signed requests) to AuthenticatedUsers, of that permission or of
 * FULL_CONTROL. LogDelivery grants nothing here. `ignorePublic` leaves out the grants to the
 * two public groups (PublicAccessBlock's IgnorePublicAcls).
 */
export function aclAllows(acl: S3Acl, principal: string | undefined, permission: S3Permission, options: { ignorePublic?: boolean } = {}): boolean {
  return acl.grants.some((g) => {
    if (g.permission !== permission && g.permission !== 'FULL_CONTROL') return false
    if (options.ignorePublic === true && isPublicGrant(g)) return false
    const e = g.grantee
    if (e.type === 'CanonicalUser') return principal !== undefined && e.id === principal
    return e.uri === ALL_USERS_GROUP || (e.uri === AUTHENTICATED_USERS_GROUP && principal !== undefined)
  })
}

/**
 * A key's ACL, from its metadata (`x-o3-acl`, JSON of S3Acl); a key written without one (or
 * before ACLs existed) belongs to its bucket's owner, privately. A record that does not read
 * as an ACL is treated the same way: it grants nobody but that owner.
 */
export function objectAcl(metadata: Record<string, string>, bucketOwner: string): S3Acl {
  const raw = metadata[OBJECT_ACL_METADATA]
  if (raw === undefined) return privateAcl(bucketOwner)
  try {
    const acl = JSON.parse(raw) as S3Acl
    if (typeof acl.owner === 'string' && Array.isArray(acl.grants)) return acl
  } catch { /* below */ }
  return privateAcl(bucketOwner)
}
