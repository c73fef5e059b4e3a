/**
 * Goal: `o3 admin om roles|transfer|add|remove` and `o3 admin scm roles|transfer` as an
 * operator runs them: tables and --json, every member listed, leadership moved, a member
 * added and removed, and bad input (an unknown target, a non-member, the last voter, a
 * malformed node) answered with one clear line and a non-zero exit. Method: bin/o3.js as a
 * child process against an SCM and OMs (a group of three, a new fourth, a lone one) running
 * in this process on loopback ports, LMDB in a temporary directory.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig, type O3Config } from '../../core/config.ts'
import { OzoneManager } from '../../control/om/index.ts'
import { StorageContainerManager } from '../../control/scm/index.ts'
import { freePort } from '../helpers.ts'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'o3-cli-group-'))
const base = loadConfig({ env: {}, overrides: { 'scm.dir': join(dir, 'scm') } })
const scm = new StorageContainerManager({ config: base, port: 0 })
const oms = new Map<string, OzoneManager>()
const configs = new Map<string, O3Config>()
const ports = new Map<string, [number, number]>()
const spec = (name: string) => `${name}@127.0.0.1:${ports.get(name)![0]}:${ports.get(name)![1]}`
const addressOf = (name: string) => configs.get(name)!['om.address']
let lone: OzoneManager

interface Run { code: number; stdout: string; stderr: string }
function run(args: string[], om = ['om1', 'om2', 'om3'].map(addressOf).join(',')): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [o3, ...args, '--om', om, '--scm', scm.address], { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

interface Row { name: string; id: number; address: string; role: string; term: number | null; commit: number | null; applied: number | null }
async function roles(kind = 'om'): Promise<Row[]> {
  const r = await run(['admin', kind, 'roles', '--json'])
  assert.is(r.code, 0, r.stderr)
  return JSON.parse(r.stdout) as Row[]
}

async function startOm(name: string): Promise<void> {
  const om = new OzoneManager({ config: configs.get(name)!, scmAddress: scm.address })
  await om.start()
  oms.set(name, om)
}

test.before(async () => {
  await scm.start()
  for (const name of ['om1', 'om2', 'om3', 'om4']) ports.set(name, [await freePort(), await freePort()])
  const group = (names: string[]) => names.map(spec).join(',')
  for (const name of ['om1', 'om2', 'om3', 'om4']) {
    configs.set(name, {
      ...base, 'om.dir': join(dir, name), 'om.id': name, 'om.address': `127.0.0.1:${ports.get(name)![0]}`,
      ...(name === 'om4' ? { 'om.nodes': group(['om1', 'om2', 'om3', 'om4']), 'om.bootstrap': 1 } : { 'om.nodes': group(['om1', 'om2', 'om3']) }),
    })
  }
  await Promise.all(['om1', 'om2', 'om3'].map(startOm))
  lone = new OzoneManager({ config: { ...base, 'om.dir': join(dir, 'lone') }, port: 0, scmAddress: scm.address })
  await lone.start()
})

test.after(async () => {
  for (const om of oms.values()) await om.stop()
  await lone.stop()
  await scm.stop()
  rmSync(dir, { recursive: true, force: true })
})

test('o3 admin om roles: every member, one leader, as a table and as JSON, from any one address', async () => {
  let rows = await roles()
  for (const end = Date.now() + 15_000; rows.filter((r) => r.role === 'LEADER').length !== 1 && Date.now() < end;) rows = await roles()
  assert.equal(rows.map((r) => [r.name, r.id, r.address]), ['om1', 'om2', 'om3'].map((n, i) => [n, i + 1, addressOf(n)]))
  assert.ok(rows.every((r) => (r.role === 'LEADER' || r.role === 'FOLLOWER') && r.term !== null && r.term > 0 && (r.applied ?? 0) > 0))
  const table = await run(['admin', 'om', 'roles'], addressOf('om3'))
  assert.is(table.code, 0, table.stderr)
  assert.match(table.stdout, /node\W+id\W+address\W+role\W+term\W+commit\W+applied/)
  for (const n of ['om1', 'om2', 'om3']) assert.match(table.stdout, new RegExp(`${n}\\W+\\d\\W+${addressOf(n)}\\W+(LEADER|FOLLOWER)\\W+\\d+\\W+\\d+\\W+\\d+`))
  assert.is(table.stdout.split('LEADER').length - 1, 1)
})

test('o3 admin om transfer --target moves the leader; bad targets fail with a clear error and exit 1', async () => {
  const before = (await roles()).find((r) => r.role === 'LEADER')!
  const target = ['om1', 'om2', 'om3'].find((n) => n !== before.name)!
  // Given only a follower's address, the CLI finds the leader through the group.
  const other = ['om1', 'om2', 'om3'].find((n) => n !== before.name && n !== target)!
  const r = await run(['admin', 'om', 'transfer', '--target', target], addressOf(other))
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, `${target} leads the OM group`)
  assert.is((await roles()).find((x) => x.role === 'LEADER')?.name, target)
  const unknown = await run(['admin', 'om', 'transfer', '--target', 'om9'])
  assert.is(unknown.code, 1)
  assert.match(unknown.stderr, /o3: Cannot transfer leadership to om9: not a voter of the OM group \(voters: om1, om2, om3\) \(INVALID_ARGUMENT\)/)
  const missing = await run(['admin', 'om', 'transfer'])
  assert.is(missing.code, 2)
  assert.match(missing.stderr, '--target')
})

test('o3 admin om add admits a new OM (started with om.bootstrap=1) as a voter; remove takes it out again', async () => {
  const starting = startOm('om4')
  const added = await run(['admin', 'om', 'add', spec('om4')])
  assert.is(added.code, 0, added.stderr)
  assert.match(added.stdout, 'om4 is a voter of the OM group (id 4)')
  await starting
  assert.equal((await roles()).map((r) => r.name), ['om1', 'om2', 'om3', 'om4'])
  const again = await run(['admin', 'om', 'add', spec('om4')])
  assert.is(again.code, 1)
  assert.match(again.stderr, 'it is a voter already')
  const removed = await run(['admin', 'om', 'remove', 'om4', '--json'])
  assert.is(removed.code, 0, removed.stderr)
  assert.equal(JSON.parse(removed.stdout), { id: 4, name: 'om4', removed: true })
  // Still running, the removed OM sends whoever asks it to the group: its roles are the group's
  // (not its own stale membership), and a call through it alone sees what the group wrote since.
  const fromRemoved = await run(['admin', 'om', 'roles', '--json'], addressOf('om4'))
  assert.is(fromRemoved.code, 0, fromRemoved.stderr)
  assert.equal((JSON.parse(fromRemoved.stdout) as Row[]).map((r) => r.name), ['om1', 'om2', 'om3'])
  assert.is((await run(['sh', 'volume', 'create', 'after-removal'])).code, 0)
  const through = await run(['sh', 'volume', 'list', '--json'], addressOf('om4'))
  assert.is(through.code, 0, through.stderr)
  assert.match(through.stdout, 'after-removal')
  await oms.get('om4')!.stop()
  oms.delete('om4')
  assert.equal((await roles()).map((r) => r.name), ['om1', 'om2', 'om3'])
})

test('o3 admin om add|remove refuse a malformed node, a non-member and the last voter', async () => {
  for (const node of ['om5@nowhere', 'om5', 'om5@host:99999:9872']) {
    const bad = await run(['admin', 'om', 'add', node])
    assert.is(bad.code, 2, node)
    assert.match(bad.stderr, `o3: bad NODE ${JSON.stringify(node)}: expected name@host:port:raftPort (e.g. om4@host4:9862:9872)`)
  }
  const stranger = await run(['admin', 'om', 'remove', 'om9'])
  assert.is(stranger.code, 1)
  assert.match(stranger.stderr, 'Cannot remove om9 from the OM group: not a member (members: om1, om2, om3) (INVALID_ARGUMENT)')
  const last = await run(['admin', 'om', 'remove', 'om1'], lone.address)
  assert.is(last.code, 1)
  assert.match(last.stderr, 'Cannot remove om1 from the OM group: it is the last voter')
  const noArg = await run(['admin', 'om', 'remove'])
  assert.is(noArg.code, 2)
})

test('o3 admin om roles marks a member that does not answer UNREACHABLE', async () => {
  const follower = (await roles()).find((r) => r.role === 'FOLLOWER')!.name
  await oms.get(follower)!.stop()
  oms.delete(follower)
  const rows = await roles()
  assert.is(rows.find((r) => r.name === follower)?.role, 'UNREACHABLE')
  assert.is(rows.find((r) => r.name === follower)?.term, null)
  assert.is(rows.filter((r) => r.role === 'LEADER').length, 1)
  await startOm(follower)
  const nobody = await run(['admin', 'om', 'roles'], '127.0.0.1:1')
  assert.is(nobody.code, 1)
  assert.match(nobody.stderr, 'none of 127.0.0.1:1 answers')
})

test('o3 admin scm roles and transfer: a group of one', async () => {
  const rows = await roles('scm')
  assert.is(rows.length, 1)
  assert.is(rows[0].role, 'LEADER')
  assert.is(rows[0].address, scm.address)
  const r = await run(['admin', 'scm', 'transfer', '--target', rows[0].name])
  assert.is(r.code, 0, r.stderr)
})

test.run()
