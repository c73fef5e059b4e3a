/** Goal: operating the OM group (issue 11, `o3 admin om roles|transfer|add|remove`): roles
 * shows every member with one leader; a transfer moves the leader and writes go on; a fourth
 * OM added to a running group under writes catches up to the same tables and the group of
 * four survives a leader stop; removing the leader shrinks the group to three, which goes
 * on; every member restarted afterwards still knows the membership and the added member's
 * address, though the founders' settings never named it. Method: an SCM, OMs and three
 * datanodes in this process on loopback ports, LMDB in a temporary directory. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RpcClient } from '../../core/rpc/client.ts'
import { O3Client } from '../../datapath/client/index.ts'
import { groupRoles } from '../../cli/group-admin.ts'
import { errorCode, freePort, randomBytes, until } from '../helpers.ts'
import { haOf as ha, OmGroup } from './om-group.ts'

const g = new OmGroup('o3-om-members-')
const { scm, oms, omConfigs, startOm, stopOm, addressOf, leaderName } = g
let client: O3Client
/** Every key a writer had acknowledged, with its seed. */
const acked = new Map<string, number>()

/** Every running OM holds the same tables (members that join take longer). */
const converged = (what: string) => g.converged(what, 30_000)

/** Writers not stopped yet: the next test stops them (a test that failed did not). */
const writers = new Set<{ stop(): Promise<number> }>()

/**
 * Writes keys until `stop()`, which returns how many were acknowledged (each is recorded) or
 * throws the write that failed. A failure waits for stop(): it never escapes as an unhandled
 * rejection, which would end the file before uvu reports why a test failed.
 */
function writer(prefix: string): { stop(): Promise<number> } {
  let running = true
  let n = 0
  const done = (async () => {
    while (running) {
      const key = `${prefix}-${n}`
      await client.putKey('vol', 'bkt', key, randomBytes(1000 + (n % 7), n))
      acked.set(key, n)
      n++
    }
  })()
  done.catch(() => {}) // thrown by stop()
  const w = { stop: async () => { running = false; writers.delete(w); await done; return n } }
  writers.add(w)
  return w
}

/** Stops the writers a failed test left running (their failure is that test's, reported already). */
async function stopLeftWriters(): Promise<void> {
  for (const w of [...writers]) await w.stop().catch(() => undefined)
}

test.before.each(stopLeftWriters)

async function allAckedReadable(): Promise<void> {
  for (const [key, seed] of acked) assert.ok((await client.getKey('vol', 'bkt', key)).equals(randomBytes(1000 + (seed % 7), seed)), key)
}


const ports = new Map<string, [number, number]>()
const spec = (name: string) => `${name}@127.0.0.1:${ports.get(name)![0]}:${ports.get(name)![1]}`

test.before(async () => {
  await g.startScmAndDatanodes()
  for (const name of ['om1', 'om2', 'om3', 'om4']) ports.set(name, [await freePort(), await freePort()])
  const founders = ['om1', 'om2', 'om3'].map(spec).join(',')
  for (const name of ['om1', 'om2', 'om3']) omConfigs.set(name, g.omConfig(name, founders, ports.get(name)![0]))
  // The new OM's settings list the group and itself; the founders' never name it.
  omConfigs.set('om4', g.omConfig('om4', ['om1', 'om2', 'om3', 'om4'].map(spec).join(','), ports.get('om4')![0], { 'om.bootstrap': 1 }))
  await Promise.all(['om1', 'om2', 'om3'].map(startOm))
  client = new O3Client({ om: ['om1', 'om2', 'om3', 'om4'].map(addressOf).join(','), scm: scm.address })
  await until('out of safemode', async () => !(await client.admin<{ inSafeMode: boolean }>('safemodeStatus')).inSafeMode || undefined)
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt')
})

test('roles, asked of one OM, shows all three with one leader', async () => {
  const leader = await leaderName()
  const rows = await groupRoles('OM', [addressOf('om2')])
  assert.equal(rows.map((r) => r.name), ['om1', 'om2', 'om3'])
  assert.equal(rows.map((r) => r.address), ['om1', 'om2', 'om3'].map(addressOf))
  assert.equal(rows.filter((r) => r.role === 'LEADER').map((r) => r.name), [leader])
  assert.is(rows.filter((r) => r.role === 'FOLLOWER').length, 2)
  assert.ok(rows.every((r) => r.term === rows[0].term && (r.applied ?? 0) > 0))
})

test('transfer hands leadership to the named voter and writes go on; an unknown target is refused', async () => {
  const old = await leaderName()
  const target = ['om1', 'om2', 'om3'].find((n) => n !== old)!
  const rpc = new RpcClient('OM', ['om1', 'om2', 'om3'].map(addressOf))
  const w = writer('transfer')
  const r = await rpc.call<{ leader: string }>('transferLeadership', { target })
  assert.is(r.leader, target)
  assert.is(await leaderName(), target)
  assert.ok(await w.stop() > 0)
  await client.putKey('vol', 'bkt', 'after-transfer', randomBytes(10, 1))
  assert.is(await errorCode(rpc.call('transferLeadership', { target: 'om9' })), 'INVALID_ARGUMENT')
  assert.is(await errorCode(rpc.call('transferLeadership', { target: 'om4' })), 'INVALID_ARGUMENT')
  await allAckedReadable()
})

test('a transfer to a stopped voter fails within a few election timeouts (UNAVAILABLE, not a 10 s TIMEOUT) and writes go on meanwhile', async () => {
  const leader = await leaderName()
  const target = ['om1', 'om2', 'om3'].find((n) => n !== leader)!
  await stopOm(target)
  try {
    const rpc = new RpcClient('OM', ['om1', 'om2', 'om3'].map(addressOf))
    const transfer = rpc.call('transferLeadership', { target }).then(() => undefined, (e: Error & { code?: string }) => e)
    // While the leader asks a transfer it takes no writes: asked again and again, it took none for the whole wait.
    await client.putKey('vol', 'bkt', 'during-transfer', randomBytes(10, 2))
    const err = await transfer
    assert.is(err?.code, 'UNAVAILABLE')
    assert.match(err!.message, `Cannot transfer leadership to ${target}: it has not answered the leader`)
    assert.is(await leaderName(), leader)
  } finally {
    await startOm(target)
  }
  await converged('the stopped OM back')
})

test('a fourth OM joins the running group under writes, catches up, and the four survive a leader stop', async () => {
  const w = writer('add')
  const starting = startOm('om4')
  const rpc = new RpcClient('OM', ['om1', 'om2', 'om3'].map(addressOf))
  const added = await rpc.call<{ id: number; name: string; voter: boolean }>('addMember', { node: spec('om4') }, { timeoutMs: 150_000 })
  assert.equal(added, { id: 4, name: 'om4', voter: true })
  await starting
  assert.ok(await w.stop() > 0)
  await converged('om4 caught up')
  const rows = await groupRoles('OM', [addressOf('om1')])
  assert.equal(rows.map((r) => r.name), ['om1', 'om2', 'om3', 'om4'])
  assert.is(rows.filter((r) => r.role === 'LEADER').length, 1)
  assert.ok(rows.every((r) => r.role === 'LEADER' || r.role === 'FOLLOWER'), JSON.stringify(rows))
  // Adding it again is refused: it is a voter already.
  assert.is(await errorCode(rpc.call('addMember', { node: spec('om4') })), 'INVALID_ARGUMENT')
  // Four voters: quorum three. Stop the leader; the other three elect one and serve.
  const old = await leaderName()
  await stopOm(old)
  const w2 = writer('four')
  const next = await leaderName()
  assert.is.not(next, old)
  await until('some writes with the leader stopped', () => acked.has('four-3') || undefined, 30_000)
  assert.ok(await w2.stop() > 0)
  const down = await groupRoles('OM', [addressOf(next)])
  assert.is(down.find((r) => r.name === old)?.role, 'UNREACHABLE')
  await startOm(old)
  await converged('the stopped OM caught up')
  await allAckedReadable()
})

test('removing the leader: it steps down, the group goes on with three; removing a non-member is refused', async () => {
  const rpc = new RpcClient('OM', ['om1', 'om2', 'om3', 'om4'].map(addressOf))
  assert.is(await errorCode(rpc.call('removeMember', { name: 'om9' })), 'INVALID_ARGUMENT')
  // om2 leads, so that om4 (which only the replicated book names to the founders) stays.
  await rpc.call('transferLeadership', { target: 'om2' })
  const leader = await leaderName()
  assert.is(leader, 'om2')
  const w = writer('remove')
  const r = await rpc.call<{ name: string; removed: boolean }>('removeMember', { name: leader })
  assert.equal(r, { id: Number(leader.slice(2)), name: leader, removed: true })
  const next = await until('a new leader', () => [...oms.entries()].find(([n, om]) => n !== leader && ha(om).isLeader())?.[0], 30_000)
  assert.ok(!ha(oms.get(leader)!).isLeader())
  await until('some writes after the removal', () => acked.has(`remove-${3}`) || undefined, 30_000)
  assert.ok(await w.stop() > 0)
  await stopOm(leader)
  const rows = await groupRoles('OM', [addressOf(next)])
  assert.equal(rows.map((x) => x.name), ['om1', 'om2', 'om3', 'om4'].filter((n) => n !== leader))
  assert.ok(rows.every((x) => x.role === 'LEADER' || x.role === 'FOLLOWER'), JSON.stringify(rows))
  for (const om of oms.values()) assert.is(ha(om).raft.status().confState.voters.length, 3)
  await converged('three OMs agree')
  await allAckedReadable()
})

test('every member restarted after the changes still knows the membership and each other\'s addresses', async () => {
  const removed = 'om2'
  const members = ['om1', 'om3', 'om4']
  for (const n of members) await stopOm(n)
  await Promise.all(members.map(startOm))
  await leaderName()
  for (const om of oms.values()) {
    const conf = ha(om).raft.status().confState
    assert.is(conf.voters.length, 3)
    assert.not.ok(conf.voters.includes(Number(removed.slice(2))))
  }
  // Asked of a founder whose settings never named om4.
  const rows = await groupRoles('OM', [addressOf('om1')])
  assert.equal(rows.map((r) => [r.name, r.address]), members.map((n) => [n, addressOf(n)]))
  assert.ok(rows.every((r) => r.role === 'LEADER' || r.role === 'FOLLOWER'), JSON.stringify(rows))
  // om4 can lead: the founders reach it by the replicated address.
  await new RpcClient('OM', members.map(addressOf)).call('transferLeadership', { target: 'om4' })
  assert.is(await leaderName(), 'om4')
  await client.putKey('vol', 'bkt', 'after-restart', randomBytes(10, 2))
  await converged('restarted OMs agree')
  assert.ok((await client.getKey('vol', 'bkt', 'after-restart')).equals(randomBytes(10, 2)))
})

test('an add that stopped after its book entry resumes with the id the new node took from it', async () => {
  ports.set('om5', [await freePort(), await freePort()])
  omConfigs.set('om5', g.omConfig('om5', ['om1', 'om3', 'om4', 'om5'].map(spec).join(','), ports.get('om5')![0], { 'om.bootstrap': 1 }))
  const leader = oms.get(await leaderName())!
  // The first half of an add (the leader lost its leadership, say, before the learner).
  const book = (leader as unknown as { ha: { submit(name: string, args: unknown): Promise<unknown>; recordedMembers(): { id: number; name: string; removed?: boolean }[] } }).ha
  const [address, raftAddress] = [`127.0.0.1:${ports.get('om5')![0]}`, `127.0.0.1:${ports.get('om5')![1]}`]
  await book.submit('raft.setMembers', { records: [{ id: 7, name: 'om5', address, raftAddress }] })
  assert.ok(book.recordedMembers().some((m) => m.name === 'om2' && m.id === 2 && m.removed === true), 'the removed member is marked in the book')
  const starting = startOm('om5')
  const rpc = new RpcClient('OM', ['om1', 'om3', 'om4'].map(addressOf))
  assert.equal(await rpc.call('addMember', { node: spec('om5') }, { timeoutMs: 150_000 }), { id: 7, name: 'om5', voter: true })
  await starting
  await client.putKey('vol', 'bkt', 'with-om5', randomBytes(10, 3))
  await converged('om5 caught up')
  assert.equal((await groupRoles('OM', [addressOf('om1')])).map((r) => [r.name, r.id]), [['om1', 1], ['om3', 3], ['om4', 4], ['om5', 7]])
})

test.after(async () => {
  await stopLeftWriters()
  await g.stop()
})

test.run()
