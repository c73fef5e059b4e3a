/**
 * Goal: the client's read verification, which runs in the worker pool for chunks above
 * VERIFY_INLINE_BYTES_MAX (a pooled buffer verified in place, shared memory; a buffer of the
 * read's own moved there and back), returns exact bytes and catches
 * corruption: a corrupt window on one replica of RATIS/THREE is read from another, on the only
 * replica of RATIS/ONE fails CHECKSUM_MISMATCH; pooled buffers all come back; readers of one
 * key at once each get its bytes, and a consumer of readKey() that keeps its pieces finds them
 * unchanged while pooled reads reuse their buffers beside it.
 * Method: a real mini cluster of three datanodes with 256 KiB chunks (pool-verified), 16 KiB
 * windows and 1 MiB blocks; seeded random bytes; bytes overwritten in block files on the
 * datanodes' disks (the datanode serves what it has; only the client checks).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { closeSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { KiB, VERIFY_INLINE_BYTES_MAX } from '../../../core/limits.ts'
import type { KeyInfo } from '../../../core/om-wire.ts'
import type { DatanodeDetails } from '../../../core/wire.ts'
import { O3Client } from '../../../datapath/client/index.ts'
import { corruptContainer } from '../../../datapath/client/failed-nodes.ts'
import { blockFile } from '../../../datapath/datanode/index.ts'
import { BufferPool, runVerifyChunk } from '../../../datapath/workers/index.ts'
import { errorCode, until } from '../../helpers.ts'
import { adminTransport, randomBytes, startMiniCluster } from '../../cluster/mini-cluster.ts'

const WINDOW = 16 * KiB
const CHUNK = 256 * KiB
const BLOCK = 1024 * KiB
const SIZES = [0, 1, WINDOW - 1, WINDOW, WINDOW + 1, CHUNK - 1, CHUNK, CHUNK + 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + WINDOW + 1]

let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: O3Client

function assertBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  const g = Buffer.from(got.buffer, got.byteOffset, got.byteLength)
  if (g.equals(want)) return
  const at = g.length !== want.length ? -1 : g.findIndex((b, i) => b !== want[i])
  assert.unreachable(`${what}: ${at < 0 ? `length ${g.length}, expected ${want.length}` : `first difference at byte ${at}`}`)
}

/** The range's bytes through the pooled pieces (copied out, each piece given back at once). */
async function readPooled(info: KeyInfo, range?: { offset: number; length: number }): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const piece of await client.openKeyPieces(info, range, { pooled: true })) {
    parts.push(Buffer.from(piece))
    client.readBuffers.releaseIfMine(piece.buffer)
  }
  return Buffer.concat(parts)
}

/** Overwrites 64 bytes at key offset `offset` in the block file of `node`'s replica. */
async function corrupt(info: KeyInfo, offset: number, node: DatanodeDetails): Promise<void> {
  const loc = info.locations.find((l) => l.offset <= offset && offset < l.offset + l.length)!
  const i = cluster.datanodes.findIndex((d) => d?.address === node.address)
  assert.ok(i >= 0, `datanode ${node.address} of the pipeline is in the cluster`)
  const path = blockFile(join(cluster.options.dataDir, `datanode-${i + 1}`), cluster.datanodes[i]!.clusterId, loc.blockId.containerId, loc.blockId.localId)
  const fd = openSync(path, 'r+')
  try { writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, offset - loc.offset) } finally { closeSync(fd) }
}

function pipelineOf(info: KeyInfo, offset: number): DatanodeDetails[] {
  return info.locations.find((l) => l.offset <= offset && offset < l.offset + l.length)!.pipeline.nodes
}

test.before(async () => {
  cluster = await startMiniCluster({
    datanodes: 3,
    overrides: { 'scm.block.sizeBytes': BLOCK, 'client.chunkSizeBytes': CHUNK, 'client.bytesPerChecksum': WINDOW },
  })
  client = cluster.client({ chunkSizeBytes: CHUNK })
  await client.createVolume('vol')
  await client.createBucket('vol', 'three', { replication: 'RATIS/THREE' })
  await client.createBucket('vol', 'one', { replication: 'RATIS/ONE' })
})

test.after(async () => {
  await cluster.dispose()
})

test('the chunks of this suite are verified in the worker pool, not inline', () => {
  assert.ok(CHUNK > VERIFY_INLINE_BYTES_MAX, 'a chunk larger than the inline limit')
})

// Catches: a pooled buffer that, once moved to a worker and back, the pool no longer knows
// (releaseIfMine() would then leave it out for good), or still knows by its detached handle.
test('BufferPool.adopt(): a buffer moved to a worker and back is released by its new handle', async () => {
  const pool = new BufferPool(1024, 1)
  const lent = await pool.acquire()
  new Uint8Array(lent).fill(7)
  const r = await runVerifyChunk({ type: 'NONE', bytesPerChecksum: 512, body: lent, dataLength: 1024, checksumsLength: 0 })
  assert.is(lent.byteLength, 0, 'the lent handle is detached')
  assert.is(r.body.byteLength, 1024)
  assert.is(new Uint8Array(r.body)[1023], 7, 'the same bytes came back')
  pool.adopt(lent, r.body)
  pool.releaseIfMine(lent)
  assert.is(pool.inUse, 1, 'the detached handle is not the pool\'s any more')
  pool.releaseIfMine(r.body)
  assert.is(pool.inUse, 0, 'the moved-back handle is')
  assert.is(await pool.acquire(), r.body, 'and is lent again')
})

// Catches: a verified read that hands back the wrong part of the moved-back buffer, loses the
// tail of a partial window or chunk, or keeps a pooled buffer out after the read.
test('getKey() and pooled pieces round-trip every boundary size byte for byte', async () => {
  for (const size of SIZES) {
    const data = randomBytes(size, size * 13 + 7)
    await client.putKey('vol', 'three', `k-${size}`, data)
    assertBytes(await client.getKey('vol', 'three', `k-${size}`), data, `getKey size ${size}`)
    const info = await client.headKey('vol', 'three', `k-${size}`)
    assertBytes(await readPooled(info), data, `pooled size ${size}`)
    if (size > CHUNK + 1) assertBytes(await readPooled(info, { offset: CHUNK - 1, length: CHUNK + 2 }), data.subarray(CHUNK - 1, 2 * CHUNK + 1), `pooled range of size ${size}`)
  }
  assert.is(client.readBuffers.inUse, 0, 'every pooled buffer is back')
})

// Catches: verification that skips a window (the last, partial one too), or that reports a
// mismatch but still returns the bytes; a failover that reuses a buffer the worker still holds.
test('a corrupt window on one or two replicas of RATIS/THREE is detected and read from another', async () => {
  // The last block holds two chunks, so it has a file (a one-chunk block is packed in LMDB).
  const size = 2 * BLOCK + CHUNK + 5000
  const data = randomBytes(size, 4242)
  await client.putKey('vol', 'three', 'bad-replicas', data)
  const info = await client.headKey('vol', 'three', 'bad-replicas')
  // Window 3 of chunk 1 on the first replica; the key's last (partial) window on two of three.
  const [first, second] = pipelineOf(info, CHUNK + 3 * WINDOW)
  await corrupt(info, CHUNK + 3 * WINDOW + 100, first)
  const tail = pipelineOf(info, size - 1)
  await corrupt(info, size - 64, tail[0])
  await corrupt(info, size - 64, tail[1])
  assert.ok(second !== undefined, 'RATIS/THREE has more than one replica')
  assertBytes(await client.getKey('vol', 'three', 'bad-replicas'), data, 'getKey with corrupt replicas')
  assertBytes(await readPooled(info), data, 'pooled pieces with corrupt replicas')
  assertBytes(await readPooled(info, { offset: size - WINDOW, length: WINDOW }), data.subarray(size - WINDOW), 'the tail window')
  assert.is(client.readBuffers.inUse, 0, 'every pooled buffer is back')
})

/** The chunk reads datanode `node` has served: over HTTP (readChunk) or to a reader in this process (readChunkLocal). */
async function readChunks(node: DatanodeDetails): Promise<number> {
  const d = cluster.datanodes.find((x) => x?.address === node.address)!
  return (await d.metrics.rpcRequests.get()).values.filter((v) => v.labels.method === 'readChunk' || v.labels.method === 'readChunkLocal').reduce((n, v) => n + v.value, 0)
}

// Catches: a reader that asks a replica it found corrupt first on every read, until the SCM
// has replaced it (each read paying a wasted chunk read and a report).
test('a replica a read found corrupt is asked after the others by the client\'s next reads', async () => {
  // A client of its own: the test above left corrupt replicas in its client's memory.
  const reader = cluster.client({ chunkSizeBytes: CHUNK })
  const size = 2 * CHUNK + 100
  const data = randomBytes(size, 777)
  await reader.putKey('vol', 'three', 'corrupt-first', data)
  const info = await reader.headKey('vol', 'three', 'corrupt-first')
  const [first] = pipelineOf(info, 0)
  await corrupt(info, 100, first)
  const before = await readChunks(first)
  assertBytes(await reader.getKey('vol', 'three', 'corrupt-first'), data, 'the read that meets the corrupt replica')
  const met = await readChunks(first)
  assert.ok(met > before, 'the first read asked the first replica, and found it corrupt')
  for (let n = 0; n < 3; n++) assertBytes(await reader.getKey('vol', 'three', 'corrupt-first'), data, `read ${n + 2}`)
  assertBytes(await reader.getKey('vol', 'three', 'corrupt-first', { offset: CHUNK, length: CHUNK }), data.subarray(CHUNK, 2 * CHUNK), 'a chunk the corruption is not in')
  assert.is(await readChunks(first), met, 'no later read asked the corrupt replica')
  // Another client has not met it: it asks the first replica first.
  const other = cluster.client({ chunkSizeBytes: CHUNK })
  assertBytes(await other.getKey('vol', 'three', 'corrupt-first'), data, 'another client\'s read')
  assert.ok(await readChunks(first) > met, 'another client asks the first replica')
  // A report the SCM did not take (here no SCM answers it: the OM's address) is not
  // remembered: the next read meets the replica again, and reports it again.
  const unheard = new O3Client({ om: cluster.omAddress, scm: cluster.omAddress, chunkSizeBytes: CHUNK, transport: adminTransport(cluster) })
  for (let n = 0; n < 2; n++) {
    const before = await readChunks(first)
    assertBytes(await unheard.getKey('vol', 'three', 'corrupt-first'), data, `a read whose report is not taken (${n + 1})`)
    await until('the report to fail', async () => !unheard.failedNodes.isCorrupt(corruptContainer(info.locations[0]!.blockId.containerId), first.address) || undefined, 10_000)
    assert.ok(await readChunks(first) > before, `read ${n + 1} asks the corrupt replica first`)
  }
})

// Catches: a mismatch found in the worker that is lost on its way back (the read "succeeds").
test('a corrupt window on the only replica of RATIS/ONE fails CHECKSUM_MISMATCH', async () => {
  const size = 3 * CHUNK
  const data = randomBytes(size, 99)
  await client.putKey('vol', 'one', 'bad', data)
  const info = await client.headKey('vol', 'one', 'bad')
  await corrupt(info, 2 * CHUNK + 5 * WINDOW, pipelineOf(info, 0)[0])
  assert.is(await errorCode(client.getKey('vol', 'one', 'bad')), 'CHECKSUM_MISMATCH')
  assert.is(await errorCode(readPooled(info)), 'CHECKSUM_MISMATCH')
  assert.is(await errorCode(readPooled(info, { offset: 2 * CHUNK + 5 * WINDOW + 10, length: 10 })), 'CHECKSUM_MISMATCH')
  // The bytes before the bad chunk still read.
  assertBytes(await readPooled(info, { offset: 0, length: 2 * CHUNK }), data.subarray(0, 2 * CHUNK), 'the good chunks')
  assert.is(client.readBuffers.inUse, 0, 'every pooled buffer is back after the failures')
})

// Catches: readers of one key that share or swap buffers (a pooled buffer handed to two
// readers, or given back while a reader still holds a view of it).
test('concurrent readers of the same key each get its bytes', async () => {
  const size = 3 * BLOCK + 5
  const data = randomBytes(size, 31337)
  await client.putKey('vol', 'three', 'shared', data)
  const info = await client.headKey('vol', 'three', 'shared')
  const readers = Array.from({ length: 12 }, (_, i) => i % 3 === 0
    ? client.getKey('vol', 'three', 'shared').then((b) => assertBytes(b, data, `getKey reader ${i}`))
    : i % 3 === 1
      ? readPooled(info).then((b) => assertBytes(b, data, `pooled reader ${i}`))
      : readPooled(info, { offset: i * 1000, length: BLOCK }).then((b) => assertBytes(b, data.subarray(i * 1000, i * 1000 + BLOCK), `ranged reader ${i}`)))
  await Promise.all(readers)
  assert.is(client.readBuffers.inUse, 0, 'every pooled buffer is back')
})

// Catches: the native stream handing out pooled buffers that are reused under a consumer that
// keeps its pieces (readKey() gives its pieces away: the consumer owns them).
test('readKey() pieces kept by the consumer stay intact while pooled reads reuse buffers', async () => {
  const kept = randomBytes(2 * BLOCK, 5)
  const churn = randomBytes(2 * BLOCK, 6)
  await client.putKey('vol', 'three', 'kept', kept)
  await client.putKey('vol', 'three', 'churn', churn)
  const churnInfo = await client.headKey('vol', 'three', 'churn')
  const pieces: Uint8Array[] = []
  const churning = (async () => { for (let i = 0; i < 4; i++) assertBytes(await readPooled(churnInfo), churn, `churn ${i}`) })()
  for await (const piece of await client.readKey('vol', 'three', 'kept')) {
    pieces.push(piece as Buffer)
    await new Promise((r) => setTimeout(r, 5))
  }
  await churning
  assertBytes(Buffer.concat(pieces), kept, 'the kept pieces')
})

test.run()
