/**
 * Goal: pin the datapath's byte-exactness at every size boundary the write and read paths cut
 * on (checksum window, chunk, block, and multipart part joins), and its atomicity when
 * writers overwrite a key that readers are reading, before the datapath is rebuilt for
 * throughput (zero-copy slabs, cut-through writes, pooled read buffers). Method: a real mini
 * cluster of three datanodes with small sizes (4 KiB checksum windows, 64 KiB chunks,
 * 256 KiB blocks) so that every boundary is cheap to reach, an S3 gateway over it, seeded
 * random bytes (a byte shifted by one place cannot match), keys of RATIS/ONE and
 * RATIS/THREE written and read through the native client (putKey/getKey) and through S3
 * (the AWS SDK), whole and by ranges that start or end on each boundary.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  S3Client, CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand, PutObjectCommand, UploadPartCommand,
} from '@aws-sdk/client-s3'
import { KiB, MiB } from '../../core/limits.ts'
import { S3Gateway } from '../../datapath/s3/index.ts'
import type { O3Client, S3Secret } from '../../datapath/client/index.ts'
import { randomBytes, startMiniCluster } from '../cluster/mini-cluster.ts'

const WINDOW = 4 * KiB
const CHUNK = 64 * KiB
const BLOCK = 256 * KiB
/** Every size a cut can fall on or next to, and a key of several blocks with a ragged tail. */
const SIZES = [0, 1, WINDOW - 1, WINDOW, WINDOW + 1, CHUNK - 1, CHUNK, CHUNK + 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + WINDOW + 1]
const LARGEST = SIZES[SIZES.length - 1]
/** S3's smallest part but the last (datapath/s3/multipart.ts PART_SIZE_BYTES_MIN); 20 blocks exactly. */
const PART_MIN = 5 * MiB

let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let gateway: S3Gateway
let client: O3Client
let s3: S3Client
let alice: S3Secret

/** Native bucket (in volume `vol`) and S3 bucket of each replication. */
const BUCKETS = [{ replication: 'RATIS/THREE', bucket: 'three', s3Bucket: 's3three' }, { replication: 'RATIS/ONE', bucket: 'one', s3Bucket: 's3one' }] as const

/** Where two byte arrays first differ, for a message that tells a shift from a cut. */
function diff(got: Uint8Array, want: Uint8Array): string {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`
  const at = got.findIndex((b, i) => b !== want[i])
  return at < 0 ? 'equal' : `first difference at byte ${at} of ${want.length}`
}
function assertBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  assert.ok(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(want), `${what}: ${diff(got, want)}`)
}

async function s3Get(bucket: string, key: string, range?: string): Promise<Uint8Array> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }))
  return r.Body === undefined ? new Uint8Array(0) : await r.Body.transformToByteArray()
}

test.before(async () => {
  cluster = await startMiniCluster({
    datanodes: 3,
    overrides: { 'scm.block.sizeBytes': BLOCK, 'client.chunkSizeBytes': CHUNK, 'client.bytesPerChecksum': WINDOW },
  })
  gateway = new S3Gateway({ config: cluster.config, omAddress: cluster.omAddress, scmAddress: cluster.scmAddress, port: 0 })
  await gateway.start()
  client = cluster.client({ chunkSizeBytes: CHUNK })
  alice = await client.getS3Secret('alice')
  s3 = new S3Client({ endpoint: gateway.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: alice.awsAccessKey, secretAccessKey: alice.awsSecret } })
  await client.createVolume('vol')
  await s3.send(new CreateBucketCommand({ Bucket: 'warm' })) // creates the S3 volume
  for (const b of BUCKETS) {
    await client.createBucket('vol', b.bucket, { replication: b.replication })
    // S3 CreateBucket takes the OM's default replication; a bucket made natively in the S3
    // volume, owned by the S3 user, is how an admin gives S3 users another one.
    await client.createBucket('s3v', b.s3Bucket, { replication: b.replication, owner: alice.user })
  }
})

test.after(async () => {
  s3.destroy()
  await gateway.stop()
  await cluster.dispose()
})

// Catches: a writer that drops, repeats or misorders bytes where a write is cut into checksum
// windows, chunks or blocks (an off-by-one in the last partial window/chunk, a block switch
// that loses the byte at the boundary, a 0-byte key that allocates or reads a block), and a
// reader that stops a piece short or reads past a block's end into the next block.
for (const b of BUCKETS) {
  test(`putKey()/getKey() round-trip every boundary size byte for byte (${b.replication})`, async () => {
    for (const size of SIZES) {
      const data = randomBytes(size, size * 31 + 1)
      const info = await client.putKey('vol', b.bucket, `k-${size}`, data)
      assert.is(info.size, size, `size ${size}`)
      assertBytes(await client.getKey('vol', b.bucket, `k-${size}`), data, `${b.replication} size ${size}`)
    }
  })

  // Catches: a writer that loses or repeats the carried-over tail of one source buffer when the
  // next one completes a window, chunk or block (writes of 7 KiB + 3 straddle every cut).
  test(`putKey() from odd-sized pieces round-trips every boundary size (${b.replication})`, async () => {
    const step = 7 * KiB + 3
    for (const size of SIZES) {
      const data = randomBytes(size, size * 37 + 5)
      const pieces = function* () { for (let at = 0; at < size; at += step) yield data.subarray(at, at + step) }
      await client.putKey('vol', b.bucket, `p-${size}`, pieces())
      assertBytes(await client.getKey('vol', b.bucket, `p-${size}`), data, `${b.replication} pieces size ${size}`)
    }
  })

  // Catches: an S3 PUT whose body is cut or re-framed wrongly on its way into the writer
  // (aws-chunked decoding boundaries, Content-Length vs. bytes written), and a GET that
  // answers with the wrong length or stops at a piece boundary.
  test(`S3 PutObject/GetObject round-trip every boundary size byte for byte (${b.replication})`, async () => {
    for (const size of SIZES) {
      const data = randomBytes(size, size * 41 + 3)
      await s3.send(new PutObjectCommand({ Bucket: b.s3Bucket, Key: `o-${size}`, Body: data }))
      assertBytes(await s3Get(b.s3Bucket, `o-${size}`), data, `${b.replication} S3 size ${size}`)
      const head = await client.headKey('s3v', b.s3Bucket, `o-${size}`)
      assert.is(head.size, size)
    }
  })
}

/** Ranges that start, end, or straddle each cut point `p` of a key of `size` bytes. */
function rangesAround(points: number[], size: number): [number, number][] {
  const out: [number, number][] = [[0, size], [0, 1], [size - 1, 1]]
  for (const p of points) {
    if (p <= 0 || p >= size) continue
    out.push([p - 1, 2], [p - 1, 1], [p, 1], [p, size - p], [0, p], [p + 1, Math.min(WINDOW, size - p - 1)], [p - WINDOW + 1, WINDOW])
  }
  return out.filter(([o, l]) => o >= 0 && l > 0 && o + l <= size)
}

// Catches: a ranged read that maps a key offset to the wrong block or chunk (off by one at a
// boundary), verifies checksums over the wrong window when the range starts mid-window, or
// returns the verified window instead of just the asked bytes.
for (const b of BUCKETS) {
  test(`getKey() and S3 Range GETs return exact bytes for ranges on every boundary (${b.replication})`, async () => {
    const data = randomBytes(LARGEST, 77)
    await client.putKey('vol', b.bucket, 'ranged', data)
    await s3.send(new PutObjectCommand({ Bucket: b.s3Bucket, Key: 'ranged', Body: data }))
    const points = [WINDOW, CHUNK, 2 * CHUNK, BLOCK, BLOCK + CHUNK, 2 * BLOCK, 2 * BLOCK + WINDOW]
    for (const [offset, length] of rangesAround(points, LARGEST)) {
      const want = data.subarray(offset, offset + length)
      assertBytes(await client.getKey('vol', b.bucket, 'ranged', { offset, length }), want, `native range ${offset}+${length}`)
      assertBytes(await s3Get(b.s3Bucket, 'ranged', `bytes=${offset}-${offset + length - 1}`), want, `S3 range ${offset}+${length}`)
    }
    // Suffix and open-ended forms end on the key's last byte.
    for (const n of [1, WINDOW + 1, BLOCK + 1]) {
      assertBytes(await s3Get(b.s3Bucket, 'ranged', `bytes=-${n}`), data.subarray(LARGEST - n), `S3 suffix ${n}`)
      assertBytes(await s3Get(b.s3Bucket, 'ranged', `bytes=${LARGEST - n}-`), data.subarray(LARGEST - n), `S3 open ${LARGEST - n}-`)
    }
  })
}

// Catches: a completed multipart object whose parts are joined at the wrong offsets (a part
// ending off a block boundary shifts every later part), and reads that cross a part join.
// Parts: 5 MiB (ends on a block boundary), 5 MiB + WINDOW + 1 (ends off every boundary), and a
// last part of BLOCK - 1 bytes.
test('S3 multipart upload with parts ending on and off boundaries reads back byte for byte, whole and across part joins', async () => {
  const sizes = [PART_MIN, PART_MIN + WINDOW + 1, BLOCK - 1]
  const total = sizes.reduce((a, n) => a + n, 0)
  const data = randomBytes(total, 99)
  for (const b of BUCKETS) {
    const key = 'multi'
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: b.s3Bucket, Key: key }))
    const parts: { PartNumber: number; ETag: string }[] = []
    let at = 0
    for (let i = 0; i < sizes.length; i++) {
      const r = await s3.send(new UploadPartCommand({ Bucket: b.s3Bucket, Key: key, UploadId, PartNumber: i + 1, Body: data.subarray(at, at + sizes[i]) }))
      parts.push({ PartNumber: i + 1, ETag: r.ETag! })
      at += sizes[i]
    }
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: b.s3Bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }))
    assertBytes(await s3Get(b.s3Bucket, key), data, `${b.replication} multipart whole`)
    const joins = [sizes[0], sizes[0] + sizes[1]]
    for (const [offset, length] of rangesAround([...joins, BLOCK, sizes[0] + BLOCK], total)) {
      if (length > 2 * BLOCK) continue // the whole read above covered the long ranges
      assertBytes(await s3Get(b.s3Bucket, key, `bytes=${offset}-${offset + length - 1}`), data.subarray(offset, offset + length), `${b.replication} multipart range ${offset}+${length}`)
    }
  }
})

/** Payloads of different sizes and seeds: a mix of two, or a cut one, equals none of them. */
function payloads(count: number, seed: number): Buffer[] {
  const sizes = [BLOCK + WINDOW + 1, 2 * BLOCK + 1, CHUNK - 1, BLOCK]
  return Array.from({ length: count }, (_, i) => randomBytes(sizes[i % sizes.length], seed + i))
}

/**
 * Runs `writers` overwriting one key (each its own payload, `rounds` times) while `readers`
 * read it in a loop; every read must be one whole payload. Returns the reads checked.
 */
async function overwriteWhileReading(options: {
  payloads: Buffer[]
  write: (p: Buffer) => Promise<unknown>
  read: () => Promise<Uint8Array>
  rounds: number
  readers: number
}): Promise<number> {
  const { payloads: ps, write, read } = options
  await write(ps[0])
  let writing = true
  let reads = 0
  const which = (got: Uint8Array) => ps.findIndex((p) => Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(p))
  // A reader records its first failure and stops: the writers run on, and the failure is
  // asserted once all have settled (a rejection left pending would end the whole suite).
  const failures: string[] = []
  const readers = Array.from({ length: options.readers }, async () => {
    try {
      while (writing) {
        const got = await read()
        if (which(got) < 0) { failures.push(`a read matched no payload whole (${got.length} bytes; payload sizes ${ps.map((p) => p.length).join(', ')})`); return }
        reads++
      }
    } catch (err) {
      failures.push(`a read failed: ${(err as Error).message}`)
    }
  })
  try {
    await Promise.all(ps.map(async (p) => { for (let r = 0; r < options.rounds; r++) await write(p) }))
  } finally {
    writing = false
    await Promise.all(readers)
  }
  assert.equal(failures, [])
  return reads
}

// Catches: a commit that is not atomic (a reader sees the new key's first blocks with the old
// key's tail, or the new size with old locations), blocks of one writer committed under
// another writer's key version, and a reader cut short because an overwrite freed the blocks
// it was reading. The final value must be one payload whole too.
for (const b of BUCKETS) {
  test(`putKey() overwriting one key from 4 writers while 3 readers read: every read is one whole payload (${b.replication})`, async () => {
    const ps = payloads(4, 500)
    const reads = await overwriteWhileReading({
      payloads: ps, rounds: 3, readers: 3,
      write: (p) => client.putKey('vol', b.bucket, 'contended', p),
      read: () => client.getKey('vol', b.bucket, 'contended'),
    })
    assert.ok(reads > 0, 'no read ran while the writers wrote')
    const last = await client.getKey('vol', b.bucket, 'contended')
    assert.ok(ps.some((p) => p.equals(last)), `final value is no payload whole: ${last.length} bytes`)
  })
}

// Catches the same defects through the gateway, which adds its own lookup-then-read (a GET
// that takes the size from one key version and the blocks from another would be cut or mixed).
test('S3 PutObject overwriting one object from 4 writers while 3 readers GET it: every GET is one whole payload', async () => {
  const ps = payloads(4, 900)
  const reads = await overwriteWhileReading({
    payloads: ps, rounds: 3, readers: 3,
    write: (p) => s3.send(new PutObjectCommand({ Bucket: 's3three', Key: 'contended', Body: p })),
    read: () => s3Get('s3three', 'contended'),
  })
  assert.ok(reads > 0, 'no GET ran while the writers wrote')
  const last = await s3Get('s3three', 'contended')
  assert.ok(ps.some((p) => Buffer.from(last).equals(p)), `final object is no payload whole: ${last.length} bytes`)
})

test.run()
