/**
 * Goal: a writer in the datanodes' process (the S3 gateway of `o3 local`'s default topology)
 * writes their chunks without HTTP, and a pipeline leader forwards to its followers in the
 * process the same way, byte for byte as over HTTP: objects at every size boundary (empty,
 * small blocks packed in LMDB, a checksum window, a chunk, a block, more) read back whole from
 * each replica; a local write is refused as /chunk/write refuses it (a follower answers
 * NOT_LEADER naming the leader, a short body INVALID_ARGUMENT, bad checksums
 * CHECKSUM_MISMATCH with nothing committed); a writer that gives a local write up cuts its
 * body, and the datanode reads no piece of it after; with `datanode.shortCircuitWrites` 0
 * every write goes over HTTP again. With security on (the `[secure]` pass) datanodes take
 * writes over HTTPS only. The OM and SCM likewise answer this process's RPCs without HTTP
 * unless secure or `rpc.shortCircuit` is 0, and leave at stop.
 * Method: a real mini cluster of three datanodes (RATIS/THREE, small chunks and blocks) with
 * an S3 gateway in this process, driven by the AWS SDK; the datanodes' own Prometheus
 * counters tell which way each write went (`writeChunkLocal` against `writeChunk`).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { checksumsLengthBytes, computeChecksums, initChecksums } from '../../core/checksum.ts'
import { O3Error } from '../../core/errors.ts'
import { KiB, LOCAL_BODY_PIECE_BYTES, MiB } from '../../core/limits.ts'
import type { KeyLocation } from '../../core/wire.ts'
import { abandonable, localRpc } from '../../core/rpc/local-services.ts'
import { localBody, localDatanode } from '../../datapath/client/local-datanodes.ts'
import { readChunk } from '../../datapath/client/datanode-io.ts'
import type { S3Gateway } from '../../datapath/s3/index.ts'
import { refusalOf, until } from '../helpers.ts'
import { adminFetch, adminTransport, randomBytes, startMiniCluster, TEST_SECURE } from './mini-cluster.ts'
import { gatewayClient, startGateway } from './mini-gateway.ts'

const WINDOW = 16 * KiB
const CHUNK = 256 * KiB
const BLOCK = 1 * MiB
const SMALL = 96 * KiB
const overrides = { 'client.chunkSizeBytes': CHUNK, 'client.bytesPerChecksum': WINDOW, 'scm.block.sizeBytes': BLOCK, 'datanode.smallBlockBytes': SMALL, 'client.replication': 'RATIS/THREE' }

type Cluster = Awaited<ReturnType<typeof startMiniCluster>>

let cluster: Cluster
let gateway: S3Gateway
let s3: S3Client

/** writeChunk requests (HTTP) and writeChunkLocal writes (short-circuit) each datanode has served, by address and answer code. */
async function writes(c: Cluster): Promise<Map<string, { http: number; local: number; localFailed: number }>> {
  const byNode = new Map<string, { http: number; local: number; localFailed: number }>()
  for (const dn of c.datanodes) {
    if (dn === undefined) continue
    const n = { http: 0, local: 0, localFailed: 0 }
    const prom = await (await adminFetch(c, dn.address, '/prom')).text()
    for (const m of prom.matchAll(/^o3_datanode_rpc_requests_total\{([^}]*)\} (\d+)$/gm)) {
      const method = /method="([^"]*)"/.exec(m[1])?.[1]
      const ok = /code="OK"/.test(m[1])
      if (method === 'writeChunk') n.http += Number(m[2])
      if (method === 'writeChunkLocal') {
        if (ok) n.local += Number(m[2])
        else n.localFailed += Number(m[2])
      }
    }
    byNode.set(dn.address, n)
  }
  return byNode
}

function total(m: Map<string, { http: number; local: number }>, field: 'http' | 'local'): number {
  return [...m.values()].reduce((sum, n) => sum + n[field], 0)
}

async function get(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  return Buffer.from(await r.Body!.transformToByteArray())
}

function assertBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  if (Buffer.from(got.buffer, got.byteOffset, got.length).equals(want)) return
  const at = got.length !== want.length ? -1 : got.findIndex((b, i) => b !== want[i])
  assert.unreachable(`${what}: ${at < 0 ? `length ${got.length}, expected ${want.length}` : `first difference at byte ${at}`}`)
}

/** Every replica of every block of the key holds its bytes (read from each node itself, checksums verified). */
async function assertEveryReplica(c: Cluster, key: string, data: Uint8Array): Promise<void> {
  const info = await c.client().headKey('s3v', 'writes', key)
  for (const loc of info.locations as KeyLocation[]) {
    for (const node of loc.pipeline.nodes) {
      const got = await readChunk(node, loc.blockId, 0, loc.length, undefined, loc.token, adminTransport(c))
      assertBytes(got.data.subarray(0, loc.length), data.subarray(loc.offset, loc.offset + loc.length), `${key} block at ${loc.offset} on ${node.address}`)
    }
  }
}

const SIZES = [0, 1, SMALL - 1, SMALL + 1, WINDOW - 1, WINDOW, CHUNK - 1, CHUNK, CHUNK + 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17]

test.before(async () => {
  cluster = await startMiniCluster({ overrides })
  gateway = await startGateway(cluster)
  s3 = await gatewayClient(cluster, gateway)
  await s3.send(new CreateBucketCommand({ Bucket: 'writes' }))
})

test.after(async () => {
  s3.destroy()
  await gateway.stop()
  await cluster.dispose()
})

test('PUTs at every size boundary are written without HTTP unless the cluster is secure, on every replica byte for byte', async () => {
  const before = await writes(cluster)
  const objects = new Map(SIZES.map((n) => [`k${n}`, randomBytes(n, n + 11)]))
  for (const [key, data] of objects) await s3.send(new PutObjectCommand({ Bucket: 'writes', Key: key, Body: data }))
  const after = await writes(cluster)
  const local = total(after, 'local') - total(before, 'local'), http = total(after, 'http') - total(before, 'http')
  if (TEST_SECURE) {
    assert.is(local, 0, 'a secure datanode takes no short-circuit writes')
    assert.ok(http > 0, 'writes went over HTTPS')
  } else {
    assert.is(http, 0, `no chunk write went over HTTP (${local} short-circuit writes)`)
    // Forwards too: every datanode (the followers of some chunk) took short-circuit writes.
    for (const [address, n] of after) assert.ok(n.local > (before.get(address)?.local ?? 0), `${address} took short-circuit writes`)
  }
  for (const [key, data] of objects) {
    assertBytes(await get(s3, 'writes', key), data, key)
    await assertEveryReplica(cluster, key, data)
  }
})

/** The location of a key's first block, written through S3. */
async function firstBlock(key: string, data: Uint8Array): Promise<KeyLocation> {
  await s3.send(new PutObjectCommand({ Bucket: 'writes', Key: key, Body: data }))
  return (await cluster.client().headKey('s3v', 'writes', key)).locations[0] as KeyLocation
}

/** /chunk/write's arguments for `length` bytes at `offset` of block `localId` in the location's container and pipeline. */
function argsFor(loc: KeyLocation, localId: number, offset: number, length: number): string {
  return JSON.stringify({
    containerId: loc.blockId.containerId, localId, offset, length, checksumType: 'XXH64', bytesPerChecksum: WINDOW,
    replication: loc.pipeline.replication, pipelineId: loc.pipeline.id, forward: [],
  })
}

function checksummed(data: Uint8Array): Uint8Array[] {
  const checksums = new Uint8Array(checksumsLengthBytes('XXH64', data.length, WINDOW))
  computeChecksums('XXH64', data, WINDOW, checksums)
  return [checksums, data]
}

/** The address of the pipeline's leader as its members answer now (the location's leaderId may be stale): an empty body is refused NOT_LEADER by a follower before it reads anything, for being short by the leader. */
async function leaderOf(loc: KeyLocation, localId: number): Promise<string> {
  for (const node of loc.pipeline.nodes) {
    const err = await refusalOf(localDatanode(node.address)!.writeChunkFrom({ args: argsFor(loc, localId, 0, WINDOW), lengthBytes: WINDOW + 8, body: localBody([]) }))
    if (err.code !== 'NOT_LEADER') return node.address
  }
  return assert.unreachable('no member leads') as never
}

test('a local write is refused as /chunk/write refuses it: NOT_LEADER, a short body, bad checksums', async () => {
  if (TEST_SECURE) return
  await initChecksums()
  const loc = await firstBlock('refusals', randomBytes(CHUNK, 5))
  const data = randomBytes(2 * WINDOW, 6)
  const [checksums] = checksummed(data)
  const length = 2 * WINDOW + checksums!.length
  // A fresh block id in the same container: nothing of the key's is touched.
  const localId = loc.blockId.localId + 1_000_000
  // A short body to each member: the followers refuse it before reading it (NOT_LEADER,
  // naming the leader), the leader once it has read it all.
  const answers = new Map<string, O3Error>()
  for (const node of loc.pipeline.nodes) {
    answers.set(node.address, await refusalOf(localDatanode(node.address)!.writeChunkFrom({ args: argsFor(loc, localId, 0, 2 * WINDOW), lengthBytes: length, body: localBody([checksums!, data.subarray(0, WINDOW)]) })))
  }
  const leaders = [...answers].filter(([, err]) => err.code !== 'NOT_LEADER')
  assert.is(leaders.length, 1, `one leader: ${[...answers].map(([a, e]) => `${a} ${e.code}`).join(', ')}`)
  const [leaderAddress, short] = leaders[0]!
  assert.is(short.code, 'INVALID_ARGUMENT')
  assert.match(short.message, /got \d+ of \d+ bytes/)
  for (const [address, err] of answers) if (address !== leaderAddress) assert.is(err.leader, leaderAddress, `${address} names the leader`)

  const bad = checksummed(data)
  bad[0]![3]! ^= 0xff
  const mismatch = await refusalOf(localDatanode(leaderAddress)!.writeChunkFrom({ args: argsFor(loc, localId, 0, 2 * WINDOW), lengthBytes: length, body: localBody(bad) }))
  assert.is(mismatch.code, 'CHECKSUM_MISMATCH')
  // A small whole block commits with its write (putSmallFile): with a bad checksum nothing
  // is committed; the same write with good ones is, on every replica.
  const small = (id: number) => JSON.stringify({ ...JSON.parse(argsFor(loc, id, 0, 2 * WINDOW)), whole: true, commit: true })
  const smallBad = checksummed(data)
  smallBad[0]![9]! ^= 0x01
  assert.is((await refusalOf(localDatanode(leaderAddress)!.writeChunkFrom({ args: small(localId), lengthBytes: length, body: localBody(smallBad) }))).code, 'CHECKSUM_MISMATCH')
  for (const node of loc.pipeline.nodes) {
    const err = await refusalOf(readChunk(node, { containerId: loc.blockId.containerId, localId: localId as typeof loc.blockId.localId }, 0, 1))
    assert.is(err.code, 'BLOCK_NOT_FOUND', `${node.address}: ${err.message}`)
  }
  const good = localId + 1
  await localDatanode(leaderAddress)!.writeChunkFrom({ args: small(good), lengthBytes: length, body: localBody(checksummed(data)) })
  for (const node of loc.pipeline.nodes) {
    await until(`${node.address} applied the small block`, async () => (await readChunk(node, { containerId: loc.blockId.containerId, localId: good as typeof loc.blockId.localId }, 0, 2 * WINDOW).then(() => true, () => false)), 5_000)
    const got = await readChunk(node, { containerId: loc.blockId.containerId, localId: good as typeof loc.blockId.localId }, 0, 2 * WINDOW)
    assertBytes(got.data.subarray(0, 2 * WINDOW), data, `the good small block on ${node.address}`)
  }
})

test('a writer that gives a local write up cuts its body: the datanode reads none of it after, and the write fails there', async () => {
  if (TEST_SECURE) return
  await initChecksums()
  const loc = await firstBlock('abandoned', randomBytes(CHUNK, 7))
  const leaderAddress = await leaderOf(loc, loc.blockId.localId + 3_000_000)
  const data = randomBytes(2 * WINDOW, 8)
  const [checksums] = checksummed(data)
  // The writer's pieces: the checksums, then nothing until the test lets the data through.
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  async function* pieces(): AsyncGenerator<Uint8Array> {
    yield checksums!
    await held
    yield data
  }
  const before = (await writes(cluster)).get(leaderAddress)!
  const body = localBody(pieces())
  const write = localDatanode(leaderAddress)!.writeChunkFrom({
    args: argsFor(loc, loc.blockId.localId + 2_000_000, 0, 2 * WINDOW), lengthBytes: 2 * WINDOW + checksums!.length, body,
  })
  let abandonedWork: Promise<unknown> | undefined
  const gaveUp = await abandonable(write, { answerTimeoutMs: 300 }, (running) => { abandonedWork = running; body.cut() }).then(() => undefined, (err: unknown) => err)
  assert.is((gaveUp as { code?: string }).code, 'UND_ERR_HEADERS_TIMEOUT', 'no answer in time: given up as undici would')
  assert.ok(abandonedWork !== undefined, 'told of the work still running')
  release()
  // What the work came to: {value} or {err}.
  const outcome = (await abandonedWork!) as { err?: unknown }
  // The data came after the cut: the datanode never took it, and failed on the cut itself.
  assert.instance(outcome.err, O3Error, 'the datanode\'s write fails once its body is cut')
  assert.match((outcome.err as O3Error).message, /the writer cut it/)
  await until('the failed local write is counted', async () => ((await writes(cluster)).get(leaderAddress)!.localFailed > before.localFailed), 5_000)
})

test('a body is handed out in views of at most LOCAL_BODY_PIECE_BYTES, in order, once', async () => {
  const whole = randomBytes(2 * LOCAL_BODY_PIECE_BYTES + 5, 9)
  const small = randomBytes(10, 10)
  const body = localBody([small, whole])
  const views: Uint8Array[] = []
  for await (const v of body) views.push(v)
  assert.equal(views.map((v) => v.length), [10, LOCAL_BODY_PIECE_BYTES, LOCAL_BODY_PIECE_BYTES, 5])
  assertBytes(Buffer.concat(views), Buffer.concat([small, whole]), 'the pieces in order')
  assert.ok(views[1]!.buffer === whole.buffer, 'views of the writer\'s bytes, not copies')
  assert.throws(() => body[Symbol.asyncIterator](), /read once/)
  const cut = localBody([small])
  cut.cut()
  const err = await cut[Symbol.asyncIterator]().next().then(() => undefined, (e: unknown) => e)
  assert.instance(err, O3Error, 'a cut body hands out nothing')
})

test('the OM and SCM answer this process\'s RPCs without HTTP unless secure; rpc.shortCircuit 0 or a stop ends it', async () => {
  assert.is(localRpc('OM', cluster.omAddress) !== undefined, !TEST_SECURE, 'the OM answers locally unless secure')
  assert.is(localRpc('SCM', cluster.scmAddress) !== undefined, !TEST_SECURE, 'the SCM answers locally unless secure')
  const off = await startMiniCluster({ datanodes: 1, overrides: { ...overrides, 'client.replication': 'RATIS/ONE', 'rpc.shortCircuit': 0 } })
  const om = off.omAddress, scm = off.scmAddress
  try {
    assert.is(localRpc('OM', om), undefined)
    assert.is(localRpc('SCM', scm), undefined)
    await off.client().createVolume('vol')
  } finally {
    await off.dispose()
  }
  if (TEST_SECURE) return
  const on = await startMiniCluster({ datanodes: 1, overrides: { ...overrides, 'client.replication': 'RATIS/ONE' } })
  const [onOm, onScm] = [on.omAddress, on.scmAddress]
  assert.ok(localRpc('OM', onOm) !== undefined && localRpc('SCM', onScm) !== undefined)
  await on.dispose()
  assert.is(localRpc('OM', onOm), undefined, 'a stopped OM has left')
  assert.is(localRpc('SCM', onScm), undefined, 'a stopped SCM has left')
})

test('datanode.shortCircuitWrites 0: every write goes over HTTP', async () => {
  const off = await startMiniCluster({ overrides: { ...overrides, 'datanode.shortCircuitWrites': 0 } })
  const offGateway = await startGateway(off)
  const client = await gatewayClient(off, offGateway)
  try {
    await client.send(new CreateBucketCommand({ Bucket: 'writes' }))
    const data = randomBytes(BLOCK + 1, 12)
    const before = await writes(off)
    await client.send(new PutObjectCommand({ Bucket: 'writes', Key: 'k', Body: data }))
    const after = await writes(off)
    assert.is(total(after, 'local') - total(before, 'local'), 0, 'no short-circuit write')
    assert.ok(total(after, 'http') - total(before, 'http') >= 2, `HTTP writes: ${total(after, 'http') - total(before, 'http')}`)
    assertBytes(await get(client, 'writes', 'k'), data, 'over HTTP')
  } finally {
    client.destroy()
    await offGateway.stop()
    await off.dispose()
  }
})

test.run()
