/**
 * Goal: small S3 bodies are hashed on the main thread, with the right digests, and a 4 KiB
 * PutObject (and CopyObject) hands no digest to another thread. Method: InlineDigest against
 * independent references (digest-reference.ts) over the same pieces, for every digest it
 * computes; then a real gateway over a mini cluster in this process, counting the tasks the
 * process's Piscina pool completed (its own `completed` counter) around each request, and
 * the digest lanes it holds.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CopyObjectCommand, CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { DIGEST_INLINE_BYTES_MAX } from '../../../core/limits.ts'
import { StreamDigest } from '../../../datapath/s3/digests.ts'
import { bodyDigest, InlineDigest } from '../../../datapath/s3/inline-digest.ts'
import { digestLanes, workerPool, type DigestName } from '../../../datapath/workers/index.ts'
import { reference } from '../digest-reference.ts'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

const ALL: DigestName[] = ['md5', 'crc32', 'crc32c', 'sha1', 'sha256']

async function digestsOf(d: { update(b: Uint8Array): Promise<void>; finish(): Promise<Partial<Record<DigestName, Buffer>>> }, pieces: Uint8Array[]): Promise<Record<string, string>> {
  for (const p of pieces) await d.update(p)
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(await d.finish())) out[k] = v!.toString('base64')
  return out
}

test('InlineDigest gives the right digests (MD5, CRC32, CRC32C, SHA-1, SHA-256), in one piece or several', async () => {
  const body = randomBytes(DIGEST_INLINE_BYTES_MAX)
  for (const pieces of [[body], [body.subarray(0, 1), body.subarray(1, 4097), body.subarray(4097)], [new Uint8Array(0)], []]) {
    const inline = await digestsOf(new InlineDigest(ALL), pieces)
    const whole = Buffer.concat(pieces)
    const want = reference(whole)
    assert.equal(inline, Object.fromEntries(ALL.map((n) => [n, Buffer.from(want[n], 'hex').toString('base64')])))
  }
})

test('bodyDigest() hashes inline up to DIGEST_INLINE_BYTES_MAX and in the pool above it', () => {
  assert.instance(bodyDigest(['md5'], 0), InlineDigest)
  assert.instance(bodyDigest(['md5'], DIGEST_INLINE_BYTES_MAX), InlineDigest)
  assert.instance(bodyDigest(['md5'], DIGEST_INLINE_BYTES_MAX + 1), StreamDigest)
})

test('InlineDigest refuses to hash past its limit (a programmer error: the body is checked against its length first)', async () => {
  const d = new InlineDigest(['md5'], 4)
  await d.update(new Uint8Array(4))
  let thrown: unknown
  try { await d.update(new Uint8Array(1)) } catch (err) { thrown = err }
  assert.ok(thrown instanceof Error)
})

let env: S3TestCluster | undefined
let s3: S3Client | undefined

test.after(async () => {
  s3?.destroy()
  await env?.dispose()
})

test('a 4 KiB PutObject and CopyObject run no task in the worker pool and open no digest lane', async () => {
  env = await startS3Cluster()
  s3 = s3Client(env)
  await s3.send(new CreateBucketCommand({ Bucket: 'inline' }))
  await s3.send(new PutObjectCommand({ Bucket: 'inline', Key: 'warm', Body: randomBytes(4096) }))
  const pool = workerPool()
  const before = pool.completed
  const put = await s3.send(new PutObjectCommand({ Bucket: 'inline', Key: 'k', Body: randomBytes(4096), ChecksumAlgorithm: 'CRC32C' }))
  await s3.send(new CopyObjectCommand({ Bucket: 'inline', Key: 'copy', CopySource: 'inline/k' }))
  assert.ok(put.ETag !== undefined && put.ChecksumCRC32C !== undefined)
  assert.is(pool.completed - before, 0)
  assert.is(digestLanes(), 0)
})

test.run()
