/**
 * Goal: a pipeline leader forwards a chunk to its followers while the chunk's body arrives
 * (cut-through); a follower that fails mid-chunk no longer fails it (the leader and the other
 * follower are a majority: they hold and commit it, and the failed one would fetch it from
 * the leader); a body cut mid-chunk commits nothing anywhere and adds nothing to the log.
 * Method: a real in-process cluster of three datanodes and Raft groups formed by hand; raw
 * chunk writes (commit: true) to a group's leader. (a) The group is the leader, a real
 * datanode and a TCP peer that reads part of a forwarded body and then hangs up (and refuses
 * Raft messages): the leader is elected with the real member's vote. Before cut-through, the
 * peer saw no byte until the leader had the whole chunk. (b) The group is three real
 * datanodes, and the client hangs up mid-body after the followers' files began to fill.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomUUID } from 'node:crypto'
import { statSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { request } from 'undici'
import { KiB, MiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { DatanodeId } from '../../core/wire.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import { startMiniCluster } from '../cluster/mini-cluster.ts'
import { appliedThrough, formPipelineGroup, groupView } from '../cluster/pipeline-group.ts'
import { until } from '../helpers.ts'

/** A liveness bound for the follower's first bytes, far above any honest wait. */
const WAIT_MS = 15_000

type Cluster = Awaited<ReturnType<typeof startMiniCluster>>

function chunkArgs(containerId: number, pipelineId: string) {
  return {
    containerId, localId: 1, offset: 0, length: MiB, checksumType: 'NONE', bytesPerChecksum: 16 * KiB,
    replication: 'RATIS/THREE', pipelineId, forward: [], commit: true, whole: true,
  }
}

/** Opens a raw chunk write and sends its headers and the first `bytes` of its body. */
function startChunkWrite(address: string, args: object, bytes: number): Promise<{ socket: Socket; answer: Promise<string> }> {
  const [host, port] = address.split(':')
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), host, () => {
      socket.write(`POST /chunk/write HTTP/1.1\r\nhost: ${address}\r\nconnection: close\r\nx-o3-args: ${JSON.stringify(args)}\r\ncontent-type: application/octet-stream\r\ncontent-length: ${MiB}\r\n\r\n`)
      socket.write(Buffer.alloc(bytes, 7), () => resolve({ socket, answer }))
    })
    let out = ''
    const answer = new Promise<string>((res) => { socket.on('data', (d) => { out += d }); socket.on('close', () => res(out)) })
    socket.on('error', () => {})
    socket.once('error', reject)
  })
}

async function noBlock(address: string, containerId: number): Promise<boolean> {
  try {
    await new RpcClient('Datanode', address).call('getBlock', { containerId, localId: 1 })
    return false
  } catch (err) {
    return (err as { code?: string }).code === 'BLOCK_NOT_FOUND' || (err as { code?: string }).code === 'CONTAINER_NOT_FOUND'
  }
}

async function readChunk(address: string, containerId: number, length: number): Promise<Buffer> {
  const res = await request(`http://${address}/chunk/read`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ containerId, localId: 1, offset: 0, length }),
  })
  const body = Buffer.from(await res.body.arrayBuffer())
  assert.is(res.statusCode, 200, body.toString().slice(0, 200))
  return body.subarray(0, length)
}

const fileBytes = (path: string) => statSync(path, { throwIfNoEntry: false })?.size ?? 0

let cluster: Cluster

test.before(async () => {
  cluster = await startMiniCluster({ datanodes: 3 })
})

test.after(async () => {
  await cluster.dispose()
})

test('a follower that fails mid-chunk got the bytes while they arrived; the majority commits the chunk, and the leader serves it for the failed one', async () => {
  let peer: Server | undefined
  try {
    let gotBytes!: () => void
    const firstBytes = new Promise<void>((resolve) => { gotBytes = resolve })
    peer = createServer((s) => {
      let received = 0
      let head = ''
      s.on('data', (d: Buffer) => {
        received += d.length
        if (head.length < 32) head += d.subarray(0, 32).toString('latin1')
        // Raft messages get a refusal: this member never votes nor appends.
        if (!head.startsWith('POST /chunk/write')) {
          if (head.length >= 17) s.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')
          return
        }
        // Past the headers and into the body: the leader is forwarding before it has it all.
        if (received > 64 * KiB) { gotBytes(); s.destroy() }
      })
      s.on('error', () => {})
    })
    await new Promise<void>((resolve) => peer!.listen(0, '127.0.0.1', () => resolve()))
    const peerAddress = `127.0.0.1:${(peer.address() as { port: number }).port}`
    const peerId = randomUUID() as DatanodeId
    const group = await formPipelineGroup(cluster, { datanodes: [0, 1], peers: [{ id: peerId, address: peerAddress }] })
    const [follower] = group.followers as [string]
    const containerId = 910_001
    const { socket, answer } = await startChunkWrite(group.leader, chunkArgs(containerId, group.pipelineId), MiB / 2)
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([firstBytes, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('the follower got no body bytes while the leader had half the chunk')), WAIT_MS) })])
    clearTimeout(timer)
    socket.write(Buffer.alloc(MiB / 2, 7))
    const reply = await answer
    assert.match(reply, /^HTTP\/1.1 200/, reply.slice(0, 300))
    const { result } = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { result: { length: number; index: number; allCommitted: boolean } }
    assert.is(result.length, MiB)
    assert.is(result.allCommitted, false, 'the failed follower does not hold the entry')
    // The healthy replicas hold the chunk, committed.
    const expected = Buffer.alloc(MiB, 7)
    for (const address of [group.leader, follower]) {
      await appliedThrough(address, group.pipelineId, result.index)
      const block = await new RpcClient('Datanode', address).call<{ length: number }>('getBlock', { containerId, localId: 1 })
      assert.is(block.length, MiB, `block length on ${address}`)
      assert.ok((await readChunk(address, containerId, MiB)).equals(expected), `the chunk's bytes on ${address}`)
    }
    // The leader knows the failed member lags, and serves it the bytes it would fetch before appending.
    const watch = await new RpcClient('Datanode', group.leader).call<{ allCommitted: boolean; lagging: string[] }>('watchForCommit', { pipelineId: group.pipelineId, index: result.index, timeoutMs: 100 })
    assert.equal(watch, { allCommitted: false, lagging: [peerId] })
    const res = await request(`http://${group.leader}/pipeline/${group.pipelineId}/chunk-data`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ containerId, localId: 1, offset: 0, length: MiB }),
    })
    assert.is(res.statusCode, 200)
    assert.ok(Buffer.from(await res.body.arrayBuffer()).equals(expected), 'the leader serves the chunk data to the failed follower')
  } finally {
    peer?.close()
  }
})

test('a body cut mid-chunk reaches no follower as a chunk: nothing is committed anywhere, and nothing enters the log', async () => {
  const group = await formPipelineGroup(cluster, { datanodes: [1, 2, 0] })
  const replicas = [group.leader, ...group.followers]
  const containerId = 910_002
  // Every member applied the election's entry: what follows would show in `applied`.
  const { applied: before, term: termBefore } = (await groupView(group.leader, group.pipelineId))!
  for (const address of replicas) await appliedThrough(address, group.pipelineId, before)
  const { socket } = await startChunkWrite(group.leader, chunkArgs(containerId, group.pipelineId), MiB / 2)
  // The followers' copies began to fill (cut-through) before the client hangs up.
  for (const i of [2, 0]) {
    const dn = cluster.datanodes[i]!
    const path = blockFile(dn.dirs[0]!, dn.clusterId, containerId as never, 1 as never)
    await until(`follower ${dn.address} receiving the chunk`, () => fileBytes(path) > 0, WAIT_MS)
  }
  socket.destroy()
  // Every side sees the cut; give them a moment to settle before looking.
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 50))
  for (const address of replicas) {
    assert.ok(await noBlock(address, containerId), `${address} committed no block`)
    // A writeChunk entry would add one entry in the same term. Only an election may add one
    // (its leader's empty entry, one per term at most): on a loaded machine a member may
    // stand while the test runs, and that is not the chunk.
    const after = (await groupView(address, group.pipelineId))!
    assert.ok(after.applied - before <= after.term - termBefore, `${address}: entries after the cut: applied ${before} -> ${after.applied}, term ${termBefore} -> ${after.term}`)
  }
})

test.run()
