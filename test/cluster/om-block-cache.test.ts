/**
 * Goal: blocks the OM keeps from the SCM's last batch are dropped once a writer excludes
 * their container or pipeline: after a pipeline closes, one writer's write fails on a cached
 * block there and is retried elsewhere, and the writers after it get blocks that work, not
 * one failed write each (found by the corrupt-replica fault test: six in a row).
 * Method: an in-process cluster of three datanodes; a key fills the OM's cache from a batch
 * of blocks on the RATIS/THREE pipeline; the SCM closes that pipeline; five more keys are
 * written one after another and every datanode's /prom counts the chunk writes it refused.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { KiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { until } from '../helpers.ts'
import { adminFetch, adminRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'

async function refusedWrites(cluster: Awaited<ReturnType<typeof startMiniCluster>>, addresses: string[]): Promise<number> {
  let n = 0
  for (const a of addresses) {
    const prom = await (await adminFetch(cluster, a, '/prom')).text()
    for (const m of prom.matchAll(/^o3_datanode_rpc_requests_total\{([^}]*)\} (\d+)$/gm)) {
      if (m[1].includes('method="writeChunk"') && !m[1].includes('code="OK"')) n += Number(m[2])
    }
  }
  return n
}

test('after a pipeline closes, one write fails on a cached block there; the next ones get good blocks', async () => {
  const cluster = await startMiniCluster({ datanodes: 3, overrides: { 'scm.pipeline.destroyTimeoutMs': 1000 } })
  try {
    const client = cluster.client()
    const scm = adminRpc(cluster, 'SCM', cluster.scm.address)
    await client.createVolume('vol')
    await client.createBucket('vol', 'bkt', { replication: 'RATIS/THREE' })
    const first = await client.putKey('vol', 'bkt', 'first', randomBytes(100 * KiB))
    const pipelineId = first.locations[0].pipeline.id
    await scm.call('closePipeline', { pipelineId })
    await until('another RATIS/THREE pipeline OPEN', async () => {
      const ps = await scm.call<{ id: string; state: string; replication: string }[]>('listPipelines', {})
      return ps.some((p) => p.id !== pipelineId && p.replication === 'RATIS/THREE' && p.state === 'OPEN')
    }, 30_000, 100)
    const addresses = cluster.datanodes.map((d) => d!.address)
    const before = await refusedWrites(cluster, addresses)
    const data = randomBytes(100 * KiB, 7)
    for (let i = 0; i < 5; i++) {
      const info = await client.putKey('vol', 'bkt', `after-${i}`, data)
      assert.is.not(info.locations[0].pipeline.id, pipelineId, `after-${i} is on an open pipeline`)
    }
    const refused = (await refusedWrites(cluster, addresses)) - before
    assert.ok(refused <= 1, `chunk writes refused after the close: ${refused} (one per key would be 5)`)
    for (let i = 0; i < 5; i++) assert.ok((await client.getKey('vol', 'bkt', `after-${i}`)).equals(data))
  } finally {
    await cluster.dispose()
  }
})

test.run()
