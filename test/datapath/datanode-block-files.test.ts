/**
 * Goal: a datanode keeps a block's file open between its chunks instead of opening and
 * closing it per chunk, with a bound on how many it holds, and closes them with their
 * container. Method: a real in-process cluster of one datanode, leading the group of the
 * SCM's RATIS/ONE pipeline (formed by the SCM through heartbeats); raw chunk writes to that
 * pipeline (not committed, not packed: each is a writeChunk entry applied before the answer)
 * to more blocks than the bound, reading the open_block_files gauge; then closeContainer,
 * which the leader proposes through the group's log: the container's files are closed once
 * the answer comes, and the container is CLOSED.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { request } from 'undici'
import { DATANODE_OPEN_BLOCK_FILES_MAX, KiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { startMiniCluster } from '../cluster/mini-cluster.ts'
import { scmPipeline } from '../cluster/pipeline-group.ts'

const CONTAINER = 920_001

async function writeChunk(address: string, pipelineId: string, localId: number, offset: number): Promise<void> {
  const args = {
    containerId: CONTAINER, localId, offset, length: 4 * KiB, checksumType: 'NONE', bytesPerChecksum: 4 * KiB,
    replication: 'RATIS/ONE', pipelineId, forward: [],
  }
  const res = await request(`http://${address}/chunk/write`, {
    method: 'POST', body: Buffer.alloc(4 * KiB, localId),
    headers: { 'x-o3-args': JSON.stringify(args), 'content-type': 'application/octet-stream' },
  })
  const text = await res.body.text()
  assert.is(res.statusCode, 200, text)
}

test('block files stay open between chunks, at most the bound, and close with their container', async () => {
  const cluster = await startMiniCluster({ datanodes: 1 })
  try {
    const dn = cluster.datanodes[0]!
    const open = async () => Number(/open_block_files(?:\{[^}]*\})? (\d+)/.exec(await dn.metrics.text())?.[1] ?? -1)
    const { leader: { address: leader }, pipelineId } = await scmPipeline(cluster, 'RATIS/ONE')
    await writeChunk(leader, pipelineId, 1, 0)
    await writeChunk(leader, pipelineId, 1, 4 * KiB)
    assert.is(await open(), 1, 'two chunks of one block: one file held open')
    for (let id = 2; id <= DATANODE_OPEN_BLOCK_FILES_MAX + 8; id++) await writeChunk(leader, pipelineId, id, 0)
    const held = await open()
    assert.ok(held > 0 && held <= DATANODE_OPEN_BLOCK_FILES_MAX, `${held} files open, bound ${DATANODE_OPEN_BLOCK_FILES_MAX}`)
    const rpc = new RpcClient('Datanode', leader)
    await rpc.call('closeContainer', { containerId: CONTAINER })
    assert.is(await open(), 0, 'closing the container closed its files')
    const containers = await rpc.call<{ id: number; state: string }[]>('listContainers', {})
    assert.is(containers.find((c) => c.id === CONTAINER)?.state, 'CLOSED', 'closed through the log: CLOSED, not QUASI_CLOSED')
  } finally {
    await cluster.dispose()
  }
})

test.run()
