/** Goal: a RaftHost with evictAppliedBytesMin keeps no applied payload in memory, yet a member
 * that was down catches up with every entry byte for byte: the leader reads the evicted
 * entries back from its LMDB log to send them. Entries under the threshold stay whole.
 * Method: three hosts in this process on loopback ports, LMDB in a temporary directory; one
 * follower stopped while entries commit, then started again from its directory. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftHost } from '../../../core/raft-io/index.ts'
import type { NodeId } from '../../../core/raft/index.ts'
import { until } from '../../helpers.ts'
import { ValuesMachine } from './values-machine.ts'

const root = mkdtempSync(join(tmpdir(), 'o3-raft-evict-'))
const ids: NodeId[] = [1, 2, 3]
const EVICT_MIN = 1024
const machines = new Map<NodeId, ValuesMachine>()
const hosts = new Map<NodeId, RaftHost>()
const ports = new Map<NodeId, number>()

async function startHost(id: NodeId): Promise<RaftHost> {
  machines.set(id, new ValuesMachine())
  const h = await RaftHost.create({
    id, dir: join(root, `n${id}`), voters: ids, stateMachine: machines.get(id)!, port: ports.get(id) ?? 0,
    tickMs: 10, electionTimeoutTicks: 50, heartbeatTimeoutTicks: 5, snapshotEveryEntries: 10_000, evictAppliedBytesMin: EVICT_MIN,
  })
  hosts.set(id, h)
  ports.set(id, h.port)
  return h
}

const peers = () => new Map(ids.map((id) => [id, `http://127.0.0.1:${ports.get(id)!}`]))
const leader = () => until('a leader', () => [...hosts.values()].find((h) => h.status().role === 'leader'))
/** A value of `bytes` bytes that names its index: each entry's data differs from the others'. */
const value = (i: number, bytes: number) => `v${i}:`.padEnd(bytes, String.fromCharCode(97 + (i % 26)))

test.before(async () => {
  for (const id of ids) await startHost(id)
  for (const h of hosts.values()) h.start(peers())
})

test.after(async () => {
  for (const h of hosts.values()) await h.stop()
  rmSync(root, { recursive: true, force: true })
})

test('applied entries of at least evictAppliedBytesMin keep no data in memory on any member; smaller ones stay', async () => {
  const l = await leader()
  // Proposed together, so that they travel to the followers in one batch.
  await Promise.all([...Array.from({ length: 5 }, (_, i) => l.propose(new TextEncoder().encode(value(i, 4096)))), l.propose(new TextEncoder().encode('tiny'))])
  await until('every member applied them', () => ids.every((id) => machines.get(id)!.values.length === 6 && hosts.get(id)!.logBytesInMemory().data === 4) || undefined)
  for (const id of ids) assert.is(hosts.get(id)!.logBytesInMemory().data, 4, `member ${id} keeps the small entry whole`)
  // Followers got the entries as views of the batches they arrived in: what stays whole has
  // bytes of its own, so no batch (with the evicted payload in it) stays alive under it.
  for (const id of ids) assert.ok(hosts.get(id)!.logBytesInMemory().buffers < 1024, `member ${id}: ${hosts.get(id)!.logBytesInMemory().buffers} bytes of buffers under its log`)
})

test('a follower that was down catches up with every evicted entry byte for byte, read back from the leader\'s disk', async () => {
  const l = await leader()
  const down = ids.find((id) => id !== l.id)!
  await hosts.get(down)!.stop()
  hosts.delete(down)
  const sent: string[] = []
  for (let i = 6; i < 40; i++) {
    sent.push(value(i, 2048 + i))
    await l.propose(new TextEncoder().encode(sent.at(-1)!))
  }
  await until('the leader evicted what it applied', () => l.logBytesInMemory().data === 4 || undefined)
  const back = await startHost(down)
  back.start(peers())
  await until('the follower caught up', () => machines.get(down)!.values.length === 40 || undefined, 15_000)
  assert.equal(machines.get(down)!.values, machines.get(l.id)!.values)
  assert.equal(machines.get(down)!.values.slice(6), sent)
  await until('the follower evicted them too', () => back.logBytesInMemory().data === 4 || undefined)
  for (const id of ids) assert.ok(hosts.get(id)!.logBytesInMemory().buffers < 1024, `member ${id}: ${hosts.get(id)!.logBytesInMemory().buffers} bytes of buffers under its log`)
})

test.run()
