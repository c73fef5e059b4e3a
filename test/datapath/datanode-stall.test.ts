/**
 * Goal: senders that stall mid-chunk cannot stop a datanode's writes, nor readers that stop
 * reading its reads (each chunk read's answer holds one of 8 pooled read buffers; eight
 * unread answers once made every other remote read wait and fail). A datanode has a few
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

test('a datanode cuts chunk reads whose clients stop reading, and keeps serving reads', async () => {
  const cluster = await startMiniCluster({ datanodes: 1, overrides: { 'datanode.sendIdleTimeoutMs': 1000 } })
  try {
    const client = cluster.client()
    await client.createVolume('vol')
    await client.createBucket('vol', 'one', { replication: 'RATIS/ONE' })
    const data = randomBytes(4 * MiB)
    await client.putKey('vol', 'one', 'read-me', data)
    const { blockId, pipeline } = (await client.headKey('vol', 'one', 'read-me')).locations[0]
    const address = pipeline.nodes[0].address
    const [host, port] = address.split(':')
    const body = JSON.stringify({ ...blockId, offset: 0, length: 4 * MiB })
    // Twelve readers that ask for the whole chunk and never read a byte of the answer.
    const stalled = await Promise.all(Array.from({ length: 12 }, () => new Promise<Socket>((resolve, reject) => {
      const socket = connect(Number(port), host, () => {
        socket.pause()
        socket.write(`POST /chunk/read HTTP/1.1\r\nhost: ${address}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`, () => resolve(socket))
      })
      socket.on('error', () => {})
      socket.once('error', reject)
    })))
    const closed = stalled.map(() => false)
    stalled.forEach((socket, i) => socket.once('close', () => { closed[i] = true }))
    let timer: ReturnType<typeof setTimeout> | undefined
    const stuck = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`a read beside 12 unread ones did not finish in ${STUCK_MS} ms`)), STUCK_MS) })
    try {
      const res = await Promise.race([fetch(`http://${address}/chunk/read`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }), stuck])
      assert.is(res.status, 200)
      const got = Buffer.from(await Promise.race([res.arrayBuffer(), stuck]))
      assert.ok(got.subarray(0, 4 * MiB).equals(data), 'the read beside the stalled ones is whole')
    } finally {
      clearTimeout(timer)
    }
    // Each unread answer was cut (its buffer back), not left open. Read now: the eight that held
    // the buffers end short and closed; those that waited for one may have fit whole in the
    // sockets' buffers (and stay open, kept alive).
    const received = stalled.map(() => 0)
    stalled.forEach((socket, i) => { socket.on('data', (d: Buffer) => { received[i] += d.length }); socket.resume() })
    for (const until = Date.now() + STUCK_MS; !stalled.every((_, i) => closed[i] || received[i] >= 4 * MiB);) {
      assert.ok(Date.now() < until, `unread answers neither cut nor whole after ${STUCK_MS} ms (${received.join(' ')} bytes)`)
      await new Promise((r) => setTimeout(r, 50))
    }
    assert.ok(stalled.filter((_, i) => closed[i] && received[i] < 4 * MiB).length >= 1, `unread answers were cut short (${received.join(' ')} bytes)`)
    for (const socket of stalled) socket.destroy()
    // A member's read of chunk bytes through the container's own pipeline; any other path names nothing.
    const chunkData = (pipelineId: string) => fetch(`http://${address}/pipeline/${pipelineId}/chunk-data`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...blockId, offset: 0, length: MiB }) })
    const other = await chunkData('x')
    assert.is(((await other.json()) as { code: string }).code, 'CONTAINER_NOT_FOUND')
    const own = await chunkData(pipeline.id)
    assert.ok(Buffer.from(await own.arrayBuffer()).equals(data.subarray(0, MiB)))
  } finally {
    await cluster.dispose()
  }
})

test.run()
