/**
 * Goal: EcKeyWriter stores an EC key as Ozone lays it out: cells round-robin over the k data
 * replicas, parity of each stripe (zero-padded when short) on the m parity replicas, each
 * replica exactly its real bytes, block groups no longer than their capacity, each group's
 * location as long as its blockGroupLength; across sizes around cell, stripe and group ends,
 * for rs-3-2, xor-2-1 and rs-6-3; a datanode stopped mid-write ends its group at the last
 * stored stripe and the rest goes to groups without it; park() holds no slab; the S3 digest
 * sees the key's bytes in order.
 * Method: a real in-process cluster of nine datanodes with small blocks (two 512 KiB cells
 * per replica). Each replica is read back with readChunk (its checksums verified) and its
 * committed block listed on its datanode; the key is rebuilt from the data replicas with the
 * layout arithmetic and the parity recomputed with the codec in this test, independent of
 * the EC reader. One S3 PutObject through the gateway, with the AWS SDK.
 */
import { createHash } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cellPieces, groupCapacityBytes, replicaLengthBytes, stripeCellLengths, stripeCount, stripeDataBytes, type EcScheme } from '../../core/ec-layout.ts'
import { KiB } from '../../core/limits.ts'
import type { OpenKeyResult } from '../../core/om-wire.ts'
import { parseReplication, type KeyLocation } from '../../core/wire.ts'
import { readChunk } from '../../datapath/client/datanode-io.ts'
import { KeyDigest } from '../../datapath/client/index.ts'
import { createCodec } from '../../wasm/index.ts'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { errorCode, until } from '../helpers.ts'
import { GatedDigest } from './gated-digest.ts'
import { adminRpc, adminTransport, randomBytes, startMiniCluster } from './mini-cluster.ts'
import { gatewayClientOptions, startGateway } from './mini-gateway.ts'

const CELL = 512 * KiB
const BLOCK = 2 * CELL
let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: ReturnType<typeof cluster.client>

const RS32 = 'EC/rs-3-2-512k'
const XOR21 = 'EC/xor-2-1-512k'
const RS63 = 'EC/rs-6-3-512k'

function schemeOf(replication: string): EcScheme {
  return parseReplication(replication).ec!
}

test.before(async () => {
  cluster = await startMiniCluster({ datanodes: 9, overrides: { 'scm.block.sizeBytes': BLOCK } })
  client = cluster.client()
  await client.createVolume('ecv')
  await client.createBucket('ecv', 'rs32', { replication: RS32 })
  await client.createBucket('ecv', 'ratis')
})

test.after(async () => {
  await cluster.dispose()
})

/** Replica i's block (i 0-based), read and verified from its node; none when it holds no byte. */
async function replica(loc: KeyLocation, s: EcScheme, i: number): Promise<Uint8Array> {
  const length = replicaLengthBytes(s, loc.length, i + 1)
  if (length === 0) return new Uint8Array(0)
  const r = await readChunk(loc.pipeline.nodes[i]!, loc.blockId, 0, length, undefined, loc.token, adminTransport(cluster))
  assert.is(r.dataOffset, 0)
  return r.data.subarray(0, length)
}

/**
 * Checks one block group against the key's bytes it should hold: each replica's committed
 * block (its index, length and the group's length), the data cells in key order, and every
 * stripe's parity recomputed here.
 */
async function checkGroup(loc: KeyLocation, s: EcScheme, expected: Uint8Array, where: string): Promise<void> {
  const k = s.data, m = s.parity, c = s.cellSizeBytes
  assert.is(loc.pipeline.nodes.length, k + m, `${where}: k+m nodes`)
  for (const [i, node] of loc.pipeline.nodes.entries()) {
    const listed = await adminRpc(cluster, 'Datanode', node.address).call<{ replicaIndex: number; blocks: { localId: number; length: number; blockGroupLength: number }[] }>('listBlocks', { containerId: loc.blockId.containerId })
    assert.is(listed.replicaIndex, i + 1, `${where}: replica index on node ${i}`)
    const b = listed.blocks.find((x) => x.localId === loc.blockId.localId)
    assert.ok(b !== undefined, `${where}: block committed on node ${i}`)
    assert.is(b.length, replicaLengthBytes(s, loc.length, i + 1), `${where}: replica ${i + 1} length`)
    assert.is(b.blockGroupLength, loc.length, `${where}: replica ${i + 1} blockGroupLength`)
  }
  const reps = await Promise.all(loc.pipeline.nodes.map((_, i) => replica(loc, s, i)))
  const key = Buffer.alloc(loc.length)
  for (const p of cellPieces(s, loc.length, 0, loc.length)) key.set(reps[p.replicaIndex - 1]!.subarray(p.replicaOffset, p.replicaOffset + p.length), p.groupOffset)
  assert.ok(key.equals(expected), `${where}: data cells differ from the key's bytes`)
  const codec = await createCodec(s.codec, k, m)
  for (let t = 0; t < stripeCount(s, loc.length); t++) {
    const lengths = stripeCellLengths(s, loc.length, t)
    const width = lengths[0]!
    const data = lengths.slice(0, k).map((len, j) => { const cell = new Uint8Array(width); cell.set(reps[j]!.subarray(t * c, t * c + len)); return cell })
    const parity = Array.from({ length: m }, () => new Uint8Array(width))
    codec.encode(data, parity)
    for (let p = 0; p < m; p++) assert.ok(Buffer.from(reps[k + p]!.subarray(t * c, t * c + width)).equals(parity[p]!), `${where}: parity ${p} of stripe ${t}`)
  }
}

/** Checks a whole key: contiguous groups within capacity, each as checkGroup checks it. */
async function checkKey(bucket: string, name: string, replication: string, data: Uint8Array, options: { full?: boolean } = {}): Promise<KeyLocation[]> {
  const info = await client.headKey('ecv', bucket, name)
  assert.is(info.replication, replication)
  assert.is(info.size, data.length)
  const s = schemeOf(replication)
  const capacity = groupCapacityBytes(s, BLOCK)
  let offset = 0
  for (const [g, loc] of info.locations.entries()) {
    assert.is(loc.offset, offset, `group ${g} offset`)
    assert.ok(loc.length > 0 && loc.length <= capacity, `group ${g} length ${loc.length} within ${capacity}`)
    if (options.full !== false && g < info.locations.length - 1) assert.is(loc.length, capacity, `group ${g} full`)
    await checkGroup(loc, s, data.subarray(offset, offset + loc.length), `${name} group ${g}`)
    offset += loc.length
  }
  assert.is(offset, data.length)
  return info.locations
}

function sizesOf(s: EcScheme): [string, number][] {
  const c = s.cellSizeBytes, stripe = stripeDataBytes(s), group = groupCapacityBytes(s, BLOCK)
  return [['0', 0], ['1', 1], ['cell-1', c - 1], ['cell', c], ['cell+1', c + 1], ['stripe-1', stripe - 1], ['stripe', stripe], ['stripe+1', stripe + 1], ['2 groups+', 2 * group + c + 12345]]
}

for (const replication of [RS32, XOR21, RS63]) {
  test(`putKey() with ${replication}: every size around cell, stripe and group ends is laid out as Ozone does`, async () => {
    for (const [name, size] of sizesOf(schemeOf(replication))) {
      const data = randomBytes(size, size + 3)
      const info = await client.putKey('ecv', 'ratis', `${replication}-${name}`, data, { replication })
      assert.is(info.size, size)
      const locations = await checkKey('ratis', `${replication}-${name}`, replication, data)
      assert.is(locations.length, Math.ceil(size / groupCapacityBytes(schemeOf(replication), BLOCK)), `${name}: group count`)
    }
    assert.is(client.slabs.inUse, 0)
  })
}

test('a bucket\'s EC default applies to its keys; odd-sized streamed writes with park() between them hold no slab', async () => {
  const s = schemeOf(RS32)
  const data = randomBytes(groupCapacityBytes(s, BLOCK) + 2 * CELL + 99, 5)
  const writer = await client.openKeyWriter('ecv', 'rs32', 'streamed', { sizeBytes: data.length })
  let at = 0
  for (const n of [1, CELL - 2, 12345, 3 * CELL, 777]) {
    await writer.write(data.subarray(at, at + n))
    at += n
    await writer.park()
    assert.is(client.slabs.inUse, 0, `slabs held after park() at ${at}`)
  }
  for (; at < data.length; at += 100_000) await writer.write(data.subarray(at, Math.min(data.length, at + 100_000)))
  await writer.close()
  await checkKey('rs32', 'streamed', RS32, data)
  assert.is(client.slabs.inUse, 0)
})

test('a client whose chunks are smaller than a cell writes from slabs of the writer\'s own, not the shared ones', async () => {
  const small = cluster.client({ chunkSizeBytes: 64 * KiB })
  const data = randomBytes(stripeDataBytes(schemeOf(RS32)) + CELL + 3, 6)
  await small.putKey('ecv', 'rs32', 'small-chunks', data)
  assert.is(small.slabs.madeCount, 0, 'no shared slab made')
  await checkKey('rs32', 'small-chunks', RS32, data)
})

test('EC keys with every checksum type: each cell checksummed (or not) as its bucket says', async () => {
  for (const checksumType of ['NONE', 'BLAKE3', 'XXH64'] as const) {
    const bucket = `cs-${checksumType.toLowerCase()}`
    await client.createBucket('ecv', bucket, { replication: RS32, checksumType })
    const data = randomBytes(stripeDataBytes(schemeOf(RS32)) + CELL + 5, 8)
    const info = await client.putKey('ecv', bucket, 'k', data)
    assert.is(info.checksumType, checksumType)
    await checkKey(bucket, 'k', RS32, data)
  }
})

test('park() then close() with a short stripe pending; abort() leaves no key and no slab held', async () => {
  const data = randomBytes(CELL + 1000, 4)
  const writer = await client.openKeyWriter('ecv', 'rs32', 'parked-tail')
  await writer.write(data)
  await writer.park()
  assert.is(client.slabs.inUse, 0)
  await writer.close()
  await checkKey('rs32', 'parked-tail', RS32, data)

  const dropped = await client.openKeyWriter('ecv', 'rs32', 'dropped')
  await dropped.write(randomBytes(2 * stripeDataBytes(schemeOf(RS32)) + 5, 5))
  await dropped.abort()
  assert.is(client.slabs.inUse, 0)
  assert.is(await errorCode(client.headKey('ecv', 'rs32', 'dropped')), 'KEY_NOT_FOUND')
})

test('the key digest (the S3 ETag) sees an EC key\'s bytes in order, also a key of one short stripe', async () => {
  // A key of one short stripe: close() hands it on with nothing stored before it, and the
  // digest must not end before the stripe (which first takes its parity slabs) has fed it.
  for (const size of [3 * stripeDataBytes(schemeOf(RS32)) + 5555, CELL - 1, 5555]) {
    const data = randomBytes(size, 9)
    const digest = new KeyDigest(['md5', 'sha256'])
    await client.putKey('ecv', 'rs32', `digested-${size}`, data, { digest })
    const d = await digest.finish()
    assert.is(d.md5!.toString('hex'), createHash('md5').update(data).digest('hex'), `${size} bytes: MD5`)
    assert.is(d.sha256!.toString('hex'), createHash('sha256').update(data).digest('hex'), `${size} bytes: SHA-256`)
    await checkKey('rs32', `digested-${size}`, RS32, data)
  }
})

// Catches: a stripe that gives its slabs back once stored but before the key's digest read
// its data cells (the next key's stripe would write over them), or a key committed first.
test('an EC stripe stored before its digest ran keeps its slabs until the digest read them', async () => {
  const data = randomBytes(CELL + 5555, 93)
  const digest = new GatedDigest(['md5'])
  const first = client.putKey('ecv', 'rs32', 'gated-digest', data, { digest })
  await until('the cells wait for their digest', () => digest.held === 2)
  const held = client.slabs.inUse
  assert.ok(held > 0)
  // Time for the stripe's store; slabs given back then would show here.
  await until('the slabs are back (they must not be)', () => client.slabs.inUse < held, 1_000).catch(() => undefined)
  assert.is(client.slabs.inUse, held, 'the stripe keeps its slabs while its digest waits')
  assert.is(await errorCode(client.headKey('ecv', 'rs32', 'gated-digest')), 'KEY_NOT_FOUND', 'not committed before it is hashed')
  await client.putKey('ecv', 'rs32', 'after-gated-digest', randomBytes(CELL + 5555, 94))
  digest.open()
  await first
  assert.is((await digest.finish()).md5!.toString('hex'), createHash('md5').update(data).digest('hex'), 'the digest saw the key\'s own bytes')
  await checkKey('rs32', 'gated-digest', RS32, data)
  await until('every slab back in the pool', () => client.slabs.inUse === 0, 5_000)
})

test('S3 PutObject into an EC bucket stores an EC key with the body\'s MD5 as its ETag (small and large bodies)', async () => {
  const gateway = await startGateway(cluster)
  try {
    const alice = await client.getS3Secret('alice')
    await client.createVolume('s3v')
    await client.createBucket('s3v', 'ecbucket', { replication: RS32, owner: 'alice' })
    const s3 = new S3Client({ endpoint: gateway.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: alice.awsAccessKey, secretAccessKey: alice.awsSecret }, ...gatewayClientOptions(cluster) })
    for (const size of [100, stripeDataBytes(schemeOf(RS32)) + 777]) {
      const body = randomBytes(size, 17)
      const put = await s3.send(new PutObjectCommand({ Bucket: 'ecbucket', Key: `obj-${size}`, Body: body }))
      assert.is(put.ETag, `"${createHash('md5').update(body).digest('hex')}"`)
      const info = await client.headKey('s3v', 'ecbucket', `obj-${size}`)
      assert.is(info.replication, RS32)
      for (const [g, loc] of info.locations.entries()) await checkGroup(loc, schemeOf(RS32), body.subarray(loc.offset, loc.offset + loc.length), `obj-${size} group ${g}`)
    }
    s3.destroy()
  } finally {
    await gateway.stop()
  }
})

test('a datanode stopped mid-write: its group ends at the last stored stripe, later groups leave it out, the key commits', async () => {
  const s = schemeOf(RS32)
  const stripe = stripeDataBytes(s)
  const data = randomBytes(2 * groupCapacityBytes(s, BLOCK) + stripe + 4321, 11)
  // The key opened here, to know its first group: the writer fills the preallocated ones in order.
  const session = await client.om.call<OpenKeyResult>('openKey', { volume: 'ecv', bucket: 'rs32', key: 'failover', sizeBytes: data.length })
  assert.ok(session.blocks.length > 0, 'the OM preallocates block groups')
  const writer = await client.keyWriterFor(session)
  // One stripe and a half: park() waits for the first stripe's store.
  const first = stripe + stripe / 2
  await writer.write(data.subarray(0, first))
  await writer.park()
  // A data node of the group being written (the second cell's).
  const victim = session.blocks[0]!.pipeline.nodes[1]!
  const index = cluster.datanodes.findIndex((d) => d?.address === victim.address)
  assert.ok(index >= 0, 'the victim is one of ours')
  await cluster.stopDatanode(index)
  for (let at = first; at < data.length; at += 200_000) await writer.write(data.subarray(at, Math.min(data.length, at + 200_000)))
  const info = await writer.close()
  assert.is(info.size, data.length)
  assert.is(client.slabs.inUse, 0)
  // The victim comes back (its data kept) so that every replica of the first group can be checked.
  await cluster.startDatanode(index)
  const locations = await checkKey('rs32', 'failover', RS32, data, { full: false })
  const failedAt = locations.findIndex((l) => l.pipeline.nodes.some((n) => n.id === victim.id) && l.length % stripe === 0 && l.length < groupCapacityBytes(s, BLOCK))
  assert.ok(failedAt >= 0, 'a group cut short at a stripe boundary on the stopped node\'s pipeline')
  for (const loc of locations.slice(failedAt + 1)) assert.not.ok(loc.pipeline.nodes.some((n) => n.id === victim.id), 'a later group on the stopped node')
})

test.run()
