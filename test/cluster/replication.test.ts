/**
 * Goal: the SCM's replication manager (issue 13) on a real cluster: closed containers count
 * HEALTHY in `containerReport` with each replica's bcsid in `getContainer`; once a datanode
 * is DEAD, every container it held leaves CLOSING (CLOSED or QUASI_CLOSED on the survivors,
 * never stuck), and each CLOSED one gets a replicateContainer command to the one live
 * datanode that holds no replica, pulling from the survivors; the command is counted on
 * /prom, and either the copy shows in the target's report or the command times out after
 * scm.replication.commandTimeoutMs and is sent again; a container whose pipeline lost two of
 * its three members goes QUASI_CLOSED on the survivor and is reported QUASI_CLOSED_STUCK.
 * Method: an in-process cluster of four datanodes (real SCM, OM, datanodes on loopback, LMDB
 * in a temp dir) with a 300 ms replication interval. Reports change only through real
 * actions: keys written, containers closed through the admin RPC, datanodes stopped.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { KiB } from '../../core/limits.ts'
import type { RpcClient } from '../../core/rpc/client.ts'
import type { O3Client } from '../../datapath/client/index.ts'
import { until } from '../helpers.ts'
import { adminFetch, randomBytes } from './mini-cluster.ts'
import { containers as containersOf, scmCounter, startReplicationCluster, type Cluster, type Container } from './replication-cluster.ts'

interface Inflight { kind: string; containerId: number; datanodeId: string; sources?: string[] }

let cluster: Cluster
let client: O3Client
let scm: RpcClient
const keys = new Map<string, Buffer>()

const containers = () => containersOf(scm)
const counter = (name: string, kind: string) => scmCounter(cluster, name, kind)

test.before(async () => {
  ({ cluster, client, scm } = await startReplicationCluster(3000))
})

test.after(async () => {
  await cluster?.dispose()
})

test('closed containers count HEALTHY in containerReport, and getContainer lists replicas with their bcsid', async () => {
  for (let i = 0; i < 6; i++) {
    const data = randomBytes(300 * KiB)
    await client.putKey('vol', 'bkt', `k${i}`, data)
    keys.set(`k${i}`, data)
  }
  for (const c of await containers()) await scm.call('closeContainer', { containerId: c.id })
  const all = await until('every container CLOSED with three CLOSED replicas', async () => {
    const cs = await containers()
    return cs.every((c) => c.state === 'CLOSED' && c.replicas.filter((r) => r.state === 'CLOSED').length === 3) ? cs : undefined
  })
  const report = await until('a report with every container HEALTHY', async () => {
    const r = await scm.call<{ lifecycle: Record<string, number>; health: Record<string, number> }>('containerReport', {})
    return r.health.HEALTHY === all.length ? r : undefined
  })
  assert.is(report.lifecycle.CLOSED, all.length)
  assert.is(report.health.UNDER_REPLICATED, 0)
  assert.is(report.health.MISSING, 0)
  const prom = await (await adminFetch(cluster, cluster.scm.address, '/prom')).text()
  assert.match(prom, new RegExp(`^o3_scm_containers_health\\{[^}]*state="HEALTHY"[^}]*\\} ${all.length}$`, 'm'))
  assert.match(prom, /^o3_scm_containers_health\{[^}]*state="UNDER_REPLICATED"[^}]*\} 0$/m)
  for (const c of all) {
    assert.equal(c.health, ['HEALTHY'])
    assert.ok(c.replicas.every((r) => r.nodeState === 'HEALTHY' && r.bcsid > 0 && r.blockCount > 0), JSON.stringify(c.replicas))
  }
})

test('once a datanode is DEAD, its containers leave CLOSING and each is copied to the datanode without a replica, from the survivors', async () => {
  // An open container on the victim's pipeline too: it must not stay CLOSING.
  for (let i = 6; i < 9; i++) {
    const data = randomBytes(100 * KiB)
    await client.putKey('vol', 'bkt', `k${i}`, data)
    keys.set(`k${i}`, data)
  }
  const before = await until('every replica reported', async () => {
    const cs = await containers()
    return cs.every((c) => c.replicas.length === 3) ? cs : undefined
  })
  const counts = new Map<string, number>()
  for (const c of before) for (const r of c.replicas) counts.set(r.datanodeId, (counts.get(r.datanodeId) ?? 0) + 1)
  const victim = [...counts].sort((a, b) => b[1] - a[1])[0][0]
  const index = cluster.datanodes.findIndex((d) => d?.id === victim)
  assert.ok(index >= 0)
  const held = before.filter((c) => c.replicas.some((r) => r.datanodeId === victim)).map((c) => c.id)
  const sentBefore = await counter('replication_commands_sent_total', 'replicate')
  await cluster.stopDatanode(index)

  await until('the victim DEAD', async () => (await scm.call<{ id: string; state: string }[]>('listDatanodes', {})).find((d) => d.id === victim)?.state === 'DEAD', 30_000, 100)
  const settled = await until('every container of the victim CLOSED or QUASI_CLOSED', async () => {
    const cs = (await containers()).filter((c) => held.includes(c.id))
    return cs.every((c) => c.state === 'CLOSED' || c.state === 'QUASI_CLOSED') ? cs : undefined
  }, 30_000, 100)
  const closed = settled.filter((c) => c.state === 'CLOSED')
  assert.ok(closed.length > 0, JSON.stringify(settled.map((c) => [c.id, c.state])))

  // Each CLOSED container of the victim is copied to the one live node without a replica.
  const live = cluster.datanodes.filter((d) => d !== undefined).map((d) => d!.id)
  const seen = new Map<number, Inflight>()
  await until('a replicate command for every CLOSED container of the victim', async () => {
    const cs = await containers()
    for (const op of (await scm.call<{ inflight: Inflight[] }>('replicationStatus', {})).inflight) if (op.kind === 'replicate') seen.set(op.containerId, op)
    // A copy may already be done (a datanode that imports): then the target reports it.
    for (const c of cs) {
      if (!closed.some((x) => x.id === c.id) || seen.has(c.id)) continue
      const extra = c.replicas.find((r) => r.state === 'CLOSED' && !before.find((b) => b.id === c.id)!.replicas.some((x) => x.datanodeId === r.datanodeId))
      if (extra !== undefined) seen.set(c.id, { kind: 'replicate', containerId: c.id, datanodeId: extra.datanodeId })
    }
    return closed.every((c) => seen.has(c.id))
  }, 30_000, 50)
  for (const c of closed) {
    const op = seen.get(c.id)!
    const holders = before.find((b) => b.id === c.id)!.replicas.map((r) => r.datanodeId)
    const expected = live.filter((d) => !holders.includes(d))
    assert.equal([op.datanodeId], expected, `target of container ${c.id}`)
    if (op.sources !== undefined) assert.equal([...op.sources].sort(), holders.filter((d) => d !== victim).sort(), `sources of container ${c.id}`)
  }
  assert.ok(await counter('replication_commands_sent_total', 'replicate') >= sentBefore + closed.length)

  // Done (the target reports the copy) or timed out and sent again: never forgotten.
  await until('every copy done, or timed out and sent again', async () => {
    const done = await counter('replication_commands_completed_total', 'replicate')
    const timedOut = await counter('replication_commands_timed_out_total', 'replicate')
    const sent = await counter('replication_commands_sent_total', 'replicate')
    return done >= closed.length || (timedOut > 0 && sent > sentBefore + closed.length)
  }, 30_000, 100)

  for (const [key, data] of keys) assert.ok((await client.getKey('vol', 'bkt', key)).equals(data), key)
})

test('a container whose pipeline lost two of three goes QUASI_CLOSED on the survivor (never stays CLOSING) and is reported QUASI_CLOSED_STUCK', async () => {
  // Three live datanodes now: a RATIS/THREE pipeline over them takes a new key.
  const data = randomBytes(100 * KiB)
  const info = await until('a key written on a pipeline of the three live datanodes', async () => {
    try { return await client.putKey('vol', 'bkt', 'quasi', data) } catch { return undefined }
  }, 30_000, 200)
  keys.set('quasi', data)
  const id = info.locations[0].blockId.containerId
  const members = info.locations[0].pipeline.nodes.map((n) => n.id)
  await until('the new container reported by its three members', async () => (await scm.call<Container>('getContainer', { containerId: id })).replicas.length === 3)
  const [survivor, ...gone] = members
  for (const dn of gone) await cluster.stopDatanode(cluster.datanodes.findIndex((d) => d?.id === dn))
  const c = await until('the container QUASI_CLOSED', async () => {
    const x = await scm.call<Container>('getContainer', { containerId: id })
    return x.state === 'QUASI_CLOSED' ? x : undefined
  }, 30_000, 100)
  assert.equal(c.replicas.filter((r) => r.nodeState !== 'DEAD').map((r) => [r.datanodeId, r.state]), [[survivor, 'QUASI_CLOSED']])
  assert.ok(c.health.includes('QUASI_CLOSED_STUCK'), JSON.stringify(c.health))
  const report = await scm.call<{ health: Record<string, number>; samples: Record<string, number[]> }>('containerReport', {})
  assert.ok(report.samples.QUASI_CLOSED_STUCK?.includes(id), JSON.stringify(report))
  assert.ok((await client.getKey('vol', 'bkt', 'quasi')).equals(data), 'the key reads back from the survivor')
})

test.run()
