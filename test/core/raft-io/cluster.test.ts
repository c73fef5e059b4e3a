/** Goal: the LMDB store, the HTTP transport and the RaftHost loop run a real 3-node group:
 * it elects a leader, commits entries on every node, survives a restart of all nodes from
 * LMDB, fails over when the leader stops, and answers NOT_LEADER on a follower. Method:
 * three hosts in this process on loopback ports, LMDB in a temporary directory. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { O3Error } from '../../../core/errors.ts'
import { RaftHost } from '../../../core/raft-io/index.ts'
import type { NodeId } from '../../../core/raft/index.ts'
import { until } from '../../helpers.ts'
import { ValuesMachine } from './values-machine.ts'

const root = mkdtempSync(join(tmpdir(), 'o3-raft-io-'))
const ids: NodeId[] = [1, 2, 3]
let machines = new Map<NodeId, ValuesMachine>()

async function startCluster(ports?: Map<NodeId, number>): Promise<RaftHost[]> {
  machines = new Map(ids.map((id) => [id, new ValuesMachine()]))
  const hosts = await Promise.all(ids.map((id) => RaftHost.create({
    id, dir: join(root, `n${id}`), voters: ids, stateMachine: machines.get(id)!, port: ports?.get(id) ?? 0,
    // Half a second of silence before an election: CI machines are loaded, and a leader
    // change mid-test would turn into a NOT_LEADER failure of an otherwise good run.
    tickMs: 10, electionTimeoutTicks: 50, heartbeatTimeoutTicks: 5, snapshotEveryEntries: 25,
  })))
  const peers = new Map(hosts.map((h) => [h.id, `http://127.0.0.1:${h.port}`]))
  for (const h of hosts) h.start(peers)
  return hosts
}


const leaderOf = (hosts: RaftHost[]) => hosts.find((h) => h.status().role === 'leader')

/** Proposes on whichever node leads, again if leadership moves before the entry is appended. */
async function propose(value: string): Promise<unknown> {
  for (let attempt = 0; ; attempt++) {
    const leader = await until('a leader', () => leaderOf(hosts))
    try {
      return await leader.propose(new TextEncoder().encode(value))
    } catch (err) {
      if (!(err instanceof O3Error) || err.code !== 'NOT_LEADER' || attempt >= 20) throw err
    }
  }
}

let hosts: RaftHost[] = []
let ports = new Map<NodeId, number>()

test('RaftHost: three nodes over HTTP elect one leader', async () => {
  hosts = await startCluster()
  ports = new Map(hosts.map((h) => [h.id, h.port]))
  const leader = await until('a leader', () => leaderOf(hosts))
  assert.is(hosts.filter((h) => h.status().role === 'leader').length, 1)
  assert.ok(leader.status().hardState.term >= 1)
})

test('RaftHost.propose() commits entries and every node applies them in order', async () => {
  const results: unknown[] = []
  for (let i = 0; i < 40; i++) results.push(await propose(`v${i}`))
  assert.equal(results.length, 40)
  await until('all applied', () => ids.every((id) => machines.get(id)!.values.length === 40) || undefined)
  for (const id of ids) assert.equal(machines.get(id)!.values, Array.from({ length: 40 }, (_, i) => `v${i}`))
  // The followers' answers rode back in the answers to the leader's requests, not requests of their own.
  const leader = leaderOf(hosts)!
  const followers = hosts.filter((h) => h !== leader)
  assert.ok(followers.every((h) => h.transportStats().replied > 0), `followers' replied: ${followers.map((h) => h.transportStats().replied).join(', ')}`)
  assert.ok(followers.every((h) => h.transportStats().requests < leader.transportStats().requests), 'a follower sends fewer requests than the leader')
})

test('RaftHost.propose() on a follower fails with NOT_LEADER naming the leader', async () => {
  const leader = leaderOf(hosts)!
  const follower = hosts.find((h) => h !== leader)!
  try {
    await follower.propose(new TextEncoder().encode('x'))
    assert.unreachable('a follower accepted a proposal')
  } catch (err) {
    assert.instance(err, O3Error)
    assert.is((err as O3Error).code, 'NOT_LEADER')
    assert.is((err as O3Error).leader, `http://127.0.0.1:${leader.port}`)
  }
})

test('RaftHost.readBarrier() waits until the node has applied every entry committed before it', async () => {
  // Proposals resolve once the leader applies them; a follower may still be behind. A
  // barrier must not resolve before this node's state machine holds them all.
  const batch = Array.from({ length: 20 }, (_, i) => `r${i}`)
  await Promise.all(batch.map((v) => propose(v)))
  const leader = leaderOf(hosts)!
  for (const h of [hosts.find((x) => x !== leader)!, leader]) {
    await h.readBarrier()
    const values = machines.get(h.id)!.values
    assert.is(values.length, 60, `node ${h.id} applied every committed entry before its barrier resolved`)
    assert.equal(values.slice(40).sort(), [...batch].sort())
  }
})

test('RaftHost restarts from LMDB with its log, term and state', async () => {
  const terms = hosts.map((h) => h.status().hardState.term)
  await Promise.all(hosts.map((h) => h.stop()))
  hosts = await startCluster(ports)
  for (const [i, h] of hosts.entries()) assert.ok(h.status().hardState.term >= terms[i], 'the term survives')
  await until('a leader after restart', () => leaderOf(hosts))
  await propose('after-restart')
  await until('replayed and applied', () => ids.every((id) => machines.get(id)!.values.length === 61) || undefined)
  for (const id of ids) {
    const values = machines.get(id)!.values
    assert.is(values[0], 'v0')
    assert.is(values[60], 'after-restart')
  }
})

test('RaftHost: the others elect a new leader when the leader stops', async () => {
  const old = leaderOf(hosts)!
  await old.stop()
  const rest = hosts.filter((h) => h !== old)
  hosts = rest
  const leader = await until('a new leader', () => leaderOf(rest))
  assert.is.not(leader.id, old.id)
  assert.ok(await propose('failover'))
})

test.after(async () => {
  await Promise.all(hosts.map((h) => h.stop()))
  rmSync(root, { recursive: true, force: true })
})

test.run()
