/**
 * Goal: native-acl.ts reads and writes Ozone's ACL strings, merges and removes rights per
 * identity and scope as OzoneAclUtil does, hands DEFAULT ACLs down on creation, and evaluate()
 * matches users, groups, world and anonymous. Method: tables of strings and principals.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { addAcl, checkAcl, evaluate, formatAcl, inheritedAcls, mergeAcls, parseAcl, parseGroups, removeAcl, ACL_RIGHTS, type OzoneAcl } from '../../../core/access/native-acl.ts'
import { O3Error } from '../../../core/errors.ts'

test('parseAcl() reads Ozone\'s forms and formatAcl() writes the short one back', () => {
  const cases: [string, OzoneAcl, string][] = [
    ['user:bob:rw', { type: 'user', name: 'bob', rights: ['READ', 'WRITE'], scope: 'ACCESS' }, 'user:bob:rw'],
    ['group:dev:a[DEFAULT]', { type: 'group', name: 'dev', rights: ['ALL'], scope: 'DEFAULT' }, 'group:dev:a[DEFAULT]'],
    ['world::r', { type: 'world', name: '', rights: ['READ'], scope: 'ACCESS' }, 'world::r'],
    ['anonymous::r[ACCESS]', { type: 'anonymous', name: '', rights: ['READ'], scope: 'ACCESS' }, 'anonymous::r'],
    ['USER:bob:READ,LIST', { type: 'user', name: 'bob', rights: ['READ', 'LIST'], scope: 'ACCESS' }, 'user:bob:rl'],
    ['user:bob:wrxyyr', { type: 'user', name: 'bob', rights: ['READ', 'WRITE', 'READ_ACL', 'WRITE_ACL'], scope: 'ACCESS' }, 'user:bob:rwxy'],
    ['user:bob:rwcldxyan', { type: 'user', name: 'bob', rights: [...ACL_RIGHTS], scope: 'ACCESS' }, 'user:bob:rwcldxyan'],
  ]
  for (const [text, acl, short] of cases) {
    assert.equal(parseAcl(text), acl, text)
    assert.is(formatAcl(acl), short, text)
    assert.equal(checkAcl(acl), acl, `checkAcl ${text}`)
  }
})

test('parseAcl() refuses malformed ACLs with INVALID_ARGUMENT naming the ACL', () => {
  for (const bad of ['', 'user:bob', 'user:bob:rw:x', 'robot:bob:r', 'user::r', 'world:bob:r', 'user:bob:', 'user:bob:q', 'user:bob:READ,FLY', 'user:b b:r', 'user:bob:r[OTHER]']) {
    try {
      parseAcl(bad)
      assert.unreachable(bad)
    } catch (err) {
      assert.instance(err, O3Error, bad)
      assert.is((err as O3Error).code, 'INVALID_ARGUMENT', bad)
      assert.ok((err as Error).message.includes(JSON.stringify(bad)), bad)
    }
  }
  assert.throws(() => checkAcl({ type: 'user', name: 'bob', rights: ['FLY'], scope: 'ACCESS' }), (e: O3Error) => e.code === 'INVALID_ARGUMENT')
  // A bad scope is named as a scope, not as an unknown right.
  for (const [bad, scope] of [['user:bob:r[FOO]', 'FOO'], ['group:dev:READ[defaults]', 'defaults'], ['world::r[]', '']]) {
    assert.throws(() => parseAcl(bad), (e: O3Error) => e.message.includes(`unknown scope ${scope}: use ACCESS or DEFAULT`) && !e.message.includes('unknown right'), bad)
  }
  assert.is(parseAcl('user:bob:r[default]').scope, 'DEFAULT')
})

test('addAcl() merges rights into the ACL of the same identity and scope; removeAcl() takes them out and drops an empty ACL', () => {
  let acls: OzoneAcl[] = [parseAcl('user:bob:r')]
  let r = addAcl(acls, parseAcl('user:bob:w'))
  assert.ok(r.changed)
  assert.equal(r.acls.map(formatAcl), ['user:bob:rw'])
  assert.not.ok(addAcl(r.acls, parseAcl('user:bob:r')).changed)
  r = addAcl(r.acls, parseAcl('user:bob:r[DEFAULT]'))
  assert.equal(r.acls.map(formatAcl), ['user:bob:rw', 'user:bob:r[DEFAULT]'])
  acls = r.acls
  r = removeAcl(acls, parseAcl('user:bob:w'))
  assert.equal(r.acls.map(formatAcl), ['user:bob:r', 'user:bob:r[DEFAULT]'])
  r = removeAcl(r.acls, parseAcl('user:bob:r'))
  assert.equal(r.acls.map(formatAcl), ['user:bob:r[DEFAULT]'])
  assert.not.ok(removeAcl(r.acls, parseAcl('user:carol:r')).changed)
  assert.equal(removeAcl([parseAcl('user:bob:rwl')], parseAcl('user:bob:a')).acls, [])
  assert.equal(mergeAcls([parseAcl('user:bob:r'), parseAcl('world::l'), parseAcl('user:bob:d')]).map(formatAcl), ['user:bob:rd', 'world::l'])
  assert.throws(() => mergeAcls(Array.from({ length: 101 }, (_, i) => parseAcl(`user:u${i}:r`))), (e: O3Error) => e.code === 'INVALID_ARGUMENT')
})

test('inheritedAcls() gives the owner ALL and the parent\'s DEFAULT ACLs as ACCESS (and DEFAULT for a bucket); ACCESS ACLs stay behind', () => {
  const volume = [parseAcl('user:alice:a'), parseAcl('user:bob:r'), parseAcl('group:dev:rl[DEFAULT]')]
  assert.equal(inheritedAcls('carol', volume, true).map(formatAcl), ['user:carol:a', 'group:dev:rl', 'group:dev:rl[DEFAULT]'])
  assert.equal(inheritedAcls('carol', volume, false).map(formatAcl), ['user:carol:a', 'group:dev:rl'])
  assert.equal(inheritedAcls(undefined, undefined, false), [])
})

test('evaluate() matches user, group, world (signed users) and anonymous (anyone); DEFAULT and NONE grant nothing', () => {
  const acls = [parseAcl('user:bob:r'), parseAcl('group:dev:w'), parseAcl('world::l'), parseAcl('anonymous::x'), parseAcl('user:carol:a'), parseAcl('user:dave:d[DEFAULT]')]
  const bob = { user: 'bob', groups: [] }
  const erin = { user: 'erin', groups: ['dev'] }
  const anon = { groups: [] }
  const rights = (p: { user?: string; groups: string[] }) => ACL_RIGHTS.filter((r) => evaluate(p, acls, r))
  assert.equal(rights(bob), ['READ', 'LIST', 'READ_ACL'])
  assert.equal(rights(erin), ['WRITE', 'LIST', 'READ_ACL'])
  assert.equal(rights(anon), ['READ_ACL'])
  assert.equal(rights({ user: 'carol', groups: [] }), ['READ', 'WRITE', 'CREATE', 'LIST', 'DELETE', 'READ_ACL', 'WRITE_ACL', 'ALL'])
  assert.equal(rights({ user: 'dave', groups: [] }), ['LIST', 'READ_ACL'])
})

test('parseGroups() reads o3.groups into groups by user; a malformed entry is INVALID_ARGUMENT', () => {
  const g = parseGroups('dev:alice,bob; ops:bob ;;')
  assert.equal(g.get('alice'), ['dev'])
  assert.equal(g.get('bob'), ['dev', 'ops'])
  assert.is(g.get('carol'), undefined)
  assert.throws(() => parseGroups('dev'), (e: O3Error) => e.code === 'INVALID_ARGUMENT')
})

test.run()
