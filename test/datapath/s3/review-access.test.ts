/**
 * Goal: holes found by reviewing issue 15's authorization as an attacker stay closed: a bucket
 * policy cannot hand the bucket's policy itself to another user or to anyone (AWS: only the
 * bucket owner's account manages it); an anonymous GET cannot override response headers; a
 * SigV4 request signature never verifies as a browser form's; no header or form field sets
 * x-o3-* metadata; virtual-hosted requests are judged as path-style ones; malformed ACL,
 * policy, CORS and tagging input is a typed 4xx error, never a 500. Method: a real gateway over a mini cluster; @aws-sdk/client-s3
 * as alice (owner) and bob, and raw fetch for anonymous and malformed requests.
 */
import { test } from 'uvu'
import { createHash, createHmac } from 'node:crypto'
import { connect } from 'node:net'
import * as assert from 'uvu/assert'
import { CompleteMultipartUploadCommand, CreateBucketCommand, GetBucketPolicyCommand, GetObjectAclCommand, GetObjectCommand, PutBucketPolicyCommand, PutObjectCommand, PutPublicAccessBlockCommand, type S3Client } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { signingKeyV4, stringToSignV4, verifyProof } from '../../../core/s3-signature.ts'
import { errorOf, signedRequest, startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

let env: S3TestCluster
let alice: S3Client, bob: S3Client
const OPEN = 'review-open'
const FUZZ = 'review-fuzz'

test.before(async () => {
  env = await startS3Cluster()
  alice = s3Client(env, env.alice, { maxAttempts: 1 })
  bob = s3Client(env, env.bob, { maxAttempts: 1 })
  await alice.send(new CreateBucketCommand({ Bucket: OPEN }))
  await alice.send(new CreateBucketCommand({ Bucket: FUZZ }))
  await alice.send(new PutObjectCommand({ Bucket: FUZZ, Key: 'k', Body: 'x' }))
})

test.after(async () => {
  alice.destroy(); bob.destroy()
  await env.dispose()
})

test("a policy granting s3:* to everyone does not give away the bucket's policy", async () => {
  const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:*', Resource: [`arn:aws:s3:::${OPEN}`, `arn:aws:s3:::${OPEN}/*`] }] })
  await alice.send(new PutBucketPolicyCommand({ Bucket: OPEN, Policy: policy }))
  // Anonymous: read, replace, delete the policy.
  for (const method of ['GET', 'PUT', 'DELETE']) {
    const res = await fetch(`${env.endpoint}/${OPEN}?policy`, { method, body: method === 'PUT' ? JSON.stringify({ Statement: [{ Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: `arn:aws:s3:::${OPEN}` }] }) : undefined })
    await res.arrayBuffer()
    assert.ok(res.status === 403 || res.status === 405, `anonymous ${method} policy: ${res.status}`)
  }
  // Another user, signed.
  const e = await errorOf(bob.send(new PutBucketPolicyCommand({ Bucket: OPEN, Policy: JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: 'bob' }, Action: 's3:*', Resource: `arn:aws:s3:::${OPEN}/*` }] }) })))
  assert.ok(e.status === 403 || e.status === 405, `bob PutBucketPolicy: ${e.name}`)
  assert.ok([403, 405].includes((await errorOf(bob.send(new GetBucketPolicyCommand({ Bucket: OPEN })))).status!))
  assert.is((await alice.send(new GetBucketPolicyCommand({ Bucket: OPEN }))).Policy, policy)
})

test('an anonymous GET cannot override the response headers of a public object (AWS: signed requests only)', async () => {
  await alice.send(new PutObjectCommand({ Bucket: FUZZ, Key: 'page.txt', Body: '<script>alert(1)</script>', ContentType: 'text/plain', ACL: 'public-read' }))
  const plain = await fetch(`${env.endpoint}/${FUZZ}/page.txt`)
  assert.is(plain.status, 200)
  assert.is(plain.headers.get('content-type'), 'text/plain')
  await plain.arrayBuffer()
  for (const q of ['response-content-type=text/html', 'response-content-disposition=inline', 'response-cache-control=no-cache']) {
    const res = await fetch(`${env.endpoint}/${FUZZ}/page.txt?${q}`)
    const body = await res.text()
    assert.is(res.status, 400, q)
    assert.match(body, '<Code>InvalidRequest</Code>')
    assert.is.not(res.headers.get('content-type'), 'text/html')
  }
  // Signed, the override is the requester's to ask for.
  const signed = await alice.send(new GetObjectCommand({ Bucket: FUZZ, Key: 'page.txt', ResponseContentType: 'text/html' }))
  assert.is(signed.ContentType, 'text/html')
  await signed.Body!.transformToString()
})

test("a SigV4 request's signature (a presigned URL shows it) never verifies as a browser form's", () => {
  const secret = env.alice.awsSecret
  const scope = '20261203/us-east-1/s3/aws4_request'
  const stringToSign = stringToSignV4({ amzDate: '20261203T120000Z', scope, canonicalRequestSha256: createHash('sha256').update('GET\n/b/k\n\nhost:x\n\nhost\nUNSIGNED-PAYLOAD').digest('hex') })
  const signature = createHmac('sha256', signingKeyV4(secret, scope)).update(stringToSign).digest('hex')
  assert.is(verifyProof(secret, { version: 4, amzDate: '20261203T120000Z', scope, canonicalRequestSha256: stringToSign.split('\n')[3], signature }).ok, true)
  assert.is(verifyProof(secret, { version: 'post-v4', scope, policy: stringToSign, signature }).ok, false)
  // A form's own policy still verifies.
  const policy = Buffer.from(JSON.stringify({ expiration: '2030-01-01T00:00:00Z', conditions: [] })).toString('base64')
  assert.is(verifyProof(secret, { version: 'post-v4', scope, policy, signature: createHmac('sha256', signingKeyV4(secret, scope)).update(policy).digest('hex') }).ok, true)
})

test('no request, header or form field, sets O3\'s reserved x-o3-* metadata (an object\'s ACL or upload id)', async () => {
  const W = 'review-writable'
  await alice.send(new CreateBucketCommand({ Bucket: W, ACL: 'public-read-write' }))
  const forged = JSON.stringify({ owner: 'alice', grants: [{ grantee: { type: 'Group', uri: 'http://acs.amazonaws.com/groups/global/AllUsers' }, permission: 'FULL_CONTROL' }] })
  const reserved = { 'x-o3-acl': forged, 'x-o3-upload-id': 'f'.repeat(32), 'x-o3-part-checksums': 'x' }
  // bob's PUT, and his copies onto his key (REPLACE) and into a new one.
  assert.is((await signedRequest(env, 'PUT', `/${W}/bobs`, 'bob data', { secret: env.bob, headers: reserved })).status, 200)
  assert.is((await signedRequest(env, 'PUT', `/${W}/bobs`, '', { secret: env.bob, headers: { ...reserved, 'x-amz-copy-source': `/${W}/bobs`, 'x-amz-metadata-directive': 'REPLACE' } })).status, 200)
  assert.is((await signedRequest(env, 'PUT', `/${W}/bobs-copy`, '', { secret: env.bob, headers: { ...reserved, 'x-amz-copy-source': `/${W}/bobs`, 'x-amz-metadata-directive': 'REPLACE' } })).status, 200)
  // An anonymous browser form with the same names as fields.
  const boundary = 'r3v1ew'
  const fields: Record<string, string> = { key: 'anon-form', ...reserved }
  const form = Object.entries(fields).map(([k, v]) => `--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('') +
    `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="f"\r\n\r\nform data\r\n--${boundary}--\r\n`
  const posted = await fetch(`${env.endpoint}/${W}`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: form })
  await posted.arrayBuffer()
  assert.ok(posted.status < 300, `anonymous form: ${posted.status}`)
  for (const key of ['bobs', 'bobs-copy', 'anon-form']) {
    // Nobody else may read them (the forged ACL gave AllUsers FULL_CONTROL), and their ACL is their writer's.
    const anon = await fetch(`${env.endpoint}/${W}/${key}`)
    await anon.arrayBuffer()
    assert.is(anon.status, 403, key)
    const acl = await alice.send(new GetObjectAclCommand({ Bucket: W, Key: key })).catch(() => undefined)
    if (key === 'anon-form') assert.equal(acl?.Grants?.map((g) => g.Grantee?.ID), ['alice'])
    const head = await signedRequest(env, 'HEAD', `/${W}/${key}`, '', { secret: key === 'anon-form' ? env.alice : env.bob })
    assert.is(head.status, 200, key)
  }
  // A completed upload whose record a client tried to name is not taken for another's.
  const e = await errorOf(bob.send(new CompleteMultipartUploadCommand({ Bucket: W, Key: 'bobs', UploadId: 'f'.repeat(32), MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"x"' }] } })))
  assert.is(e.name, 'NoSuchUpload')
})

test('a virtual-hosted request reaches only what its path-style twin reaches', async () => {
  const vh = await startS3Cluster({ domain: 's3.review.test' })
  try {
    const owner = s3Client(vh, vh.alice, { maxAttempts: 1 })
    await owner.send(new CreateBucketCommand({ Bucket: 'vh-private' }))
    await owner.send(new PutObjectCommand({ Bucket: 'vh-private', Key: 'secret', Body: 'alice only' }))
    owner.destroy()
    const port = vh.gateway.port
    const { request } = await import('node:http')
    const get = (host: string, path: string) => new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers: { host } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)) })
      req.on('error', reject)
      req.end()
    })
    assert.is(await get(`vh-private.s3.review.test:${port}`, '/secret'), 403)
    assert.is(await get(`vh-private.s3.review.test:${port}`, '/?list-type=2'), 403)
    assert.is(await get(`s3.review.test:${port}`, '/vh-private/secret'), 403)
    assert.is(await get(`vh-private.s3.review.test:${port}`, '/?policy'), 403)
    assert.is(await get(`vh-private.s3.review.test:${port}`, '/secret?acl'), 403)
    // bob, signed (path-style: the SDK would resolve the virtual host by DNS).
    const r = await signedRequest(vh, 'GET', '/vh-private/secret', '', { secret: vh.bob })
    assert.is(r.status, 403)
  } finally {
    await vh.dispose()
  }
})

test('aws:SecureTransport is the connection\'s: an absolute https:// request line over plain HTTP does not make it true', async () => {
  const T = 'review-tls-only'
  await alice.send(new CreateBucketCommand({ Bucket: T }))
  await alice.send(new PutObjectCommand({ Bucket: T, Key: 'k', Body: 'tls only', ACL: 'public-read' }))
  await alice.send(new PutBucketPolicyCommand({ Bucket: T, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [
    { Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: [`arn:aws:s3:::${T}`, `arn:aws:s3:::${T}/*`], Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
  ] }) }))
  const port = env.gateway.port
  /** The status of a GET whose request line is `target` (origin-form or absolute-form), over plain HTTP. */
  const statusOf = (target: string) => new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${target} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: close\r\n\r\n`))
    let text = ''
    socket.on('data', (d) => { text += d.toString() })
    socket.on('end', () => resolve(text.split(' ')[1] ?? ''))
    socket.on('error', reject)
  })
  assert.is(await statusOf(`/${T}/k`), '403')
  assert.is(await statusOf(`https://127.0.0.1:${port}/${T}/k`), '403')
  assert.is(await statusOf(`http://127.0.0.1:${port}/${T}/k`), '403')
})

test('BlockPublicPolicy refuses a policy that lets anonymous requests in by aws:userid "anonymous"', async () => {
  const P = 'review-bpa'
  await alice.send(new CreateBucketCommand({ Bucket: P }))
  await alice.send(new PutPublicAccessBlockCommand({ Bucket: P, PublicAccessBlockConfiguration: { BlockPublicPolicy: true, RestrictPublicBuckets: true } }))
  const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${P}/*`, Condition: { StringEquals: { 'aws:userid': 'anonymous' } } }] })
  const e = await errorOf(alice.send(new PutBucketPolicyCommand({ Bucket: P, Policy: policy })))
  assert.is(e.name, 'AccessDenied')
})

test('GetObjectAttributes needs s3:GetObject too (AWS): a policy denying reads denies the attributes', async () => {
  const A = 'review-attrs'
  await alice.send(new CreateBucketCommand({ Bucket: A }))
  await alice.send(new PutObjectCommand({ Bucket: A, Key: 'hidden', Body: 'size and etag are hidden too', ACL: 'public-read' }))
  await alice.send(new PutBucketPolicyCommand({ Bucket: A, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [
    { Effect: 'Deny', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${A}/hidden` },
    { Effect: 'Allow', Principal: '*', Action: 's3:GetObjectAttributes', Resource: `arn:aws:s3:::${A}/*` },
  ] }) }))
  const read = await fetch(`${env.endpoint}/${A}/hidden`)
  await read.arrayBuffer()
  assert.is(read.status, 403)
  const attrs = await fetch(`${env.endpoint}/${A}/hidden?attributes`, { headers: { 'x-amz-object-attributes': 'ETag,ObjectSize' } })
  const body = await attrs.text()
  assert.is(attrs.status, 403, body)
})

test("a presigned URL's holder cannot add unsigned x-amz-* headers (ACL, grants, copy source, tagging)", async () => {
  const U = 'review-presign'
  await alice.send(new CreateBucketCommand({ Bucket: U }))
  await alice.send(new PutObjectCommand({ Bucket: U, Key: 'secret', Body: 'alice only' }))
  const url = await getSignedUrl(alice, new PutObjectCommand({ Bucket: U, Key: 'upload' }), { expiresIn: 60 })
  const added: Record<string, string>[] = [{ 'x-amz-acl': 'public-read' }, { 'x-amz-grant-read': 'uri="http://acs.amazonaws.com/groups/global/AllUsers"' }, { 'x-amz-copy-source': `/${U}/secret` }, { 'x-amz-tagging': 'a=b' }]
  for (const headers of added) {
    const res = await fetch(url, { method: 'PUT', headers, body: headers['x-amz-copy-source'] === undefined ? 'uploaded' : undefined })
    const body = await res.text()
    assert.is(res.status, 403, `${JSON.stringify(headers)}: ${body}`)
    assert.match(body, '<Code>AccessDenied</Code>')
  }
  const anon = await fetch(`${env.endpoint}/${U}/upload`)
  await anon.arrayBuffer()
  assert.is(anon.status, 403)
  // The URL as signed still works, with headers S3 lets a presigned request carry unsigned.
  const ok = await fetch(url, { method: 'PUT', body: 'uploaded', headers: { 'content-type': 'text/plain', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } })
  await ok.arrayBuffer()
  assert.is(ok.status, 200)
  assert.is((await (await alice.send(new GetObjectCommand({ Bucket: U, Key: 'upload' }))).Body!.transformToString()), 'uploaded')
})

test('a header-signed request with x-amz-* headers it did not sign is refused too (a replayed request cannot be made public or a copy)', async () => {
  const U = 'review-replay'
  await alice.send(new CreateBucketCommand({ Bucket: U }))
  const added: Record<string, string>[] = [{ 'x-amz-acl': 'public-read' }, { 'x-amz-tagging': 'a=b' }, { 'x-amz-meta-who': 'mallory' }]
  for (const unsignedHeaders of added) {
    const r = await signedRequest(env, 'PUT', `/${U}/replayed`, 'replayed', { unsignedHeaders })
    assert.is(r.status, 403, `${JSON.stringify(unsignedHeaders)}: ${r.body}`)
    assert.match(r.body, /<Code>AccessDenied<\/Code>.*not signed/s)
  }
  assert.is((await errorOf(alice.send(new GetObjectCommand({ Bucket: U, Key: 'replayed' })))).name, 'NoSuchKey', 'nothing written')
  // Signed, the same headers are taken.
  assert.is((await signedRequest(env, 'PUT', `/${U}/replayed`, 'replayed', { headers: { 'x-amz-meta-who': 'alice' } })).status, 200)
  assert.is((await alice.send(new GetObjectCommand({ Bucket: U, Key: 'replayed' }))).Metadata?.who, 'alice')
})

/** alice signs (signedRequest) and sends `body` to `?sub` of the fuzz bucket (or its key): the status. */
async function aliceSends(sub: string, body: string, key?: string, headers: Record<string, string> = {}): Promise<number> {
  const r = await signedRequest(env, 'PUT', `${key === undefined ? `/${FUZZ}` : `/${FUZZ}/${key}`}?${sub}`, body, { headers })
  if (r.status >= 500) console.log(sub, key, headers, body, r.body)
  return r.status
}

const ACL_BODIES = [
  '', 'x', '<AccessControlPolicy/>', '<AccessControlPolicy><Owner/></AccessControlPolicy>',
  '<AccessControlPolicy><Owner><ID>alice</ID></Owner><AccessControlList>x</AccessControlList></AccessControlPolicy>',
  '<AccessControlPolicy><Owner><ID>alice</ID></Owner><AccessControlList><Grant>x</Grant></AccessControlList></AccessControlPolicy>',
  '<AccessControlPolicy><Owner><ID>alice</ID></Owner><AccessControlList><Grant><Grantee/></Grant></AccessControlList></AccessControlPolicy>',
  '<AccessControlPolicy><Owner><ID>alice</ID></Owner><AccessControlList><Grant><Grantee>x</Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>',
  '<AccessControlPolicy><Owner><ID>alice</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID><x>1</x></ID></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>',
  '<AccessControlPolicy><Owner><ID>alice</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://x</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>',
  '<AccessControlPolicy><Owner><ID>alice</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>bob</ID></Grantee><Permission><a/></Permission></Grant></AccessControlList></AccessControlPolicy>',
  '<AccessControlPolicy><Owner><ID>alice</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Weird"><ID>bob</ID></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>',
  '<AccessControlPolicy><Owner><ID><a/></ID></Owner><AccessControlList></AccessControlList></AccessControlPolicy>',
  '<AccessControlPolicy><Owner><ID>bob</ID></Owner><AccessControlList></AccessControlList></AccessControlPolicy>',
  '<AccessControlPolicy><Owner>alice</Owner><AccessControlList><Grant/><Grant/></AccessControlList></AccessControlPolicy>',
  '<AccessControlPolicy><Owner><ID>alice</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="AmazonCustomerByEmail"><EmailAddress><x/></EmailAddress></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>',
]
const GRANT_HEADERS = ['', 'id', 'id=', 'id=""', 'uri=', 'uri="x"', 'emailAddress="a@b"', 'x=y', '=,=', 'id="a",,', 'id="bob"; uri="x"', 'ID="bob"', '"', 'id="\u00ff"']
const POLICIES = [
  '', 'null', '[]', '1', '"x"', '{}', '{"Statement":null}', '{"Statement":[null]}', '{"Statement":[1]}', '{"Statement":{}}', '{"Statement":[{}]}',
  '{"Statement":[{"Effect":"Allow","Principal":1,"Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*"}]}',
  '{"Statement":[{"Effect":"Allow","Principal":{"AWS":[1]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*"}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":[null],"Resource":"arn:aws:s3:::review-fuzz/*"}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":{"a":1}}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Condition":null}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Condition":{"StringEquals":null}}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Condition":{"StringEquals":{"s3:prefix":null}}}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Condition":{"StringEquals":{"s3:prefix":[{}]}}}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Condition":{"IpAddress":{"aws:SourceIp":"x"}}}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Condition":{"IpAddress":{"aws:SourceIp":"1.2.3.4/99"}}}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Condition":{"DateLessThan":{"aws:CurrentTime":"x"}}}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Condition":{"NumericLessThan":{"s3:max-keys":"x"}}}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Condition":{"Bool":{"aws:SecureTransport":{}}}}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Condition":{"ForAnyValue:StringLike":{"s3:RequestObjectTagKeys":["*"]}}}]}',
  '{"Statement":[{"Effect":"Allow","NotPrincipal":"*","NotAction":"s3:GetObject","NotResource":"arn:aws:s3:::review-fuzz/*"}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Sid":1}]}',
  '{"Version":1,"Statement":[]}', '{"Id":{},"Statement":[]}', '{"__proto__":{"Statement":[]}}', '{"Statement":[{"__proto__":{}}]}',
  '{"Statement":[{"Effect":"Allow","Principal":{"__proto__":1},"Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*"}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Condition":{"constructor":{"a":"b"}}}]}',
  '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*","Condition":{"toString":{"a":"b"}}}]}',
  '{"Statement":[{"Effect":"Allow","Principal":{"toString":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::review-fuzz/*"}]}',
]
const CORS = [
  '', '<CORSConfiguration/>', '<CORSConfiguration><CORSRule/></CORSConfiguration>', '<CORSConfiguration><CORSRule>x</CORSRule></CORSConfiguration>',
  '<CORSConfiguration><CORSRule><AllowedOrigin><a/></AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>',
  '<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>x</MaxAgeSeconds></CORSRule></CORSConfiguration>',
  '<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod><a/></AllowedMethod></CORSRule></CORSConfiguration>',
]
const TAGGING = [
  '', '<Tagging/>', '<Tagging><TagSet>x</TagSet></Tagging>', '<Tagging><TagSet><Tag>x</Tag></TagSet></Tagging>', '<Tagging><TagSet><Tag><Key><a/></Key><Value>v</Value></Tag></TagSet></Tagging>',
  '<Tagging><TagSet><Tag><Key>k</Key><Value><a/></Value></Tag></TagSet></Tagging>', '<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>',
]

test('malformed ACL, policy, CORS and tagging input is a 4xx, never a 500', async () => {
  const bad: string[] = []
  const check = (what: string, status: number) => { if (status >= 500) bad.push(`${what}: ${status}`) }
  for (const b of ACL_BODIES) {
    check(`PutBucketAcl ${b}`, await aliceSends('acl', b))
    check(`PutObjectAcl ${b}`, await aliceSends('acl', b, 'k'))
  }
  for (const h of GRANT_HEADERS) {
    check(`PutBucketAcl grant ${h}`, await aliceSends('acl', '', undefined, { 'x-amz-grant-read': h }))
    check(`PutObjectAcl grant ${h}`, await aliceSends('acl', '', 'k', { 'x-amz-grant-full-control': h }))
  }
  // The signing works: a well-formed call goes through.
  assert.is(await aliceSends('acl', '', 'k', { 'x-amz-acl': 'private' }), 200)
  for (const p of POLICIES) check(`PutBucketPolicy ${p}`, await aliceSends('policy', p))
  for (const c of CORS) check(`PutBucketCors ${c}`, await aliceSends('cors', c))
  for (const t of TAGGING) {
    check(`PutBucketTagging ${t}`, await aliceSends('tagging', t))
    check(`PutObjectTagging ${t}`, await aliceSends('tagging', t, 'k'))
  }
  // Configurations past what the OM stores for a bucket (64 KiB a field).
  const statement = (i: number) => ({ Sid: `s${i}`, Effect: 'Allow', Principal: { AWS: 'bob' }, Action: 's3:GetObject', Resource: `arn:aws:s3:::${FUZZ}/${'p'.repeat(200)}${i}/*` })
  check('PutBucketPolicy of 300 statements', await aliceSends('policy', JSON.stringify({ Version: '2012-10-17', Statement: Array.from({ length: 300 }, (_, i) => statement(i)) })))
  const grant = (i: number) => `<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>user${i}</ID></Grantee><Permission>READ</Permission></Grant>`
  const manyGrants = `<AccessControlPolicy><Owner><ID>alice</ID></Owner><AccessControlList>${Array.from({ length: 2000 }, (_, i) => grant(i)).join('')}</AccessControlList></AccessControlPolicy>`
  check('PutBucketAcl of 2000 grants', await aliceSends('acl', manyGrants))
  check('PutObjectAcl of 2000 grants', await aliceSends('acl', manyGrants, 'k'))
  const rule = (i: number) => `<CORSRule><AllowedOrigin>https://${'o'.repeat(200)}${i}.example</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`
  check('PutBucketCors of 400 rules', await aliceSends('cors', `<CORSConfiguration>${Array.from({ length: 400 }, (_, i) => rule(i)).join('')}</CORSConfiguration>`))
  // The bucket still answers its owner (no stored configuration broke it).
  const res = await fetch(`${env.endpoint}/${FUZZ}/k`)
  await res.arrayBuffer()
  assert.ok(res.status < 500, `anonymous GET after the fuzz: ${res.status}`)
  assert.equal(bad, [])
})

test.run()
