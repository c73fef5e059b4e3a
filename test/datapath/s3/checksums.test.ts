/**
 * Goal: S3's additional checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256) work as AWS's: on
 * PutObject (verified on the way in, BadDigest when wrong), on multipart uploads of type
 * COMPOSITE (checksum of the parts' checksums, "-N") and FULL_OBJECT (the CRC of all the
 * bytes, made from the parts' CRCs), returned with x-amz-checksum-type on GET and HEAD with
 * x-amz-checksum-mode: ENABLED, shown by ListParts, ListMultipartUploads and ListObjectsV2,
 * carried by copies; bad combinations and values are refused with AWS's codes. Method: a real gateway over a mini cluster driven by
 * @aws-sdk/client-s3 with its own checksum support (ChecksumAlgorithm, ChecksumType,
 * ChecksumMode): the SDK computes what it sends and checks the checksum of what it reads, and
 * the tests compare the values with digests computed here over the whole bytes. One test
 * falsifies a stored checksum to show the SDK does check it.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Readable } from 'node:stream'
import { createHash } from 'node:crypto'
import { crc32, crc32c } from '@node-rs/crc32'
import { createCRC64 } from 'hash-wasm'
import {
  S3Client, PutObjectCommand, GetObjectCommand, HeadObjectCommand, CreateMultipartUploadCommand, UploadPartCommand, UploadPartCopyCommand,
  CompleteMultipartUploadCommand, ListPartsCommand, ListMultipartUploadsCommand, ListObjectsV2Command, CopyObjectCommand, type ChecksumAlgorithm, type ChecksumType, type CompletedPart,
} from '@aws-sdk/client-s3'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { errorOf, type S3TestCluster, startWithBucket, stopWithBucket } from './s3-cluster.ts'
import { digestLaneTasks } from '../../../datapath/workers/index.ts'

const MiB = 1024 * 1024
const B = 'sums'
let env: S3TestCluster
let s3: S3Client

const ALGORITHMS = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const satisfies readonly ChecksumAlgorithm[]
type Algorithm = (typeof ALGORITHMS)[number]
type Field = `Checksum${Algorithm}`
const field = (a: Algorithm) => `Checksum${a}` as Field

const crc64 = await createCRC64('9a6c9329ac4bc9b5')

/** The digest S3 sends for `a` over `bytes`: its bytes big-endian, base64. */
function digestOf(a: Algorithm, bytes: Uint8Array): Buffer {
  switch (a) {
    case 'CRC32': case 'CRC32C': {
      const out = Buffer.alloc(4)
      out.writeUInt32BE((a === 'CRC32' ? crc32(bytes) : crc32c(bytes)) >>> 0)
      return out
    }
    case 'CRC64NVME': crc64.init(); crc64.update(bytes); return Buffer.from(crc64.digest('binary'))
    case 'SHA1': return createHash('sha1').update(bytes).digest()
    case 'SHA256': return createHash('sha256').update(bytes).digest()
  }
}
const checksumOf = (a: Algorithm, bytes: Uint8Array) => digestOf(a, bytes).toString('base64')

/** S3's COMPOSITE checksum: the algorithm over the parts' binary checksums, then -N. */
const compositeOf = (a: Algorithm, parts: Uint8Array[]) => `${checksumOf(a, Buffer.concat(parts.map((p) => digestOf(a, p))))}-${parts.length}`

const parts = [randomBytes(5 * MiB, 1), randomBytes(777, 2)]
const whole = Buffer.concat(parts)

async function readAll(key: string, extra: { ChecksumMode?: 'ENABLED'; PartNumber?: number } = {}) {
  const r = await s3.send(new GetObjectCommand({ Bucket: B, Key: key, ...extra }))
  return { ...r, bytes: Buffer.from(await r.Body!.transformToByteArray()) }
}

/** A multipart upload of `bodies` with `algorithm` and `type`, completed; returns the Complete answer. */
async function multipart(key: string, algorithm: Algorithm, type: ChecksumType | undefined, bodies: Uint8Array[] = parts) {
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key, ChecksumAlgorithm: algorithm, ChecksumType: type }))
  const done: CompletedPart[] = []
  for (const [i, body] of bodies.entries()) {
    const r = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId: created.UploadId, PartNumber: i + 1, Body: body, ChecksumAlgorithm: algorithm }))
    assert.is(r[field(algorithm)], checksumOf(algorithm, body), `part ${i + 1} answers its ${algorithm}`)
    done.push({ PartNumber: i + 1, ETag: r.ETag, [field(algorithm)]: r[field(algorithm)] })
  }
  const completed = await s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: key, UploadId: created.UploadId, MultipartUpload: { Parts: done } }))
  return { created, completed }
}

test.before(async () => { ({ env, s3 } = await startWithBucket(B)) })
test.after(() => stopWithBucket({ env, s3 }))

for (const a of ALGORITHMS) {
  test(`PutObject with ${a}: stored, answered, and returned with its type on GET and HEAD in checksum mode`, async () => {
    // Small (hashed as it arrives) and large (hashed over the writer's slabs in the pool).
    for (const body of [randomBytes(3000, 21), randomBytes(MiB + 5, 22)]) {
      const key = `put/${a}/${body.length}`
      const put = await s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: body, ChecksumAlgorithm: a }))
      assert.is(put[field(a)], checksumOf(a, body))
      assert.is(put.ChecksumType, 'FULL_OBJECT')
      const got = await readAll(key, { ChecksumMode: 'ENABLED' })
      assert.ok(got.bytes.equals(body))
      assert.is(got[field(a)], checksumOf(a, body))
      assert.is(got.ChecksumType, 'FULL_OBJECT')
      const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: key, ChecksumMode: 'ENABLED' }))
      assert.is(head[field(a)], checksumOf(a, body))
      assert.is(head.ChecksumType, 'FULL_OBJECT')
      // Without checksum mode, no checksum.
      const plain = await s3.send(new HeadObjectCommand({ Bucket: B, Key: key }))
      assert.is(plain[field(a)], undefined)
    }
  })
}

test('PutObject with CRC64NVME from a stream: the SDK sends it as an aws-chunked trailer', async () => {
  const body = randomBytes(300 * 1024, 23)
  const put = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'put/stream', Body: Readable.from([body.subarray(0, 1000), body.subarray(1000)]), ContentLength: body.length, ChecksumAlgorithm: 'CRC64NVME' }))
  assert.is(put.ChecksumCRC64NVME, checksumOf('CRC64NVME', body))
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'put/stream', ChecksumMode: 'ENABLED' }))).ChecksumCRC64NVME, checksumOf('CRC64NVME', body))
})

test('a small CRC64NVME body is hashed on a digest lane, never on the main thread', async () => {
  const before = digestLaneTasks()
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'put/small-crc64', Body: Buffer.from('tiny'), ChecksumCRC64NVME: checksumOf('CRC64NVME', Buffer.from('tiny')) }))
  assert.ok(digestLaneTasks() > before, 'a lane ran the digest')
})

test('a checksum that does not match the body is BadDigest, a malformed one or two of them InvalidRequest; nothing is stored', async () => {
  const body = Buffer.from('the body')
  const wrong = checksumOf('CRC64NVME', Buffer.from('another body'))
  assert.equal(await errorOf(s3.send(new PutObjectCommand({ Bucket: B, Key: 'bad/digest', Body: body, ChecksumCRC64NVME: wrong }))).then((e) => [e.name, e.status]), ['BadDigest', 400])
  assert.equal(await errorOf(s3.send(new PutObjectCommand({ Bucket: B, Key: 'bad/digest', Body: body, ChecksumSHA256: 'AAAA' }))).then((e) => [e.name, e.status]), ['InvalidRequest', 400])
  assert.equal(await errorOf(s3.send(new PutObjectCommand({ Bucket: B, Key: 'bad/digest', Body: body, ChecksumCRC32: checksumOf('CRC32', body), ChecksumSHA1: checksumOf('SHA1', body) }))).then((e) => [e.name, e.status]), ['InvalidRequest', 400])
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'bad/digest' })))).name, 'NotFound')
})

for (const a of ['CRC32', 'CRC32C', 'SHA1', 'SHA256'] as const) {
  test(`multipart ${a} COMPOSITE: the checksum of the parts' checksums, -N, on Complete, HEAD and GET`, async () => {
    const key = `mpu/composite/${a}`
    const { created, completed } = await multipart(key, a, a === 'SHA1' ? undefined : 'COMPOSITE')
    assert.is(created.ChecksumAlgorithm, a)
    assert.is(created.ChecksumType, 'COMPOSITE', 'COMPOSITE is the default for all but CRC64NVME')
    const expected = compositeOf(a, parts)
    assert.is(completed[field(a)], expected)
    assert.is(completed.ChecksumType, 'COMPOSITE')
    const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: key, ChecksumMode: 'ENABLED' }))
    assert.is(head[field(a)], expected)
    assert.is(head.ChecksumType, 'COMPOSITE')
    const got = await readAll(key, { ChecksumMode: 'ENABLED' })
    assert.ok(got.bytes.equals(whole))
    assert.is(got[field(a)], expected)
    // A part answers its own checksum, which the SDK checks against the part's bytes.
    const part = await readAll(key, { ChecksumMode: 'ENABLED', PartNumber: 2 })
    assert.ok(part.bytes.equals(parts[1]))
    assert.is(part[field(a)], checksumOf(a, parts[1]))
    assert.is(part.ChecksumType, 'COMPOSITE')
  })
}

for (const a of ['CRC32', 'CRC32C', 'CRC64NVME'] as const) {
  test(`multipart ${a} FULL_OBJECT: the CRC of every byte, which the SDK checks as it reads`, async () => {
    const key = `mpu/full/${a}`
    const { created, completed } = await multipart(key, a, a === 'CRC64NVME' ? undefined : 'FULL_OBJECT', [parts[0], parts[0], parts[1]])
    assert.is(created.ChecksumType, 'FULL_OBJECT', 'FULL_OBJECT is CRC64NVME\'s default')
    const expected = checksumOf(a, Buffer.concat([parts[0], parts[0], parts[1]]))
    assert.is(completed[field(a)], expected)
    assert.is(completed.ChecksumType, 'FULL_OBJECT')
    const got = await readAll(key, { ChecksumMode: 'ENABLED' })
    assert.is(got[field(a)], expected)
    assert.is(got.ChecksumType, 'FULL_OBJECT')
    assert.is(got.bytes.length, 2 * parts[0].length + parts[1].length)
    // A part of a FULL_OBJECT object has no checksum of its own to answer (as S3).
    const part = await readAll(key, { ChecksumMode: 'ENABLED', PartNumber: 2 })
    assert.ok(part.bytes.equals(parts[0]))
    assert.is(part[field(a)], undefined)
    assert.is(part.PartsCount, 3)
  })
}

test('CompleteMultipartUpload checks a FULL_OBJECT checksum the client sends: BadDigest when it differs', async () => {
  const key = 'mpu/full/sent'
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key, ChecksumAlgorithm: 'CRC64NVME', ChecksumType: 'FULL_OBJECT' }))
  const done: CompletedPart[] = []
  for (const [i, body] of parts.entries()) {
    const r = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId: created.UploadId, PartNumber: i + 1, Body: body, ChecksumAlgorithm: 'CRC64NVME' }))
    done.push({ PartNumber: i + 1, ETag: r.ETag, ChecksumCRC64NVME: r.ChecksumCRC64NVME })
  }
  const complete = (sent: string) => s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: key, UploadId: created.UploadId, MultipartUpload: { Parts: done }, ChecksumCRC64NVME: sent, ChecksumType: 'FULL_OBJECT' }))
  assert.equal(await errorOf(complete(checksumOf('CRC64NVME', parts[0]))).then((e) => [e.name, e.status]), ['BadDigest', 400])
  const ok = await complete(checksumOf('CRC64NVME', whole))
  assert.is(ok.ChecksumCRC64NVME, checksumOf('CRC64NVME', whole))
})

test('CompleteMultipartUpload checks a COMPOSITE checksum the client sends (with or without its -N): BadDigest when it differs, nothing completed', async () => {
  const expected = compositeOf('SHA256', parts)
  for (const [i, right] of [expected, expected.replace(/-\d+$/, '')].entries()) {
    const key = `mpu/composite/sent-${i}`
    const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key, ChecksumAlgorithm: 'SHA256' }))
    const done: CompletedPart[] = []
    for (const [n, body] of parts.entries()) {
      const r = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId: created.UploadId, PartNumber: n + 1, Body: body, ChecksumAlgorithm: 'SHA256' }))
      done.push({ PartNumber: n + 1, ETag: r.ETag, ChecksumSHA256: r.ChecksumSHA256 })
    }
    const complete = (sent: string) => s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: key, UploadId: created.UploadId, MultipartUpload: { Parts: done }, ChecksumSHA256: sent }))
    for (const wrong of [compositeOf('SHA256', [parts[0]]), checksumOf('SHA256', whole), `${expected.replace(/-\d+$/, '')}-9`, 'bad']) {
      assert.equal(await errorOf(complete(wrong)).then((e) => [e.name, e.status]), ['BadDigest', 400], wrong)
    }
    assert.equal(await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: key }))).then((e) => e.status), 404)
    assert.is((await complete(right)).ChecksumSHA256, expected)
  }
})

test('CreateMultipartUpload refuses a checksum type its algorithm does not have, or a type without an algorithm', async () => {
  const create = (ChecksumAlgorithm: ChecksumAlgorithm | undefined, ChecksumType: ChecksumType) => errorOf(s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu/bad', ChecksumAlgorithm, ChecksumType }))).then((e) => [e.name, e.status])
  assert.equal(await create('SHA256', 'FULL_OBJECT'), ['InvalidRequest', 400])
  assert.equal(await create('SHA1', 'FULL_OBJECT'), ['InvalidRequest', 400])
  assert.equal(await create('CRC64NVME', 'COMPOSITE'), ['InvalidRequest', 400])
  assert.equal(await create(undefined, 'COMPOSITE'), ['InvalidRequest', 400])
})

test('parts must use the upload\'s algorithm, and a COMPOSITE Complete must list each part\'s checksum, matching', async () => {
  const key = 'mpu/strict'
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key, ChecksumAlgorithm: 'SHA256' }))
  assert.equal(await errorOf(s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 1, Body: parts[0], ChecksumAlgorithm: 'CRC32' }))).then((e) => [e.name, e.status]), ['InvalidRequest', 400])
  const r1 = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 1, Body: parts[0], ChecksumAlgorithm: 'SHA256' }))
  const r2 = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 2, Body: parts[1], ChecksumAlgorithm: 'SHA256' }))
  // ListParts shows the upload's algorithm and type and each part's checksum.
  const listed = await s3.send(new ListPartsCommand({ Bucket: B, Key: key, UploadId }))
  assert.is(listed.ChecksumAlgorithm, 'SHA256')
  assert.is(listed.ChecksumType, 'COMPOSITE')
  assert.equal(listed.Parts!.map((p) => p.ChecksumSHA256), [checksumOf('SHA256', parts[0]), checksumOf('SHA256', parts[1])])
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: key }))
  assert.equal(uploads.Uploads?.map((u) => [u.UploadId, u.ChecksumAlgorithm, u.ChecksumType]), [[UploadId, 'SHA256', 'COMPOSITE']])
  const complete = (Parts: CompletedPart[], ChecksumType?: ChecksumType) => errorOf(s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: key, UploadId, MultipartUpload: { Parts }, ChecksumType }))).then((e) => [e.name, e.status])
  assert.equal(await complete([{ PartNumber: 1, ETag: r1.ETag, ChecksumSHA256: r1.ChecksumSHA256 }, { PartNumber: 2, ETag: r2.ETag }]), ['InvalidRequest', 400])
  assert.equal(await complete([{ PartNumber: 1, ETag: r1.ETag, ChecksumSHA256: r1.ChecksumSHA256 }, { PartNumber: 2, ETag: r2.ETag, ChecksumSHA256: r1.ChecksumSHA256 }]), ['InvalidPart', 400])
  const good = [{ PartNumber: 1, ETag: r1.ETag, ChecksumSHA256: r1.ChecksumSHA256 }, { PartNumber: 2, ETag: r2.ETag, ChecksumSHA256: r2.ChecksumSHA256 }]
  assert.equal(await complete(good, 'FULL_OBJECT'), ['InvalidRequest', 400])
  assert.equal(await complete(good, 'COMPOSITE'), ['OK', undefined])
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: key, ChecksumMode: 'ENABLED' }))).ChecksumSHA256, compositeOf('SHA256', parts))
})

test('UploadPartCopy hashes the copied range with the upload\'s algorithm', async () => {
  const key = 'mpu/copied'
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key, ChecksumAlgorithm: 'CRC32C', ChecksumType: 'FULL_OBJECT' }))
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'src/big', Body: parts[0] }))
  const c1 = await s3.send(new UploadPartCopyCommand({ Bucket: B, Key: key, UploadId, PartNumber: 1, CopySource: `${B}/src/big` }))
  assert.is(c1.CopyPartResult?.ChecksumCRC32C, checksumOf('CRC32C', parts[0]))
  const r2 = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 2, Body: parts[1], ChecksumAlgorithm: 'CRC32C' }))
  const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: c1.CopyPartResult?.ETag }, { PartNumber: 2, ETag: r2.ETag }] } }))
  assert.is(done.ChecksumCRC32C, checksumOf('CRC32C', whole))
})

test('CopyObject computes the asked algorithm, else the source\'s, as a FULL_OBJECT checksum of the copy', async () => {
  await multipart('copy/src', 'SHA1', 'COMPOSITE')
  const asked = await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/sha256', CopySource: `${B}/copy/src`, ChecksumAlgorithm: 'SHA256' }))
  assert.is(asked.CopyObjectResult?.ChecksumSHA256, checksumOf('SHA256', whole))
  const same = await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/same', CopySource: `${B}/copy/src` }))
  assert.is(same.CopyObjectResult?.ChecksumSHA1, checksumOf('SHA1', whole))
  const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'copy/same', ChecksumMode: 'ENABLED' }))
  assert.is(head.ChecksumSHA1, checksumOf('SHA1', whole))
  assert.is(head.ChecksumType, 'FULL_OBJECT')
})

test('ListObjectsV2 shows each object\'s checksum algorithm and type', async () => {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'mpu/' }))
  const byKey = new Map((listed.Contents ?? []).map((c) => [c.Key, [c.ChecksumAlgorithm, c.ChecksumType]]))
  assert.equal(byKey.get('mpu/composite/SHA1'), [['SHA1'], 'COMPOSITE'])
  assert.equal(byKey.get('mpu/full/CRC64NVME'), [['CRC64NVME'], 'FULL_OBJECT'])
  // A key written without a checksum (here natively: the SDK adds a CRC32 to every PUT) shows none.
  await env.cluster.client().putKey('s3v', B, 'raw/none', Buffer.from('no checksum'), { metadata: { etag: createHash('md5').update('no checksum').digest('hex') } })
  const plain = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'raw/' }))
  assert.is(plain.Contents?.[0].ChecksumAlgorithm, undefined)
  assert.is(plain.Contents?.[0].ChecksumType, undefined)
})

test('the SDK checks the checksum it is answered: a falsified stored checksum fails the read', async () => {
  const body = randomBytes(70_000, 31)
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'lie', Body: body, ChecksumAlgorithm: 'CRC64NVME' }))
  const client = env.cluster.client()
  const info = await client.headKey('s3v', B, 'lie')
  await client.commitMultipartKey('s3v', B, 'lie', [{ volume: 's3v', bucket: B, key: 'lie' }], { ...info.metadata, 'x-amz-checksum-crc64nvme': checksumOf('CRC64NVME', Buffer.from('not it')) })
  const failed = await readAll('lie', { ChecksumMode: 'ENABLED' }).then(() => 'read', (err: Error) => err.message)
  assert.match(failed, /checksum/i)
})

test.run()
