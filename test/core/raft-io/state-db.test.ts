/** Goal: LmdbStateMachine makes a service's LMDB database its Raft state and snapshot (issue
 * 11): entries apply once each, also across restarts (the database records what it applied);
 * an entry the service refuses rolls back its writes on every replica; the log compacts to
 * the database itself (no copy), and a follower that fell behind the leader's log installs a
 * checkpoint the leader makes for it, fetched over HTTP, and catches up.
 * Method: three RaftHosts in this process on loopback, LMDB in a temporary directory. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open, type Database, type RootDatabase } from 'lmdb'
import { request } from 'undici'
import { O3Error } from '../../../core/errors.ts'
import { RaftHost } from '../../../core/raft-io/index.ts'
import { RaftLmdbStore } from '../../../core/raft-io/lmdb-store.ts'
import { LmdbStateMachine } from '../../../core/raft-io/state-db.ts'
import { bootstrap, type NodeId } from '../../../core/raft/index.ts'
import { errorCode, until } from '../../helpers.ts'

/** A tiny replicated service: counters, and a request it refuses after writing. */
class Counters {
  table!: Database<number, string>
  readonly machine: LmdbStateMachine
  constructor(dir: string) {
    this.machine = new LmdbStateMachine({
      dir,
      open: (path) => open({ path, compression: false }),
      opened: (db: RootDatabase) => { this.table = db.openDB<number, string>({ name: 'counters' }) },
      apply: (_db, data) => {
        const op = JSON.parse(new TextDecoder().decode(data)) as { incr?: string; refuse?: string }
        if (op.incr !== undefined) {
          const n = (this.table.get(op.incr) ?? 0) + 1
          this.table.putSync(op.incr, n)
          return n
        }
        this.table.putSync(op.refuse!, -1)
        throw new O3Error('INVALID_ARGUMENT', `refused ${op.refuse}`)
      },
    })
  }
  get(key: string): number | undefined {
    return this.table.get(key)
  }
}

const root = mkdtempSync(join(tmpdir(), 'o3-state-db-'))
const ids: NodeId[] = [1, 2, 3]
const services = new Map<NodeId, Counters>()
const hosts = new Map<NodeId, RaftHost>()
const ports = new Map<NodeId, number>()

async function create(id: NodeId): Promise<RaftHost> {
  const service = new Counters(join(root, `n${id}`, 'state'))
  services.set(id, service)
  const h = await RaftHost.create({
    id, dir: join(root, `n${id}`, 'raft'), voters: ids, stateMachine: service.machine, port: ports.get(id) ?? 0,
    tickMs: 10, electionTimeoutTicks: 50, heartbeatTimeoutTicks: 5, snapshotEveryEntries: 20,
  })
  ports.set(id, h.port)
  hosts.set(id, h)
  return h
}

const peers = () => new Map(ids.map((id) => [id, `http://127.0.0.1:${ports.get(id)}`]))
const leader = () => [...hosts.values()].find((h) => h.status().role === 'leader')

async function propose(op: object): Promise<unknown> {
  for (let attempt = 0; ; attempt++) {
    const l = await until('a leader', leader)
    try {
      return await l.propose(new TextEncoder().encode(JSON.stringify(op)))
    } catch (err) {
      if (!(err instanceof O3Error) || err.code !== 'NOT_LEADER' || attempt >= 20) throw err
    }
  }
}

// A node installing a checkpoint swaps its database (closed, then opened anew): that node is not there yet.
const valueAt = (id: NodeId, key: string) => {
  try {
    return services.get(id)!.get(key)
  } catch {
    return undefined
  }
}
const everywhere = (key: string, n: number) => until(`${key} = ${n} on every node`, () => ids.every((id) => valueAt(id, key) === n) || undefined)

test('entries apply once on every replica; a refused entry rolls back its writes everywhere', async () => {
  for (const id of ids) await create(id)
  for (const h of hosts.values()) h.start(peers())
  for (let i = 1; i <= 5; i++) assert.is(await propose({ incr: 'a' }), i)
  await everywhere('a', 5)
  try {
    await propose({ refuse: 'b' })
    assert.unreachable('refused')
  } catch (err) {
    assert.instance(err, O3Error)
    assert.is((err as O3Error).code, 'INVALID_ARGUMENT')
  }
  await propose({ incr: 'a' })
  await everywhere('a', 6)
  for (const id of ids) assert.is(services.get(id)!.get('b'), undefined, `node ${id} rolled back the refused write`)
})

test('a restart replays only what the database lacks: nothing applies twice', async () => {
  const before = [...hosts.values()].map((h) => services.get(h.id)!.machine.applied().index)
  await Promise.all([...hosts.values()].map((h) => h.stop()))
  for (const s of services.values()) await s.machine.close()
  for (const id of ids) await create(id)
  for (const [i, id] of ids.entries()) assert.ok(services.get(id)!.machine.applied().index >= before[i])
  for (const h of hosts.values()) h.start(peers())
  await propose({ incr: 'a' })
  await everywhere('a', 7)
})

test('a follower behind the leader\'s compacted log installs the leader\'s checkpoint and catches up', async () => {
  const l = await until('a leader', leader)
  const follower = [...hosts.values()].find((h) => h !== l)!
  const id = follower.id
  await follower.stop()
  const stoppedAt = services.get(id)!.machine.applied().index
  await services.get(id)!.machine.close()
  // 60 entries: the leader snapshots every 20 and drops the log before each snapshot.
  for (let i = 0; i < 60; i++) await propose({ incr: 'a' })
  await until('the leader\'s log compacted past the follower', () => l.snapshotIndex() > stoppedAt + 1 || undefined)
  // Compaction copies nothing: the leader's checkpoint is made when the follower needs it.
  const leaderCheckpoints = () => readdirSync(join(root, `n${l.id}`, 'state', 'checkpoints'))
  assert.equal(leaderCheckpoints(), [])
  const again = await create(id)
  again.start(peers())
  await everywhere('a', 67)
  // A checkpoint past where it stopped can only be the leader's, fetched and installed.
  const leaderHas = leaderCheckpoints()
  const fetched = readdirSync(join(root, `n${id}`, 'state', 'checkpoints')).filter((f) => Number(/^checkpoint-(\d+)-/.exec(f)?.[1] ?? 0) > stoppedAt)
  assert.ok(fetched.length > 0 && fetched.every((f) => leaderHas.includes(f)), `the follower installed the leader's checkpoint: ${fetched.join(' ')} of ${leaderHas.join(' ')}`)
  assert.not.ok(existsSync(join(root, `n${id}`, 'state', 'state.mdb.incoming')))
  await propose({ incr: 'a' })
  await everywhere('a', 68)
})

/**
 * A real HTTP proxy in front of `target` (a leader's Raft port) that resets every checkpoint
 * fetch while `refusing` (a leader that died or a network that failed during the copy);
 * Raft messages pass.
 */
async function checkpointProxy(target: string): Promise<{ url: string; refusing: boolean; refused: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (proxy.refusing && req.url!.startsWith('/raft/checkpoint/')) {
      proxy.refused++
      req.socket.destroy()
      return
    }
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== 'host' && k !== 'connection'))
    request(`${target}${req.url}`, { method: req.method as 'GET' | 'POST', headers: headers as Record<string, string>, body: req.method === 'GET' ? undefined : req })
      .then(async (up) => {
        res.writeHead(up.statusCode, Object.fromEntries(Object.entries(up.headers).filter(([k]) => k !== 'connection' && k !== 'transfer-encoding')) as Record<string, string>)
        for await (const piece of up.body) res.write(piece)
        res.end()
      }, () => res.socket?.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const proxy = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, refusing: true, refused: 0,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
  return proxy
}

/** Stops follower `id` and closes its database; answers the index it had applied. */
async function stopFollower(id: NodeId): Promise<number> {
  await hosts.get(id)!.stop()
  const at = services.get(id)!.machine.applied().index
  await services.get(id)!.machine.close()
  return at
}

const checkpointsOf = (id: NodeId) => readdirSync(join(root, `n${id}`, 'state', 'checkpoints'))

test('a follower whose checkpoint fetch fails keeps running, holds the leader\'s log after its copy, and installs it once the leader serves it', async () => {
  const l = await until('a leader', leader)
  const id = [...hosts.values()].find((h) => h !== l)!.id
  const stoppedAt = await stopFollower(id)
  for (let i = 0; i < 60; i++) await propose({ incr: 'a' })
  await until('the leader\'s log compacted past the follower', () => l.snapshotIndex() > stoppedAt + 1 || undefined)
  const proxy = await checkpointProxy(peers().get(l.id)!)
  try {
    const again = await create(id)
    again.start(new Map([...peers(), [l.id, proxy.url]]))
    // Two fetches given up (each tries three times): the node is still up, and behind.
    await until('two failed fetches', () => proxy.refused >= 6 || undefined)
    assert.not.ok(again.failed, 'a failed fetch does not stop the node')
    assert.ok(services.get(id)!.machine.applied().index <= stoppedAt, 'nothing installed yet')
    // The leader made a copy for the member; while the member answers (heartbeats pass the
    // proxy), the leader keeps the log after that copy: 60 more entries compact nothing, so
    // the member needs no second copy however long its fetch takes.
    const copyAt = l.snapshotIndex()
    const copies = checkpointsOf(l.id)
    assert.equal(copies, [`checkpoint-${copyAt}-${l.term()}.mdb`], 'one copy, made for the member')
    for (let i = 0; i < 60; i++) await propose({ incr: 'a' })
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.is(l.snapshotIndex(), copyAt, 'the log after the copy is kept for the member')
    proxy.refusing = false
    await everywhere('a', 188)
    assert.not.ok(again.failed)
    assert.ok(checkpointsOf(l.id).every((f) => copies.includes(f)), 'the member caught up from its copy and the log: no second copy')
    assert.equal(checkpointsOf(id).filter((f) => !/^checkpoint-\d+-\d+\.mdb$/.test(f)), [], 'no partial copy left behind')
    // Caught up, it holds nothing back: the leader compacts past the copy again, and drops it.
    for (let i = 0; i < 40; i++) await propose({ incr: 'a' })
    await until('a compaction past the copy', () => l.snapshotIndex() > copyAt || undefined)
    await until('the copy dropped', () => checkpointsOf(l.id).length === 0 || undefined)
    // The member's fetched copy stays until its own log compacts past it (a restart in between may install it again).
    await until('the fetched copy dropped', () => checkpointsOf(id).length === 0 || undefined)
    await everywhere('a', 228)
  } finally {
    // The follower goes back to the leader's own address before the proxy closes.
    await stopFollower(id)
    await proxy.close()
    ;(await create(id)).start(peers())
  }
})

/** A group of one in `dir` that snapshots at every entry, started and leading. */
async function startSolo(dir: string): Promise<{ h: RaftHost; service: Counters }> {
  const service = new Counters(join(dir, 'state'))
  const h = await RaftHost.create({ id: 1, dir: join(dir, 'raft'), voters: [1], stateMachine: service.machine, tickMs: 10, electionTimeoutTicks: 10, heartbeatTimeoutTicks: 2, snapshotEveryEntries: 1 })
  h.start(new Map([[1, `http://127.0.0.1:${h.port}`]]))
  await until('leading', () => h.status().role === 'leader' || undefined)
  return { h, service }
}

test('a snapshot taken right after a leader\'s no-op names the same index as the database: restarts stay clean', async () => {
  // A group of one that snapshots at every entry: each start's no-op entry ends in a snapshot.
  const start = () => startSolo(join(root, 'solo'))
  let { h, service } = await start()
  for (let i = 1; i <= 4; i++) await h.propose(new TextEncoder().encode(JSON.stringify({ incr: 'solo' })))
  for (let round = 0; round < 2; round++) {
    await h.stop()
    await service.machine.close()
    ;({ h, service } = await start())
    // The new term's no-op is applied (and snapshotted) before the next proposal answers.
    await h.propose(new TextEncoder().encode(JSON.stringify({ incr: 'solo' })))
    assert.is(service.get('solo'), 5 + round)
    assert.is(service.machine.appliedIndex(), h.status().applied)
  }
  await h.stop()
  await service.machine.close()
})

test('the log compacts to the database itself while entries keep applying: no copy is made, and restarts replay the rest', async () => {
  // A group of one asked to snapshot at every entry, under a burst of proposals: each
  // compaction syncs the database off the loop while later entries apply.
  const dir = join(root, 'behind')
  const start = () => startSolo(dir)
  let { h, service } = await start()
  const incr = () => h.propose(new TextEncoder().encode(JSON.stringify({ incr: 'burst' })))
  for (let round = 0; round < 5; round++) await Promise.all(Array.from({ length: 100 }, incr))
  assert.is(service.get('burst'), 500)
  const snapshotIndex = await until('a snapshot', () => h.snapshotIndex() > 400 || undefined)
  assert.ok(snapshotIndex, 'the log was compacted')
  // No member needed a snapshot, so none was copied (a copy per compaction would cost a whole database each time).
  assert.equal(readdirSync(join(dir, 'state', 'checkpoints')), [])
  await h.stop()
  await service.machine.close()
  ;({ h, service } = await start())
  assert.is(service.get('burst'), 500)
  await incr()
  assert.is(service.get('burst'), 501)
  assert.is(service.machine.appliedIndex(), h.status().applied)
  await h.stop()
  await service.machine.close()
})

test('a database behind the log\'s compaction point (writes lost) refuses to start, and says so', async () => {
  const dir = join(root, 'lost')
  let { h, service } = await startSolo(dir)
  const incr = () => h.propose(new TextEncoder().encode(JSON.stringify({ incr: 'lost' })))
  await incr()
  await h.stop()
  await service.machine.close()
  // The database as it was then, kept aside; the log goes on and is compacted past it.
  copyFileSync(join(dir, 'state', 'state.mdb'), join(root, 'lost-state.mdb'))
  ;({ h, service } = await startSolo(dir))
  for (let i = 0; i < 5; i++) await incr()
  await until('a compaction past the old database', () => h.snapshotIndex() > 3 || undefined)
  await h.stop()
  await service.machine.close()
  copyFileSync(join(root, 'lost-state.mdb'), join(dir, 'state', 'state.mdb'))
  const err = await startSolo(dir).then(() => undefined, (e: unknown) => e)
  assert.instance(err, O3Error)
  assert.match((err as O3Error).message, /own state database, which holds only entry \d+/)
})

test('applyAll() applies a Ready\'s entries in one go: answers in order, a refused one rolled back alone, a replay applies nothing', async () => {
  const service = new Counters(join(root, 'batch'))
  const m = service.machine
  const data = (op: object) => new TextEncoder().encode(JSON.stringify(op))
  const ops: (object | undefined)[] = [{ incr: 'a' }, { incr: 'a' }, { refuse: 'b' }, { incr: 'a' }, undefined, { incr: 'c' }, { refuse: 'd' }]
  const entries = ops.map((op, i) => ({ index: i + 1, term: 1, type: 'normal' as const, data: op === undefined ? new Uint8Array(0) : data(op) }))
  const outcomes = m.applyAll(entries)
  assert.equal(outcomes.map((o) => o.failure?.code ?? o.result), [1, 2, 'INVALID_ARGUMENT', 3, undefined, 1, 'INVALID_ARGUMENT'])
  assert.is(service.get('a'), 3)
  assert.is(service.get('c'), 1)
  assert.is(service.get('b'), undefined, 'the refused entry\'s write is rolled back')
  assert.is(service.get('d'), undefined, 'a refusal at the end is rolled back too')
  assert.equal(m.applied(), { index: 7, term: 1 })
  // After a restart the log replays from the snapshot: what the database holds applies no more.
  const again = m.applyAll([...entries, { index: 8, term: 2, type: 'normal', data: data({ incr: 'a' }) }])
  assert.equal(again.map((o) => o.failure?.code ?? o.result), [undefined, undefined, undefined, undefined, undefined, undefined, undefined, 4])
  assert.equal(m.applied(), { index: 8, term: 2 })
  await m.close()
})

test('an apply that fails for a reason of this node (not a refusal) stops the node and leaves the entry unapplied', async () => {
  const dir = join(root, 'broken')
  let fail = false
  const machine = new LmdbStateMachine({
    dir, open: (path) => open({ path }), opened: () => undefined,
    apply: () => {
      if (fail) throw new TypeError('a bug')
      return 1
    },
  })
  const h = await RaftHost.create({ id: 1, dir: join(dir, 'raft'), voters: [1], stateMachine: machine, tickMs: 10, electionTimeoutTicks: 10, heartbeatTimeoutTicks: 2 })
  h.start(new Map([[1, `http://127.0.0.1:${h.port}`]]))
  await until('leading', () => h.status().role === 'leader' || undefined)
  assert.is(await h.propose(new Uint8Array([1])), 1)
  const before = machine.appliedIndex()
  fail = true
  try {
    await h.propose(new Uint8Array([2]))
    assert.unreachable('applied')
  } catch (err) {
    assert.instance(err, O3Error)
    assert.is((err as O3Error).code, 'UNAVAILABLE')
  }
  assert.is(machine.appliedIndex(), before, 'the failed entry does not count as applied')
  assert.is((await errorCode(h.propose(new Uint8Array([3])))), 'UNAVAILABLE', 'a stopped node takes nothing more')
  await h.stop()
  await machine.close()
})

test('a node whose state is ahead of the commit index its log holds (a crash after an apply) starts, snapshots and serves', async () => {
  const dir = join(root, 'ahead')
  const raftDir = join(dir, 'raft'), stateDir = join(dir, 'state')
  const incr = new TextEncoder().encode(JSON.stringify({ incr: 'c' }))
  const start = bootstrap({ voters: [1], learners: [] })
  const entries = [2, 3, 4, 5, 6, 7].map((index) => ({ index, term: 1, type: 'normal' as const, data: incr }))
  // The log as a crash leaves it: six entries, the commit index on disk still at 5 (a first
  // Ready applies up to it and is due a snapshot, while the state holds 7).
  const store = RaftLmdbStore.open(raftDir)
  await store.save({ snapshot: start.snapshot, hardState: start.hardState, entries: [] })
  await store.save({ entries, hardState: { term: 1, vote: 1, commit: 5 } })
  await store.close()
  // The state had applied all six.
  const before = new Counters(stateDir)
  await before.machine.restore(start.snapshot, undefined)
  for (const e of entries) before.machine.apply(e)
  assert.is(before.get('c'), 6)
  await before.machine.close()

  const after = new Counters(stateDir)
  const h = await RaftHost.create({ id: 1, dir: raftDir, voters: [1], stateMachine: after.machine, tickMs: 10, electionTimeoutTicks: 10, heartbeatTimeoutTicks: 2, snapshotEveryEntries: 3 })
  h.start(new Map([[1, `http://127.0.0.1:${h.port}`]]))
  await until('leading', () => h.status().role === 'leader' || undefined)
  assert.is(await h.propose(incr), 7, 'nothing applied twice')
  await until('a snapshot', () => h.snapshotIndex() >= 7 || undefined)
  assert.is(await h.propose(incr), 8, 'the node still serves after its snapshot')
  await h.stop()
  await after.machine.close()
})

test.after(async () => {
  await Promise.all([...hosts.values()].map((h) => h.stop()))
  for (const s of services.values()) await s.machine.close().catch(() => undefined)
  rmSync(root, { recursive: true, force: true })
})

test.run()
