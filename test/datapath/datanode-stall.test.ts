/**
 * Goal: senders that stall mid-chunk cannot stop a datanode's writes. A datanode has a few
 * payload slabs (8); every writeChunk holds one while its body arrives. Without a body idle
 * timeout, eight half-sent chunk bodies held all of them forever and every other write hung.
 * Method: a real in-process cluster of one datanode with `datanode.bodyIdleTimeoutMs` of 1 s.
 * The datanode leads the group of the SCM's RATIS/ONE pipeline, formed by the SCM through
 * heartbeats (a datanode takes a write only for a group it runs, so each stalled body really
 * holds a slab, as before); twelve raw chunk writes to that pipeline send 64 KiB of a 1 MiB
 * body and stop. Beside them a normal client writes and reads a key through the same
 * pipeline.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { connect, type Socket } from 'node:net'
import { KiB, MiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { randomBytes, startMiniCluster } from '../cluster/mini-cluster.ts'
import { scmPipeline } from '../cluster/pipeline-group.ts'

/** How long the normal write may take before the test calls the datanode stuck: a liveness
 *  bound far above the 1 s idle timeout, not a speed figure. */
const STUCK_MS = 20_000

/** A stalled chunk write: its socket, and everything the datanode answered on it. */
function stalledChunkWrite(address: string, pipelineId: string, localId: number): Promise<{ socket: Socket; answer: () => string }> {
  const [host, port] = address.split(':')
  const args = {
    containerId: 900_000 + localId, localId, offset: 0, length: MiB, checksumType: 'NONE', bytesPerChecksum: 16 * KiB,
    replication: 'RATIS/ONE', pipelineId, forward: [],
  }
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), host, () => {
      socket.write(`POST /chunk/write HTTP/1.1\r\nhost: ${address}\r\nx-o3-args: ${JSON.stringify(args)}\r\ncontent-type: application/octet-stream\r\ncontent-length: ${MiB}\r\n\r\n`)
      socket.write(Buffer.alloc(64 * KiB, 7), () => resolve({ socket, answer: () => out }))
    })
    let out = ''
    socket.on('data', (d) => { out += d })
    socket.on('error', () => {})
    socket.once('error', reject)
  })
}

test('a datanode cuts chunk bodies that stall and keeps taking writes', async () => {
  const cluster = await startMiniCluster({ datanodes: 1, overrides: { 'datanode.bodyIdleTimeoutMs': 1000 } })
  try {
    const group = await scmPipeline(cluster, 'RATIS/ONE')
    const stalled = await Promise.all(Array.from({ length: 12 }, (_, i) => stalledChunkWrite(group.leader.address, group.pipelineId, i + 1)))
    const closed = stalled.map(({ socket }) => new Promise<void>((resolve) => socket.once('close', () => resolve())))

    const client = cluster.client()
    await client.createVolume('vol')
    await client.createBucket('vol', 'one', { replication: 'RATIS/ONE' })
    const data = randomBytes(2 * MiB + 3)
    let timer: ReturnType<typeof setTimeout> | undefined
    const stuck = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`a write beside 12 stalled chunk bodies did not finish in ${STUCK_MS} ms`)), STUCK_MS) })
    try {
      await Promise.race([client.putKey('vol', 'one', 'beside-stalls', data), stuck])
    } finally {
      clearTimeout(timer)
    }
    const parts: Buffer[] = []
    for await (const part of await client.readKey('vol', 'one', 'beside-stalls')) parts.push(part as Buffer)
    const back = Buffer.concat(parts)
    assert.ok(back.equals(data), 'the key written beside the stalled bodies reads back byte for byte')
    // Every stalled body was cut by the datanode (its slab freed), not left open.
    await Promise.all(closed)
    assert.ok(stalled.every(({ socket }) => socket.destroyed))
    // And each was taken by the group (not refused at once, say PIPELINE_NOT_FOUND, which
    // would hold no slab and prove nothing): its container was made, and no answer came.
    assert.equal(stalled.map(({ answer }) => answer()), stalled.map(() => ''), 'the stalled writes were cut, not answered')
    const containers = await new RpcClient('Datanode', group.leader.address).call<{ id: number }[]>('listContainers', {})
    for (let i = 1; i <= 12; i++) assert.ok(containers.some((c) => c.id === 900_000 + i), `stalled write ${i} reached its container`)
  } finally {
    await cluster.dispose()
  }
})

test.run()
