/**
 * Goal: the gateway reads XML bodies as XML 1.0 says and real clients write them, answers
 * XML that says what it means, and handles buckets as S3 does: character references
 * (rclone's `&#34;` ETags, `&#39;` in keys) decoded; undefined entities, references to
 * characters XML forbids, DOCTYPEs and deep nesting refused with MalformedXML, touching
 * nothing; keys with markup and control characters escaped in answers, or URL-encoded with
 * encoding-type=url; DeleteBucket dropping incomplete uploads and their parts; error bodies
 * free of internal volume names; GetBucketVersioning answering "never versioned";
 * CompleteMultipartUpload answering the composite checksum. Method: a real gateway over a
 * mini cluster; raw HTTP carrying the bytes rclone (Go's encoding/xml) sends, signed with
 * @smithy/signature-v4, and @aws-sdk/client-s3 where it fits; what is left in the OM is
 * looked up with the O3 client.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { SignatureV4 } from '@smithy/signature-v4'
import { Hash } from '@smithy/hash-node'
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand, HeadBucketCommand, DeleteBucketCommand, CreateMultipartUploadCommand,
  UploadPartCommand, UploadPartCopyCommand, CompleteMultipartUploadCommand, ListMultipartUploadsCommand, ListObjectsV2Command, GetBucketVersioningCommand,
  PutBucketVersioningCommand, DeleteObjectsCommand,
} from '@aws-sdk/client-s3'
import { O3Error } from '../../../core/errors.ts'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { errorOf, keyExists, startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

let env: S3TestCluster
let port: number
let s3: S3Client
let bobS3: S3Client
const B = 'xml'
const MiB = 1024 * 1024

interface Reply { status: number; body: string }

function send(method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString() }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex')

/** A request signed as the SDKs sign it, with `body` sent byte for byte. */
async function signed(method: string, path: string, body?: string | Buffer): Promise<Reply> {
  const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: env.alice.awsAccessKey, secretAccessKey: env.alice.awsSecret }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false })
  const [p, q] = path.split('?')
  const query: Record<string, string> = {}
  for (const [k, v] of new URLSearchParams(q ?? '')) query[k] = v
  const headers: Record<string, string> = { host: `127.0.0.1:${port}`, 'x-amz-content-sha256': sha256(body ?? '') }
  if (body !== undefined) {
    headers['content-length'] = String(Buffer.byteLength(body))
    headers['content-md5'] = createHash('md5').update(body).digest('base64')
    headers['content-type'] = 'application/xml'
  }
  const r = await signer.sign({ method, protocol: 'http:', hostname: '127.0.0.1', port, path: p, query, headers, body }, {})
  return send(method, path, r.headers as Record<string, string>, body)
}

const code = (r: Reply) => /<Code>([^<]*)<\/Code>/.exec(r.body)?.[1]
const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'
const NS = 'http://s3.amazonaws.com/doc/2006-03-01/'

/** What Go's encoding/xml (rclone, aws-sdk-go) writes for a text: quotes as &#34; and &#39;. */
const goEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&#39;')
  .replace(/\t/g, '&#x9;').replace(/\n/g, '&#xA;').replace(/\r/g, '&#xD;')

const exists = (key: string, bucket = B) => keyExists(s3, bucket, key)

test.before(async () => {
  env = await startS3Cluster()
  port = env.gateway.port
  const sdk = (secret: { awsAccessKey: string; awsSecret: string }) => s3Client(env, secret)
  s3 = sdk(env.alice)
  bobS3 = sdk(env.bob)
  await s3.send(new CreateBucketCommand({ Bucket: B }))
})

test.after(async () => {
  s3.destroy(); bobS3.destroy()
  await env.dispose()
})

test('CompleteMultipartUpload takes ETags written &#34;...&#34; (rclone), for uploaded and copied parts', async () => {
  const source = randomBytes(5 * MiB, 1), tail = randomBytes(1000, 2)
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'mpu/source', Body: source }))
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu/rclone' }))
  const copied = await s3.send(new UploadPartCopyCommand({ Bucket: B, Key: 'mpu/rclone', UploadId, PartNumber: 1, CopySource: `${B}/mpu/source` }))
  const uploaded = await s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/rclone', UploadId, PartNumber: 2, Body: tail }))
  const body = `<CompleteMultipartUpload xmlns="${NS}">` +
    `<Part><ETag>${goEscape(copied.CopyPartResult!.ETag!)}</ETag><PartNumber>1</PartNumber></Part>` +
    `<Part><ETag>${goEscape(uploaded.ETag!)}</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>`
  assert.match(body, /<ETag>&#34;[0-9a-f]{32}&#34;<\/ETag>/)
  // A part number is an xs:int's digits: not 0x1, 1e0 or 1.0 (each was part 1).
  for (const n of ['0x1', '1e0', '1.0', '-1']) {
    const bad = await signed('POST', `/${B}/mpu/rclone?uploadId=${UploadId}`, body.replace('<PartNumber>1</PartNumber>', `<PartNumber>${n}</PartNumber>`))
    assert.is(/<Code>([^<]*)/.exec(bad.body)?.[1], 'InvalidPart', n)
  }
  const r = await signed('POST', `/${B}/mpu/rclone?uploadId=${UploadId}`, body)
  assert.is(r.status, 200, r.body)
  assert.match(r.body, /<ETag>&quot;[0-9a-f]{32}-2&quot;<\/ETag>/)
  const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'mpu/rclone' }))
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat([source, tail])))
  assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: B }))).Uploads ?? [], [])
})

test('DeleteObjects decodes &#39;, &amp;, &lt;, &#xD;&#xA; and &#NN; in keys and deletes exactly those keys', async () => {
  const keys = ["it's.txt", 'a&b<c>"d".txt', 'line\r\nbreak', 'tab\there', 'A=\u00e9\u{1F600}']
  for (const key of [...keys, 'it&#39;s.txt', 'A=&#233;']) await s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: 'x' }))
  const objects = keys.slice(0, 4).map((k) => `<Object><Key>${goEscape(k)}</Key></Object>`).join('') + '<Object><Key>&#x41;&#61;&#233;&#x1F600;</Key></Object>'
  const r = await signed('POST', `/${B}?delete`, `${XML_DECL}\n<Delete xmlns="${NS}">${objects}<Quiet>false</Quiet></Delete>`)
  assert.is(r.status, 200, r.body)
  for (const key of keys) assert.not.ok(await exists(key), `${JSON.stringify(key)} is deleted`)
  assert.ok(await exists('it&#39;s.txt'), 'the key spelled with the reference itself stays')
  assert.ok(await exists('A=&#233;'))
  // Quiet is an xs:boolean: anything else is MalformedXML, and nothing is deleted.
  const maybe = await signed('POST', `/${B}?delete`, `<Delete><Object><Key>it&#39;s.txt</Key></Object><Quiet>maybe</Quiet></Delete>`)
  assert.is(/<Code>([^<]*)/.exec(maybe.body)?.[1], 'MalformedXML')
  assert.ok(await exists('it&#39;s.txt'))
  // References are decoded once: &amp;#39; is the text &#39;.
  const once = await signed('POST', `/${B}?delete`, '<Delete><Object><Key>it&amp;#39;s.txt</Key></Object></Delete>')
  assert.match(once.body, /<Deleted><Key>it&amp;#39;s.txt<\/Key><\/Deleted>/)
  assert.not.ok(await exists('it&#39;s.txt'))
  // The answer names the keys deleted, escaped so that an XML parser reads them back.
  assert.match(r.body, /<Deleted><Key>it&apos;s.txt<\/Key><\/Deleted>/)
  assert.match(r.body, /<Key>a&amp;b&lt;c&gt;&quot;d&quot;.txt<\/Key>/)
  assert.match(r.body, /<Key>line&#xD;\nbreak<\/Key>/)
  assert.not.match(r.body, /&#39;|&#34;/)
  // The SDK's own spelling (&quot;, &amp;) still reads the same.
  const sdkKeys = ['sdk/it\'s', 'sdk/"q"&<a>']
  for (const key of sdkKeys) await s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: 'x' }))
  const viaSdk = await s3.send(new DeleteObjectsCommand({ Bucket: B, Delete: { Objects: sdkKeys.map((Key) => ({ Key })) } }))
  assert.equal(viaSdk.Deleted?.map((d) => d.Key).sort(), [...sdkKeys].sort())
  for (const key of sdkKeys) assert.not.ok(await exists(key))
})

test('DeleteObjects refuses references XML does not define or allow, and deletes nothing', async () => {
  for (const key of ['keep', 'keep\u0001', "it's"]) await s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: 'x' }))
  const bodies = [
    '<Delete><Object><Key>keep</Key></Object><Object><Key>keep&#x1;</Key></Object></Delete>', // AWS: MalformedXML
    '<Delete><Object><Key>keep</Key></Object><Object><Key>keep&#1;</Key></Object></Delete>',
    '<Delete><Object><Key>keep</Key></Object><Object><Key>keep&#0;</Key></Object></Delete>',
    '<Delete><Object><Key>keep</Key></Object><Object><Key>keep&#xD800;</Key></Object></Delete>',
    '<Delete><Object><Key>keep</Key></Object><Object><Key>keep&#x110000;</Key></Object></Delete>',
    '<Delete><Object><Key>keep</Key></Object><Object><Key>keep&nbsp;</Key></Object></Delete>',
    '<Delete><Object><Key>keep</Key></Object><Object><Key>&keep;</Key></Object></Delete>',
    '<Delete><Object><Key>keep</Key></Object><Object><Key>&constructor;</Key></Object></Delete>',
    '<Delete><Object><Key>keep</Key></Object><Object><Key>keep&#x41</Key></Object></Delete>',
    '<Delete><Object><Key>keep</Key></Object><Object><Key>keep\u0001</Key></Object></Delete>', // raw: not an XML character
    '<!DOCTYPE Delete [<!ENTITY k "it\'s">]><Delete><Object><Key>keep</Key></Object><Object><Key>&k;</Key></Object></Delete>',
    '<Delete><Object><Key>keep</Key></Object></Delete><Delete><Object><Key>keep</Key></Object></Delete>',
  ]
  for (const body of bodies) {
    const r = await signed('POST', `/${B}?delete`, body)
    assert.is(r.status, 400, body)
    assert.is(code(r), 'MalformedXML', body)
    // The error's message may quote the body: escaped like any text.
    const message = /<Message>([^<]*)<\/Message>/.exec(r.body)?.[1] ?? ''
    assert.not.match(message, /["'>\u0001]|&(?!amp;|lt;|gt;|quot;|apos;|#x[0-9A-F]+;)/, message)
  }
  const latin1 = Buffer.concat([Buffer.from('<Delete><Object><Key>keep'), Buffer.from([0xe9]), Buffer.from('</Key></Object></Delete>')])
  assert.is(code(await signed('POST', `/${B}?delete`, latin1)), 'MalformedXML', 'a body that is not UTF-8')
  for (const key of ['keep', 'keep\u0001', "it's"]) assert.ok(await exists(key), `${JSON.stringify(key)} stays`)
})

test('entity expansion is refused, not performed: a billion laughs answers MalformedXML at once', async () => {
  let doctype = '<!ENTITY l0 "ha">'
  for (let i = 1; i <= 10; i++) doctype += `<!ENTITY l${i} "${`&l${i - 1};`.repeat(10)}">`
  const body = `${XML_DECL}<!DOCTYPE Delete [${doctype}]><Delete><Object><Key>&l10;</Key></Object></Delete>`
  const r = await signed('POST', `/${B}?delete`, body)
  assert.is(r.status, 400)
  assert.is(code(r), 'MalformedXML')
})

test('XML nested 10,000 deep answers 400 MalformedXML wherever a body is read', async () => {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'deep' }))
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'deep', Body: 'x' }))
  const deep = (root: string) => `<${root}>${'<a>'.repeat(10_000)}${'</a>'.repeat(10_000)}</${root}>`
  for (const [path, root] of [[`/${B}?delete`, 'Delete'], [`/${B}/deep?uploadId=${UploadId}`, 'CompleteMultipartUpload']] as const) {
    const r = await signed('POST', path, deep(root))
    assert.is(r.status, 400, `${root}: ${r.body.slice(0, 300)}`)
    assert.is(code(r), 'MalformedXML')
  }
  for (const [path, root] of [[`/${B}/deep?tagging`, 'Tagging'], ['/xml-deep', 'CreateBucketConfiguration']] as const) {
    const r = await signed('PUT', path, deep(root))
    assert.is(r.status, 400, `${root}: ${r.body.slice(0, 300)}`)
    assert.is(code(r), 'MalformedXML')
  }
  assert.ok(await exists('deep'))
})

test('listings escape keys with markup, CR and control characters; encoding-type=url encodes them', async () => {
  const keys = ['esc/a<b>&"c\'', 'esc/cr\rlf\n', 'esc/ctl\u0001\u001f']
  for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: 'x' }))
  const v2 = await signed('GET', `/${B}?list-type=2&prefix=esc%2F`)
  assert.is(v2.status, 200)
  assert.match(v2.body, /<Key>esc\/a&lt;b&gt;&amp;&quot;c&apos;<\/Key>/)
  // A raw CR would read back as LF; S3 writes what XML 1.0 cannot hold as &#xN;.
  assert.match(v2.body, /<Key>esc\/cr&#xD;lf\n<\/Key>/)
  assert.match(v2.body, /<Key>esc\/ctl&#x1;&#x1F;<\/Key>/)
  assert.not.match(v2.body, /[\u0001\u001f\r]/)
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'esc/' }))
  assert.equal(listed.Contents?.map((c) => c.Key).slice(0, 2), keys.slice(0, 2))
  for (const [query, root] of [['list-type=2', 'ListBucketResult'], ['marker=', 'ListBucketResult'], ['versions', 'ListVersionsResult']]) {
    const r = await signed('GET', `/${B}?${query}&prefix=esc%2F&encoding-type=url`)
    assert.is(r.status, 200)
    assert.match(r.body, new RegExp(`<${root} `))
    assert.match(r.body, /<EncodingType>url<\/EncodingType>/, query)
    assert.match(r.body, /<Key>esc\/ctl%01%1F<\/Key>/, query)
    assert.match(r.body, /<Key>esc\/a%3Cb%3E%26%22c%27<\/Key>/, query)
  }
})

test('ListMultipartUploads escapes keys, and URL-encodes them with encoding-type=url', async () => {
  const key = 'mpu-list/up <load>&\u0001'
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key }))
  const plain = await signed('GET', `/${B}?uploads&prefix=mpu-list%2F`)
  assert.is(plain.status, 200)
  assert.match(plain.body, /<Key>mpu-list\/up &lt;load&gt;&amp;&#x1;<\/Key>/)
  const encoded = await signed('GET', `/${B}?uploads&prefix=mpu-list%2F&encoding-type=url`)
  assert.is(encoded.status, 200)
  assert.match(encoded.body, /<EncodingType>url<\/EncodingType>/)
  assert.match(encoded.body, /<Prefix>mpu-list\/<\/Prefix>/)
  assert.match(encoded.body, /<Key>mpu-list\/up%20%3Cload%3E%26%01<\/Key>/)
  assert.match(encoded.body, new RegExp(`<UploadId>${UploadId}</UploadId>`))
  assert.is(code(await signed('GET', `/${B}?uploads&encoding-type=base64`)), 'InvalidArgument')
})

test('DeleteBucket deletes a bucket with uploads in progress, and their parts and records', async () => {
  const bucket = 'xml-uploads'
  await s3.send(new CreateBucketCommand({ Bucket: bucket }))
  const keys = ['a', 'b/c', 'a']
  for (const key of keys) {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
    await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: 'part one' }))
    await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 2, Body: 'part two' }))
  }
  const client = env.cluster.client()
  assert.is((await client.listKeys('s3v-multipart', bucket)).keys.length, 9)
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }))
  assert.is((await errorOf(s3.send(new HeadBucketCommand({ Bucket: bucket })))).name, 'NotFound')
  // Nothing is left of the uploads: not their parts, not their records, not their bucket.
  const left = await client.listKeys('s3v-multipart', bucket).then((r) => r.keys.map((k) => k.name), (err: unknown) => (err as O3Error).code)
  assert.is(left, 'BUCKET_NOT_FOUND')
  // A bucket made again under the name starts without uploads.
  await s3.send(new CreateBucketCommand({ Bucket: bucket }))
  assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [], [])
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }))
})

test('DeleteBucket of a bucket with objects is BucketNotEmpty, keeps its uploads, and names no internal volume', async () => {
  const bucket = 'xml-full'
  await s3.send(new CreateBucketCommand({ Bucket: bucket }))
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'object', Body: 'x' }))
  const r = await signed('DELETE', `/${bucket}`)
  assert.is(r.status, 409)
  assert.is(code(r), 'BucketNotEmpty')
  assert.not.match(r.body, /s3v/)
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'upload' }))
  await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'upload', UploadId, PartNumber: 1, Body: 'part' }))
  const again = await signed('DELETE', `/${bucket}`)
  assert.is(code(again), 'BucketNotEmpty')
  assert.not.match(again.body, /s3v/)
  assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads?.map((u) => u.UploadId), [UploadId])
  assert.ok(await exists('object', bucket))
})

test('error bodies built from OM errors carry S3 words, not the OM message', async () => {
  // A key name the OM refuses (over 1024 bytes once its references are decoded) in DeleteObjects.
  const long = 'k'.repeat(1000) + '&#233;'.repeat(20)
  const r = await signed('POST', `/${B}?delete`, `<Delete><Object><Key>${long}</Key></Object></Delete>`)
  assert.is(r.status, 200, r.body)
  assert.match(r.body, /<Error><Key>k+(é)+<\/Key><Code>InvalidArgument<\/Code><Message>[^<]+<\/Message><\/Error>/)
  assert.not.match(r.body, /s3v|Invalid key name/)
})

test('GetBucketVersioning answers an empty VersioningConfiguration; PutBucketVersioning stays NotImplemented', async () => {
  const r = await signed('GET', `/${B}?versioning`)
  assert.is(r.status, 200, r.body)
  assert.match(r.body, new RegExp(`<VersioningConfiguration xmlns="${NS}"(/>|></VersioningConfiguration>)`))
  const v = await s3.send(new GetBucketVersioningCommand({ Bucket: B }))
  assert.is(v.Status, undefined)
  assert.is(v.MFADelete, undefined)
  assert.is((await errorOf(s3.send(new GetBucketVersioningCommand({ Bucket: 'xml-missing' })))).name, 'NoSuchBucket')
  assert.is((await errorOf(bobS3.send(new GetBucketVersioningCommand({ Bucket: B })))).name, 'AccessDenied')
  const put = await errorOf(s3.send(new PutBucketVersioningCommand({ Bucket: B, VersioningConfiguration: { Status: 'Enabled' } })))
  assert.equal([put.name, put.status], ['NotImplemented', 501])
  assert.is((await signed('GET', `/${B}/some-key?versioning`)).status, 501)
})

test('CompleteMultipartUpload answers the composite checksum HEAD shows, for each algorithm', async () => {
  const algorithms = [['SHA256', 'ChecksumSHA256'], ['CRC32', 'ChecksumCRC32'], ['CRC32C', 'ChecksumCRC32C'], ['SHA1', 'ChecksumSHA1']] as const
  for (const [algorithm, field] of algorithms) {
    const key = `mpu/checksum-${algorithm}`
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key, ChecksumAlgorithm: algorithm }))
    const part = await s3.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 1, Body: `the only part, ${algorithm}`, ChecksumAlgorithm: algorithm }))
    assert.ok(part[field], `${algorithm}: the part answers its checksum`)
    const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag, [field]: part[field] }] } }))
    const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: key, ChecksumMode: 'ENABLED' }))
    assert.ok(head[field]?.endsWith('-1'), `${algorithm}: HEAD ${head[field]}`)
    assert.is(done[field], head[field], algorithm)
    assert.is(done.ChecksumType, 'COMPOSITE')
  }
  // Without part checksums the answer has none.
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu/no-checksum' }))
  const raw = await signed('PUT', `/${B}/mpu/no-checksum?partNumber=1&uploadId=${UploadId}`, 'plain part')
  assert.is(raw.status, 200)
  const etag = createHash('md5').update('plain part').digest('hex')
  const r = await signed('POST', `/${B}/mpu/no-checksum?uploadId=${UploadId}`, `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"${etag}"</ETag></Part></CompleteMultipartUpload>`)
  assert.is(r.status, 200, r.body)
  assert.not.match(r.body, /Checksum/)
})

test.run()
