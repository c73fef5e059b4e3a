/** Goal: RaftHost.changeMembership() grows a running group over real HTTP and LMDB: a node
 * that starts empty is added as a learner, catches up through a snapshot of a compacted
 * log, is promoted to voter, and applies what follows. Method: four hosts in this process
 * on loopback ports, three founders and one joiner. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftHost, type StateMachine } from '../../../core/raft-io/index.ts'
import type { Entry, NodeId, Snapshot } from '../../../core/raft/index.ts'
import { until } from '../../helpers.ts'

class Log implements StateMachine {
  values: string[] = []
  apply(e: Entry): unknown {
    return this.values.push(new TextDecoder().decode(e.data))
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.values))
  }
  restore(s: Snapshot): void {
    this.values = s.data.byteLength === 0 ? [] : (JSON.parse(new TextDecoder().decode(s.data)) as string[])
  }
}

const root = mkdtempSync(join(tmpdir(), 'o3-raft-membership-'))
const machines = new Map<NodeId, Log>([1, 2, 3, 4].map((id) => [id, new Log()]))
const hosts = await Promise.all([1, 2, 3, 4].map((id) => RaftHost.create({
  id, dir: join(root, `n${id}`), voters: id === 4 ? [] : [1, 2, 3], stateMachine: machines.get(id)!,
  tickMs: 10, electionTimeoutTicks: 50, heartbeatTimeoutTicks: 5, snapshotEveryEntries: 5,
})))
const peers = new Map(hosts.map((h) => [h.id, `http://127.0.0.1:${h.port}`]))
for (const h of hosts) h.start(peers)

const leader = () => until('a leader', () => hosts.find((h) => h.status().role === 'leader'))

test('changeMembership() adds an empty node as learner; it catches up from a snapshot', async () => {
  const l = await leader()
  for (let i = 0; i < 12; i++) await l.propose(new TextEncoder().encode(`v${i}`))
  assert.ok(l.status().lastIndex > 5)
  await l.changeMembership({ type: 'addLearner', nodeId: 4 })
  await until('node 4 caught up', () => (machines.get(4)!.values.length === 12 ? true : undefined))
  assert.equal(machines.get(4)!.values, machines.get(1)!.values)
  assert.equal(hosts[3].status().confState.learners, [4])
})

test('changeMembership() promotes the learner; the group of four commits', async () => {
  const l = await leader()
  await l.changeMembership({ type: 'addNode', nodeId: 4 })
  assert.equal([...l.status().confState.voters].sort(), [1, 2, 3, 4])
  await l.propose(new TextEncoder().encode('four'))
  await until('node 4 applied', () => (machines.get(4)!.values.at(-1) === 'four' ? true : undefined))
})

test('changeMembership() refuses a second change of the same node', async () => {
  const l = await leader()
  try {
    await l.changeMembership({ type: 'addNode', nodeId: 4 })
    assert.unreachable('a voter was added twice')
  } catch (err) {
    assert.is((err as { code: string }).code, 'INVALID_ARGUMENT')
  }
})

test.after(async () => {
  await Promise.all(hosts.map((h) => h.stop()))
  rmSync(root, { recursive: true, force: true })
})

test.run()
