/**
 * Goal: a pipeline leader forwards a chunk to its followers while the chunk's body arrives
 * (cut-through); a follower that fails mid-chunk does not fail it (the leader and the other
 * follower are a majority: they hold and commit it, the leader names the failed one as
 * lagging and serves it the bytes, and once back it catches up to the same chunk); a body cut
 * mid-chunk commits nothing anywhere and adds nothing to the log, and is counted as the
 * client's INCOMPLETE_BODY, not an internal error.
 * Method: a real in-process cluster of three datanodes and the SCM's RATIS/THREE pipeline on
 * them (its Raft group formed by the SCM through heartbeats); raw chunk writes (commit: true)
 * to the group's leader. (a) The client sends half the body and hangs up once both
 * followers' block files began to fill. (b) The client sends half the body; both followers'
 * block files fill before the leader has the rest (before cut-through they saw no byte until
 * the leader had the whole chunk); then one follower is stopped, which cuts the leader's
 * forward to it mid-body, and the client sends the rest; the stopped follower is started
 * again afterwards. The SCM's stale bound is raised above the test's length, so that it does
 * not close the pipeline of the stopped member while the test looks at it.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { statSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { request } from 'undici'
import { KiB, MiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import { startMiniCluster } from '../cluster/mini-cluster.ts'
import { appliedThrough, datanodeOf, groupView, type Member, scmPipeline } from '../cluster/pipeline-group.ts'
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

/** The bytes of a member's file for block 1 of `containerId`. */
function blockBytes(m: Member, containerId: number): number {
  const dn = datanodeOf(cluster, m)
  return fileBytes(blockFile(dn.dirs[0]!, dn.clusterId, containerId as never, 1 as never))
}

/** Waits until every follower's file of the block holds some of the chunk: the leader forwards what it has. */
async function followersReceiving(followers: Member[], containerId: number): Promise<void> {
  for (const f of followers) await until(`follower ${f.address} receiving the chunk`, () => blockBytes(f, containerId) > 0, WAIT_MS)
}

let cluster: Cluster

test.before(async () => {
  cluster = await startMiniCluster({ datanodes: 3, overrides: { 'scm.heartbeat.staleMs': 120_000, 'scm.heartbeat.deadMs': 240_000 } })
})

test.after(async () => {
  await cluster.dispose()
})

test('a body cut mid-chunk reaches no follower as a chunk: nothing is committed anywhere, and nothing enters the log', async () => {
  const group = await scmPipeline(cluster, 'RATIS/THREE')
  const replicas = [group.leader, ...group.followers].map((m) => m.address)
  const containerId = 910_002
  // Every member applied the election's entry: what follows would show in `applied`.
  const { applied: before, term: termBefore } = (await groupView(group.leader.address, group.pipelineId))!
  for (const address of replicas) await appliedThrough(address, group.pipelineId, before)
  const { socket } = await startChunkWrite(group.leader.address, chunkArgs(containerId, group.pipelineId), MiB / 2)
  // The followers' copies began to fill (cut-through) before the client hangs up.
  await followersReceiving(group.followers, containerId)
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
  // The client's hang-up is counted as its doing (INCOMPLETE_BODY), never as the service's internal error.
  const codes = async (m: Member) => (await datanodeOf(cluster, m).metrics.rpcRequests.get()).values.filter((v) => v.labels.method === 'writeChunk' && v.value > 0).map((v) => String(v.labels.code))
  assert.ok((await codes(group.leader)).includes('INCOMPLETE_BODY'), `the leader's writeChunk codes: ${await codes(group.leader)}`)
  for (const m of [group.leader, ...group.followers]) assert.not.ok((await codes(m)).includes('INTERNAL_ERROR'), `${m.address}: ${await codes(m)}`)
})

test('a follower that fails mid-chunk got the bytes while they arrived; the majority commits the chunk, the leader serves it for the failed one, which catches up once back', async () => {
  const group = await scmPipeline(cluster, 'RATIS/THREE')
  const leader = group.leader.address
  const [failing, healthy] = group.followers as [Member, Member]
  const containerId = 910_001
  const { socket, answer } = await startChunkWrite(leader, chunkArgs(containerId, group.pipelineId), MiB / 2)
  // Both followers' files fill while the leader has only half the chunk.
  await followersReceiving(group.followers, containerId)
  assert.ok(blockBytes(failing, containerId) <= MiB / 2, 'the failing follower got no more than the leader had')
  // The follower stops: its group first, then its HTTP server, which waits for the requests
  // in flight (the leader's forward, waiting for the rest of the body) and then cuts them.
  await cluster.stopDatanode(failing.index)
  socket.write(Buffer.alloc(MiB / 2, 7))
  const reply = await answer
  assert.match(reply, /^HTTP\/1.1 200/, reply.slice(0, 300))
  const { result } = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { result: { length: number; index: number; allCommitted: boolean } }
  assert.is(result.length, MiB)
  assert.is(result.allCommitted, false, 'the failed follower does not hold the entry')
  // The healthy replicas hold the chunk, committed.
  const expected = Buffer.alloc(MiB, 7)
  for (const address of [leader, healthy.address]) {
    await appliedThrough(address, group.pipelineId, result.index)
    const block = await new RpcClient('Datanode', address).call<{ length: number }>('getBlock', { containerId, localId: 1 })
    assert.is(block.length, MiB, `block length on ${address}`)
    assert.ok((await readChunk(address, containerId, MiB)).equals(expected), `the chunk's bytes on ${address}`)
  }
  // The leader knows the failed member lags, and serves it the bytes it would fetch before appending.
  const watch = await new RpcClient('Datanode', leader).call<{ allCommitted: boolean; lagging: string[] }>('watchForCommit', { pipelineId: group.pipelineId, index: result.index, timeoutMs: 100 })
  assert.equal(watch, { allCommitted: false, lagging: [failing.id] })
  const res = await request(`http://${leader}/pipeline/${group.pipelineId}/chunk-data`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ containerId, localId: 1, offset: 0, length: MiB }),
  })
  assert.is(res.statusCode, 200)
  assert.ok(Buffer.from(await res.body.arrayBuffer()).equals(expected), 'the leader serves the chunk data to the failed follower')
  // Back, the failed follower appends the entry with the bytes it fetches, over the half it had staged.
  const back = await cluster.startDatanode(failing.index)
  await appliedThrough(back.address, group.pipelineId, result.index)
  const block = await new RpcClient('Datanode', back.address).call<{ length: number }>('getBlock', { containerId, localId: 1 })
  assert.is(block.length, MiB, `block length on ${back.address}`)
  assert.ok((await readChunk(back.address, containerId, MiB)).equals(expected), `the chunk's bytes on ${back.address}`)
  const caughtUp = await new RpcClient('Datanode', leader).call<{ allCommitted: boolean; lagging: string[] }>('watchForCommit', { pipelineId: group.pipelineId, index: result.index, timeoutMs: WAIT_MS })
  assert.equal(caughtUp, { allCommitted: true, lagging: [] })
})

test.run()
