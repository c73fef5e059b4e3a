/** Goal: a ReplicatedService (issue 11) runs prepare on the leader only and apply on every
 * replica, so values the leader decides (ids, time) are identical everywhere; a call retried
 * with its client and call id, even across a leader failover, gets its first answer and
 * applies once; a follower answers NOT_LEADER with the leader's service address; reads are
 * served by the leader after a ReadIndex barrier. Method: three services in this process on
 * loopback, LMDB in a temporary directory, a leader stopped for the failover. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open, type Database, type RootDatabase } from 'lmdb'
import { O3Error } from '../../../core/errors.ts'
import { ReplicatedService, type ReplicatedRequest } from '../../../control/ha/replicated-service.ts'
import { RetryCache } from '../../../control/ha/retry-cache.ts'
import { RETRY_CACHE_ENTRIES_MAX, RETRY_CACHE_EXPIRY_MS } from '../../../control/ha/limits.ts'
import type { NodeId } from '../../../core/raft/index.ts'
import { until } from '../../helpers.ts'

interface Item { id: string; createdAtMs: number }
const tables = new Map<NodeId, { items: Database<Item, string>; counters: Database<number, string> }>()

function requestsFor(id: NodeId): ReplicatedRequest<unknown, unknown, unknown>[] {
  const t = () => tables.get(id)!
  const createItem: ReplicatedRequest<{ name?: unknown }, { name: string } & Item, Item> = {
    name: 'createItem',
    prepare: (args) => {
      if (typeof args.name !== 'string' || args.name === '') throw new O3Error('INVALID_ARGUMENT', 'Cannot create item: no name')
      return { name: args.name, id: randomUUID(), createdAtMs: Date.now() }
    },
    apply: (_db, p) => {
      if (t().items.get(p.name) !== undefined) throw new O3Error('KEY_ALREADY_EXISTS', `Cannot create item ${p.name}: it exists`)
      const item = { id: p.id, createdAtMs: p.createdAtMs }
      t().items.putSync(p.name, item)
      return item
    },
  }
  const incr: ReplicatedRequest<{ key: string }, { key: string }, number> = {
    name: 'incr',
    prepare: (args) => ({ key: args.key }),
    apply: (_db, p) => {
      const n = (t().counters.get(p.key) ?? 0) + 1
      t().counters.putSync(p.key, n)
      return n
    },
  }
  const removeItem: ReplicatedRequest<{ name: string }, { name: string }, null> = {
    name: 'removeItem',
    prepare: (args) => ({ name: args.name }),
    apply: (_db, p) => {
      t().items.removeSync(p.name)
      return null
    },
  }
  // Refuses a missing item in prepare, from the node's own state (as openKey refuses a missing bucket).
  const touchItem: ReplicatedRequest<{ name: string }, { name: string }, null> = {
    name: 'touchItem',
    prepare: (args) => {
      if (t().items.get(args.name) === undefined) throw new O3Error('KEY_NOT_FOUND', `Cannot touch item ${args.name}: no such item`)
      return { name: args.name }
    },
    apply: () => null,
  }
  return [createItem, incr, removeItem, touchItem] as ReplicatedRequest<unknown, unknown, unknown>[]
}

const root = mkdtempSync(join(tmpdir(), 'o3-replicated-'))
const ids: NodeId[] = [1, 2, 3]
const addresses = new Map<NodeId, string>(ids.map((id) => [id, `om${id}.example:9862`]))
let services = new Map<NodeId, ReplicatedService>()

async function startAll(): Promise<void> {
  services = new Map()
  for (const id of ids) {
    services.set(id, await ReplicatedService.create({
      id, dir: join(root, `n${id}`), voters: ids, serviceAddresses: addresses, requests: requestsFor(id),
      open: (path) => open({ path, compression: false }),
      opened: (db: RootDatabase) => tables.set(id, { items: db.openDB<Item, string>({ name: 'items' }), counters: db.openDB<number, string>({ name: 'counters' }) }),
      raft: { tickMs: 10, electionTimeoutTicks: 30, heartbeatTimeoutTicks: 3 },
    }))
  }
  const urls = new Map(ids.map((id) => [id, `http://127.0.0.1:${services.get(id)!.raft.port}`]))
  for (const s of services.values()) s.start(urls)
}

const leader = () => until('a leader', () => [...services.values()].find((s) => s.isLeader()))
const live = () => [...services.values()]

async function codeOf(p: Promise<unknown>): Promise<O3Error> {
  try {
    await p
  } catch (err) {
    assert.instance(err, O3Error)
    return err as O3Error
  }
  throw new Error('resolved')
}

test('values the leader decides in prepare are the same on every replica', async () => {
  await startAll()
  const l = await leader()
  const item = (await l.submit('createItem', { name: 'a' })) as Item
  assert.ok(item.id.length > 0 && item.createdAtMs > 0)
  await until('on every replica', () => ids.every((id) => tables.get(id)!.items.get('a') !== undefined) || undefined)
  for (const id of ids) assert.equal(tables.get(id)!.items.get('a'), item, `node ${id}`)
  assert.is((await codeOf(l.submit('createItem', { name: 'a' }))).code, 'KEY_ALREADY_EXISTS')
  assert.is((await codeOf(l.submit('createItem', {}))).code, 'INVALID_ARGUMENT')
  assert.is((await codeOf(l.submit('nope', {}))).code, 'INVALID_ARGUMENT')
})

test('an entry whose apply writes a key over LMDB\'s size limit is refused on every replica alike; the group goes on', async () => {
  const l = await leader()
  // prepare takes any non-empty name: the net under a bound a request missed.
  assert.is((await codeOf(l.submit('createItem', { name: 'x'.repeat(3000) }))).code, 'INVALID_ARGUMENT')
  const after = (await l.submit('createItem', { name: 'after-long' })) as Item
  await until('on every replica', () => ids.every((id) => tables.get(id)!.items.get('after-long') !== undefined) || undefined)
  for (const id of ids) assert.equal(tables.get(id)!.items.get('after-long'), after, `node ${id}`)
})

test('a follower answers NOT_LEADER with the leader\'s service address, for writes and reads', async () => {
  const l = await leader()
  const follower = live().find((s) => s !== l)!
  const lid = ids.find((id) => services.get(id) === l)!
  for (const p of [follower.submit('incr', { key: 'x' }), follower.read('read', () => 1)]) {
    const e = await codeOf(p)
    assert.is(e.code, 'NOT_LEADER')
    assert.is(e.leader, addresses.get(lid))
  }
})

test('a call retried with its caller id gets its first answer and applies once, also across a failover', async () => {
  let l = await leader()
  const caller = { client: 'client-1', call: 7 }
  assert.is(await l.submit('incr', { key: 'k' }, caller), 1)
  assert.is(await l.submit('incr', { key: 'k' }, caller), 1)
  assert.is(await l.submit('incr', { key: 'k' }, { client: 'client-1', call: 8 }), 2)
  await until('applied everywhere', () => ids.every((id) => tables.get(id)!.counters.get('k') === 2) || undefined)
  // The leader goes away; the call is retried at the new one.
  const old = l
  await old.stop()
  services.delete(ids.find((id) => services.get(id) === old)!)
  l = await leader()
  assert.is.not(l, old)
  assert.is(await l.submit('incr', { key: 'k' }, caller), 1)
  assert.is(await l.read('counter', () => tables.get(ids.find((id) => services.get(id) === l)!)!.counters.get('k')), 2)
})

test('a refused call retried after the refusal\'s cause is gone gets its refusal again and applies nothing', async () => {
  // A retry across a failover leaves two copies of a call in the log: the second must answer as the first did.
  const l = await leader()
  const caller = { client: 'client-2', call: 1 }
  await l.submit('createItem', { name: 'taken' }, { client: 'client-2', call: 0 })
  assert.is((await codeOf(l.submit('createItem', { name: 'taken' }, caller))).code, 'KEY_ALREADY_EXISTS')
  await l.submit('removeItem', { name: 'taken' })
  assert.is((await codeOf(l.submit('createItem', { name: 'taken' }, caller))).code, 'KEY_ALREADY_EXISTS')
  await l.read('barrier', () => null)
  await until('applied everywhere', () => live().every((s) => s.raft.status().applied >= l.raft.status().applied) || undefined)
  for (const [id, s] of services) assert.is(tables.get(id)!.items.get('taken'), undefined, `node ${id} ${s.isLeader() ? '(leader)' : ''}`)
})

test('a refusal prepare reads from the leader\'s state is answered only once the node confirms it leads', async () => {
  const l = await leader()
  assert.is((await codeOf(l.submit('touchItem', { name: 'missing' }))).code, 'KEY_NOT_FOUND')
  // Alone (its only follower stopped), the leader cannot tell whether another was elected
  // that created the item: it must not answer KEY_NOT_FOUND from its own state.
  for (const [id, s] of [...services]) {
    if (s === l) continue
    await s.stop()
    services.delete(id)
  }
  const e = await codeOf(l.submit('touchItem', { name: 'missing' }))
  assert.ok(e.code === 'NOT_LEADER' || e.code === 'TIMEOUT', `answered ${e.code}: ${e.message}`)
})

test('RetryCache forgets answers older than its expiry, by the leader\'s clock in the log', () => {
  const db = open({ path: join(root, 'retry.mdb') })
  try {
    const cache = new RetryCache()
    cache.open(db)
    const t0 = 1_000_000_000
    let runs = 0
    const run = () => ++runs
    db.transactionSync(() => cache.applyOnce({ client: 'c', call: 1 }, { index: 10, term: 1 }, t0, run))
    db.transactionSync(() => cache.applyOnce({ client: 'c', call: 1 }, { index: 11, term: 1 }, t0 + 1000, run))
    assert.is(runs, 1, 'a retry within the expiry applies nothing')
    db.transactionSync(() => cache.applyOnce({ client: 'c', call: 2 }, { index: 12, term: 1 }, t0 + RETRY_CACHE_EXPIRY_MS + 1, run))
    assert.is(cache.answer({ client: 'c', call: 1 }), undefined, 'expired')
    assert.equal(cache.answer({ client: 'c', call: 2 }), { result: 2 })
    assert.is(cache.count(), 1)
  } finally {
    void db.close()
  }
})

test('RetryCache keeps the answers of the last RETRY_CACHE_ENTRIES_MAX log indexes at most', () => {
  const db = open({ path: join(root, 'retry-bound.mdb') })
  try {
    const cache = new RetryCache()
    cache.open(db)
    const t0 = 1_000_000_000
    db.transactionSync(() => cache.applyOnce({ client: 'c', call: 1 }, { index: 10, term: 1 }, t0, () => 1))
    db.transactionSync(() => cache.applyOnce({ client: 'c', call: 2 }, { index: 9 + RETRY_CACHE_ENTRIES_MAX, term: 1 }, t0, () => 2))
    assert.equal(cache.answer({ client: 'c', call: 1 }), { result: 1 }, 'still within the last RETRY_CACHE_ENTRIES_MAX indexes')
    db.transactionSync(() => cache.applyOnce({ client: 'c', call: 3 }, { index: 10 + RETRY_CACHE_ENTRIES_MAX, term: 1 }, t0, () => 3))
    assert.is(cache.answer({ client: 'c', call: 1 }), undefined, 'out of the window')
    assert.is(cache.count(), 2)
  } finally {
    void db.close()
  }
})

test('health() says DOWN once the Raft node stopped after a failure (an apply that throws what is no refusal)', async () => {
  const broken: ReplicatedRequest<unknown, unknown, unknown> = { name: 'breakApply', prepare: () => ({}), apply: () => { throw new Error('a disk turned read-only') } }
  const alone = await ReplicatedService.create({
    id: 9, dir: join(root, 'alone'), voters: [9], serviceAddresses: new Map([[9, 'alone.example:9862']]), requests: [broken],
    open: (path) => open({ path, compression: false }), opened: () => {}, raft: { tickMs: 10, electionTimeoutTicks: 10, heartbeatTimeoutTicks: 2 },
  })
  try {
    alone.start(new Map([[9, `http://127.0.0.1:${alone.raft.port}`]]))
    await until('it leads', () => alone.isLeader() || undefined)
    assert.equal(alone.health(), {})
    assert.is((await codeOf(alone.submit('breakApply', {}))).code, 'UNAVAILABLE')
    assert.is(alone.health().status, 'DOWN')
  } finally {
    await alone.stop()
  }
})

test.after(async () => {
  for (const s of services.values()) await s.stop()
  rmSync(root, { recursive: true, force: true })
})

test.run()
