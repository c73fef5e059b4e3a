/**
 * Goal: the S3 gateway's bucket and object operations as @aws-sdk/client-s3 uses them on
 * its default settings (flexible checksums on: CRC32 trailers on uploads). Method: a real
 * gateway over a mini cluster on loopback; each operation and each error it can answer.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  S3Client, ListBucketsCommand, CreateBucketCommand, HeadBucketCommand, DeleteBucketCommand, GetBucketLocationCommand,
  PutObjectCommand, GetObjectCommand, CopyObjectCommand, HeadObjectCommand, DeleteObjectCommand, DeleteObjectsCommand,
} from '@aws-sdk/client-s3'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { errorOf, startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'
import { createHash } from 'node:crypto'

let env: S3TestCluster
let s3: S3Client
let other: S3Client

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex')

function sdk(secret: { awsAccessKey: string; awsSecret: string }): S3Client {
  return s3Client(env, secret)
}


test.before(async () => {
  env = await startS3Cluster()
  s3 = sdk(env.alice)
  other = sdk(env.bob)
})

test.after(async () => {
  s3.destroy(); other.destroy()
  await env.dispose()
})

test('CreateBucket, ListBuckets, HeadBucket, GetBucketLocation, DeleteBucket', async () => {
  await s3.send(new CreateBucketCommand({ Bucket: 'alpha' }))
  await s3.send(new CreateBucketCommand({ Bucket: 'beta' }))
  const list = await s3.send(new ListBucketsCommand({}))
  assert.equal(list.Buckets?.map((b) => b.Name), ['alpha', 'beta'])
  assert.instance(list.Buckets?.[0].CreationDate, Date)
  await s3.send(new HeadBucketCommand({ Bucket: 'alpha' }))
  const loc = await s3.send(new GetBucketLocationCommand({ Bucket: 'alpha' }))
  assert.ok(loc.LocationConstraint === undefined || (loc.LocationConstraint as string) === '')
  await s3.send(new DeleteBucketCommand({ Bucket: 'beta' }))
  assert.equal((await s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name), ['alpha'])
})

test('GET /prom and /health answer on the admin port; on the S3 port /prom is bucket prom', async () => {
  const health = await fetch(`http://${env.gateway.adminAddress}/health`)
  assert.is(health.status, 200)
  assert.is(((await health.json()) as { status: string }).status, 'UP')
  await s3.send(new CreateBucketCommand({ Bucket: 'prom' }))
  await s3.send(new PutObjectCommand({ Bucket: 'prom', Key: 'k', Body: 'v' }))
  const prom = await (await fetch(`http://${env.gateway.adminAddress}/prom`)).text()
  assert.match(prom, /o3_s3g_rpc_requests_total\{[^}]*method="PutObject"/)
  // Payload bytes: a PUT's verified body in, a GET's body out (one piece, then a streamed one).
  const bytes = async () => {
    const text = await (await fetch(`http://${env.gateway.adminAddress}/prom`)).text()
    const of = (name: string) => Number(new RegExp(`^o3_s3g_${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text)?.[1] ?? NaN)
    return { in: of('bytes_in_total'), out: of('bytes_out_total') }
  }
  const before = await bytes()
  const big = Buffer.alloc(3 * 1024 * 1024 + 5, 7)
  await s3.send(new PutObjectCommand({ Bucket: 'prom', Key: 'big', Body: big }))
  const got = await s3.send(new GetObjectCommand({ Bucket: 'prom', Key: 'big' }))
  assert.is((await got.Body!.transformToByteArray()).length, big.length)
  const small = await s3.send(new GetObjectCommand({ Bucket: 'prom', Key: 'k' }))
  assert.is(await small.Body!.transformToString(), 'v')
  const after = await bytes()
  assert.is(after.in - before.in, big.length, 'bytes in: the PUT\'s body')
  assert.is(after.out - before.out, big.length + 1, 'bytes out: both GETs\' bodies')
  await s3.send(new DeleteObjectCommand({ Bucket: 'prom', Key: 'big' }))
  const anonymous = await fetch(`${env.endpoint}/prom`)
  assert.is(anonymous.status, 403)
  assert.match(await anonymous.text(), '<Code>AccessDenied</Code>')
  await s3.send(new DeleteObjectCommand({ Bucket: 'prom', Key: 'k' }))
  await s3.send(new DeleteBucketCommand({ Bucket: 'prom' }))
})

test('bucket errors: BucketAlreadyExists, NoSuchBucket, InvalidBucketName, BucketNotEmpty, AccessDenied', async () => {
  // Its owner creating it again is 200 in us-east-1 (core-calls.test.ts: BucketAlreadyOwnedByYou elsewhere).
  assert.is((await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'alpha' })))).name, 'OK')
  assert.is((await errorOf(other.send(new CreateBucketCommand({ Bucket: 'alpha' })))).name, 'BucketAlreadyExists')
  const missing = await errorOf(s3.send(new DeleteBucketCommand({ Bucket: 'nosuch' })))
  assert.is(missing.name, 'NoSuchBucket')
  assert.is(missing.status, 404)
  assert.ok(missing.requestId)
  assert.is((await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'Bad_Name' })))).name, 'InvalidBucketName')
  await s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'k', Body: 'x' }))
  assert.is((await errorOf(s3.send(new DeleteBucketCommand({ Bucket: 'alpha' })))).name, 'BucketNotEmpty')
  assert.is((await errorOf(other.send(new GetObjectCommand({ Bucket: 'alpha', Key: 'k' })))).name, 'AccessDenied')
  assert.is((await errorOf(other.send(new HeadBucketCommand({ Bucket: 'alpha' })))).status, 403)
  assert.equal((await other.send(new ListBucketsCommand({}))).Buckets ?? [], [])
  await other.send(new CreateBucketCommand({ Bucket: 'bobs-bucket' }))
  assert.is((await errorOf(other.send(new CopyObjectCommand({ Bucket: 'bobs-bucket', Key: 'stolen', CopySource: 'alpha/k' })))).name, 'AccessDenied')
  assert.is((await errorOf(s3.send(new PutObjectCommand({ Bucket: 'bobs-bucket', Key: 'k', Body: 'x' })))).name, 'AccessDenied')
})

test('PutObject and GetObject round-trip bytes, ETag, metadata and headers', async () => {
  const body = randomBytes(300_000, 7)
  const put = await s3.send(new PutObjectCommand({
    Bucket: 'alpha', Key: 'dir/obj.bin', Body: body, ContentType: 'application/x-test', ContentEncoding: 'identity', ContentDisposition: 'attachment',
    ContentLanguage: 'en', CacheControl: 'no-cache', Expires: new Date('2030-01-01T00:00:00Z'), Metadata: { color: 'blue', 'two-words': 'a b' },
  }))
  assert.is(put.ETag, `"${md5(body)}"`)
  assert.ok(put.ChecksumCRC32, 'flexible checksum stored and echoed')
  const got = await s3.send(new GetObjectCommand({ Bucket: 'alpha', Key: 'dir/obj.bin' }))
  const bytes = await got.Body!.transformToByteArray()
  assert.ok(Buffer.from(bytes).equals(body))
  assert.is(got.ETag, `"${md5(body)}"`)
  assert.is(got.ContentLength, body.length)
  assert.is(got.ContentType, 'application/x-test')
  assert.is(got.ContentDisposition, 'attachment')
  assert.is(got.ContentLanguage, 'en')
  assert.is(got.CacheControl, 'no-cache')
  assert.is(got.ContentEncoding, 'identity')
  assert.equal(got.Metadata, { color: 'blue', 'two-words': 'a b' })
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'alpha', Key: 'dir/obj.bin', ChecksumMode: 'ENABLED' }))
  assert.is(head.ContentLength, body.length)
  assert.is(head.ChecksumCRC32, put.ChecksumCRC32)
  const empty = await s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'empty', Body: new Uint8Array(0) }))
  assert.is(empty.ETag, `"${md5(new Uint8Array(0))}"`)
  assert.is((await (await s3.send(new GetObjectCommand({ Bucket: 'alpha', Key: 'empty' }))).Body!.transformToByteArray()).length, 0)
})

test('GetObject Range, conditionals and response-* overrides', async () => {
  const body = randomBytes(1000, 3)
  const { ETag } = await s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'ranged', Body: body }))
  const read = async (input: Partial<ConstructorParameters<typeof GetObjectCommand>[0]>) => {
    const r = await s3.send(new GetObjectCommand({ Bucket: 'alpha', Key: 'ranged', ...input }))
    return { r, bytes: Buffer.from(await r.Body!.transformToByteArray()) }
  }
  let x = await read({ Range: 'bytes=10-19' })
  assert.ok(x.bytes.equals(body.subarray(10, 20)))
  assert.is(x.r.ContentRange, 'bytes 10-19/1000')
  x = await read({ Range: 'bytes=990-' })
  assert.ok(x.bytes.equals(body.subarray(990)))
  x = await read({ Range: 'bytes=-5' })
  assert.ok(x.bytes.equals(body.subarray(995)))
  x = await read({ Range: 'bytes=995-5000' })
  assert.ok(x.bytes.equals(body.subarray(995)))
  const bad = await errorOf(read({ Range: 'bytes=1000-' }))
  assert.is(bad.name, 'InvalidRange')
  assert.is(bad.status, 416)
  x = await read({ IfMatch: ETag })
  assert.is(x.bytes.length, 1000)
  assert.is((await errorOf(read({ IfMatch: '"nope"' }))).name, 'PreconditionFailed')
  assert.is((await errorOf(read({ IfNoneMatch: ETag }))).status, 304)
  assert.is((await errorOf(read({ IfModifiedSince: new Date(Date.now() + 3600_000) }))).status, 304)
  assert.is((await errorOf(read({ IfUnmodifiedSince: new Date(Date.now() - 3600_000) }))).name, 'PreconditionFailed')
  x = await read({ ResponseContentType: 'text/x-override', ResponseContentDisposition: 'inline', ResponseCacheControl: 'max-age=1' })
  assert.is(x.r.ContentType, 'text/x-override')
  assert.is(x.r.ContentDisposition, 'inline')
  assert.is(x.r.CacheControl, 'max-age=1')
})

test('If-None-Match: * creates only; Content-MD5 is checked (BadDigest)', async () => {
  await s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'once', Body: 'one', IfNoneMatch: '*' }))
  const e = await errorOf(s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'once', Body: 'two', IfNoneMatch: '*' })))
  assert.is(e.name, 'PreconditionFailed')
  assert.is(await (await s3.send(new GetObjectCommand({ Bucket: 'alpha', Key: 'once' }))).Body!.transformToString(), 'one')
  const wrong = createHash('md5').update('other').digest('base64')
  assert.is((await errorOf(s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'md5', Body: 'data', ContentMD5: wrong })))).name, 'BadDigest')
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: 'alpha', Key: 'md5' })))).status, 404)
  const right = createHash('md5').update('data').digest('base64')
  await s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'md5', Body: 'data', ContentMD5: right }))
})

test('If-None-Match: * is atomic: of two concurrent conditional PUTs of one key exactly one wins, the other gets 412', async () => {
  for (let round = 0; round < 3; round++) {
    const bodies = [Buffer.alloc(256 * 1024, 1), Buffer.alloc(256 * 1024, 2)]
    const outcomes = await Promise.allSettled(bodies.map((Body) => s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: `race-${round}`, Body, IfNoneMatch: '*' }))))
    const won = outcomes.findIndex((o) => o.status === 'fulfilled')
    assert.is(outcomes.filter((o) => o.status === 'fulfilled').length, 1)
    const lost = outcomes[1 - won]
    assert.is(lost.status === 'rejected' && (lost.reason as { name: string }).name, 'PreconditionFailed')
    const back = await (await s3.send(new GetObjectCommand({ Bucket: 'alpha', Key: `race-${round}` }))).Body!.transformToByteArray()
    assert.ok(Buffer.from(back).equals(bodies[won]))
  }
})

test('x-amz-checksum-* headers are checked: a wrong SHA-256 is BadDigest', async () => {
  const good = createHash('sha256').update('payload').digest('base64')
  const put = await s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'sha', Body: 'payload', ChecksumSHA256: good }))
  assert.is(put.ChecksumSHA256, good)
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'alpha', Key: 'sha', ChecksumMode: 'ENABLED' }))
  assert.is(head.ChecksumSHA256, good)
  const bad = createHash('sha256').update('other').digest('base64')
  assert.is((await errorOf(s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'sha2', Body: 'payload', ChecksumSHA256: bad })))).name, 'BadDigest')
  const c = await s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'c32c', Body: 'payload', ChecksumAlgorithm: 'CRC32C' }))
  assert.ok(c.ChecksumCRC32C)
})

test('DeleteObject, DeleteObjects, NoSuchKey', async () => {
  await s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'd1', Body: '1' }))
  await s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'd2', Body: '2' }))
  await s3.send(new DeleteObjectCommand({ Bucket: 'alpha', Key: 'd1' }))
  await s3.send(new DeleteObjectCommand({ Bucket: 'alpha', Key: 'd1' }))
  const nsk = await errorOf(s3.send(new GetObjectCommand({ Bucket: 'alpha', Key: 'd1' })))
  assert.is(nsk.name, 'NoSuchKey')
  assert.is(nsk.status, 404)
  const r = await s3.send(new DeleteObjectsCommand({ Bucket: 'alpha', Delete: { Objects: [{ Key: 'd2' }, { Key: 'never' }] } }))
  assert.equal(r.Deleted?.map((d) => d.Key).sort(), ['d2', 'never'])
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: 'alpha', Key: 'd2' })))).status, 404)
})

test.run()
