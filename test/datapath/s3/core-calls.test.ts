/**
 * Goal: the core S3 calls answer as AWS does where they used to differ: CreateBucket again by
 * its owner in us-east-1, ListBuckets paging, ListObjectsV2 with an empty continuation token,
 * encoding-type=url on every key field of every listing, bucket tagging, object tags in the
 * order sent, PutObject with Transfer-Encoding: chunked, Expect: 100-continue only after
 * authentication, x-amz-website-redirect-location kept and answered. Method: a real gateway over a mini cluster through the AWS SDK v3, and
 * SigV4-signed raw HTTP (fetch, node:http) where the SDK cannot express the request.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { createHash } from 'node:crypto'
import { crc32 } from '@node-rs/crc32'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { SignatureV4 } from '@smithy/signature-v4'
import { Hash } from '@smithy/hash-node'
import {
  CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand, ListBucketsCommand, ListMultipartUploadsCommand, ListObjectsCommand,
  ListObjectsV2Command, ListObjectVersionsCommand, PutObjectCommand, S3Client, GetBucketTaggingCommand, PutBucketTaggingCommand, DeleteBucketTaggingCommand,
  GetObjectTaggingCommand, PutObjectTaggingCommand, HeadObjectCommand, GetBucketAclCommand, HeadBucketCommand, DeleteBucketCommand, type Tag,
  CopyObjectCommand, UploadPartCommand, CompleteMultipartUploadCommand,
} from '@aws-sdk/client-s3'
import { S3Gateway } from '../../../datapath/s3/index.ts'
import { errorOf, s3Client, startS3Cluster, type S3TestCluster } from './s3-cluster.ts'

let env: S3TestCluster
let s3: S3Client
let bob: S3Client
const B = 'core-bucket'

test.before(async () => {
  env = await startS3Cluster()
  s3 = s3Client(env, env.alice, { maxAttempts: 1 })
  bob = s3Client(env, env.bob, { maxAttempts: 1 })
  await s3.send(new CreateBucketCommand({ Bucket: B }))
})

test.after(async () => {
  s3.destroy()
  bob.destroy()
  await env.dispose()
})

interface Secret { awsAccessKey: string; awsSecret: string }

/** The SigV4 headers of a request (UNSIGNED-PAYLOAD unless `payloadHash`), as the SDK would sign it. */
async function signedHeaders(method: string, target: string, extra: Record<string, string> = {}, secret: Secret = env.alice): Promise<Record<string, string>> {
  const url = new URL(target, env.endpoint)
  const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false })
  const query: Record<string, string> = {}
  for (const [k, v] of url.searchParams) query[k] = v
  const headers = { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...extra }
  const signed = await signer.sign({ method, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, query, headers })
  return signed.headers as Record<string, string>
}

/** A signed request through fetch; the answer's status and body text. */
async function signedFetch(method: string, target: string, extra: Record<string, string> = {}, secret?: Secret): Promise<{ status: number; body: string }> {
  const headers = await signedHeaders(method, target, extra, secret)
  delete headers.host
  const res = await fetch(new URL(target, env.endpoint), { method, headers })
  return { status: res.status, body: await res.text() }
}

const tag = (xml: string, name: string) => [...xml.matchAll(new RegExp(`<${name}>([^<]*)</${name}>`, 'g'))].map((m) => m[1])

test('CreateBucket again by its owner answers 200 in us-east-1, BucketAlreadyOwnedByYou elsewhere; by another user BucketAlreadyExists', async () => {
  const again = await s3.send(new CreateBucketCommand({ Bucket: B }))
  assert.is(again.$metadata.httpStatusCode, 200)
  const other = await errorOf(bob.send(new CreateBucketCommand({ Bucket: B })))
  assert.equal([other.name, other.status], ['BucketAlreadyExists', 409])
  // The re-creation resets the bucket's ACL to the request's, private without one.
  const grants = async () => (await s3.send(new GetBucketAclCommand({ Bucket: B }))).Grants?.map((g) => `${g.Grantee?.URI ?? g.Grantee?.ID}:${g.Permission}`).sort()
  await s3.send(new CreateBucketCommand({ Bucket: B, ACL: 'public-read' }))
  assert.equal(await grants(), ['alice:FULL_CONTROL', 'http://acs.amazonaws.com/groups/global/AllUsers:READ'])
  await s3.send(new CreateBucketCommand({ Bucket: B }))
  assert.equal(await grants(), ['alice:FULL_CONTROL'])
  const eu = new S3Gateway({ config: env.cluster.config, omAddress: env.cluster.omAddress, scmAddress: env.cluster.scmAddress, port: 0, region: 'eu-west-1' })
  await eu.start()
  const client = new S3Client({ endpoint: eu.endpoint, region: 'eu-west-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: env.alice.awsAccessKey, secretAccessKey: env.alice.awsSecret } })
  try {
    const owned = await errorOf(client.send(new CreateBucketCommand({ Bucket: B, CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } })))
    assert.equal([owned.name, owned.status], ['BucketAlreadyOwnedByYou', 409])
  } finally {
    client.destroy()
    await eu.stop()
  }
})

test('CreateBucket takes x-amz-object-ownership ObjectWriter; the settings that turn ACLs off are NotImplemented, a bad one InvalidArgument, and make no bucket', async () => {
  await s3.send(new CreateBucketCommand({ Bucket: 'own-writer', ObjectOwnership: 'ObjectWriter' }))
  await s3.send(new HeadBucketCommand({ Bucket: 'own-writer' }))
  for (const [ObjectOwnership, code, status] of [['BucketOwnerEnforced', 'NotImplemented', 501], ['BucketOwnerPreferred', 'NotImplemented', 501], ['Bogus', 'InvalidArgument', 400]] as const) {
    const e = await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'own-other', ObjectOwnership: ObjectOwnership as 'ObjectWriter' })))
    assert.equal([e.name, e.status], [code, status], ObjectOwnership)
  }
  assert.is((await errorOf(s3.send(new HeadBucketCommand({ Bucket: 'own-other' })))).status, 404)
  await s3.send(new DeleteBucketCommand({ Bucket: 'own-writer' }))
})

test('CreateBucket\'s LocationConstraint: us-east-1 is InvalidLocationConstraint (S3 takes none there), another region IllegalLocationConstraintException', async () => {
  const eu = await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'loc-eu', CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } })))
  assert.equal([eu.name, eu.status], ['IllegalLocationConstraintException', 400])
  const east = await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'loc-east', CreateBucketConfiguration: { LocationConstraint: 'us-east-1' as 'eu-west-1' } })))
  assert.equal([east.name, east.status], ['InvalidLocationConstraint', 400])
  for (const Bucket of ['loc-eu', 'loc-east']) assert.is((await errorOf(s3.send(new HeadBucketCommand({ Bucket })))).status, 404)
  // The endpoint's own region is taken.
  const gateway = new S3Gateway({ config: env.cluster.config, omAddress: env.cluster.omAddress, scmAddress: env.cluster.scmAddress, port: 0, region: 'eu-west-1' })
  await gateway.start()
  const client = new S3Client({ endpoint: gateway.endpoint, region: 'eu-west-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: env.alice.awsAccessKey, secretAccessKey: env.alice.awsSecret } })
  try {
    await client.send(new CreateBucketCommand({ Bucket: 'loc-eu', CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } }))
    await client.send(new DeleteBucketCommand({ Bucket: 'loc-eu' }))
  } finally {
    client.destroy()
    await gateway.stop()
  }
})

test('ListBuckets pages by max-buckets and continuation-token, filters by prefix, and lists only the requester\'s', async () => {
  const names = ['lb-a', 'lb-b', 'lb-c', 'lb-d', 'lb-e']
  for (const n of names) await s3.send(new CreateBucketCommand({ Bucket: n }))
  await bob.send(new CreateBucketCommand({ Bucket: 'lb-bob' }))
  const seen: string[] = []
  let token: string | undefined
  let pages = 0
  do {
    const page = await s3.send(new ListBucketsCommand({ MaxBuckets: 2, Prefix: 'lb-', ContinuationToken: token }))
    assert.is(page.Prefix, 'lb-')
    assert.ok((page.Buckets ?? []).length <= 2)
    seen.push(...(page.Buckets ?? []).map((b) => b.Name!))
    token = page.ContinuationToken
    pages++
  } while (token !== undefined)
  assert.equal(seen, names)
  assert.is(pages, 3)
  const all = await s3.send(new ListBucketsCommand({}))
  assert.equal(all.Buckets?.map((b) => b.Name), [B, ...names])
  assert.is(all.ContinuationToken, undefined)
  assert.is(all.Prefix, undefined)
  assert.equal((await s3.send(new ListBucketsCommand({ Prefix: 'lb-c' }))).Buckets?.map((b) => b.Name), ['lb-c'])
  assert.equal((await s3.send(new ListBucketsCommand({ Prefix: 'lb-c', BucketRegion: 'us-east-1' }))).Buckets?.map((b) => [b.Name, b.BucketRegion]), [['lb-c', 'us-east-1']])
  assert.equal((await s3.send(new ListBucketsCommand({ BucketRegion: 'eu-west-1' }))).Buckets ?? [], [])
  assert.equal((await bob.send(new ListBucketsCommand({ Prefix: 'lb' }))).Buckets?.map((b) => b.Name), ['lb-bob'])
  for (const bad of ['0', '10001', 'x']) {
    const r = await signedFetch('GET', `/?max-buckets=${bad}`)
    assert.is(r.status, 400, bad)
    assert.equal(tag(r.body, 'Code'), ['InvalidArgument'])
  }
  const badToken = await signedFetch('GET', '/?continuation-token=%21%21')
  assert.equal([badToken.status, tag(badToken.body, 'Code')[0]], [400, 'InvalidArgument'])
})

test('ListObjectsV2 with an empty continuation-token lists from the start and echoes it', async () => {
  for (const k of ['e/1', 'e/2']) await s3.send(new PutObjectCommand({ Bucket: B, Key: k, Body: k }))
  const r = await signedFetch('GET', `/${B}?list-type=2&prefix=e%2F&continuation-token=`)
  assert.is(r.status, 200, r.body)
  assert.equal(tag(r.body, 'Key'), ['e/1', 'e/2'])
  assert.match(r.body, /<ContinuationToken(><\/ContinuationToken>|\/>)/)
  assert.equal(tag(r.body, 'IsTruncated'), ['false'])
})

test('encoding-type=url encodes every key field of ListObjects, ListObjectsV2, ListObjectVersions and ListMultipartUploads', async () => {
  const P = 'enc+ d\u0001/'
  const keys = [`${P}a b`, `${P}sub\u0002/x`, `${P}z+`]
  for (const k of keys) await s3.send(new PutObjectCommand({ Bucket: B, Key: k, Body: 'x' }))
  // The JS SDK hands the fields over as answered (botocore decodes them): decoded, they must be the keys as put.
  const dec = (s: string | undefined) => s === undefined ? s : decodeURIComponent(s)
  const v2 = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: P, Delimiter: '/', EncodingType: 'url', StartAfter: `${P}a`, MaxKeys: 1 }))
  assert.equal(v2.Contents?.map((c) => dec(c.Key)), [`${P}a b`])
  assert.equal([dec(v2.Prefix), dec(v2.StartAfter), dec(v2.Delimiter), v2.EncodingType], [P, `${P}a`, '/', 'url'])
  const v2rest = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: P, Delimiter: '/', EncodingType: 'url', ContinuationToken: v2.NextContinuationToken }))
  assert.equal(v2rest.CommonPrefixes?.map((c) => dec(c.Prefix)), [`${P}sub\u0002/`])
  assert.equal(v2rest.Contents?.map((c) => dec(c.Key)), [`${P}z+`])
  const v1 = await s3.send(new ListObjectsCommand({ Bucket: B, Prefix: P, Delimiter: '/', EncodingType: 'url', Marker: `${P}a`, MaxKeys: 1 }))
  assert.equal([v1.Contents?.map((c) => dec(c.Key)), dec(v1.Prefix), dec(v1.Marker), dec(v1.NextMarker), v1.EncodingType], [[`${P}a b`], P, `${P}a`, `${P}a b`, 'url'])
  const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: B, Prefix: P, Delimiter: '/', EncodingType: 'url', KeyMarker: `${P}a`, MaxKeys: 1 }))
  assert.equal([versions.Versions?.map((v) => dec(v.Key)), dec(versions.Prefix), dec(versions.KeyMarker), dec(versions.NextKeyMarker), versions.EncodingType], [[`${P}a b`], P, `${P}a`, `${P}a b`, 'url'])
  // The raw answer carries no control character and no space: each is %-encoded.
  const raw = await signedFetch('GET', `/${B}?list-type=2&encoding-type=url&prefix=${encodeURIComponent(P)}&delimiter=%2F`)
  assert.not.match(raw.body, /[\u0001\u0002]|&#x/)
  assert.ok(tag(raw.body, 'Key').every((k) => !k.includes(' ') && !k.includes('+')), raw.body)
  assert.ok(tag(raw.body, 'Prefix').every((k) => !k.includes(' ')))
  assert.equal(tag(raw.body, 'Delimiter'), ['/'])
  for (const k of keys) await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: k }))
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: P, Delimiter: '/', EncodingType: 'url' }))
  assert.equal(uploads.Uploads?.map((u) => dec(u.Key)), [`${P}a b`, `${P}z+`])
  assert.equal(uploads.CommonPrefixes?.map((c) => dec(c.Prefix)), [`${P}sub\u0002/`])
  assert.equal([dec(uploads.Prefix), dec(uploads.Delimiter), uploads.EncodingType], [P, '/', 'url'])
  const rawUploads = await signedFetch('GET', `/${B}?uploads&encoding-type=url&prefix=${encodeURIComponent(P)}&delimiter=%2F`)
  assert.not.match(rawUploads.body, /[\u0001\u0002]|&#x/)
  assert.ok(tag(rawUploads.body, 'Key').every((k) => !k.includes(' ')), rawUploads.body)
  // Paging by one: a common prefix counts as one entry and the next page resumes past it.
  const seen: string[] = []
  let keyMarker: string | undefined
  let uploadIdMarker: string | undefined
  for (let pages = 0; pages < 10; pages++) {
    const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: P, Delimiter: '/', MaxUploads: 1, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }))
    seen.push(...(page.Uploads ?? []).map((u) => u.Key!), ...(page.CommonPrefixes ?? []).map((c) => c.Prefix!))
    if (page.IsTruncated !== true) break
    keyMarker = page.NextKeyMarker
    uploadIdMarker = page.NextUploadIdMarker
  }
  assert.equal(seen, [`${P}a b`, `${P}sub\u0002/`, `${P}z+`])
})

const tags = (n: number, key = (i: number) => `k${i}`): Tag[] => Array.from({ length: n }, (_, i) => ({ Key: key(i), Value: `v${i}` }))

test('Put/Get/DeleteBucketTagging keep the tags in the order sent; NoSuchTagSet without any; limits answer InvalidTag and change nothing', async () => {
  const none = await errorOf(s3.send(new GetBucketTaggingCommand({ Bucket: B })))
  assert.equal([none.name, none.status], ['NoSuchTagSet', 404])
  const sent = [{ Key: 'zeta', Value: '1' }, { Key: 'alpha', Value: '' }, { Key: 'Mid dle', Value: 'x+y=z' }]
  const put = await s3.send(new PutBucketTaggingCommand({ Bucket: B, Tagging: { TagSet: sent } }))
  assert.is(put.$metadata.httpStatusCode, 204)
  assert.equal((await s3.send(new GetBucketTaggingCommand({ Bucket: B }))).TagSet, sent)
  const fifty = tags(50)
  await s3.send(new PutBucketTaggingCommand({ Bucket: B, Tagging: { TagSet: fifty } }))
  assert.equal((await s3.send(new GetBucketTaggingCommand({ Bucket: B }))).TagSet, fifty)
  for (const [what, set] of [
    ['51 tags', tags(51)], ['a duplicate key', [{ Key: 'a', Value: '1' }, { Key: 'a', Value: '2' }]], ['a 129-character key', [{ Key: 'k'.repeat(129), Value: '' }]],
    ['a 257-character value', [{ Key: 'k', Value: 'v'.repeat(257) }]], ['an aws: key', [{ Key: 'aws:cloudformation', Value: 'x' }]], ['an empty key', [{ Key: '', Value: 'x' }]],
  ] as [string, Tag[]][]) {
    const e = await errorOf(s3.send(new PutBucketTaggingCommand({ Bucket: B, Tagging: { TagSet: set } })))
    assert.equal([e.name, e.status], ['InvalidTag', 400], what)
  }
  // 128 and 256 characters are within the limits, counted in characters, not UTF-16 units or bytes.
  const wide = [{ Key: '\u{1F600}'.repeat(128), Value: 'é'.repeat(256) }]
  await s3.send(new PutBucketTaggingCommand({ Bucket: B, Tagging: { TagSet: wide } }))
  assert.equal((await s3.send(new GetBucketTaggingCommand({ Bucket: B }))).TagSet, wide)
  const other = await errorOf(bob.send(new GetBucketTaggingCommand({ Bucket: B })))
  assert.is(other.status, 403)
  assert.is((await s3.send(new DeleteBucketTaggingCommand({ Bucket: B }))).$metadata.httpStatusCode, 204)
  assert.is((await errorOf(s3.send(new GetBucketTaggingCommand({ Bucket: B })))).name, 'NoSuchTagSet')
  const missing = await errorOf(s3.send(new PutBucketTaggingCommand({ Bucket: 'no-such-bucket-t', Tagging: { TagSet: sent } })))
  assert.equal([missing.name, missing.status], ['NoSuchBucket', 404])
})

test('object tags keep the order sent, by PutObjectTagging and by x-amz-tagging; more than 10 or bad ones answer InvalidTag', async () => {
  const sent = [{ Key: 'z', Value: '1' }, { Key: 'a', Value: '2' }, { Key: 'm m', Value: 'a&b=c' }]
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'tagged', Body: 'x', Tagging: 'z=1&a=2&m%20m=a%26b%3Dc' }))
  assert.equal((await s3.send(new GetObjectTaggingCommand({ Bucket: B, Key: 'tagged' }))).TagSet, sent)
  const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'tagged' }))
  await got.Body!.transformToString()
  assert.is(got.TagCount, 3)
  const reversed = [...sent].reverse()
  await s3.send(new PutObjectTaggingCommand({ Bucket: B, Key: 'tagged', Tagging: { TagSet: reversed } }))
  assert.equal((await s3.send(new GetObjectTaggingCommand({ Bucket: B, Key: 'tagged' }))).TagSet, reversed)
  await s3.send(new PutObjectTaggingCommand({ Bucket: B, Key: 'tagged', Tagging: { TagSet: tags(10) } }))
  const eleven = await errorOf(s3.send(new PutObjectTaggingCommand({ Bucket: B, Key: 'tagged', Tagging: { TagSet: tags(11) } })))
  assert.equal([eleven.name, eleven.status], ['InvalidTag', 400])
  const dup = await errorOf(s3.send(new PutObjectTaggingCommand({ Bucket: B, Key: 'tagged', Tagging: { TagSet: [{ Key: 'a', Value: '' }, { Key: 'a', Value: '' }] } })))
  assert.is(dup.name, 'InvalidTag')
  assert.equal((await s3.send(new GetObjectTaggingCommand({ Bucket: B, Key: 'tagged' }))).TagSet, tags(10))
  const header = await errorOf(s3.send(new PutObjectCommand({ Bucket: B, Key: 'tagged-11', Body: 'x', Tagging: tags(11).map((t) => `${t.Key}=${t.Value}`).join('&') })))
  assert.equal([header.name, header.status], ['InvalidTag', 400])
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'tagged-11' })))).status, 404)
})

/** A signed PUT over node:http whose body goes out chunked (no Content-Length); its status, headers and body. */
async function chunkedPut(target: string, pieces: Uint8Array[], extra: Record<string, string> = {}): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  const headers = await signedHeaders('PUT', target, { 'transfer-encoding': 'chunked', ...extra })
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(target, env.endpoint), { method: 'PUT', headers }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on('error', reject)
    for (const p of pieces) req.write(p)
    req.end()
  })
}

const md5Hex = (pieces: Uint8Array[]) => createHash('md5').update(Buffer.concat(pieces)).digest('hex')

test('PutObject with Transfer-Encoding: chunked and no Content-Length stores what arrives, small and across blocks', async () => {
  const small = [Buffer.from('hello '), Buffer.from('chunked '), Buffer.from('world')]
  const r = await chunkedPut(`/${B}/chunked-small`, small)
  assert.is(r.status, 200, r.body)
  assert.is(r.headers.etag, `"${md5Hex(small)}"`)
  assert.is(await (await s3.send(new GetObjectCommand({ Bucket: B, Key: 'chunked-small' }))).Body!.transformToString(), 'hello chunked world')
  // 20 MiB in 1 MiB pieces: past the inline digest, over two 16 MiB blocks.
  const big = Array.from({ length: 20 }, (_, i) => randomBytes(1024 * 1024, i + 1))
  const rb = await chunkedPut(`/${B}/chunked-big`, big)
  assert.is(rb.status, 200, rb.body)
  assert.is(rb.headers.etag, `"${md5Hex(big)}"`)
  const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'chunked-big' }))
  assert.is(got.ContentLength, 20 * 1024 * 1024)
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(big)))
  // An empty chunked body is an empty object.
  const empty = await chunkedPut(`/${B}/chunked-empty`, [])
  assert.is(empty.status, 200, empty.body)
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'chunked-empty' }))).ContentLength, 0)
  // Content-MD5 is still checked against what arrived.
  const bad = await chunkedPut(`/${B}/chunked-bad`, small, { 'content-md5': createHash('md5').update('other').digest('base64') })
  assert.equal([bad.status, tag(bad.body, 'Code')[0]], [400, 'BadDigest'])
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'chunked-bad' })))).status, 404)
})

test('aws-chunked PutObject sent with Transfer-Encoding: chunked and x-amz-decoded-content-length, no Content-Length', async () => {
  const data = Buffer.from('streamed without a length')
  const framed = Buffer.from(`${data.length.toString(16)}\r\n${data.toString()}\r\n0\r\n\r\n`)
  const headers = await signedHeaders('PUT', `/${B}/aws-chunked`, { 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'x-amz-decoded-content-length': String(data.length), 'content-encoding': 'aws-chunked', 'transfer-encoding': 'chunked' })
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(new URL(`/${B}/aws-chunked`, env.endpoint), { method: 'PUT', headers }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)) })
    req.on('error', reject)
    req.end(framed)
  })
  assert.is(status, 200)
  assert.is(await (await s3.send(new GetObjectCommand({ Bucket: B, Key: 'aws-chunked' }))).Body!.transformToString(), data.toString())
})

test('STREAMING-UNSIGNED-PAYLOAD-TRAILER: the trailer must carry the checksum x-amz-trailer declares, and no other; the object is kept only then', async () => {
  const data = Buffer.from('trailed bytes')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(data))
  const put = async (key: string, trailer: string, declared: string | undefined) => {
    const framed = Buffer.from(`${data.length.toString(16)}\r\n${data.toString()}\r\n0\r\n${trailer}\r\n`)
    const extra: Record<string, string> = declared === undefined ? {} : { 'x-amz-trailer': declared }
    const headers = await signedHeaders('PUT', `/${B}/${key}`, { 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'x-amz-decoded-content-length': String(data.length), 'content-encoding': 'aws-chunked', 'content-length': String(framed.length), ...extra })
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(new URL(`/${B}/${key}`, env.endpoint), { method: 'PUT', headers }, (res) => { let body = ''; res.on('data', (c) => { body += c }); res.on('end', () => resolve({ status: res.statusCode!, body })) })
      req.on('error', reject)
      req.end(framed)
    })
  }
  const ok = await put('trailed-ok', `x-amz-checksum-crc32:${crc.toString('base64')}\r\n`, 'x-amz-checksum-crc32')
  assert.is(ok.status, 200, ok.body)
  for (const [key, trailer, declared] of [
    ['trailed-none', '', 'x-amz-checksum-crc32'],
    ['trailed-other', `x-amz-checksum-sha256:${Buffer.alloc(32).toString('base64')}\r\n`, 'x-amz-checksum-crc32'],
    ['trailed-undeclared', `x-amz-checksum-crc32:${crc.toString('base64')}\r\n`, undefined],
  ] as const) {
    const r = await put(key, trailer, declared)
    assert.equal([r.status, tag(r.body, 'Code')[0]], [400, 'MalformedTrailerError'], key)
    assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: key })))).status, 404, key)
  }
})

/** Sends a PUT head with Expect: 100-continue on a raw socket; what comes back before any body is sent (within `waitMs`). */
async function expectContinue(target: string, secret: Secret, waitMs: number, chunked = false): Promise<{ socket: Socket; first: string }> {
  const headers = await signedHeaders('PUT', target, { ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': '5' }), expect: '100-continue' }, secret)
  const url = new URL(target, env.endpoint)
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect(Number(url.port), url.hostname, () => resolve(s))
    s.once('error', reject)
  })
  let data = ''
  socket.on('data', (d: Buffer) => { data += d.toString() })
  socket.write(`PUT ${target} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`)
  const until = Date.now() + waitMs
  while (Date.now() < until && !/\r\n\r\n/.test(data)) await new Promise((r) => setTimeout(r, 10))
  return { socket, first: data }
}

test('Expect: 100-continue is answered 100 only once the request is authenticated: a bad signature or a missing bucket gets its error first', async () => {
  // Deno.serve answers 100 Continue itself as soon as the head arrives (it has no hook for
  // it): only Node's server lets the gateway decide (core/http/serve.ts, checkContinue).
  if ('Deno' in globalThis) return
  const forged = await expectContinue(`/${B}/expect-forged`, { awsAccessKey: env.alice.awsAccessKey, awsSecret: 'not-the-secret' }, 2000)
  assert.match(forged.first, /^HTTP\/1\.1 403 /)
  assert.match(forged.first, /SignatureDoesNotMatch/)
  forged.socket.destroy()
  const forgedChunked = await expectContinue(`/${B}/expect-forged`, { awsAccessKey: env.alice.awsAccessKey, awsSecret: 'not-the-secret' }, 2000, true)
  assert.match(forgedChunked.first, /^HTTP\/1\.1 403 /)
  forgedChunked.socket.destroy()
  const missing = await expectContinue('/no-such-bucket-expect/k', env.alice, 2000)
  assert.match(missing.first, /^HTTP\/1\.1 404 /)
  missing.socket.destroy()
  const denied = await expectContinue(`/${B}/expect-bob`, env.bob, 2000)
  assert.match(denied.first, /^HTTP\/1\.1 403 /)
  denied.socket.destroy()
  const ok = await expectContinue(`/${B}/expect-ok`, env.alice, 2000)
  assert.match(ok.first, /^HTTP\/1\.1 100 Continue\r\n\r\n$/)
  let rest = ''
  ok.socket.on('data', (d: Buffer) => { rest += d.toString() })
  ok.socket.write('hello')
  const until = Date.now() + 5000
  while (Date.now() < until && !/\r\n\r\n/.test(rest.slice(rest.indexOf('HTTP/1.1 2')))) await new Promise((r) => setTimeout(r, 10))
  assert.match(ok.first + rest, /HTTP\/1\.1 200 /)
  ok.socket.destroy()
  assert.is(await (await s3.send(new GetObjectCommand({ Bucket: B, Key: 'expect-ok' }))).Body!.transformToString(), 'hello')
})

test('x-amz-website-redirect-location is stored and answered by GET and HEAD, checked as S3 checks it, never copied from a copy\'s source; a multipart upload keeps it', async () => {
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'redirected', Body: 'r', WebsiteRedirectLocation: '/elsewhere.html' }))
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'redirected' }))).WebsiteRedirectLocation, '/elsewhere.html')
  assert.is((await s3.send(new GetObjectCommand({ Bucket: B, Key: 'redirected' }))).WebsiteRedirectLocation, '/elsewhere.html')
  for (const bad of ['elsewhere.html', 'ftp://host/x', '/' + 'a'.repeat(2048)]) {
    const e = await errorOf(s3.send(new PutObjectCommand({ Bucket: B, Key: 'bad-redirect', Body: 'r', WebsiteRedirectLocation: bad })))
    assert.equal([e.name, e.status], ['InvalidRedirectLocation', 400], bad.slice(0, 20))
  }
  assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'bad-redirect' })))).status, 404)
  const longest = '/' + 'a'.repeat(2047)
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'long-redirect', Body: 'r', WebsiteRedirectLocation: longest }))
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'long-redirect' }))).WebsiteRedirectLocation, longest)
  // CopyObject: not the source's (whatever the directive), the request's if it names one.
  await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'redirect-copy', CopySource: `${B}/redirected` }))
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'redirect-copy' }))).WebsiteRedirectLocation, undefined)
  await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'redirect-copy', CopySource: `${B}/redirected`, MetadataDirective: 'REPLACE' }))
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'redirect-copy' }))).WebsiteRedirectLocation, undefined)
  await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'redirect-copy', CopySource: `${B}/redirected`, WebsiteRedirectLocation: 'https://example.com/' }))
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'redirect-copy' }))).WebsiteRedirectLocation, 'https://example.com/')
  // Onto itself, a new redirect location is a change S3 takes.
  await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'redirected', CopySource: `${B}/redirected`, WebsiteRedirectLocation: '/moved.html' }))
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'redirected' }))).WebsiteRedirectLocation, '/moved.html')
  const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'redirect-mpu', WebsiteRedirectLocation: '/mpu.html' }))
  const part = await s3.send(new UploadPartCommand({ Bucket: B, Key: 'redirect-mpu', UploadId: upload.UploadId, PartNumber: 1, Body: 'p' }))
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: 'redirect-mpu', UploadId: upload.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }))
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'redirect-mpu' }))).WebsiteRedirectLocation, '/mpu.html')
})

test.run()
