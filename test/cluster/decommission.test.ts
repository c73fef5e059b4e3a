/**
 * Goal: decommissioning a datanode of a four-datanode cluster (issue 13) under a read load:
 * the replication manager copies each closed RATIS/THREE container the node holds to the
 * node without a replica (a replica on a decommissioning node does not count), the admin
 * monitor marks the node DECOMMISSIONED only once each of them has three CLOSED replicas on
 * other nodes, no read fails meanwhile, and the node is then safe to stop: every key reads
 * back without it.
 * Method: an in-process cluster of four datanodes (real SCM, OM, datanodes on loopback, LMDB
 * in a temp dir) with a 300 ms replication interval; keys written through the client,
 * containers closed through the admin RPC, the decommission through `o3 admin datanode
 * decommission` as a child process, a reader looping over every key until the end.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { KiB } from '../../core/limits.ts'
import type { RpcClient } from '../../core/rpc/client.ts'
import type { O3Client } from '../../datapath/client/index.ts'
import { until } from '../helpers.ts'
import { adminEnv, randomBytes } from './mini-cluster.ts'
import { busiestNode, containers as containersOf, startReplicationCluster, writeClosedKeys, type Cluster } from './replication-cluster.ts'

interface Node { id: string; address: string; state: string; operationalState: string; adminProgress: string | null }

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
let cluster: Cluster
let client: O3Client
let scm: RpcClient
const keys = new Map<string, Buffer>()

const containers = () => containersOf(scm)
const nodes = () => scm.call<Node[]>('listDatanodes', {})

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [o3, 'admin', 'datanode', ...args, '--om', cluster.omAddress, '--scm', cluster.scm.address], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...adminEnv(cluster, cluster.options.dataDir) } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

test.before(async () => {
  ({ cluster, client, scm } = await startReplicationCluster())
})

test.after(async () => {
  await cluster?.dispose()
})

test('decommission under a read load: reads never fail, the node ends DECOMMISSIONED, its containers three times elsewhere', async () => {
  const closed = await writeClosedKeys(client, scm, 8, keys)
  // The node holding the most containers: some of them must move to the node without a replica.
  const victim = busiestNode(closed)
  const held = closed.filter((c) => c.replicas.some((r) => r.datanodeId === victim)).map((c) => c.id)
  assert.ok(held.length > 0)

  // A reader over every key, until the node is DECOMMISSIONED.
  let reads = 0
  const failures: string[] = []
  let reading = true
  const reader = (async () => {
    while (reading) {
      for (const [key, data] of keys) {
        try {
          if (!(await client.getKey('vol', 'bkt', key)).equals(data)) failures.push(`${key}: wrong bytes`)
          reads++
        } catch (err) {
          failures.push(`${key}: ${(err as Error).message}`)
        }
      }
    }
  })()

  const r = await cli('decommission', victim, '--json')
  assert.is(r.code, 0, r.stderr)
  assert.is((JSON.parse(r.stdout) as { state: string }[])[0].state, 'DECOMMISSIONING')
  const done = await until('the victim DECOMMISSIONED', async () => {
    const n = (await nodes()).find((x) => x.id === victim)!
    return n.operationalState === 'DECOMMISSIONED' ? n : undefined
  }, 90_000, 200)
  reading = false
  await reader
  assert.equal(failures, [], 'no read failed')
  assert.ok(reads >= keys.size, `reads: ${reads}`)
  assert.is(done.state, 'HEALTHY')

  // Every container it held has three CLOSED replicas on other nodes.
  for (const c of await containers()) {
    if (!held.includes(c.id)) continue
    const elsewhere = c.replicas.filter((x) => x.datanodeId !== victim && x.state === 'CLOSED')
    assert.ok(elsewhere.length >= 3, `container ${c.id}: ${JSON.stringify(c.replicas)}`)
  }
  // No pipeline left on it, and none placed on it since.
  const pipelines = await scm.call<{ state: string; nodes: { id: string }[] }[]>('listPipelines', {})
  assert.ok(pipelines.every((p) => p.state === 'CLOSED' || !p.nodes.some((n) => n.id === victim)), JSON.stringify(pipelines))

  // Safe to stop: every key reads back without it.
  const index = cluster.datanodes.findIndex((d) => d?.id === victim)
  await cluster.stopDatanode(index)
  for (const [key, data] of keys) assert.ok((await client.getKey('vol', 'bkt', key)).equals(data), key)
  // A new key is written on the three left.
  await client.putKey('vol', 'bkt', 'after', randomBytes(10 * KiB), { replication: 'RATIS/THREE' })
})

test.run()
