/**
 * Goal: the client's writes reach a pipeline's Raft leader over real HTTP: they go to
 * leaderId's member with no forward list, follow a NOT_LEADER hint, try the next member when
 * a connection is refused (the chunk body sent again whole, from the same buffers), give up
 * after PIPELINE_LEADER_WAIT_MS_MAX with an UNAVAILABLE naming the pipeline and the members
 * tried; a pipeline without leaderId (an SCM before Raft pipelines) is written as before;
 * answers without an index (today's datanodes) mean nothing to watch; watchForCommit reads
 * lagging members, and fails on a datanode that does not know it.
 * Method: small HTTP servers on loopback that answer /chunk/write and /rpc/Datanode.* as a
 * datanode's leader or follower would, recording what they got; a port with nothing
 * listening for a dead member.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type Server } from 'node:http'
import { initChecksums, checksumsLengthBytes, computeChecksums } from '../../../core/checksum.ts'
import type { BlockId, ContainerId, DatanodeId, LocalId, Pipeline, PipelineId } from '../../../core/wire.ts'
import { RpcClient } from '../../../core/rpc/client.ts'
import type { OpenKeyResult } from '../../../core/om-wire.ts'
import { putBlock, watchForCommit, writeChunk } from '../../../datapath/client/datanode-io.ts'
import { KeyWriter } from '../../../datapath/client/key-writer.ts'
import { LeaderCache } from '../../../datapath/client/pipeline-leader.ts'
import { SlowDatanodes } from '../../../datapath/client/slow-datanodes.ts'
import { SlabPool } from '../../../datapath/workers/index.ts'
import { errorCode, freePort, randomBytes } from '../../helpers.ts'

interface Got {
  path: string
  args: Record<string, unknown>
  body: Buffer
}

/** A datanode stand-in: `answer` decides each reply; `got` records every request. */
interface FakeDatanode {
  address: string
  got: Got[]
  answer: (g: Got) => { status: number; body: unknown }
  server: Server
}

async function startFake(): Promise<FakeDatanode> {
  const fake: FakeDatanode = { address: '', got: [], answer: () => ({ status: 200, body: { result: {} } }), server: undefined as unknown as Server }
  fake.server = createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (d: Buffer) => parts.push(d))
    req.on('end', () => {
      const body = Buffer.concat(parts)
      const header = req.headers['x-o3-args']
      const args = (typeof header === 'string' ? JSON.parse(header) : body.length > 0 ? JSON.parse(body.toString()) : {}) as Record<string, unknown>
      const g = { path: req.url ?? '', args, body }
      fake.got.push(g)
      const a = fake.answer(g)
      res.writeHead(a.status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(a.body))
    })
  })
  await new Promise<void>((r) => fake.server.listen(0, '127.0.0.1', r))
  fake.address = `127.0.0.1:${(fake.server.address() as { port: number }).port}`
  return fake
}

const notLeader = (leader: string) => ({ status: 503, body: { code: 'NOT_LEADER', message: 'Cannot write: not the leader', leader } })
const BLOCK: BlockId = { containerId: 7 as ContainerId, localId: 42 as LocalId }
const WINDOW = 512

let fakes: FakeDatanode[] = []

function pipelineOf(addresses: string[], extra: Partial<Pipeline> = {}): Pipeline {
  return {
    id: 'pipe-1' as PipelineId, replication: 'RATIS/THREE', state: 'OPEN', createdAtMs: 0,
    nodes: addresses.map((address, i) => ({ id: `dn-${i}` as DatanodeId, address })),
    ...extra,
  }
}

/** A chunk of `n` bytes with its CRC32C checksums, in two buffers (the stream path) or joined. */
function chunk(n: number, joined: boolean): { data: Uint8Array; checksums: Uint8Array; joined?: Uint8Array } {
  const cs = checksumsLengthBytes('CRC32C', n, WINDOW)
  const all = new Uint8Array(cs + n)
  all.set(randomBytes(n), cs)
  computeChecksums('CRC32C', all.subarray(cs), WINDOW, all.subarray(0, cs))
  return { data: all.subarray(cs), checksums: all.subarray(0, cs), joined: joined ? all : undefined }
}

test.before(async () => {
  await initChecksums()
})

test.before.each(async () => {
  fakes = [await startFake(), await startFake(), await startFake()]
})

test.after.each(async () => {
  for (const f of fakes) f.server.closeAllConnections()
  await Promise.all(fakes.map((f) => new Promise((r) => f.server.close(r))))
})

test('writeChunk() goes to leaderId\'s member with no forward list and returns its index', async () => {
  const [a, b, c] = fakes
  b!.answer = () => ({ status: 200, body: { result: { length: 4096, index: 17, allCommitted: false } } })
  const leaders = new LeaderCache()
  const p = pipelineOf([a!.address, b!.address, c!.address], { leaderId: 'dn-1' as DatanodeId, term: 1 })
  const ch = chunk(4096, true)
  const ack = await writeChunk({ blockId: BLOCK, pipeline: p, leaders, offset: 0, ...ch, checksumType: 'CRC32C', bytesPerChecksum: WINDOW })
  assert.equal(ack, { index: 17 })
  assert.is(a!.got.length + c!.got.length, 0)
  assert.is(b!.got.length, 1)
  assert.equal(b!.got[0]!.args.forward, [])
  assert.ok(b!.got[0]!.body.equals(ch.joined!))
  assert.is(leaders.cached(p.id), b!.address)
})

test('writeChunk() follows a NOT_LEADER hint; the next putBlock goes straight to the new leader', async () => {
  const [a, b, c] = fakes
  a!.answer = () => notLeader(c!.address)
  c!.answer = (g) => ({ status: 200, body: { result: g.path.startsWith('/rpc/') ? { length: 8192, index: 9, allCommitted: true } : { length: 8192, index: 8 } } })
  const leaders = new LeaderCache()
  const p = pipelineOf([a!.address, b!.address, c!.address], { leaderId: 'dn-0' as DatanodeId, term: 1 })
  const ch = chunk(8192, false)
  assert.equal(await writeChunk({ blockId: BLOCK, pipeline: p, leaders, offset: 0, ...ch, checksumType: 'CRC32C', bytesPerChecksum: WINDOW }), { index: 8 })
  assert.is(a!.got.length, 1)
  assert.is(c!.got.length, 1)
  assert.ok(c!.got[0]!.body.equals(Buffer.concat([ch.checksums, ch.data])), 'the body went again whole')
  assert.is(leaders.cached(p.id), c!.address)
  assert.equal(await putBlock(BLOCK, p, 8192, leaders), { index: 9, allCommitted: true })
  assert.is(a!.got.length, 1)
  assert.is(c!.got[1]!.path, '/rpc/Datanode.putBlock')
  assert.equal(c!.got[1]!.args, { containerId: 7, localId: 42, length: 8192, forward: [] })
})

test('writeChunk() tries the next member when the leader refuses connections, sending the body again', async () => {
  const [, b, c] = fakes
  const dead = `127.0.0.1:${await freePort()}`
  b!.answer = () => notLeader('')
  c!.answer = () => ({ status: 200, body: { result: { length: 16384, index: 30, allCommitted: false } } })
  const leaders = new LeaderCache()
  const p = pipelineOf([dead, b!.address, c!.address], { leaderId: 'dn-0' as DatanodeId, term: 1 })
  const ch = chunk(16384, false)
  const ack = await writeChunk({ blockId: BLOCK, pipeline: p, leaders, offset: 16384, ...ch, checksumType: 'CRC32C', bytesPerChecksum: WINDOW })
  assert.equal(ack, { index: 30 })
  assert.is(b!.got.length, 1)
  assert.is(c!.got.length, 1)
  assert.is(c!.got[0]!.args.offset, 16384)
  assert.ok(c!.got[0]!.body.equals(Buffer.concat([ch.checksums, ch.data])))
  assert.is(leaders.cached(p.id), c!.address)
})

test('putBlock() gives up after PIPELINE_LEADER_WAIT_MS_MAX: UNAVAILABLE naming the pipeline and the members tried', async () => {
  const [, b, c] = fakes
  const dead = `127.0.0.1:${await freePort()}`
  b!.answer = () => notLeader('')
  c!.answer = () => notLeader('')
  const p = pipelineOf([dead, b!.address, c!.address], { leaderId: 'dn-0' as DatanodeId })
  let err: { code?: string; message?: string; node?: string } = {}
  try { await putBlock(BLOCK, p, 4096, new LeaderCache()) } catch (e) { err = e as typeof err }
  assert.is(err.code, 'UNAVAILABLE')
  assert.match(err.message!, 'pipeline pipe-1')
  assert.match(err.message!, `tried ${dead}, ${b!.address}, ${c!.address}`)
  assert.is(err.node, undefined)
  assert.ok(b!.got.length > 1 && c!.got.length > 1, 'went round the members more than once')
})

test('a write fails at once with an error of its own (CONTAINER_NOT_OPEN), naming the member', async () => {
  const [a, b, c] = fakes
  a!.answer = () => ({ status: 409, body: { code: 'CONTAINER_NOT_OPEN', message: 'Cannot write chunk: container 7 is CLOSING' } })
  const p = pipelineOf([a!.address, b!.address, c!.address], { leaderId: 'dn-0' as DatanodeId })
  let err: { code?: string; node?: string } = {}
  try { await putBlock(BLOCK, p, 4096, new LeaderCache()) } catch (e) { err = e as typeof err }
  assert.is(err.code, 'CONTAINER_NOT_OPEN')
  assert.is(err.node, a!.address)
  assert.is(b!.got.length + c!.got.length, 0)
})

test('a pipeline without leaderId is written at nodes[0] with the others to forward to, once; no index, nothing to watch', async () => {
  const [a, b, c] = fakes
  a!.answer = (g) => ({ status: 200, body: { result: g.path.startsWith('/rpc/') ? { length: 4096 } : { length: 4096 } } })
  const p = pipelineOf([a!.address, b!.address, c!.address])
  const ch = chunk(4096, true)
  assert.equal(await writeChunk({ blockId: BLOCK, pipeline: p, leaders: new LeaderCache(), offset: 0, ...ch, checksumType: 'CRC32C', bytesPerChecksum: WINDOW }), {})
  assert.equal(await putBlock(BLOCK, p, 4096, new LeaderCache()), {})
  assert.equal(a!.got[0]!.args.forward, [b!.address, c!.address])
  assert.equal(a!.got[1]!.args.forward, [b!.address, c!.address])
  a!.answer = () => notLeader(b!.address)
  assert.is(await errorCode(putBlock(BLOCK, p, 4096, new LeaderCache())), 'NOT_LEADER')
  assert.is(b!.got.length + c!.got.length, 0)
})

test('watchForCommit() asks the leader and reads the lagging members; a datanode without it fails', async () => {
  const [a, b, c] = fakes
  b!.answer = () => ({ status: 200, body: { result: { allCommitted: false, lagging: ['dn-2'] } } })
  const leaders = new LeaderCache()
  const p = pipelineOf([a!.address, b!.address, c!.address], { leaderId: 'dn-1' as DatanodeId })
  assert.equal(await watchForCommit(p, 12, 500, leaders), { allCommitted: false, lagging: ['dn-2'] })
  assert.equal(b!.got[0]!.args, { pipelineId: 'pipe-1', index: 12, timeoutMs: 500 })
  b!.answer = () => ({ status: 400, body: { code: 'INVALID_ARGUMENT', message: 'Cannot call Datanode.watchForCommit: no such method on Datanode' } })
  assert.is(await errorCode(watchForCommit(p, 12, 500, leaders)), 'INVALID_ARGUMENT')
})

test('KeyWriter: writes follow the leader, a lagging member is avoided by the next key, a failing watch does not fail the key', async () => {
  const [a, b, c] = fakes
  const om = await startFake()
  try {
    const leaders = new LeaderCache()
    const slow = new SlowDatanodes()
    const p = pipelineOf([a!.address, b!.address, c!.address], { leaderId: 'dn-0' as DatanodeId, term: 1 })
    let index = 100
    a!.answer = () => notLeader(b!.address)
    b!.answer = (g) => g.path === '/rpc/Datanode.watchForCommit'
      ? { status: 200, body: { result: { allCommitted: false, lagging: ['dn-2'] } } }
      : { status: 200, body: { result: { length: 1, index: ++index, allCommitted: false } } }
    const allocations: unknown[] = []
    om.answer = (g) => {
      if (g.path === '/rpc/OM.commitKey') return { status: 200, body: { result: { name: 'k', blocks: g.args.blocks } } }
      if (g.path === '/rpc/OM.allocateBlock') {
        // Asked to avoid dn-2: no pipeline without it (three datanodes).
        allocations.push(g.args.excludeList)
        return { status: 503, body: { code: 'NO_PIPELINE', message: 'Cannot allocate a RATIS/THREE block: no open pipeline of healthy datanodes' } }
      }
      return { status: 200, body: { result: null } }
    }
    const session = (localId: number): OpenKeyResult => ({
      clientId: `c${localId}`, replication: 'RATIS/THREE', checksumType: 'CRC32C', bytesPerChecksum: WINDOW, blockSizeBytes: 1024 * 1024,
      blocks: [{ blockId: { containerId: 7 as ContainerId, localId: localId as LocalId }, pipeline: p }],
    })
    const slabs = new SlabPool(64 * 1024, 16)
    const writerFor = (localId: number) => new KeyWriter({ om: new RpcClient('OM', om.address), session: session(localId), chunkSizeBytes: 4096, slabs, leaders, slow })

    // Key 1: its chunks meet NOT_LEADER at dn-0 and go to dn-1 (those sent before the first
    // answer came back go to dn-0 first), its putBlock straight there; its end watches dn-1's
    // last index and learns that dn-2 lags.
    const w1 = writerFor(42)
    await w1.write(randomBytes(4096 + 100))
    await w1.close()
    const toOld = a!.got.length
    assert.ok(toOld >= 1 && a!.got.every((g) => g.path === '/chunk/write'))
    assert.equal(b!.got.map((g) => g.path), ['/chunk/write', '/chunk/write', '/rpc/Datanode.putBlock', '/rpc/Datanode.watchForCommit'])
    assert.equal(b!.got[3]!.args, { pipelineId: 'pipe-1', index, timeoutMs: 3000 })
    assert.equal(slow.list(Date.now()), ['dn-2'])
    assert.equal(allocations, [])

    // Key 2: its preallocated block is on dn-2, so it asks for one without dn-2, is refused
    // NO_PIPELINE and takes the preallocated one after all; dn-1 no longer knows
    // watchForCommit, and the key commits.
    b!.answer = (g) => g.path === '/rpc/Datanode.watchForCommit'
      ? { status: 400, body: { code: 'INVALID_ARGUMENT', message: 'Cannot call Datanode.watchForCommit: no such method on Datanode' } }
      : { status: 200, body: { result: { length: 1, index: ++index, allCommitted: false } } }
    const w2 = writerFor(50)
    await w2.write(randomBytes(300))
    const info = await w2.close() as unknown as { blocks: { blockId: BlockId; length: number }[] }
    assert.equal(allocations, [{ datanodes: ['dn-2'], containers: [], pipelines: [] }])
    assert.equal(info.blocks, [{ blockId: { containerId: 7, localId: 50 }, length: 300 }])
    assert.equal(slow.list(Date.now()), [], 'the next keys do not ask again')
    assert.is(a!.got.length, toOld, 'the cached leader took key 2 at once')
    assert.equal(b!.got.slice(4).map((g) => g.path), ['/chunk/write', '/rpc/Datanode.watchForCommit'])
  } finally {
    om.server.closeAllConnections()
    await new Promise((r) => om.server.close(r))
  }
})

test.run()
