/**
 * Goal: the `o3` command as a script and a person use it: every sh and admin verb, --json
 * output, one-line errors with a non-zero exit. Method: run bin/o3.js as a child process
 * against a real in-process cluster on free ports.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, rmSync, truncateSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from '../cluster/mini-cluster.ts'
import { CliCluster } from './o3-cli.ts'

const cli = new CliCluster('o3-cli-')
const { work, run, json } = cli

test.before(cli.start)
test.after(cli.stop)

test('o3 sh volume and bucket create/info/list/delete', async () => {
  assert.is((await run('sh', 'volume', 'create', '/vol1')).code, 0)
  assert.is((await json<{ name: string }>('sh', 'volume', 'info', '/vol1')).name, 'vol1')
  assert.ok((await json<{ name: string }[]>('sh', 'volume', 'list')).some((v) => v.name === 'vol1'))
  assert.is((await json<{ replication: string }>('sh', 'bucket', 'create', '/vol1/bucket1', '--replication', 'RATIS/ONE')).replication, 'RATIS/ONE')
  assert.is((await json<{ layout: string }>('sh', 'bucket', 'info', '/vol1/bucket1')).layout, 'OBJECT_STORE')
  assert.equal((await json<{ name: string }[]>('sh', 'bucket', 'list', '/vol1')).map((b) => b.name), ['bucket1'])
  await json('sh', 'bucket', 'create', '/vol1/gone')
  await json('sh', 'bucket', 'delete', '/vol1/gone')
  assert.equal((await json<{ name: string }[]>('sh', 'bucket', 'list', '/vol1')).map((b) => b.name), ['bucket1'])
})

test('o3 sh key put/get/info/list/rename/delete round-trip a file', async () => {
  const src = join(work, 'in.bin'), dst = join(work, 'out.bin')
  const data = randomBytes(3 * 1024 * 1024 + 17, 4)
  writeFileSync(src, data)
  assert.is((await run('sh', 'key', 'put', '/vol1/bucket1/dir/file.bin', src)).code, 0)
  assert.is((await run('sh', 'key', 'get', '/vol1/bucket1/dir/file.bin', dst)).code, 0)
  assert.ok(readFileSync(dst).equals(data))
  const info = await json<{ size: number; blocks: { containerId: number; localId: number; length: number; datanodes: { id: string; address: string }[] }[] }>('sh', 'key', 'info', '/vol1/bucket1/dir/file.bin')
  assert.is(info.size, data.length)
  assert.is(info.blocks.reduce((n, b) => n + b.length, 0), data.length)
  assert.ok(info.blocks.every((b) => Number.isSafeInteger(b.containerId) && Number.isSafeInteger(b.localId) && b.datanodes.length === 1 && b.datanodes[0].address.includes(':')))
  const listed = await json<{ keys: { name: string; size: number }[] }>('sh', 'key', 'list', '/vol1/bucket1', '--prefix', 'dir/')
  assert.equal(listed.keys.map((k) => k.name), ['dir/file.bin'])
  assert.is((await run('sh', 'key', 'rename', '/vol1/bucket1/dir/file.bin', 'moved.bin')).code, 0)
  assert.is((await json<{ size: number }>('sh', 'key', 'info', '/vol1/bucket1/moved.bin')).size, data.length)
  assert.is((await run('sh', 'key', 'delete', '/vol1/bucket1/moved.bin')).code, 0)
  assert.equal((await json<{ keys: unknown[] }>('sh', 'key', 'list', '/vol1/bucket1')).keys, [])
})

test('Ctrl-C during o3 sh key put aborts the key: exit 130, nothing left open, no key', async () => {
  const src = join(work, 'big.bin')
  // Sparse: 2 GiB that cost no disk, far more than goes out before the Ctrl-C.
  writeFileSync(src, 'x')
  truncateSync(src, 2 * 1024 ** 3)
  const before = await cli.openKeys()
  assert.ok(Number.isFinite(before), 'the OM exports o3_om_open_keys')
  const child = cli.launch('sh', 'key', 'put', '/vol1/bucket1/cut.bin', src)
  let stderr = ''
  child.stderr!.on('data', (d) => { stderr += d })
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  for (let i = 0; i < 600 && await cli.openKeys() === before; i++) await new Promise((r) => setTimeout(r, 50))
  assert.is(await cli.openKeys(), before + 1, 'the key being written')
  child.kill('SIGINT')
  assert.is(await exited, 130, stderr)
  assert.is(await cli.openKeys(), before, 'no key left open')
  assert.is((await run('sh', 'key', 'info', '/vol1/bucket1/cut.bin')).code, 1, 'no key')
  rmSync(src)
})

test('o3 sh key info lists an EC key\'s block groups with each replica\'s index, role and bytes', async () => {
  const src = join(work, 'ec.bin'), dst = join(work, 'ec-out.bin')
  const data = randomBytes(5 * 64 * 1024 + 3, 5)
  writeFileSync(src, data)
  assert.is((await run('sh', 'key', 'put', '/vol1/bucket1/ec.bin', src, '--replication', 'EC/xor-2-1-64k')).code, 0)
  assert.is((await run('sh', 'key', 'get', '/vol1/bucket1/ec.bin', dst)).code, 0)
  assert.ok(readFileSync(dst).equals(data))
  type Replica = { id: string; address: string; replicaIndex: number; role: string; replicaBytes: number }
  const info = await json<{ replication: string; blocks: { containerId: number; localId: number; length: number; datanodes: Replica[] }[] }>('sh', 'key', 'info', '/vol1/bucket1/ec.bin')
  assert.is(info.replication, 'EC/xor-2-1-64k')
  assert.is(info.blocks.length, 1)
  const [group] = info.blocks
  assert.is(group.length, data.length)
  // Two full stripes of two 64 KiB cells, then 64 KiB + 3 bytes: replica 1 and the parity hold
  // three cells, replica 2 two cells and 3 bytes.
  assert.equal(group.datanodes.map((d) => [d.replicaIndex, d.role, d.replicaBytes]), [[1, 'data', 3 * 65536], [2, 'data', 2 * 65536 + 3], [3, 'parity', 3 * 65536]])
  assert.is(new Set(group.datanodes.map((d) => d.id)).size, 3)
  const table = await run('sh', 'key', 'info', '/vol1/bucket1/ec.bin')
  assert.is(table.code, 0)
  for (const d of group.datanodes) assert.match(table.stdout, new RegExp(`${group.containerId}:${group.localId}.*│ ${d.replicaIndex} .*│ ${d.role} .*│ ${d.replicaBytes} .*│ ${d.address.replace(/\./g, '\\.')}`))
})

/** Terminal columns of the test's strings: 2 for the East Asian wide characters they use, else 1. */
const columns = (s: string) => [...s].reduce((w, ch) => w + (/[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\uff00-\uff60\uffe0-\uffe6]/u.test(ch) ? 2 : 1), 0)

test('o3 sh key list and key info show sizes as put does (97.7 KiB), exact bytes in --json, and line up wide names', async () => {
  const src = join(work, '100k.bin')
  writeFileSync(src, randomBytes(100_000, 6))
  // A CJK name: two columns a character.
  const names = ['tables/abc', 'tables/日本語のキー']
  for (const name of names) {
    const put = await run('sh', 'key', 'put', `/vol1/bucket1/${name}`, src)
    assert.match(put.stdout, /\(97\.7 KiB\)/)
  }
  const list = await run('sh', 'key', 'list', '/vol1/bucket1', '--prefix', 'tables/')
  assert.is(list.code, 0, list.stderr)
  const lines = list.stdout.trimEnd().split('\n')
  for (const line of lines) assert.is(columns(line), columns(lines[0]), `every line as wide as the first: ${line}`)
  for (const name of names) assert.ok(lines.some((l) => l.startsWith(`│ ${name} `) && l.includes('│ 97.7 KiB │')), `${name}: ${list.stdout}`)
  const listed = await json<{ keys: { name: string; size: number }[] }>('sh', 'key', 'list', '/vol1/bucket1', '--prefix', 'tables/')
  assert.equal(listed.keys.map((k) => k.size), [100_000, 100_000])
  const info = await run('sh', 'key', 'info', `/vol1/bucket1/${names[1]}`)
  assert.is(info.code, 0, info.stderr)
  assert.match(info.stdout, /│ size\s+│ 97\.7 KiB \(100000 bytes\)\s+│/)
  const infoLines = info.stdout.split('\n').filter((l) => /^[┌│├└]/.test(l)).slice(0, 13)
  for (const line of infoLines) assert.is(columns(line), columns(infoLines[0]), line)
  assert.is((await json<{ size: number }>('sh', 'key', 'info', `/vol1/bucket1/${names[1]}`)).size, 100_000)
  for (const name of names) assert.is((await run('sh', 'key', 'delete', `/vol1/bucket1/${name}`)).code, 0)
})

test('o3 prints tables for people', async () => {
  const r = await run('sh', 'volume', 'list')
  assert.is(r.code, 0)
  assert.match(r.stdout, /│ volume\s+│ owner/)
  assert.match(r.stdout, /vol1/)
})

test('o3 admin datanode/pipeline/container/safemode answer in JSON', async () => {
  const dns = await json<{ id: string; address: string; state: string }[]>('admin', 'datanode', 'list')
  assert.is(dns.length, 3)
  assert.ok(dns.every((d) => d.state === 'HEALTHY' && d.address.includes(':') && d.id.length > 8))
  const ps = await json<{ replication: string; state: string }[]>('admin', 'pipeline', 'list')
  assert.ok(ps.some((p) => p.replication === 'RATIS/THREE' && p.state === 'OPEN'))
  assert.is(ps.filter((p) => p.replication === 'RATIS/ONE').length, 3)
  const cs = await json<{ id: number }[]>('admin', 'container', 'list')
  assert.ok(cs.length > 0)
  // A state in any case is the state; one that is none is a usage error, not an empty list.
  assert.equal((await json<{ id: number; state: string }[]>('admin', 'container', 'list', '--state', 'open')).map((c) => c.state), cs.filter((c) => (c as { state?: string }).state === 'OPEN').map(() => 'OPEN'))
  const bogus = await run('admin', 'container', 'list', '--state', 'bogus')
  assert.is(bogus.code, 2)
  assert.match(bogus.stderr, /bad --state "bogus": expected one of OPEN, CLOSING, QUASI_CLOSED, CLOSED/)
  const info = await json<{ id: number; health: string[]; replicas: { datanodeId: string; nodeState: string; bcsid: number; blockCount: number }[] }>('admin', 'container', 'info', String(cs[0].id))
  assert.is(info.id, cs[0].id)
  assert.ok(info.health.length > 0 && info.replicas.length > 0, JSON.stringify(info))
  assert.ok(info.replicas.every((r) => r.nodeState === 'HEALTHY' && Number.isSafeInteger(r.bcsid)), JSON.stringify(info.replicas))
  const report = await json<{ lifecycle: Record<string, number>; health: Record<string, number> }>('admin', 'container', 'report')
  assert.is(Object.values(report.lifecycle).reduce((a, b) => a + b, 0), cs.length)
  assert.ok(report.health.HEALTHY >= 0 && report.health.MISSING === 0, JSON.stringify(report))
  assert.is((await json<{ inSafeMode: boolean }>('admin', 'safemode', 'status')).inSafeMode, false)
})

test('o3 admin scm roles shows the SCM group: one LEADER with its term, commit and applied index', async () => {
  const roles = await json<{ id: number; role: string; term: number; commit: number; applied: number; address: string }[]>('admin', 'scm', 'roles')
  assert.is(roles.length, 1)
  assert.is(roles[0].role, 'LEADER')
  assert.ok(roles[0].term >= 1 && roles[0].commit >= roles[0].applied && roles[0].applied > 1, JSON.stringify(roles[0]))
  assert.match(roles[0].address, /:\d+$/)
  const table = await run('admin', 'scm', 'roles')
  assert.is(table.code, 0)
  assert.match(table.stdout, /LEADER/)
})

test('o3 s3 getsecret shows the same pair until revokesecret; then a new one', async () => {
  const first = await json<{ awsAccessKey: string; awsSecret: string }>('s3', 'getsecret', '--user', 'alice')
  assert.ok(first.awsAccessKey.length >= 16 && first.awsSecret.length >= 32)
  assert.equal(await json('s3', 'getsecret', '--user', 'alice'), first)
  assert.is((await run('s3', 'revokesecret', '--user', 'alice')).code, 0)
  const second = await json<{ awsAccessKey: string }>('s3', 'getsecret', '--user', 'alice')
  assert.is.not(second.awsAccessKey, first.awsAccessKey)
})

test('errors print one line and exit non-zero; a failed get leaves no file', async () => {
  for (const [args, pattern, code] of [
    [['sh', 'key', 'info', '/vol1/bucket1/none'], /KEY_NOT_FOUND/, 1],
    [['sh', 'bucket', 'info', '/vol1/nobucket'], /BUCKET_NOT_FOUND/, 1],
    [['sh', 'volume', 'create', '/BAD'], /INVALID_VOLUME_NAME/, 1],
    [['sh', 'key', 'put', '/vol1/bucket1/k', join(work, 'missing')], /no such file/, 1],
    [['sh', 'key', 'frobnicate'], /unknown command/, 2],
    [['admin', 'container', 'info', '999999'], /CONTAINER_NOT_FOUND/, 1],
    [['sh', 'volume', 'info', '/vol1', '--bogus'], /unknown option --bogus/, 2],
  ] as const) {
    const r = await run(...args)
    assert.is(r.code, code, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, pattern)
    assert.match(r.stderr, /^o3: /)
  }
  const dst = join(work, 'never.bin')
  assert.is((await run('sh', 'key', 'get', '/vol1/bucket1/none', dst)).code, 1)
  assert.not.ok(existsSync(dst))
})

test.run()
