/**
 * Goal: what real clients found in the second round (s3cmd, aws CLI, boto3) is fixed. A
 * non-ASCII (UTF-8) metadata value verifies against a SigV4 signature made over its bytes and
 * comes back byte for byte; a response-* override with a non-ASCII file name is served as
 * UTF-8 and one with a control character is InvalidArgument, not a 500; a part still in flight
 * when its upload is aborted is refused (NoSuchUpload) and leaves no part behind, where it used
 * to stay unlisted and counted against the quota; the OM's `whileKeyExists` commit condition
 * under that is atomic; uploads of one key are listed in the order they were started, and
 * a key there that is no upload record does not break the listing; a bucket created again does
 * not inherit the uploads a natively deleted one left; user
 * metadata past 2 KB is MetadataTooLarge; a presigned URL's bad X-Amz-Expires is
 * AuthorizationQueryParametersError.
 * Method: @aws-sdk/client-s3 (one attempt per call), requests signed by @smithy/signature-v4
 * and the native client, against a real gateway over a mini cluster.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand, CreateMultipartUploadCommand, AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
} from '@aws-sdk/client-s3'
import { O3Error } from '../../../core/errors.ts'
import { MULTIPART_VOLUME, S3_VOLUME } from '../../../datapath/s3/index.ts'
import { errorOf, signedRequest, type S3TestCluster, startWithBucket, stopWithBucket } from './s3-cluster.ts'

let env: S3TestCluster
let s3: S3Client
const B = 'headers-uploads'

/** `text` as an HTTP client puts it on the wire: its UTF-8 bytes, one character per byte (how Node writes and reads header values). */
const onTheWire = (text: string) => Buffer.from(text, 'utf8').toString('latin1')
const fromTheWire = (value: string | undefined) => Buffer.from(value ?? '', 'latin1').toString('utf8')

test.before(async () => { ({ env, s3 } = await startWithBucket(B)) })
test.after(() => stopWithBucket({ env, s3 }))

test('a UTF-8 metadata value signed over its bytes (SigV4) is accepted and comes back byte for byte', async () => {
  const city = 'Zürich 中文 ✓'
  // Signed over the text's UTF-8 bytes, as s3cmd signs; sent as those bytes.
  const put = await signedRequest(env, 'PUT', `/${B}/meta/utf8`, 'body', { headers: { 'x-amz-meta-city': city }, unsignedHeaders: { 'x-amz-meta-city': onTheWire(city) } })
  assert.is(put.status, 200, put.body)
  const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'meta/utf8' }))
  assert.is(fromTheWire(head.Metadata?.city), city)
  // The same bytes signed as something else still fail.
  const tampered = await signedRequest(env, 'PUT', `/${B}/meta/tampered`, 'body', { headers: { 'x-amz-meta-city': 'Zurich' }, unsignedHeaders: { 'x-amz-meta-city': onTheWire(city) } })
  assert.is(tampered.status, 403)
  assert.match(tampered.body, '<Code>SignatureDoesNotMatch</Code>')
})

test('response-content-disposition with a non-ASCII file name is served as UTF-8; a control character is InvalidArgument', async () => {
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'override/r', Body: 'x' }))
  const name = 'attachment; filename="中文.txt"'
  const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'override/r', ResponseContentDisposition: name }))
  assert.is(fromTheWire(got.ContentDisposition), name)
  await got.Body!.transformToString()
  for (const bad of ['text/plain\nX-Injected: y', 'text/plain\r\n', 'a\u0000b']) {
    const e = await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'override/r', ResponseContentType: bad })))
    assert.equal([e.name, e.status], ['InvalidArgument', 400], JSON.stringify(bad))
  }
})

test('a part in flight when its upload is aborted is refused with NoSuchUpload and leaves no part behind', async () => {
  const { UploadId: id } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mp/inflight' }))
  const usedBefore = (await env.cluster.client().getBucket(MULTIPART_VOLUME, B)).usedNamespace
  const part = await signedRequest(env, 'PUT', `/${B}/mp/inflight?partNumber=1&uploadId=${id!}`, 'p'.repeat(1024 * 1024), {
    // The headers are in and the part's key is open: the upload goes before the body comes.
    beforeBody: async () => {
      await new Promise((r) => setTimeout(r, 300))
      await s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key: 'mp/inflight', UploadId: id }))
    },
  })
  assert.is(part.status, 404, part.body)
  assert.match(part.body, '<Code>NoSuchUpload</Code>')
  const left = await env.cluster.client().listKeys(MULTIPART_VOLUME, B, { prefix: `p/${id!}/` })
  assert.equal(left.keys.map((k) => k.name), [])
  // The record is gone too, and nothing is counted for the upload any more.
  assert.is((await env.cluster.client().getBucket(MULTIPART_VOLUME, B)).usedNamespace, usedBefore - 1)
})

test('the OM commits a key with whileKeyExists only while that key exists (REQUIRED_KEY_NOT_FOUND), atomically with the commit', async () => {
  const client = env.cluster.client()
  await client.putKey(S3_VOLUME, B, 'om/required', new TextEncoder().encode('r'))
  const kept = await client.putKey(S3_VOLUME, B, 'om/kept', new TextEncoder().encode('k'), { whileKeyExists: { volume: S3_VOLUME, bucket: B, key: 'om/required' } })
  assert.is(kept.size, 1)
  let code = ''
  try {
    await client.putKey(S3_VOLUME, B, 'om/refused', new TextEncoder().encode('x'), { whileKeyExists: { volume: S3_VOLUME, bucket: B, key: 'om/absent' } })
  } catch (err) {
    code = err instanceof O3Error ? err.code : String(err)
  }
  assert.is(code, 'REQUIRED_KEY_NOT_FOUND')
  // Only a key of the bucket written (or its S3 multipart bucket) may be required: a writer
  // learns nothing of keys elsewhere.
  await client.createBucket(S3_VOLUME, 'elsewhere', { owner: 'alice' }).catch(() => undefined)
  try {
    await client.putKey(S3_VOLUME, B, 'om/probe', new TextEncoder().encode('x'), { whileKeyExists: { volume: S3_VOLUME, bucket: 'elsewhere', key: 'secret' } })
    code = 'OK'
  } catch (err) {
    code = err instanceof O3Error ? err.code : String(err)
  }
  assert.is(code, 'INVALID_ARGUMENT')
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'om/refused' })))).name, 'NotFound')
})

test('uploads of one key are listed in the order they were started', async () => {
  const started: string[] = []
  for (let i = 0; i < 6; i++) {
    started.push((await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mp/same' }))).UploadId!)
    await new Promise((r) => setTimeout(r, 3))
  }
  const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: 'mp/same' }))
  assert.equal(listed.Uploads?.map((u) => u.UploadId), started)
  for (const id of started) await s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key: 'mp/same', UploadId: id }))
})

test('a key in the multipart volume that is no upload record is skipped by ListMultipartUploads; a new bucket does not inherit an old one\'s uploads', async () => {
  const client = env.cluster.client()
  const { UploadId: live } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mp/live' }))
  await client.putKey(MULTIPART_VOLUME, B, 'u/bogus', new Uint8Array(0))
  const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: 'mp/live' }))
  assert.equal(listed.Uploads?.map((u) => u.UploadId), [live])
  await s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key: 'mp/live', UploadId: live }))

  // What a bucket of this name deleted without S3 left behind (o3 sh before it dropped them).
  await client.createBucket(MULTIPART_VOLUME, 'reborn')
  await client.putKey(MULTIPART_VOLUME, 'reborn', `u/${'b'.repeat(32)}`, new Uint8Array(0), { metadata: { 's3:key': 'old', 's3:initiatedAtMs': '1' } })
  await s3.send(new CreateBucketCommand({ Bucket: 'reborn' }))
  assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'reborn' }))).Uploads ?? [], [])
})

test('user metadata past 2 KB is MetadataTooLarge and stores nothing; 2 KB is accepted', async () => {
  const e = await errorOf(s3.send(new PutObjectCommand({ Bucket: B, Key: 'meta/large', Body: 'x', Metadata: { a: 'v'.repeat(2048) } })))
  assert.equal([e.name, e.status], ['MetadataTooLarge', 400])
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'meta/large' })))).name, 'NotFound')
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'meta/large', Body: 'x', Metadata: { a: 'v'.repeat(2047) } }))
  const e2 = await errorOf(s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'meta/large-mp', Metadata: { a: 'v'.repeat(3000) } })))
  assert.is(e2.name, 'MetadataTooLarge')
})

test('a presigned URL whose X-Amz-Expires is past a week, zero or not a whole number is AuthorizationQueryParametersError', async () => {
  for (const expires of ['604801', '0', '-5', 'abc', '1e3', '0x10', '+60', '60.0']) {
    const q = new URLSearchParams({
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256', 'X-Amz-Credential': `${env.alice.awsAccessKey}/20261204/us-east-1/s3/aws4_request`, 'X-Amz-Date': '20261204T000000Z',
      'X-Amz-Expires': expires, 'X-Amz-SignedHeaders': 'host', 'X-Amz-Signature': '0'.repeat(64),
    })
    const r = await fetch(`${env.endpoint}/${B}/meta/utf8?${q}`)
    const body = await r.text()
    assert.is(r.status, 400, expires)
    assert.match(body, '<Code>AuthorizationQueryParametersError</Code>')
  }
})

test.run()
