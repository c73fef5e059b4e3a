/**
 * Goal: a replicate command whose every source is down (killed before the SCM marked it
 * STALE) is planned again as soon as the target says it failed, not at the command timeout:
 * once a source is back, the copy is made within seconds although the timeout is ten minutes.
 * Method: an in-process cluster of four datanodes with replication rounds every 300 ms and
 * nodes STALE only after 60 s. Two holders of a closed container are stopped, the third
 * replica is deleted on its datanode, so the only copy the SCM can plan names the two stopped
 * ones; one of them is started again and the container must get its third replica.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { ContainerId } from '../../core/wire.ts'
import { until } from '../helpers.ts'
import { containers, scmCounter, startReplicationCluster, writeClosedKeys } from './replication-cluster.ts'

test('a copy that failed from every source is planned again at once, and done once a source is back', async () => {
  const { cluster, client, scm } = await startReplicationCluster(600_000, { 'scm.heartbeat.staleMs': 60_000, 'scm.heartbeat.deadMs': 120_000 })
  try {
    const keys = new Map<string, Buffer>()
    const [c] = await writeClosedKeys(client, scm, 1, keys)
    const holders = c.replicas.map((r) => cluster.datanodes.findIndex((d) => d?.id === r.datanodeId))
    await cluster.stopDatanode(holders[0])
    await cluster.stopDatanode(holders[1])
    assert.ok(await cluster.datanodes[holders[2]]!.copies.deleteContainer(c.id as ContainerId, true))
    // Every copy planned now names the two stopped datanodes (still HEALTHY to the SCM) as its sources.
    await until('two copies failed from every source', async () => await scmCounter(cluster, 'replication_commands_failed_total', 'replicate') >= 2, 30_000, 100)
    await cluster.startDatanode(holders[0])
    const stopped = [c.replicas[0].datanodeId, c.replicas[1].datanodeId]
    await until('three CLOSED replicas again, one new', async () => {
      const now = (await containers(scm)).find((x) => x.id === c.id)!
      const closed = now.replicas.filter((r) => r.state === 'CLOSED')
      return closed.length === 3 && closed.some((r) => !stopped.includes(r.datanodeId))
    }, 30_000, 100)
    assert.is(await scmCounter(cluster, 'replication_commands_timed_out_total', 'replicate'), 0, 'none waited out its timeout')
    assert.ok((await client.getKey('vol', 'bkt', 'k0')).equals(keys.get('k0')!))
  } finally {
    await cluster.dispose()
  }
})

test.run()
