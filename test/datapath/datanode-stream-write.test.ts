/**
 * Goal: a datanode writes a chunk to its block file while the chunk's body arrives (runs of
 * whole checksum windows, each verified before it is written), and a chunk that turns out bad
 * late still commits nothing and spoils nothing, on the leader and on every follower of the
 * pipeline. Method: a real in-process cluster of three datanodes and the SCM's RATIS/THREE
 * pipeline on them (its Raft group formed by the SCM through heartbeats); raw writeChunk
 * requests (checksums || data) to the group's leader, which stages the bytes on both followers while they arrive and then
 * commits the chunk through the log; bodies sent in uneven pieces with pauses; the leader's
 * block file on disk is watched mid-body, and every result is read back over /chunk/read
 * from all three replicas once each has applied the log through the write (a follower
 * applies after the leader answers). A putBlock goes to the leader (a follower answers
 * NOT_LEADER) and is refused alike on every replica.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { statSync } from 'node:fs'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { checksumsLengthBytes, computeChecksums, initChecksums } from '../../core/checksum.ts'
import { KiB, MiB } from '../../core/limits.ts'
import { readError, RpcClient } from '../../core/rpc/client.ts'
import type { ChecksumType } from '../../core/wire.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import { randomBytes, startMiniCluster } from '../cluster/mini-cluster.ts'
import { appliedThrough, groupView, scmPipeline } from '../cluster/pipeline-group.ts'

const WINDOW = 16 * KiB
/** A liveness bound for what the datanode must do while a body pauses, far above any honest wait. */
const WAIT_MS = 15_000

type Cluster = Awaited<ReturnType<typeof startMiniCluster>>

interface Chunk {
  containerId: number
  localId: number
  offset: number
  data: Uint8Array
  checksumType: ChecksumType
  commit?: boolean
}

/** The chunk's body as the client sends it: checksums, then data. */
function bodyOf(ch: Chunk, corrupt?: number): Uint8Array {
  const csLength = checksumsLengthBytes(ch.checksumType, ch.data.length, WINDOW)
  const body = new Uint8Array(csLength + ch.data.length)
  computeChecksums(ch.checksumType, ch.data, WINDOW, body.subarray(0, csLength))
  body.set(ch.data, csLength)
  if (corrupt !== undefined) body[csLength + corrupt] ^= 0xff
  return body
}

/** A write's outcome: the error, or the log index of its entry. */
type Written = { error: Error; index?: undefined } | { error: undefined; index: number }

/**
 * Sends a writeChunk to the group's leader whose body goes out in `pieces` (sizes; the last
 * takes the rest), each after `pauseMs`, calling `between(i)` before piece i when given.
 */
async function writeChunk(ch: Chunk, o: { corrupt?: number; pieces?: number[]; pauseMs?: number; between?: (i: number) => Promise<void> } = {}): Promise<Written> {
  const body = bodyOf(ch, o.corrupt)
  const args = {
    containerId: ch.containerId, localId: ch.localId, offset: ch.offset, length: ch.data.length, checksumType: ch.checksumType,
    bytesPerChecksum: WINDOW, replication: 'RATIS/THREE', pipelineId, forward: [], commit: ch.commit === true,
  }
  async function* pieces(): AsyncGenerator<Uint8Array> {
    let at = 0
    for (const [i, size] of [...(o.pieces ?? []), body.length].entries()) {
      if (at >= body.length) return
      if (o.pauseMs !== undefined) await new Promise((r) => setTimeout(r, o.pauseMs))
      await o.between?.(i)
      const end = Math.min(body.length, at + size)
      yield body.subarray(at, end)
      at = end
    }
  }
  const res = await request(`http://${leader}/chunk/write`, {
    method: 'POST', body: Readable.from(pieces(), { objectMode: false }),
    headers: { 'x-o3-args': JSON.stringify(args), 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
  })
  if (res.statusCode !== 200) return { error: await readError(res, 'writeChunk') }
  const { result } = await res.body.json() as { result: { length: number; index: number } }
  assert.is(result.length, ch.data.length)
  return { error: undefined, index: result.index }
}

/** Reads the whole of `expected` from every replica, each once it applied the log through `index`. */
async function assertOnEveryReplica(containerId: number, localId: number, expected: Uint8Array, index: number, what: string): Promise<void> {
  for (const address of replicas) {
    await appliedThrough(address, pipelineId, index)
    for (let at = 0; at < expected.length; at += MiB) {
      const length = Math.min(MiB, expected.length - at)
      assertSameBytes(await readChunk(address, containerId, localId, at, length), expected.subarray(at, at + length), `${what} on ${address} at ${at}`)
    }
  }
}

/** Waits until every follower applied what the leader has applied (so a follower's state shows every entry so far). */
async function followersCaughtUp(): Promise<void> {
  const applied = (await groupView(leader, pipelineId))!.applied
  for (const address of replicas) await appliedThrough(address, pipelineId, applied)
}

/** Reads [offset, offset + length) of a block from one datanode, data only. */
async function readChunk(address: string, containerId: number, localId: number, offset: number, length: number): Promise<Uint8Array> {
  const res = await request(`http://${address}/chunk/read`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ containerId, localId, offset, length }),
  })
  if (res.statusCode !== 200) throw await readError(res, 'readChunk')
  const meta = JSON.parse(String(res.headers['x-o3-args'])) as { dataOffset: number; dataLength: number }
  const body = new Uint8Array(await res.body.arrayBuffer())
  return body.subarray(offset - meta.dataOffset, offset - meta.dataOffset + length)
}

async function codeOf(work: Promise<unknown>): Promise<string | undefined> {
  try { await work; return undefined } catch (err) { return (err as { code?: string }).code }
}

/** Where the leader keeps a block. */
function leaderBlockPath(containerId: number, localId: number): string {
  const dn = cluster.datanodes[leaderIndex]!
  return blockFile(dn.dirs[0]!, dn.clusterId, containerId as never, localId as never)
}

async function eventually(what: string, check: () => boolean): Promise<void> {
  const until = Date.now() + WAIT_MS
  while (!check()) {
    if (Date.now() > until) throw new Error(`not within ${WAIT_MS} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Byte-for-byte equality; names the first differing offset (uvu's diff of megabytes takes minutes). */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`)
  const at = Buffer.from(actual.buffer, actual.byteOffset, actual.length).compare(Buffer.from(expected.buffer, expected.byteOffset, expected.length))
  if (at === 0) return
  let i = 0
  while (actual[i] === expected[i]) i++
  assert.unreachable(`${what}: bytes differ from offset ${i}`)
}

const fileBytes = (path: string) => statSync(path, { throwIfNoEntry: false })?.size ?? 0

let cluster: Cluster
let pipelineId: string
let leader: string
/** The leader's index in cluster.datanodes. */
let leaderIndex: number
/** The leader, then both followers. */
let replicas: string[]

test.before(async () => {
  await initChecksums()
  cluster = await startMiniCluster({ datanodes: 3 })
  const group = await scmPipeline(cluster, 'RATIS/THREE')
  pipelineId = group.pipelineId
  ;({ address: leader, index: leaderIndex } = group.leader)
  replicas = [group.leader, ...group.followers].map((m) => m.address)
})

test.after(async () => {
  await cluster.dispose()
})

test('writeChunk writes a slow body to the block file while it arrives, and it round-trips byte for byte on both replicas', async () => {
  const containerId = 930_001
  // The first chunk holds whole windows (a chunk follows it); the second ends inside one.
  const first = randomBytes(2 * MiB + 3 * WINDOW, 1)
  const second = randomBytes(MiB + 777, 2)
  const path = leaderBlockPath(containerId, 1)
  // Uneven pieces, none on a window or on the checksums' end.
  const pieces = [1, 100, WINDOW - 1, 700 * KiB, 333, 1300 * KiB + 5]
  const w1 = await writeChunk({ containerId, localId: 1, offset: 0, data: first, checksumType: 'CRC32C' }, {
    pieces, pauseMs: 30,
    // Before the last piece (well past a run's worth of data): the file already holds data.
    between: (i) => i === pieces.length ? eventually('the block file grows before the chunk has arrived', () => fileBytes(path) >= MiB) : Promise.resolve(),
  })
  assert.is(w1.error, undefined, String(w1.error))
  const w2 = await writeChunk({ containerId, localId: 1, offset: first.length, data: second, checksumType: 'CRC32C', commit: true }, { pieces: [5, 64 * KiB + 3, 512 * KiB], pauseMs: 50 })
  assert.is(w2.error, undefined, String(w2.error))
  assert.ok(w2.index! > w1.index!, 'the second chunk comes later in the log')
  const all = new Uint8Array(first.length + second.length)
  all.set(first)
  all.set(second, first.length)
  await assertOnEveryReplica(containerId, 1, all, w2.index!, 'two chunks')
})

test('writeChunk rejects a chunk whose later window is corrupt with CHECKSUM_MISMATCH; nothing is committed, and a retry writes over it', async () => {
  const containerId = 930_002
  const data = randomBytes(4 * MiB, 3)
  const chunk: Chunk = { containerId, localId: 1, offset: 0, data, checksumType: 'XXH64', commit: true }
  // The last window is bad, and it comes after a pause: the earlier runs are written by then.
  const path = leaderBlockPath(containerId, 1)
  const { error } = await writeChunk(chunk, {
    corrupt: data.length - 100, pieces: [3 * MiB], pauseMs: 0,
    between: (i) => i === 1 ? eventually('the block file grows before the bad window arrives', () => fileBytes(path) >= MiB) : Promise.resolve(),
  })
  assert.is((error as { code?: string } | undefined)?.code, 'CHECKSUM_MISMATCH', String(error))
  const nothingCommitted = async (when: string) => {
    await followersCaughtUp()
    for (const address of replicas) {
      const dn = new RpcClient('Datanode', address)
      assert.is(await codeOf(dn.call('getBlock', { containerId, localId: 1 })), 'BLOCK_NOT_FOUND', `${address}: block committed ${when}`)
      assert.is(await codeOf(readChunk(address, containerId, 1, 0, WINDOW)), 'BLOCK_NOT_FOUND', `${address}: block readable ${when}`)
    }
  }
  await nothingCommitted('after the bad chunk')
  // A putBlock goes through the leader's log: its apply finds no chunk recorded, on the leader
  // (which answers) and alike on the followers (which are asked nothing and commit nothing).
  const rpc = (address: string) => new RpcClient('Datanode', address)
  assert.is(await codeOf(rpc(leader).call('putBlock', { containerId, localId: 1, length: data.length })), 'CHUNK_NOT_FOUND', 'a putBlock found the bad chunk')
  for (const address of replicas.slice(1)) assert.is(await codeOf(rpc(address).call('putBlock', { containerId, localId: 1, length: data.length })), 'NOT_LEADER', `${address}: a follower took a putBlock`)
  await nothingCommitted('after the putBlock')
  const retry = await writeChunk(chunk, { pieces: [MiB, MiB], pauseMs: 20 })
  assert.is(retry.error, undefined, String(retry.error))
  await assertOnEveryReplica(containerId, 1, data, retry.index!, 'the retry')
})

test('writeChunk over committed bytes verifies the whole chunk first: a corrupt rewrite leaves the committed bytes intact', async () => {
  const containerId = 930_003
  const committed = randomBytes(4 * MiB, 4)
  const chunk = (data: Uint8Array): Chunk => ({ containerId, localId: 1, offset: 0, data, checksumType: 'CRC32C', commit: true })
  // The rewrite comes as soon as the leader answers, as a client's would: a follower may not
  // have applied the commit yet when the rewrite's bytes reach it.
  const first = await writeChunk(chunk(committed))
  assert.is(first.error, undefined, String(first.error))
  // Other, well-formed bytes for the first three MiB (so that written runs would show), then a bad window.
  const path = leaderBlockPath(containerId, 1)
  const { error } = await writeChunk(chunk(randomBytes(4 * MiB, 5)), { corrupt: 4 * MiB - 1, pieces: [3 * MiB], pauseMs: 300 })
  assert.is((error as { code?: string } | undefined)?.code, 'CHECKSUM_MISMATCH', String(error))
  assert.is(fileBytes(path), committed.length)
  await followersCaughtUp()
  await assertOnEveryReplica(containerId, 1, committed, first.index!, 'the committed bytes')
})

test('writeChunk over a recorded chunk not yet committed verifies the whole chunk first: a corrupt rewrite leaves the recorded bytes for the putBlock', async () => {
  // The bytes a chunk's entry names are in the block file before anything commits them: a
  // chunk recorded but not committed yet, or (on a follower) a chunk whose commit the leader
  // has answered while this replica has yet to apply it. A rewrite that turns out bad must not
  // have written over them, or the putBlock (the apply) commits checksums the file no longer
  // matches: here with a recorded chunk, which makes the follower's race deterministic.
  const containerId = 930_005
  const recorded = randomBytes(4 * MiB, 40)
  const chunk = (data: Uint8Array, commit: boolean): Chunk => ({ containerId, localId: 1, offset: 0, data, checksumType: 'CRC32C', commit })
  const first = await writeChunk(chunk(recorded, false))
  assert.is(first.error, undefined, String(first.error))
  const { error } = await writeChunk(chunk(randomBytes(4 * MiB, 41), false), { corrupt: 4 * MiB - 1, pieces: [3 * MiB], pauseMs: 300 })
  assert.is((error as { code?: string } | undefined)?.code, 'CHECKSUM_MISMATCH', String(error))
  const { index } = await new RpcClient('Datanode', leader).call<{ index: number }>('putBlock', { containerId, localId: 1, length: recorded.length })
  await assertOnEveryReplica(containerId, 1, recorded, index, 'the recorded chunk')
})

test('writeChunk takes chunks at the size boundaries (0, 1, window - 1, window, window + 1) and NONE checksums', async () => {
  const containerId = 930_004
  let localId = 0
  for (const checksumType of ['CRC32C', 'NONE'] as const) {
    for (const size of [0, 1, WINDOW - 1, WINDOW, WINDOW + 1, MiB + 1]) {
      localId++
      const data = randomBytes(size, 6 + localId)
      const w = await writeChunk({ containerId, localId, offset: 0, data, checksumType, commit: true }, { pieces: [7, WINDOW], pauseMs: 5 })
      assert.is(w.error, undefined, `${checksumType} ${size}: ${w.error}`)
      await assertOnEveryReplica(containerId, localId, data, w.index!, `${checksumType} ${size}`)
      for (const address of replicas) {
        const block = await new RpcClient('Datanode', address).call<{ length: number }>('getBlock', { containerId, localId })
        assert.is(block.length, size, `${checksumType} ${size}: block length on ${address}`)
      }
    }
  }
})

test.run()
