/**
 * Goal: a container left QUASI_CLOSED is brought back to CLOSED as Ozone's
 * QuasiClosedContainerHandler does (issue 13, needs the datanode side of force close and
 * container copy): while only one of its pipeline's three members holds a replica it is
 * QUASI_CLOSED_STUCK and nothing is forced; once a second member comes back with its
 * replica QUASI_CLOSED (a majority of the pipeline), the SCM force-closes the replicas with
 * the highest bcsid, the container becomes CLOSED, and the replication manager copies it to
 * a third datanode: three CLOSED replicas with one bcsid, and the key reads back.
 * Method: an in-process cluster of four datanodes with a 300 ms replication interval; the
 * key's pipeline loses two members (stopped until DEAD), then one is started again on its
 * directories. State is read through the SCM's admin RPCs only.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { KiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { until } from '../helpers.ts'
import { adminFetch, adminRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'

interface Replica { datanodeId: string; state: string; nodeState: string; bcsid: number }
interface Container { id: number; state: string; health: string[]; replicas: Replica[] }

test('a QUASI_CLOSED container is force-closed once a majority of its pipeline holds it, then copied back to three replicas', async () => {
  const cluster = await startMiniCluster({
    datanodes: 4,
    overrides: { 'scm.replication.intervalMs': 300, 'scm.replication.commandTimeoutMs': 10_000, 'scm.pipeline.destroyTimeoutMs': 1000 },
  })
  try {
    const client = cluster.client()
    const scm = adminRpc(cluster, 'SCM', cluster.scm.address)
    const get = (id: number) => scm.call<Container>('getContainer', { containerId: id })
    await client.createVolume('vol')
    await client.createBucket('vol', 'bkt')
    const data = randomBytes(300 * KiB)
    const info = await client.putKey('vol', 'bkt', 'key', data)
    const id = info.locations[0].blockId.containerId
    const [first, second, third] = info.locations[0].pipeline.nodes.map((n) => n.id)
    await until('the container reported by its three members', async () => (await get(id)).replicas.length === 3)
    const index = (dn: string) => cluster.datanodes.findIndex((d) => d?.id === dn)
    const secondIndex = index(second)
    await cluster.stopDatanode(secondIndex)
    await cluster.stopDatanode(index(third))

    const stuck = await until('the container QUASI_CLOSED on the survivor alone', async () => {
      const c = await get(id)
      return c.state === 'QUASI_CLOSED' && c.health.includes('QUASI_CLOSED_STUCK') ? c : undefined
    }, 30_000, 100)
    assert.equal(stuck.replicas.filter((r) => r.nodeState !== 'DEAD').map((r) => [r.datanodeId, r.state]), [[first, 'QUASI_CLOSED']], 'one of three is no majority: nothing forced')

    await cluster.startDatanode(secondIndex)
    const closed = await until('the container CLOSED with three CLOSED replicas on live datanodes', async () => {
      const c = await get(id)
      const good = c.replicas.filter((r) => r.nodeState === 'HEALTHY' && r.state === 'CLOSED')
      return c.state === 'CLOSED' && good.length === 3 ? { c, good } : undefined
    }, 60_000, 200)
    assert.ok(closed.good.some((r) => r.datanodeId === first) && closed.good.some((r) => r.datanodeId === second), JSON.stringify(closed.good))
    assert.is(new Set(closed.good.map((r) => r.bcsid)).size, 1, JSON.stringify(closed.good))
    assert.equal(closed.c.health, ['HEALTHY'])
    assert.ok((await client.getKey('vol', 'bkt', 'key')).equals(data))
  } finally {
    await cluster.dispose()
  }
})

test.run()
