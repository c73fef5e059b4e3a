/**
 * Goal: a replicated key's digests (the S3 ETag MD5, a signed payload's SHA-256), which a
 * KeyDigest computes in worker tasks of their own beside each chunk's checksums, see the
 * key's bytes in order and whole at every size boundary, with the chunk sent to the
 * datanodes while it is still being hashed; a slab goes back to the pool only once its
 * chunk is committed and hashed, so that the next chunk never overwrites bytes a digest
 * has not read yet. Method: a real mini cluster (SCM, OM, three datanodes, loopback, LMDB in
 * a temp dir), small chunks and blocks, and clients with the smallest slab pools (one
 * writer's worth; four for four writers at once), so that slabs go round many times per
 * key; the digests checked against node:crypto's, and the key read back. A digest made to
 * wait (as behind a busy pool) shows that a chunk committed on its datanode keeps its slab
 * until it is hashed, and that the key is committed only after.
 */
import { createHash } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { KiB } from '../../core/limits.ts'
import type { DigestName } from '../../datapath/workers/index.ts'
import { KeyDigest, O3Client } from '../../datapath/client/index.ts'
import { errorCode, until } from '../helpers.ts'
import { GatedDigest } from './gated-digest.ts'
import { randomBytes, startMiniCluster } from './mini-cluster.ts'

const WINDOW = 16 * KiB
const CHUNK = 64 * KiB
const BLOCK = 256 * KiB

let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: O3Client

test.before(async () => {
  cluster = await startMiniCluster({ datanodes: 3, overrides: { 'scm.block.sizeBytes': BLOCK, 'client.chunkSizeBytes': CHUNK, 'client.bytesPerChecksum': WINDOW } })
  client = new O3Client({ om: cluster.omAddress, scm: cluster.scmAddress, chunkSizeBytes: CHUNK, writersMax: 1, transport: cluster.transport })
  await client.createVolume('vol')
  await client.createBucket('vol', 'one', { replication: 'RATIS/ONE' })
  await client.createBucket('vol', 'three', { replication: 'RATIS/THREE' })
})

test.after(async () => {
  await cluster.dispose()
})

async function putDigested(client: O3Client, bucket: string, name: string, data: Buffer, pieceBytes: number): Promise<void> {
  const digest = new KeyDigest(['md5', 'sha256'])
  // Pieces as a body arrives: the writer copies them into its slabs.
  const pieces = function* () { for (let at = 0; at < data.length; at += pieceBytes) yield data.subarray(at, at + pieceBytes) }
  await client.putKey('vol', bucket, name, pieces(), { digest })
  const d = await digest.finish()
  assert.is(d.md5!.toString('hex'), createHash('md5').update(data).digest('hex'), `${name}: MD5`)
  assert.is(d.sha256!.toString('hex'), createHash('sha256').update(data).digest('hex'), `${name}: SHA-256`)
  assert.ok((await client.getKey('vol', bucket, name)).equals(data), `${name} reads back`)
}

// Catches: a digest fed out of order or short, or a slab reused while its digest still reads it.
test('digests of keys at every size boundary, RATIS/ONE and RATIS/THREE, with slabs going round', async () => {
  const sizes = [1, WINDOW - 1, WINDOW, CHUNK - 1, CHUNK, CHUNK + 1, BLOCK, BLOCK + 1, 3 * BLOCK + 5555]
  for (const bucket of ['one', 'three']) {
    for (const [i, size] of sizes.entries()) await putDigested(client, bucket, `k-${size}`, randomBytes(size, 40 + i), 5 * KiB + 3)
  }
  await until('every slab back in the pool', () => client.slabs.inUse === 0, 5_000)
})

// Catches: a slab given back once its chunk is committed on the datanode but before its
// digest has read it. A key of one chunk is written and committed on its datanode in one
// request while its digest waits; the pool hands out the slab given back last first, so the
// next key would write over those bytes.
test('a chunk committed before its digest ran keeps its slab until the digest read it', async () => {
  const data = randomBytes(CHUNK - 4 * KiB, 90)
  const digest = new GatedDigest(['md5'])
  const first = client.putKey('vol', 'one', 'gated-digest', data, { digest })
  await until('the chunk waits for its digest', () => digest.held === 1)
  // Time for its write and block commit; a slab given back then would show here.
  await until('the slab is back (it must not be)', () => client.slabs.inUse === 0, 1_000).catch(() => undefined)
  assert.is(client.slabs.inUse, 1, 'the slab stays out while its digest waits')
  await client.putKey('vol', 'one', 'after-gated-digest', randomBytes(CHUNK - 4 * KiB, 91))
  assert.is(await errorCode(client.headKey('vol', 'one', 'gated-digest')), 'KEY_NOT_FOUND', 'not committed before it is hashed')
  digest.open()
  await first
  const d = await digest.finish()
  assert.is(d.md5!.toString('hex'), createHash('md5').update(data).digest('hex'), 'the digest saw the key\'s own bytes')
  assert.ok((await client.getKey('vol', 'one', 'gated-digest')).equals(data))
  await until('every slab back in the pool', () => client.slabs.inUse === 0, 5_000)
})

// Catches: a key committed although its digest failed (its ETag would be wrong), or a slab lost with it.
test('a digest that fails fails the write: nothing committed, every slab back', async () => {
  // A key of one chunk (found by the check before the commit) and one of four (by the next chunk).
  for (const size of [CHUNK - 1, 3 * CHUNK + 1]) {
    // A digest its worker cannot compute: each task fails there, as a lost task would.
    const digest = new KeyDigest(['md5', 'no-such-digest' as DigestName])
    const err = await client.putKey('vol', 'one', `failed-digest-${size}`, randomBytes(size, 92), { digest }).then(() => undefined, (e: unknown) => e as Error)
    assert.ok(err !== undefined, `${size} bytes: the write fails`)
    assert.is(await errorCode(client.headKey('vol', 'one', `failed-digest-${size}`)), 'KEY_NOT_FOUND')
    await until('every slab back in the pool', () => client.slabs.inUse === 0, 5_000)
  }
})

// Catches: writers sharing the pool that hand each other slabs a digest still reads.
test('concurrent digested writes sharing one slab pool', async () => {
  // A pool for as many writers as run here (the client's contract; the S3 gateway parks writers beyond it).
  const shared = new O3Client({ om: cluster.omAddress, scm: cluster.scmAddress, chunkSizeBytes: CHUNK, writersMax: 4, transport: cluster.transport })
  const keys = Array.from({ length: 4 }, (_, i) => ({ name: `c-${i}`, data: randomBytes(4 * BLOCK + 1000 * i + 1, 60 + i) }))
  await Promise.all(keys.map((k) => putDigested(shared, 'three', k.name, k.data, CHUNK / 2 + 1)))
  await until('every slab back in the pool', () => shared.slabs.inUse === 0, 5_000)
})

test.run()
