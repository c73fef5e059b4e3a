/**
 * Goal: `o3 sh volume|bucket|key addacl|removeacl|setacl|getacl PATH -a ACL` as Ozone's shell
 * has them: getacl as a table and --json, add/remove/set reported, DEFAULT ACLs of a bucket
 * inherited by a key put after them, and a malformed ACL or a missing -a refused as a usage
 * error (exit 2, one line) before any call. With security off nothing is checked, but the ACLs
 * are stored and shown. Method: bin/o3.js as a child process against a real in-process
 * cluster on free ports.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CliCluster } from './o3-cli.ts'

const cli = new CliCluster('o3-cli-acl-', { datanodes: 1 })
const { work, run, json } = cli

test.before(cli.start)
test.after(cli.stop)

type AclJson = { type: string; name: string; scope: string; rights: string[]; acl: string }

test('addacl, removeacl, setacl and getacl on a volume, a bucket and a key (table and --json)', async () => {
  assert.is((await run('sh', 'volume', 'create', '/avol')).code, 0)
  assert.is((await run('sh', 'bucket', 'create', '/avol/abkt')).code, 0)
  const file = join(work, 'one.txt')
  writeFileSync(file, 'one')
  for (const [kind, path] of [['volume', '/avol'], ['bucket', '/avol/abkt']]) {
    const added = await run('sh', kind!, 'addacl', path!, '-a', 'user:bob:rw')
    assert.is(added.code, 0, added.stderr)
    assert.match(added.stdout, new RegExp(`added ACL to ${kind} ${path}: .*user:bob:rw`))
    const table = await run('sh', kind!, 'getacl', path!)
    assert.match(table.stdout, /user\s+│ bob\s+│ READ,WRITE\s+│ ACCESS/)
    const removed = await json<{ changed: boolean; acls: string[] }>('sh', kind!, 'removeacl', path!, '--acl', 'user:bob:w')
    assert.ok(removed.changed)
    assert.ok(removed.acls.includes('user:bob:r'), removed.acls.join(' '))
  }
  // A bucket's DEFAULT ACL reaches the keys put after it.
  assert.is((await run('sh', 'bucket', 'addacl', '/avol/abkt', '-a', 'group:dev:rl[DEFAULT]')).code, 0)
  assert.is((await run('sh', 'key', 'put', '/avol/abkt/k1', file)).code, 0)
  const keyAcls = await json<AclJson[]>('sh', 'key', 'getacl', '/avol/abkt/k1')
  assert.ok(keyAcls.some((a) => a.acl === 'group:dev:rl' && a.scope === 'ACCESS'), JSON.stringify(keyAcls))
  const set = await json<{ acls: string[] }>('sh', 'key', 'setacl', '/avol/abkt/k1', '-a', 'user:carol:a,world::r')
  assert.equal(set.acls, ['user:carol:a', 'world::r'])
  assert.equal((await json<AclJson[]>('sh', 'key', 'getacl', '/avol/abkt/k1')).map((a) => a.acl), ['user:carol:a', 'world::r'])
})

test('a malformed ACL or a missing -a is a usage error (exit 2, one line); a missing object is the OM\'s error', async () => {
  for (const args of [['-a', 'user:bob:q'], ['-a', 'robot:bob:r'], []]) {
    const r = await run('sh', 'volume', 'addacl', '/avol', ...args)
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr)
  }
  const scope = await run('sh', 'bucket', 'addacl', '/avol/abkt', '-a', 'user:bob:r[FOO]')
  assert.is(scope.code, 2, scope.stderr)
  assert.match(scope.stderr, /Cannot parse ACL "user:bob:r\[FOO\]": unknown scope FOO: use ACCESS or DEFAULT/)
  const missing = await run('sh', 'bucket', 'getacl', '/avol/nope')
  assert.is(missing.code, 1, missing.stderr)
  assert.match(missing.stderr, /not found/i)
})

test.run()
