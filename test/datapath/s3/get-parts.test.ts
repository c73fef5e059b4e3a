/**
 * Goal: GetObject and HeadObject with `partNumber` read one part of a multipart object, as S3
 * does: 206 with the part's bytes and Content-Range, the object's multipart ETag, and
 * x-amz-mp-parts-count; an object written in one piece is its own part 1; a part past the
 * last is 416 InvalidPartNumber; partNumber with Range is 400 InvalidRequest.
 * Method: a real gateway over a mini cluster, driven by @aws-sdk/client-s3; parts of 5 MiB
 * and a smaller last one with distinct contents, compared byte for byte (a part's checksum
 * against the part's own CRC32); the part layout
 * survives a metadata rewrite (CopyObject onto itself, PutObjectTagging).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  S3Client, PutObjectCommand, GetObjectCommand, HeadObjectCommand, CreateMultipartUploadCommand, UploadPartCommand,
  CompleteMultipartUploadCommand, CopyObjectCommand, PutObjectTaggingCommand,
} from '@aws-sdk/client-s3'
import { crc32 } from '@node-rs/crc32'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { until } from '../../helpers.ts'
import { errorOf, type S3TestCluster, startWithBucket, stopWithBucket } from './s3-cluster.ts'

const MiB = 1024 * 1024
const B = 'parts-bucket'
let env: S3TestCluster
let s3: S3Client

const parts = [randomBytes(5 * MiB, 1), randomBytes(5 * MiB, 2), randomBytes(MiB + 123, 3)]
const whole = Buffer.concat(parts)
const offsetOf = (n: number) => parts.slice(0, n - 1).reduce((s, p) => s + p.length, 0)

/** Uploads `bodies` as parts `numbers` of a multipart upload of `key` and completes it; returns the ETag. */
async function multipart(key: string, bodies: Uint8Array[], numbers = bodies.map((_, i) => i + 1), checksum?: 'CRC32'): Promise<string> {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key, ChecksumAlgorithm: checksum }))
  const done = []
  for (const [i, body] of bodies.entries()) {
    const r = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: numbers[i], Body: body, ChecksumAlgorithm: checksum }))
    done.push({ PartNumber: numbers[i], ETag: r.ETag, ChecksumCRC32: r.ChecksumCRC32 })
  }
  const c = await s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: key, UploadId, MultipartUpload: { Parts: done } }))
  return c.ETag!
}

async function getPart(key: string, n: number, extra: { ChecksumMode?: 'ENABLED' } = {}) {
  const r = await s3.send(new GetObjectCommand({ Bucket: B, Key: key, PartNumber: n, ...extra }))
  return { ...r, bytes: Buffer.from(await r.Body!.transformToByteArray()) }
}

test.before(async () => { ({ env, s3 } = await startWithBucket(B)) })
test.after(() => stopWithBucket({ env, s3 }))

test('GetObject with PartNumber returns each part of a multipart object with its range and the parts count', async () => {
  const etag = await multipart('mpu', parts)
  assert.ok(/-3"$/.test(etag), etag)
  for (let n = 1; n <= parts.length; n++) {
    const r = await getPart('mpu', n)
    assert.is(r.$metadata.httpStatusCode, 206, `part ${n}`)
    assert.ok(r.bytes.equals(parts[n - 1]), `bytes of part ${n}`)
    assert.is(r.ContentLength, parts[n - 1].length)
    assert.is(r.ContentRange, `bytes ${offsetOf(n)}-${offsetOf(n) + parts[n - 1].length - 1}/${whole.length}`)
    assert.is(r.PartsCount, 3)
    assert.is(r.ETag, etag, 'a part answers with the object\'s multipart ETag')
  }
  // Without partNumber: the whole object, and no parts count.
  const all = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'mpu' }))
  assert.ok(Buffer.from(await all.Body!.transformToByteArray()).equals(whole))
  assert.is(all.$metadata.httpStatusCode, 200)
  assert.is(all.PartsCount, undefined)
})

test('HeadObject with PartNumber gives the part\'s size, range and the parts count', async () => {
  const etag = (await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'mpu' }))).ETag
  for (let n = 1; n <= parts.length; n++) {
    const h = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'mpu', PartNumber: n }))
    assert.is(h.$metadata.httpStatusCode, 206)
    assert.is(h.ContentLength, parts[n - 1].length)
    assert.is(h.ContentRange, `bytes ${offsetOf(n)}-${offsetOf(n) + parts[n - 1].length - 1}/${whole.length}`)
    assert.is(h.PartsCount, 3)
    assert.is(h.ETag, etag)
  }
})

test('a part number past the last part is 416 InvalidPartNumber; with a Range header it is 400 InvalidRequest', async () => {
  assert.equal(await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'mpu', PartNumber: 4 }))).then((e) => [e.name, e.status]), ['InvalidPartNumber', 416])
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'mpu', PartNumber: 4 })))).status, 416)
  assert.equal(await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'mpu', PartNumber: 1, Range: 'bytes=0-9' }))).then((e) => [e.name, e.status]), ['InvalidRequest', 400])
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'mpu', PartNumber: 1, Range: 'bytes=0-9' })))).status, 400)
  for (const bad of [0, 10_001]) {
    assert.equal(await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'mpu', PartNumber: bad }))).then((e) => [e.name, e.status]), ['InvalidArgument', 400], `partNumber ${bad}`)
  }
  // A partNumber on a missing key is still NoSuchKey.
  assert.is((await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'absent', PartNumber: 1 })))).name, 'NoSuchKey')
})

test('an object written in one piece is its own part 1, without a parts count; part 2 is 416', async () => {
  const body = randomBytes(300 * 1024, 9)
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'plain', Body: body, ChecksumAlgorithm: 'CRC32' }))
  const r = await getPart('plain', 1, { ChecksumMode: 'ENABLED' })
  assert.is(r.$metadata.httpStatusCode, 206)
  assert.ok(r.bytes.equals(body))
  assert.is(r.ContentRange, `bytes 0-${body.length - 1}/${body.length}`)
  assert.is(r.PartsCount, undefined)
  // Part 1 of a one-piece object is all of it: its checksum covers what was sent.
  assert.type(r.ChecksumCRC32, 'string')
  const h = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'plain', PartNumber: 1 }))
  assert.is(h.ContentLength, body.length)
  assert.is(h.PartsCount, undefined)
  assert.equal(await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'plain', PartNumber: 2 }))).then((e) => [e.name, e.status]), ['InvalidPartNumber', 416])
  // An empty object: part 1 is empty, and no byte range can name it.
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'empty', Body: new Uint8Array(0) }))
  const e = await getPart('empty', 1)
  assert.is(e.$metadata.httpStatusCode, 200)
  assert.is(e.bytes.length, 0)
  assert.is(e.ContentRange, undefined)
})

test('checksum mode with PartNumber answers the part\'s own checksum, not the object\'s composite one', async () => {
  await multipart('mpu-crc', parts.slice(0, 2), undefined, 'CRC32')
  const all = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'mpu-crc', ChecksumMode: 'ENABLED' }))
  await all.Body!.transformToByteArray()
  assert.ok(/-2$/.test(all.ChecksumCRC32 ?? ''), String(all.ChecksumCRC32))
  // The SDK checks a plain (not composite) checksum against the bytes it reads: reading the
  // part whole is that check.
  const p = await getPart('mpu-crc', 2, { ChecksumMode: 'ENABLED' })
  assert.ok(p.bytes.equals(parts[1]))
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(parts[1]) >>> 0)
  assert.is(p.ChecksumCRC32, crc.toString('base64'))
  assert.is(p.ChecksumType, 'COMPOSITE')
  assert.is(p.PartsCount, 2)
  const h = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'mpu-crc', PartNumber: 1, ChecksumMode: 'ENABLED' }))
  const crc1 = Buffer.alloc(4)
  crc1.writeUInt32BE(crc32(parts[0]) >>> 0)
  assert.is(h.ChecksumCRC32, crc1.toString('base64'))
})

test('parts completed with gaps in their numbers are read as parts 1..count in order', async () => {
  await multipart('gaps', [parts[0], parts[2]], [2, 7])
  const first = await getPart('gaps', 1)
  const second = await getPart('gaps', 2)
  assert.ok(first.bytes.equals(parts[0]))
  assert.ok(second.bytes.equals(parts[2]))
  assert.is(second.PartsCount, 2)
  assert.is((await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'gaps', PartNumber: 3 })))).name, 'InvalidPartNumber')
})

test('a one-part multipart object has a parts count of 1', async () => {
  await multipart('one', [Buffer.from('only part')])
  const r = await getPart('one', 1)
  assert.is(r.bytes.toString(), 'only part')
  assert.is(r.PartsCount, 1)
})

test('rewriting the metadata of a multipart object (CopyObject onto itself, PutObjectTagging) keeps its parts', async () => {
  await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'mpu', CopySource: `${B}/mpu`, MetadataDirective: 'REPLACE', Metadata: { colour: 'blue' } }))
  await s3.send(new PutObjectTaggingCommand({ Bucket: B, Key: 'mpu', Tagging: { TagSet: [{ Key: 't', Value: 'v' }] } }))
  const r = await getPart('mpu', 2)
  assert.ok(r.bytes.equals(parts[1]))
  assert.is(r.PartsCount, 3)
  assert.is(r.Metadata?.colour, 'blue')
  // A copy to another key is written in one piece: one part, no parts count.
  await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'mpu-copy', CopySource: `${B}/mpu` }))
  const c = await getPart('mpu-copy', 1)
  assert.ok(c.bytes.equals(whole))
  assert.is(c.PartsCount, undefined)
  // The copy read its source into the gateway client's pooled buffers: all come back (the
  // GETs' too, once their responses have closed).
  await until('the gateway client\'s read buffers to come back', () => env.gateway.client.readBuffers.inUse === 0)
})

test('the OM records a multipart key\'s parts as runs of equal sizes', async () => {
  const info = await env.cluster.client().headKey('s3v', B, 'mpu')
  assert.equal(info.parts, [{ sizeBytes: 5 * MiB, count: 2 }, { sizeBytes: MiB + 123, count: 1 }])
  const plain = await env.cluster.client().headKey('s3v', B, 'plain')
  assert.is(plain.parts, undefined)
})

test.run()
