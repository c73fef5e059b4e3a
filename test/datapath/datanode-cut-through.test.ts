/**
 * Goal: a datanode forwards a chunk to its followers while the chunk's body arrives
 * (cut-through), and a failure on either side fails the chunk with nothing committed.
 * Method: a real in-process cluster; raw chunk writes (commit: true) to one datanode whose
 * forward list names (a) a follower that is a TCP peer reading part of the body and then
 * hanging up, (b) a real second datanode while the client hangs up mid-body. Before
 * cut-through, (a) saw no byte until the leader had the whole chunk.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { KiB, MiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { startMiniCluster } from '../cluster/mini-cluster.ts'

/** A liveness bound for the follower's first bytes, far above any honest wait. */
const WAIT_MS = 15_000

function chunkArgs(containerId: number, forward: string[]) {
  return {
    containerId, localId: 1, offset: 0, length: MiB, checksumType: 'NONE', bytesPerChecksum: 16 * KiB,
    replication: 'RATIS/THREE', pipelineId: 'cut-through', forward, commit: true, whole: true,
  }
}

/** Opens a raw chunk write and sends its headers and the first `bytes` of its body. */
function startChunkWrite(address: string, args: object, bytes: number): Promise<{ socket: Socket; answer: Promise<string> }> {
  const [host, port] = address.split(':')
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), host, () => {
      socket.write(`POST /chunk/write HTTP/1.1\r\nhost: ${address}\r\nx-o3-args: ${JSON.stringify(args)}\r\ncontent-type: application/octet-stream\r\ncontent-length: ${MiB}\r\n\r\n`)
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
  } catch {
    return true
  }
}

test('a follower that fails mid-chunk fails the chunk, and the leader commits nothing', async () => {
  const cluster = await startMiniCluster({ datanodes: 1 })
  let follower: Server | undefined
  try {
    let received = 0
    let gotBytes!: () => void
    const firstBytes = new Promise<void>((resolve) => { gotBytes = resolve })
    follower = createServer((s) => {
      s.on('data', (d: Buffer) => {
        received += d.length
        // Past the headers and into the body: the leader is forwarding before it has it all.
        if (received > 64 * KiB) { gotBytes(); s.destroy() }
      })
      s.on('error', () => {})
    })
    await new Promise<void>((resolve) => follower!.listen(0, '127.0.0.1', () => resolve()))
    const followerAddress = `127.0.0.1:${(follower.address() as { port: number }).port}`
    const leader = cluster.datanodes[0]!.address
    const { socket, answer } = await startChunkWrite(leader, chunkArgs(910_001, [followerAddress]), MiB / 2)
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([firstBytes, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('the follower got no body bytes while the leader had half the chunk')), WAIT_MS) })])
    clearTimeout(timer)
    socket.write(Buffer.alloc(MiB / 2, 7))
    const reply = await answer
    assert.match(reply, /^HTTP\/1.1 5\d\d/, reply.slice(0, 200))
    assert.ok(await noBlock(leader, 910_001), 'the leader committed no block')
  } finally {
    follower?.close()
    await cluster.dispose()
  }
})

test('a body cut mid-chunk reaches no follower as a chunk: nothing is committed anywhere', async () => {
  const cluster = await startMiniCluster({ datanodes: 2 })
  try {
    const [leader, follower] = cluster.datanodes.map((d) => d!.address) as [string, string]
    const { socket } = await startChunkWrite(leader, chunkArgs(910_002, [follower]), MiB / 2)
    await new Promise((r) => setTimeout(r, 200))
    socket.destroy()
    // Both sides see the cut; give them a moment to settle before looking.
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 50))
    assert.ok(await noBlock(leader, 910_002), 'the leader committed no block')
    assert.ok(await noBlock(follower, 910_002), 'the follower committed no block')
  } finally {
    await cluster.dispose()
  }
})

test.run()
