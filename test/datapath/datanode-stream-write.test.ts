/**
 * Goal: a datanode writes a chunk to its block file while the chunk's body arrives (runs of
 * whole checksum windows, each verified before it is written), and a chunk that turns out bad
 * late still commits nothing and spoils nothing. Method: a real in-process cluster of two
 * datanodes; raw writeChunk requests (checksums || data) to the first, forwarding to the
 * second, with bodies sent in uneven pieces with pauses; the block file on disk is watched
 * mid-body, and every result is read back over /chunk/read from both datanodes.
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
  forward: string[]
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

/**
 * Sends a writeChunk whose body goes out in `pieces` (sizes; the last takes the rest), each
 * after `pauseMs`, calling `between(i)` before piece i when given. Resolves with the error, or
 * undefined on success.
 */
async function writeChunk(address: string, ch: Chunk, o: { corrupt?: number; pieces?: number[]; pauseMs?: number; between?: (i: number) => Promise<void> } = {}): Promise<Error | undefined> {
  const body = bodyOf(ch, o.corrupt)
  const args = {
    containerId: ch.containerId, localId: ch.localId, offset: ch.offset, length: ch.data.length, checksumType: ch.checksumType,
    bytesPerChecksum: WINDOW, replication: ch.forward.length > 0 ? 'RATIS/THREE' : 'RATIS/ONE', pipelineId: 'stream-write', forward: ch.forward, commit: ch.commit === true,
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
  const res = await request(`http://${address}/chunk/write`, {
    method: 'POST', body: Readable.from(pieces(), { objectMode: false }),
    headers: { 'x-o3-args': JSON.stringify(args), 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
  })
  if (res.statusCode === 200) { await res.body.dump(); return undefined }
  return await readError(res, 'writeChunk')
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

function blockPath(cluster: Cluster, i: number, containerId: number, localId: number): string {
  const dn = cluster.datanodes[i]!
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
let leader: string
let follower: string

test.before(async () => {
  await initChecksums()
  cluster = await startMiniCluster({ datanodes: 2 })
  ;[leader, follower] = cluster.datanodes.map((d) => d!.address) as [string, string]
})

test.after(async () => {
  await cluster.dispose()
})

test('writeChunk writes a slow body to the block file while it arrives, and it round-trips byte for byte on both replicas', async () => {
  const containerId = 930_001
  // The first chunk holds whole windows (a chunk follows it); the second ends inside one.
  const first = randomBytes(2 * MiB + 3 * WINDOW, 1)
  const second = randomBytes(MiB + 777, 2)
  const path = blockPath(cluster, 0, containerId, 1)
  // Uneven pieces, none on a window or on the checksums' end.
  const pieces = [1, 100, WINDOW - 1, 700 * KiB, 333, 1300 * KiB + 5]
  const err1 = await writeChunk(leader, { containerId, localId: 1, offset: 0, data: first, checksumType: 'CRC32C', forward: [follower] }, {
    pieces, pauseMs: 30,
    // Before the last piece (well past a run's worth of data): the file already holds data.
    between: (i) => i === pieces.length ? eventually('the block file grows before the chunk has arrived', () => fileBytes(path) >= MiB) : Promise.resolve(),
  })
  assert.is(err1, undefined, String(err1))
  const err2 = await writeChunk(leader, { containerId, localId: 1, offset: first.length, data: second, checksumType: 'CRC32C', forward: [follower], commit: true }, { pieces: [5, 64 * KiB + 3, 512 * KiB], pauseMs: 50 })
  assert.is(err2, undefined, String(err2))
  const all = new Uint8Array(first.length + second.length)
  all.set(first)
  all.set(second, first.length)
  for (const address of [leader, follower]) {
    for (let at = 0; at < all.length; at += MiB) {
      const length = Math.min(MiB, all.length - at)
      assertSameBytes(await readChunk(address, containerId, 1, at, length), all.subarray(at, at + length), `${address} at ${at}`)
    }
  }
})

test('writeChunk rejects a chunk whose later window is corrupt with CHECKSUM_MISMATCH; nothing is committed, and a retry writes over it', async () => {
  const containerId = 930_002
  const data = randomBytes(4 * MiB, 3)
  const chunk: Chunk = { containerId, localId: 1, offset: 0, data, checksumType: 'XXH64', forward: [follower], commit: true }
  // The last window is bad, and it comes after a pause: the earlier runs are written by then.
  const path = blockPath(cluster, 0, containerId, 1)
  const err = await writeChunk(leader, chunk, {
    corrupt: data.length - 100, pieces: [3 * MiB], pauseMs: 0,
    between: (i) => i === 1 ? eventually('the block file grows before the bad window arrives', () => fileBytes(path) >= MiB) : Promise.resolve(),
  })
  assert.is((err as { code?: string } | undefined)?.code, 'CHECKSUM_MISMATCH', String(err))
  for (const address of [leader, follower]) {
    const dn = new RpcClient('Datanode', address)
    assert.is(await codeOf(dn.call('getBlock', { containerId, localId: 1 })), 'BLOCK_NOT_FOUND', `${address}: block committed`)
    assert.is(await codeOf(readChunk(address, containerId, 1, 0, WINDOW)), 'BLOCK_NOT_FOUND', `${address}: block readable`)
    assert.is(await codeOf(dn.call('putBlock', { containerId, localId: 1, length: data.length, forward: [] })), 'CHUNK_NOT_FOUND', `${address}: a putBlock found the bad chunk`)
  }
  const retry = await writeChunk(leader, chunk, { pieces: [MiB, MiB], pauseMs: 20 })
  assert.is(retry, undefined, String(retry))
  for (const address of [leader, follower]) assertSameBytes(await readChunk(address, containerId, 1, 0, data.length), data, address)
})

test('writeChunk over committed bytes verifies the whole chunk first: a corrupt rewrite leaves the committed bytes intact', async () => {
  const containerId = 930_003
  const committed = randomBytes(4 * MiB, 4)
  const chunk = (data: Uint8Array): Chunk => ({ containerId, localId: 1, offset: 0, data, checksumType: 'CRC32C', forward: [follower], commit: true })
  assert.is(await writeChunk(leader, chunk(committed)), undefined)
  // Other, well-formed bytes for the first three MiB (so that written runs would show), then a bad window.
  const path = blockPath(cluster, 0, containerId, 1)
  const err = await writeChunk(leader, chunk(randomBytes(4 * MiB, 5)), { corrupt: 4 * MiB - 1, pieces: [3 * MiB], pauseMs: 300 })
  assert.is((err as { code?: string } | undefined)?.code, 'CHECKSUM_MISMATCH', String(err))
  assert.is(fileBytes(path), committed.length)
  for (const address of [leader, follower]) assertSameBytes(await readChunk(address, containerId, 1, 0, committed.length), committed, address)
})

test('writeChunk takes chunks at the size boundaries (0, 1, window - 1, window, window + 1) and NONE checksums', async () => {
  const containerId = 930_004
  let localId = 0
  for (const checksumType of ['CRC32C', 'NONE'] as const) {
    for (const size of [0, 1, WINDOW - 1, WINDOW, WINDOW + 1, MiB + 1]) {
      localId++
      const data = randomBytes(size, 6 + localId)
      const err = await writeChunk(leader, { containerId, localId, offset: 0, data, checksumType, forward: [follower], commit: true }, { pieces: [7, WINDOW], pauseMs: 5 })
      assert.is(err, undefined, `${checksumType} ${size}: ${err}`)
      if (size > 0) for (const address of [leader, follower]) assertSameBytes(await readChunk(address, containerId, localId, 0, size), data, `${checksumType} ${size} on ${address}`)
    }
  }
})

test.run()
