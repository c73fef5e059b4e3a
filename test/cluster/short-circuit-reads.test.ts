/**
 * Goal: a reader in the datanodes' process (the S3 gateway of `o3 local`'s default topology)
 * reads their chunks without HTTP, byte for byte as over HTTP: whole objects at every size
 * boundary (empty, small blocks packed in LMDB, a checksum window, a chunk, a block, more), ranges
 * inside windows and across chunks and blocks; a flipped byte in one replica's block file is
 * caught (CHECKSUM_MISMATCH) and the read served by another replica; a replica whose file
 * read hangs is read around after the hedge time, and the gateway buffer it reads into comes
 * back once the hung read ends (never while a worker may still write into it); a stopped
 * datanode leaves the readers' map and is read around, and is back in it once restarted;
 * with `datanode.shortCircuitReads` 0 every read goes over HTTP again. With security on
 * (the `[secure]` pass) datanodes serve reads over HTTPS only.
 * Method: a real mini cluster of three datanodes (RATIS/THREE, small chunks and blocks) with
 * an S3 gateway in this process, driven by the AWS SDK; the datanodes' own Prometheus
 * counters tell which way each read went (`readChunkLocal` against `readChunk`). The hung
 * read is a real one: the first replica's block file replaced by a named pipe, whose open
 * blocks the worker until the test writes to it.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { execFileSync } from 'node:child_process'
import { closeSync, openSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { localDatanode } from '../../datapath/client/local-datanodes.ts'
import { KiB, MiB } from '../../core/limits.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import type { S3Gateway } from '../../datapath/s3/index.ts'
import { flipByte, until } from '../helpers.ts'
import { adminFetch, randomBytes, startMiniCluster, TEST_SECURE } from './mini-cluster.ts'
import { gatewayClient, startGateway } from './mini-gateway.ts'

const WINDOW = 16 * KiB
const CHUNK = 256 * KiB
const BLOCK = 1 * MiB
/** Packed in LMDB at or below this: 96 KiB, so that a packed block past VERIFY_INLINE_BYTES_MAX is verified in a worker. */
const SMALL = 96 * KiB
const overrides = { 'client.chunkSizeBytes': CHUNK, 'client.bytesPerChecksum': WINDOW, 'scm.block.sizeBytes': BLOCK, 'datanode.smallBlockBytes': SMALL, 'client.replication': 'RATIS/THREE' }

type Cluster = Awaited<ReturnType<typeof startMiniCluster>>

let cluster: Cluster
let gateway: S3Gateway
let s3: S3Client

/** readChunk requests (HTTP) and readChunkLocal reads (short-circuit) the cluster's running datanodes have served so far. */
async function reads(c: Cluster): Promise<{ http: number; local: number }> {
  const n = { http: 0, local: 0 }
  for (const dn of c.datanodes) {
    if (dn === undefined) continue
    const prom = await (await adminFetch(c, dn.address, '/prom')).text()
    for (const m of prom.matchAll(/^o3_datanode_rpc_requests_total\{([^}]*)\} (\d+)$/gm)) {
      const method = /method="([^"]*)"/.exec(m[1])?.[1]
      if (method === 'readChunk') n.http += Number(m[2])
      if (method === 'readChunkLocal') n.local += Number(m[2])
    }
  }
  return n
}

async function get(client: S3Client, key: string, range?: [number, number]): Promise<Buffer> {
  const r = await client.send(new GetObjectCommand({ Bucket: 'reads', Key: key, Range: range && `bytes=${range[0]}-${range[1]}` }))
  return Buffer.from(await r.Body!.transformToByteArray())
}

function assertBytes(got: Buffer, want: Uint8Array, what: string): void {
  if (got.equals(want)) return
  const at = got.length !== want.length ? -1 : got.findIndex((b, i) => b !== want[i])
  assert.unreachable(`${what}: ${at < 0 ? `length ${got.length}, expected ${want.length}` : `first difference at byte ${at}`}`)
}

const SIZES = [0, 1, SMALL - 1, SMALL + 1, WINDOW - 1, WINDOW, CHUNK - 1, CHUNK, CHUNK + 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17]
const objects = new Map(SIZES.map((n) => [`k${n}`, randomBytes(n, n + 7)]))

test.before(async () => {
  cluster = await startMiniCluster({ overrides })
  gateway = await startGateway(cluster)
  s3 = await gatewayClient(cluster, gateway)
  await s3.send(new CreateBucketCommand({ Bucket: 'reads' }))
  for (const [key, data] of objects) await s3.send(new PutObjectCommand({ Bucket: 'reads', Key: key, Body: data }))
})

test.after(async () => {
  s3.destroy()
  await gateway.stop()
  await cluster.dispose()
})

test('GETs at every size boundary read back byte for byte, without HTTP unless the cluster is secure', async () => {
  const before = await reads(cluster)
  for (const [key, data] of objects) assertBytes(await get(s3, key), data, key)
  const after = await reads(cluster)
  const local = after.local - before.local, http = after.http - before.http
  if (TEST_SECURE) {
    assert.is(local, 0, 'a secure datanode serves no short-circuit reads')
    assert.ok(http > 0, 'reads went over HTTPS')
  } else {
    assert.is(http, 0, `no chunk read went over HTTP (${local} short-circuit reads)`)
    // Every non-empty object is at least one read (the empty one none).
    assert.ok(local >= SIZES.length - 1, `short-circuit reads: ${local}`)
  }
})

test('ranges inside a window, across windows, chunks and blocks', async () => {
  const before = await reads(cluster)
  const data = objects.get(`k${3 * BLOCK + 17}`)!
  const ranges: [number, number][] = [
    [0, 0], [7, 7], [WINDOW - 1, WINDOW], [WINDOW + 3, 3 * WINDOW + 5], [CHUNK - 5, CHUNK + 5], [BLOCK - 1, BLOCK],
    [BLOCK - 100, 2 * BLOCK + 100], [3 * BLOCK, 3 * BLOCK + 16], [0, 3 * BLOCK + 16],
  ]
  for (const [from, to] of ranges) assertBytes(await get(s3, `k${3 * BLOCK + 17}`, [from, to]), data.subarray(from, to + 1), `bytes ${from}-${to}`)
  const small = objects.get(`k${SMALL - 1}`)!
  assertBytes(await get(s3, `k${SMALL - 1}`, [10, 200]), small.subarray(10, 201), 'a range of a packed block')
  const after = await reads(cluster)
  if (!TEST_SECURE) assert.is(after.http - before.http, 0, 'no range read went over HTTP')
})

test('a replica whose file read hangs is read around; its buffer comes back only when the read ends', async () => {
  // One chunk: a second (read ahead) from the same replica would hold the pool's other worker.
  const data = randomBytes(CHUNK - 3, 123)
  await s3.send(new PutObjectCommand({ Bucket: 'reads', Key: 'hung', Body: data }))
  const loc = (await cluster.client().headKey('s3v', 'reads', 'hung')).locations[0]
  // The replica a read asks first: its block file becomes a named pipe, whose open blocks a
  // worker (one of the process's pool; the hedge's read over HTTP takes another). First in
  // the suite, while the container is open: the scanner reads closed ones only.
  const first = cluster.datanodes.findIndex((dn) => dn?.address === loc.pipeline.nodes[0]!.address)
  const path = blockFile(join(cluster.options.dataDir, `datanode-${first + 1}`), cluster.datanodes[first]!.clusterId, loc.blockId.containerId, loc.blockId.localId)
  rmSync(path)
  execFileSync('mkfifo', [path])
  const buffers = gateway.client.readBuffers
  try {
    const started = Date.now()
    assertBytes(await get(s3, 'hung'), data, 'read from the other replicas')
    assert.ok(Date.now() - started < 15_000, `served in ${Date.now() - started} ms, not after the hung read`)
    if (!TEST_SECURE) assert.ok(buffers.inUse >= 1, 'the buffer the hung read writes into is not handed out again')
  } finally {
    // The worker's open returns once a writer opens the pipe; a few bytes, then its end
    // (the reader may be gone by the write: then the pipe is broken, which is fine too).
    const fd = openSync(path, 'w')
    try { writeSync(fd, Buffer.alloc(10)) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err }
    closeSync(fd)
  }
  await until('every gateway read buffer is back', () => buffers.inUse === 0, 10_000)
})

test('a flipped byte in one replica is caught and the read served by another', async () => {
  const data = randomBytes(2 * CHUNK, 99)
  await s3.send(new PutObjectCommand({ Bucket: 'reads', Key: 'flipped', Body: data }))
  const info = await cluster.client().headKey('s3v', 'reads', 'flipped')
  const loc = info.locations[0]
  // Two replicas corrupt in the first chunk (a read asks for a chunk at a time): whichever a
  // read asks first, a clean one is left; with all three corrupt there, the read must fail,
  // not return bad bytes.
  const paths = cluster.datanodes.map((dn, i) => blockFile(join(cluster.options.dataDir, `datanode-${i + 1}`), dn!.clusterId, loc.blockId.containerId, loc.blockId.localId))
  flipByte(paths[0], 3 * WINDOW + 5)
  flipByte(paths[1], 5 * WINDOW + 11)
  const before = await reads(cluster)
  assertBytes(await get(s3, 'flipped'), data, 'two replicas corrupt')
  const after = await reads(cluster)
  if (!TEST_SECURE) assert.is(after.http - before.http, 0, 'the corrupt replicas were read, and refused, without HTTP')
  flipByte(paths[2], 7)
  let failed: { $metadata?: { httpStatusCode?: number } } | undefined
  try { await get(s3, 'flipped') } catch (err) { failed = err as typeof failed }
  assert.ok(failed !== undefined, 'with every replica corrupt, the GET fails')
  assert.ok((failed.$metadata?.httpStatusCode ?? 0) >= 500, `a server error, not bad bytes (${failed.$metadata?.httpStatusCode})`)
})

test('a stopped datanode leaves the readers\' map and is read around; restarted, it is back', async () => {
  const address = cluster.datanodes[0]!.address
  assert.is(localDatanode(address) !== undefined, !TEST_SECURE, 'a running datanode serves short-circuit reads unless secure')
  await cluster.stopDatanode(0)
  try {
    assert.is(localDatanode(address), undefined, 'a stopped datanode is out of the map')
    for (const key of [`k${CHUNK + 1}`, `k${3 * BLOCK + 17}`]) assertBytes(await get(s3, key), objects.get(key)!, `${key} with datanode 1 stopped`)
  } finally {
    await cluster.startDatanode(0)
  }
  assert.is(localDatanode(cluster.datanodes[0]!.address) !== undefined, !TEST_SECURE, 'restarted, it serves short-circuit reads again')
})

test('datanode.shortCircuitReads 0: every read goes over HTTP', async () => {
  const off = await startMiniCluster({ overrides: { ...overrides, 'datanode.shortCircuitReads': 0 } })
  const offGateway = await startGateway(off)
  const client = await gatewayClient(off, offGateway)
  try {
    await client.send(new CreateBucketCommand({ Bucket: 'reads' }))
    const data = objects.get(`k${BLOCK + 1}`)!
    await client.send(new PutObjectCommand({ Bucket: 'reads', Key: 'k', Body: data }))
    const before = await reads(off)
    assertBytes(await get(client, 'k'), data, 'over HTTP')
    const after = await reads(off)
    assert.is(after.local - before.local, 0, 'no short-circuit read')
    assert.ok(after.http - before.http >= 2, `HTTP reads: ${after.http - before.http}`)
  } finally {
    client.destroy()
    await offGateway.stop()
    await off.dispose()
  }
})

test.run()
