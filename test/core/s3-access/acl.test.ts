/**
 * Goal: core/s3-access/acl.ts turns every way S3 sets an ACL (canned names, x-amz-grant-*
 * headers, AccessControlPolicy documents) into the grants AWS's "Canned ACL" table and ACL
 * overview list, refuses what S3 refuses with S3's codes, and answers who an ACL lets do what.
 * Method: tables of inputs and expected S3Acls or error codes; documents as the gateway's
 * parser reads them (attributes `@_name`, namespace prefixes removed).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { aclAllows, aclFromHeaders, aclToXml, CANNED_ACLS, cannedAcl, isPublicAcl, objectAcl, parseAclXml, privateAcl } from '../../../core/s3-access/acl.ts'
import { S3AccessError } from '../../../core/s3-access/errors.ts'
import { ALL_USERS_GROUP, AUTHENTICATED_USERS_GROUP, LOG_DELIVERY_GROUP, type S3Acl, type S3Permission } from '../../../core/s3-access/model.ts'

const code = (run: () => unknown): string => {
  try { run() } catch (err) { return err instanceof S3AccessError ? err.code : String(err) }
  return 'OK'
}
const u = (id: string, permission: S3Permission) => ({ grantee: { type: 'CanonicalUser' as const, id }, permission })
const g = (uri: string, permission: S3Permission) => ({ grantee: { type: 'Group' as const, uri }, permission })

test("cannedAcl() gives each canned ACL AWS's grants, the owner's FULL_CONTROL first", () => {
  const table: [string, S3Acl['grants']][] = [
    ['private', [u('bob', 'FULL_CONTROL')]],
    ['public-read', [u('bob', 'FULL_CONTROL'), g(ALL_USERS_GROUP, 'READ')]],
    ['public-read-write', [u('bob', 'FULL_CONTROL'), g(ALL_USERS_GROUP, 'READ'), g(ALL_USERS_GROUP, 'WRITE')]],
    ['authenticated-read', [u('bob', 'FULL_CONTROL'), g(AUTHENTICATED_USERS_GROUP, 'READ')]],
    ['aws-exec-read', [u('bob', 'FULL_CONTROL')]],
    ['bucket-owner-read', [u('bob', 'FULL_CONTROL'), u('alice', 'READ')]],
    ['bucket-owner-full-control', [u('bob', 'FULL_CONTROL'), u('alice', 'FULL_CONTROL')]],
    ['log-delivery-write', [u('bob', 'FULL_CONTROL'), g(LOG_DELIVERY_GROUP, 'WRITE'), g(LOG_DELIVERY_GROUP, 'READ_ACP')]],
  ]
  assert.equal(table.map(([n]) => n).sort(), [...CANNED_ACLS].sort())
  for (const [name, grants] of table) assert.equal(cannedAcl(name, 'bob', 'alice'), { owner: 'bob', grants }, name)
})

test('cannedAcl() on the bucket owner\'s own object lists the owner once; an unknown name is InvalidArgument', () => {
  assert.equal(cannedAcl('bucket-owner-full-control', 'alice', 'alice'), privateAcl('alice'))
  assert.is(code(() => cannedAcl('public', 'alice', 'alice')), 'InvalidArgument')
  assert.is(code(() => cannedAcl('', 'alice', 'alice')), 'InvalidArgument')
})

test('aclFromHeaders() reads x-amz-acl, or x-amz-grant-* as exactly the grants listed; neither: undefined', () => {
  assert.is(aclFromHeaders(new Headers(), 'alice', 'alice'), undefined)
  assert.equal(aclFromHeaders(new Headers({ 'x-amz-acl': 'public-read' }), 'alice', 'alice'), cannedAcl('public-read', 'alice', 'alice'))
  const h = new Headers({
    'x-amz-grant-read': `id="bob", uri="${ALL_USERS_GROUP}"`,
    'x-amz-grant-full-control': 'id=carol',
    'x-amz-grant-write-acp': ` ID = "dave" `,
  })
  assert.equal(aclFromHeaders(h, 'alice', 'alice'), { owner: 'alice', grants: [u('bob', 'READ'), g(ALL_USERS_GROUP, 'READ'), u('dave', 'WRITE_ACP'), u('carol', 'FULL_CONTROL')] })
})

test('aclFromHeaders() refuses both kinds at once (InvalidRequest), e-mail grantees, unknown groups and bad syntax', () => {
  const ask = (h: Record<string, string>) => code(() => aclFromHeaders(new Headers(h), 'alice', 'alice'))
  assert.is(ask({ 'x-amz-acl': 'private', 'x-amz-grant-read': 'id="bob"' }), 'InvalidRequest')
  assert.is(ask({ 'x-amz-grant-read': 'emailAddress="bob@example.com"' }), 'UnresolvableGrantByEmailAddress')
  assert.is(ask({ 'x-amz-grant-read': 'uri="http://acs.amazonaws.com/groups/global/Nobody"' }), 'InvalidArgument')
  assert.is(ask({ 'x-amz-grant-read': 'bob' }), 'InvalidArgument')
  assert.is(ask({ 'x-amz-grant-read': 'name="bob"' }), 'InvalidArgument')
  assert.is(ask({ 'x-amz-grant-read': '' }), 'InvalidArgument')
  assert.is(ask({ 'x-amz-grant-read': 'id=""' }), 'InvalidArgument')
  assert.is(ask({ 'x-amz-acl': 'nope' }), 'InvalidArgument')
  assert.is(ask({ 'x-amz-grant-read': Array.from({ length: 101 }, (_, i) => `id="u${i}"`).join(',') }), 'InvalidArgument')
})

/** An AccessControlPolicy as the gateway's parser reads it. */
const doc = (grants: unknown[], owner: unknown = { ID: 'alice', DisplayName: 'alice' }): Record<string, unknown> =>
  ({ ...(owner === undefined ? {} : { Owner: owner }), AccessControlList: grants.length === 0 ? '' : { Grant: grants } })

test('parseAclXml() reads canonical-user and group grantees by xsi:type; Owner may be left out', () => {
  const d = doc([
    { Grantee: { '@_type': 'CanonicalUser', ID: 'alice', DisplayName: 'alice' }, Permission: 'FULL_CONTROL' },
    { Grantee: { '@_type': 'Group', URI: ALL_USERS_GROUP }, Permission: 'READ' },
    { Grantee: { ID: 'bob' }, Permission: 'WRITE_ACP' },
  ])
  const want = { owner: 'alice', grants: [u('alice', 'FULL_CONTROL'), g(ALL_USERS_GROUP, 'READ'), u('bob', 'WRITE_ACP')] }
  assert.equal(parseAclXml(d, 'alice'), want)
  assert.equal(parseAclXml({ AccessControlList: d.AccessControlList }, 'alice'), want)
  assert.equal(parseAclXml(doc([]), 'alice'), { owner: 'alice', grants: [] })
})

test('parseAclXml() refuses documents off S3\'s schema (MalformedACLError), another owner (AccessDenied) and e-mail grantees', () => {
  const grant = (grantee: unknown, permission: unknown = 'READ') => ({ Grantee: grantee, Permission: permission })
  const ask = (d: Record<string, unknown>) => code(() => parseAclXml(d, 'alice'))
  assert.is(ask({ Owner: { ID: 'alice' } }), 'MalformedACLError')
  assert.is(ask(doc([grant({ '@_type': 'CanonicalUser', ID: 'bob' }, 'EVERYTHING')])), 'MalformedACLError')
  assert.is(ask(doc([{ Grantee: { '@_type': 'CanonicalUser', ID: 'bob' } }])), 'MalformedACLError')
  assert.is(ask(doc([grant({ '@_type': 'CanonicalUser' })])), 'MalformedACLError')
  assert.is(ask(doc([grant({ '@_type': 'Group', URI: 'http://example.com/g' })])), 'MalformedACLError')
  assert.is(ask(doc([grant({ '@_type': 'Someone', ID: 'bob' })])), 'MalformedACLError')
  assert.is(ask(doc([{ Permission: 'READ' }])), 'MalformedACLError')
  assert.is(ask(doc([grant({ ID: 'bob' })], { DisplayName: 'x' })), 'MalformedACLError')
  assert.is(ask(doc(Array.from({ length: 101 }, (_, i) => grant({ ID: `u${i}` })))), 'MalformedACLError')
  assert.is(ask(doc([grant({ ID: 'bob' })], { ID: 'bob' })), 'AccessDenied')
  assert.is(ask(doc([grant({ '@_type': 'AmazonCustomerByEmail', EmailAddress: 'b@example.com' })])), 'UnresolvableGrantByEmailAddress')
})

test('aclToXml() writes what parseAclXml() reads back, with xsi:type and display names', () => {
  const acl = { owner: 'alice', grants: [u('alice', 'FULL_CONTROL'), g(AUTHENTICATED_USERS_GROUP, 'READ')] }
  const x = aclToXml(acl) as { Owner: unknown; AccessControlList: { Grant: Record<string, Record<string, string>>[] } }
  assert.equal(x.Owner, { ID: 'alice', DisplayName: 'alice' })
  assert.is(x.AccessControlList.Grant[0].Grantee['@_xsi:type'], 'CanonicalUser')
  assert.is(x.AccessControlList.Grant[1].Grantee['@_xsi:type'], 'Group')
  // The parser strips the xsi: prefix: as it reads the document back.
  const read = { ...x, AccessControlList: { Grant: x.AccessControlList.Grant.map((gr) => ({ ...gr, Grantee: { ...gr.Grantee, '@_type': gr.Grantee['@_xsi:type'] } })) } }
  assert.equal(parseAclXml(read, 'alice'), acl)
})

test('aclAllows() matches users, AllUsers (anonymous too), AuthenticatedUsers (signed only), FULL_CONTROL for all; never LogDelivery', () => {
  const acl = { owner: 'alice', grants: [u('alice', 'FULL_CONTROL'), u('bob', 'READ'), g(AUTHENTICATED_USERS_GROUP, 'READ_ACP'), g(ALL_USERS_GROUP, 'WRITE'), g(LOG_DELIVERY_GROUP, 'READ')] }
  const perms: S3Permission[] = ['READ', 'WRITE', 'READ_ACP', 'WRITE_ACP', 'FULL_CONTROL']
  const allowed = (p: string | undefined) => perms.filter((x) => aclAllows(acl, p, x))
  assert.equal(allowed('alice'), perms)
  assert.equal(allowed('bob'), ['READ', 'WRITE', 'READ_ACP'])
  assert.equal(allowed('carol'), ['WRITE', 'READ_ACP'])
  assert.equal(allowed(undefined), ['WRITE'])
  assert.is(aclAllows(acl, undefined, 'WRITE', { ignorePublic: true }), false)
  assert.is(aclAllows(acl, 'carol', 'READ_ACP', { ignorePublic: true }), false)
  assert.is(aclAllows(acl, 'bob', 'READ', { ignorePublic: true }), true)
  assert.is(isPublicAcl(acl), true)
  assert.is(isPublicAcl(cannedAcl('bucket-owner-read', 'bob', 'alice')), false)
})

test('objectAcl() reads x-o3-acl; a key without one (or with an unreadable one) is its bucket owner\'s, private', () => {
  const acl = cannedAcl('public-read', 'bob', 'alice')
  assert.equal(objectAcl({ 'x-o3-acl': JSON.stringify(acl) }, 'alice'), acl)
  assert.equal(objectAcl({}, 'alice'), privateAcl('alice'))
  assert.equal(objectAcl({ 'x-o3-acl': '{' }, 'alice'), privateAcl('alice'))
  assert.equal(objectAcl({ 'x-o3-acl': '{"owner":1}' }, 'alice'), privateAcl('alice'))
})

test.run()
