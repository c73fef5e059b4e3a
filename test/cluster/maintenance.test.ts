/**
 * Goal: maintenance of a datanode of a four-datanode cluster (issue 13): it goes
 * IN_MAINTENANCE once each container it holds keeps maintenance.replica.minimum (2) CLOSED
 * replicas on IN_SERVICE nodes elsewhere; stopped, it turns DEAD but is not lost: no
 * container is under-replicated, no copy is made though a datanode without a replica is
 * there to take one, every key reads; started and recommissioned it is IN_SERVICE again
 * with its replicas counted. Only when a second node dies and a container falls below the
 * minimum does the replication manager copy it.
 * Method: an in-process cluster of four datanodes (real SCM, OM, datanodes on loopback, LMDB
 * in a temp dir) with a 300 ms replication interval; keys written through the client,
 * containers closed through the admin RPC, datanodes stopped and started in the process.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { RpcClient } from '../../core/rpc/client.ts'
import type { O3Client } from '../../datapath/client/index.ts'
import { until } from '../helpers.ts'
import { busiestNode, containers as containersOf, scmCounter, startReplicationCluster, writeClosedKeys, type Cluster, type Container } from './replication-cluster.ts'

interface Node { id: string; state: string; operationalState: string }

let cluster: Cluster
let client: O3Client
let scm: RpcClient
const keys = new Map<string, Buffer>()

const containers = () => containersOf(scm)
const node = async (id: string) => (await scm.call<Node[]>('listDatanodes', {})).find((n) => n.id === id)!
const report = () => scm.call<{ health: Record<string, number> }>('containerReport', {})

const replicatesSent = () => scmCounter(cluster, 'replication_commands_sent_total', 'replicate')

test.before(async () => {
  ({ cluster, client, scm } = await startReplicationCluster())
})

test.after(async () => {
  await cluster?.dispose()
})

test('a node IN_MAINTENANCE that goes down is not re-replicated while the minimum holds; recommissioned it is IN_SERVICE', async () => {
  const closed = await writeClosedKeys(client, scm, 8, keys)
  const m = busiestNode(closed)
  const held = closed.filter((c) => c.replicas.some((r) => r.datanodeId === m))
  // Some node holds none of m's first container: a copy could go there.
  const all = cluster.datanodes.map((d) => d!.id)
  assert.ok(all.some((id) => !held[0].replicas.some((r) => r.datanodeId === id)))

  const [r] = await scm.call<{ state: string }[]>('datanodeAdmin', { action: 'maintenance', datanodes: [m] })
  assert.is(r.state, 'ENTERING_MAINTENANCE')
  await until('IN_MAINTENANCE', async () => (await node(m)).operationalState === 'IN_MAINTENANCE', 30_000, 100)
  const sent = await replicatesSent()

  const index = cluster.datanodes.findIndex((d) => d?.id === m)
  await cluster.stopDatanode(index)
  await until('m DEAD', async () => (await node(m)).state === 'DEAD', 30_000, 200)
  // Several replication rounds (300 ms each) with m DEAD: nothing under-replicated, nothing copied.
  for (let i = 0; i < 10; i++) {
    assert.is((await report()).health.UNDER_REPLICATED, 0)
    assert.is((await node(m)).operationalState, 'IN_MAINTENANCE')
    await new Promise((res) => setTimeout(res, 300))
  }
  assert.is(await replicatesSent(), sent, 'no copy of a container in maintenance')
  for (const c of await containers()) if (held.some((h) => h.id === c.id)) assert.is(c.replicas.length, 3, JSON.stringify(c.replicas))
  for (const [key, data] of keys) assert.ok((await client.getKey('vol', 'bkt', key)).equals(data), key)

  // Back: started, recommissioned, its replicas count again.
  await cluster.startDatanode(index)
  await until('m HEALTHY', async () => (await node(m)).state === 'HEALTHY', 30_000, 100)
  const [back] = await scm.call<{ state: string }[]>('datanodeAdmin', { action: 'recommission', datanodes: [m] })
  assert.is(back.state, 'IN_SERVICE')
  assert.is((await node(m)).operationalState, 'IN_SERVICE')
  await until('every container HEALTHY', async () => {
    const h = (await report()).health
    return h.UNDER_REPLICATED === 0 && h.OVER_REPLICATED === 0 && h.MISSING === 0
  }, 30_000, 100)
  assert.is(await replicatesSent(), sent)
})

test('below the minimum (a second holder dies while one is in maintenance), the container is copied', async () => {
  const cs = await containers()
  const c = cs.find((x) => x.replicas.length === 3)!
  const [m, n] = c.replicas.map((r) => r.datanodeId)
  const free = cluster.datanodes.map((d) => d!.id).find((id) => !c.replicas.some((r) => r.datanodeId === id))!
  await scm.call('datanodeAdmin', { action: 'maintenance', datanodes: [m] })
  await until('IN_MAINTENANCE', async () => (await node(m)).operationalState === 'IN_MAINTENANCE', 30_000, 100)
  await cluster.stopDatanode(cluster.datanodes.findIndex((d) => d?.id === m))
  await cluster.stopDatanode(cluster.datanodes.findIndex((d) => d?.id === n))
  // One live replica is below the minimum of two: a copy goes to the node that had none.
  await until(`container ${c.id} copied to the free node`, async () => {
    const now = await scm.call<Container>('getContainer', { containerId: c.id })
    return now.replicas.some((r) => r.datanodeId === free && r.state === 'CLOSED')
  }, 60_000, 200)
})

test.run()
