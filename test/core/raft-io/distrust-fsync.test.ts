/** Goal: a RaftHost that distrusts fsync (`distrustFsync`) rejoins at once after a clean stop,
 * and after a crash (no clean-stop mark in LMDB) first recovers from its peers, then catches
 * up and applies what the group committed meanwhile. Method: three hosts in this process on
 * loopback, LMDB in a temporary directory; a crash is a stop whose clean mark is taken away. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { O3Error } from '../../../core/errors.ts'
import { RaftHost } from '../../../core/raft-io/index.ts'
import { RaftLmdbStore } from '../../../core/raft-io/lmdb-store.ts'
import type { NodeId } from '../../../core/raft/index.ts'
import { until } from '../../helpers.ts'
import { ValuesMachine } from './values-machine.ts'

const root = mkdtempSync(join(tmpdir(), 'o3-raft-distrust-'))
const ids: NodeId[] = [1, 2, 3]
const machines = new Map<NodeId, ValuesMachine>()
const hosts = new Map<NodeId, RaftHost>()
const ports = new Map<NodeId, number>()

async function create(id: NodeId): Promise<RaftHost> {
  const m = new ValuesMachine()
  machines.set(id, m)
  const h = await RaftHost.create({
    id, dir: join(root, `n${id}`), voters: ids, stateMachine: m, port: ports.get(id) ?? 0, distrustFsync: true,
    tickMs: 10, electionTimeoutTicks: 50, heartbeatTimeoutTicks: 5,
  })
  ports.set(id, h.port)
  hosts.set(id, h)
  return h
}

const peers = () => new Map(ids.map((id) => [id, `http://127.0.0.1:${ports.get(id)}`]))
const leader = () => [...hosts.values()].find((h) => h.status().role === 'leader')

async function propose(value: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const l = await until('a leader', leader)
    try {
      await l.propose(new TextEncoder().encode(value))
      return
    } catch (err) {
      if (!(err instanceof O3Error) || err.code !== 'NOT_LEADER' || attempt >= 20) throw err
    }
  }
}

const appliedEverywhere = (n: number) => until(`${n} values on every node`, () => ids.every((id) => machines.get(id)!.values.length === n) || undefined)

test('RaftHost with distrustFsync: a fresh group elects and commits', async () => {
  for (const id of ids) await create(id)
  for (const h of hosts.values()) {
    assert.is(h.status().recovering, false, 'a new node has lost nothing')
    h.start(peers())
  }
  await propose('a')
  await appliedEverywhere(1)
})

test('RaftHost with distrustFsync: after a clean stop a node takes part at once', async () => {
  const follower = [...hosts.values()].find((h) => h.status().role !== 'leader')!
  await follower.stop()
  const again = await create(follower.id)
  assert.is(again.status().recovering, false)
  again.start(peers())
  await propose('b')
  await appliedEverywhere(2)
})

test('RaftHost with distrustFsync: after a crash a node recovers from its peers, then catches up', async () => {
  const follower = [...hosts.values()].find((h) => h.status().role !== 'leader')!
  await follower.stop()
  // The crash: the clean-stop mark never got written.
  const store = RaftLmdbStore.open(join(root, `n${follower.id}`))
  assert.is(await store.takeCleanStop(), true)
  await store.close()
  await propose('c')
  const again = await create(follower.id)
  assert.is(again.status().recovering, true, 'it waits for its peers before it votes or acknowledges')
  again.start(peers())
  await until('recovered', () => !again.status().recovering || undefined)
  await propose('d')
  await appliedEverywhere(4)
  assert.equal(machines.get(follower.id)!.values, ['a', 'b', 'c', 'd'])
})

test.after(async () => {
  await Promise.all([...hosts.values()].map((h) => h.stop()))
  rmSync(root, { recursive: true, force: true })
})

test.run()
