/**
 * Goal: CORS as S3 does it: Put/Get/DeleteBucketCors (NoSuchCORSConfiguration without rules;
 * bad rules refused with S3's codes and nothing changed); a preflight OPTIONS, unsigned,
 * answered 200 with the first matching rule's Access-Control-* headers, else 403
 * AccessForbidden; and those headers on every answer to a request with an allowed Origin,
 * errors, presigned GET/PUT and browser form uploads included, and on none other.
 * Method: a real gateway over a mini cluster; configuration through @aws-sdk/client-s3;
 * preflights and cross-origin requests as a browser sends them, by fetch with an Origin
 * header (presigned URLs from @aws-sdk/s3-request-presigner).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  CreateBucketCommand, DeleteBucketCorsCommand, GetBucketCorsCommand, GetObjectCommand, PutBucketCorsCommand, PutObjectCommand, S3Client, type CORSRule,
} from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { createHmac } from 'node:crypto'
import { signingKeyV4 } from '../../../core/s3-signature.ts'
import { errorOf, startS3Cluster, s3Client, type S3TestCluster } from './s3-cluster.ts'

let env: S3TestCluster
let s3: S3Client
const B = 'cors-bucket'
const APP = 'https://app.example.com'

const RULES: CORSRule[] = [
  { ID: 'app', AllowedOrigins: [APP], AllowedMethods: ['GET', 'PUT', 'POST'], AllowedHeaders: ['Content-Type', 'x-amz-*'], ExposeHeaders: ['ETag', 'x-amz-request-id'], MaxAgeSeconds: 600 },
  { AllowedOrigins: ['http://*.example.org'], AllowedMethods: ['GET'], AllowedHeaders: [] },
  { AllowedOrigins: ['*'], AllowedMethods: ['HEAD'] },
]

function preflight(path: string, origin: string | undefined, method: string | undefined, headers?: string): Promise<Response> {
  const h: Record<string, string> = {}
  if (origin !== undefined) h.origin = origin
  if (method !== undefined) h['access-control-request-method'] = method
  if (headers !== undefined) h['access-control-request-headers'] = headers
  return fetch(env.endpoint + path, { method: 'OPTIONS', headers: h })
}

test.before(async () => {
  env = await startS3Cluster()
  s3 = s3Client(env)
  await s3.send(new CreateBucketCommand({ Bucket: B }))
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'page.txt', Body: 'hello' }))
})

test.after(async () => {
  s3.destroy()
  await env.dispose()
})

test('GetBucketCors answers NoSuchCORSConfiguration before any rules, and a preflight is forbidden', async () => {
  const e = await errorOf(s3.send(new GetBucketCorsCommand({ Bucket: B })))
  assert.is(e.name, 'NoSuchCORSConfiguration')
  assert.is(e.status, 404)
  const r = await preflight(`/${B}/page.txt`, APP, 'GET')
  assert.is(r.status, 403)
  assert.match(await r.text(), '<Code>AccessForbidden</Code>')
})

test('PutBucketCors stores the rules and GetBucketCors answers them', async () => {
  await s3.send(new PutBucketCorsCommand({ Bucket: B, CORSConfiguration: { CORSRules: RULES } }))
  const got = await s3.send(new GetBucketCorsCommand({ Bucket: B }))
  assert.equal(got.CORSRules, [
    { ID: 'app', AllowedOrigins: [APP], AllowedMethods: ['GET', 'PUT', 'POST'], AllowedHeaders: ['Content-Type', 'x-amz-*'], ExposeHeaders: ['ETag', 'x-amz-request-id'], MaxAgeSeconds: 600 },
    { AllowedOrigins: ['http://*.example.org'], AllowedMethods: ['GET'] },
    { AllowedOrigins: ['*'], AllowedMethods: ['HEAD'] },
  ])
})

test('PutBucketCors refuses rules S3 refuses and keeps the ones it had', async () => {
  const cases: [CORSRule[], string][] = [
    [[{ AllowedOrigins: [APP], AllowedMethods: ['PATCH'] }], 'InvalidRequest'],
    [[{ AllowedOrigins: ['http://*.*.example.com'], AllowedMethods: ['GET'] }], 'InvalidRequest'],
    [[{ AllowedOrigins: [APP], AllowedMethods: ['GET'], AllowedHeaders: ['a*b*'] }], 'InvalidRequest'],
    [[{ AllowedOrigins: [], AllowedMethods: ['GET'] }], 'MalformedXML'],
    [[], 'MalformedXML'],
    [Array.from({ length: 101 }, () => ({ AllowedOrigins: [APP], AllowedMethods: ['GET'] })), 'InvalidRequest'],
  ]
  for (const [rules, code] of cases) {
    const e = await errorOf(s3.send(new PutBucketCorsCommand({ Bucket: B, CORSConfiguration: { CORSRules: rules } })))
    assert.is(e.name, code, JSON.stringify(rules).slice(0, 80))
  }
  assert.is((await s3.send(new GetBucketCorsCommand({ Bucket: B }))).CORSRules!.length, 3)
  const bob = s3Client(env, env.bob)
  try {
    assert.is((await errorOf(bob.send(new PutBucketCorsCommand({ Bucket: B, CORSConfiguration: { CORSRules: [{ AllowedOrigins: ['*'], AllowedMethods: ['GET'] }] } })))).name, 'AccessDenied')
    assert.is((await errorOf(bob.send(new DeleteBucketCorsCommand({ Bucket: B })))).name, 'AccessDenied')
  } finally {
    bob.destroy()
  }
})

test('a preflight matching a rule answers its Access-Control-* headers', async () => {
  const r = await preflight(`/${B}/uploads/new.txt`, APP, 'PUT', 'Content-Type, X-Amz-Date')
  assert.is(r.status, 200)
  assert.is(r.headers.get('access-control-allow-origin'), APP)
  assert.is(r.headers.get('access-control-allow-methods'), 'GET, PUT, POST')
  assert.is(r.headers.get('access-control-allow-headers'), 'content-type, x-amz-date')
  assert.is(r.headers.get('access-control-expose-headers'), 'ETag, x-amz-request-id')
  assert.is(r.headers.get('access-control-max-age'), '600')
  assert.is(r.headers.get('access-control-allow-credentials'), 'true')
  assert.match(r.headers.get('vary') ?? '', 'Origin')
  // A wildcard origin, on the bucket itself.
  const sub = await preflight(`/${B}`, 'http://cdn.example.org', 'GET')
  assert.is(sub.status, 200)
  assert.is(sub.headers.get('access-control-allow-origin'), 'http://cdn.example.org')
  // A rule for any origin answers "*" and no credentials.
  const any = await preflight(`/${B}/page.txt`, 'https://elsewhere.test', 'HEAD')
  assert.is(any.status, 200)
  assert.is(any.headers.get('access-control-allow-origin'), '*')
  assert.is(any.headers.get('access-control-allow-credentials'), null)
})

test('a preflight no rule allows is 403 AccessForbidden; a malformed one 400; a missing bucket 404', async () => {
  for (const [origin, method, headers] of [
    ['https://evil.example', 'GET', undefined], [APP, 'DELETE', undefined], [APP, 'PUT', 'Authorization'],
    ['http://example.org', 'GET', undefined], ['http://cdn.example.org', 'GET', 'x-custom'],
  ] as const) {
    const r = await preflight(`/${B}/page.txt`, origin, method, headers)
    assert.is(r.status, 403, `${origin} ${method} ${headers}`)
    assert.match(await r.text(), '<Code>AccessForbidden</Code>')
    assert.is(r.headers.get('access-control-allow-origin'), null)
  }
  assert.is((await preflight(`/${B}/page.txt`, undefined, 'GET')).status, 400)
  assert.is((await preflight(`/${B}/page.txt`, APP, undefined)).status, 400)
  const missing = await preflight('/no-such-cors-bucket/k', APP, 'GET')
  assert.is(missing.status, 404)
  assert.match(await missing.text(), '<Code>NoSuchBucket</Code>')
})

test('presigned GET and PUT from an allowed origin get the Access-Control-* headers, errors too', async () => {
  const get = await fetch(await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: 'page.txt' }), { expiresIn: 300 }), { headers: { origin: APP } })
  assert.is(get.status, 200)
  assert.is(await get.text(), 'hello')
  assert.is(get.headers.get('access-control-allow-origin'), APP)
  assert.is(get.headers.get('access-control-expose-headers'), 'ETag, x-amz-request-id')
  const put = await fetch(await getSignedUrl(s3, new PutObjectCommand({ Bucket: B, Key: 'from-browser.txt' }), { expiresIn: 300 }), { method: 'PUT', body: 'uploaded', headers: { origin: APP } })
  assert.is(put.status, 200)
  assert.is(put.headers.get('access-control-allow-origin'), APP)
  const missing = await fetch(await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: 'absent' }), { expiresIn: 300 }), { headers: { origin: APP } })
  assert.is(missing.status, 404)
  assert.is(missing.headers.get('access-control-allow-origin'), APP)
  // Unsigned, refused, and still told CORS (the browser then shows the page the 403).
  const anonymous = await fetch(`${env.endpoint}/${B}/page.txt`, { headers: { origin: APP } })
  assert.is(anonymous.status, 403)
  assert.is(anonymous.headers.get('access-control-allow-origin'), APP)
  // An origin, or a method, no rule allows gets no headers.
  const other = await fetch(await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: 'page.txt' }), { expiresIn: 300 }), { headers: { origin: 'https://evil.example' } })
  assert.is(other.status, 200)
  assert.is(other.headers.get('access-control-allow-origin'), null)
  const wildcard = await fetch(await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: 'page.txt' }), { expiresIn: 300 }), { headers: { origin: 'http://cdn.example.org' } })
  assert.is(wildcard.headers.get('access-control-allow-origin'), 'http://cdn.example.org')
  const noOrigin = await fetch(await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: 'page.txt' }), { expiresIn: 300 }))
  assert.is(noOrigin.headers.get('access-control-allow-origin'), null)
})

test('a form upload (PostObject) from an allowed origin gets the Access-Control-* headers, refused or not', async () => {
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')
  const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`
  const credential = `${env.alice.awsAccessKey}/${scope}`
  const policy = Buffer.from(JSON.stringify({
    expiration: new Date(Date.now() + 600_000).toISOString(),
    conditions: [{ bucket: B }, { key: 'posted.txt' }, { 'x-amz-algorithm': 'AWS4-HMAC-SHA256' }, { 'x-amz-credential': credential }, { 'x-amz-date': amzDate }],
  })).toString('base64')
  const form = (signature: string) => {
    const f = new FormData()
    for (const [k, v] of Object.entries({ key: 'posted.txt', 'x-amz-algorithm': 'AWS4-HMAC-SHA256', 'x-amz-credential': credential, 'x-amz-date': amzDate, policy, 'x-amz-signature': signature })) f.append(k, v)
    f.append('file', new Blob(['from a page']), 'posted.txt')
    return f
  }
  const good = await fetch(`${env.endpoint}/${B}`, { method: 'POST', body: form(createHmac('sha256', signingKeyV4(env.alice.awsSecret, scope)).update(policy).digest('hex')), headers: { origin: APP } })
  assert.is(good.status, 204)
  assert.is(good.headers.get('access-control-allow-origin'), APP)
  assert.is(good.headers.get('access-control-expose-headers'), 'ETag, x-amz-request-id')
  const forged = await fetch(`${env.endpoint}/${B}`, { method: 'POST', body: form('0'.repeat(64)), headers: { origin: APP } })
  assert.is(forged.status, 403)
  assert.is(forged.headers.get('access-control-allow-origin'), APP)
})

test('DeleteBucketCors removes the rules: 204, then NoSuchCORSConfiguration and forbidden preflights', async () => {
  const del = await s3.send(new DeleteBucketCorsCommand({ Bucket: B }))
  assert.is(del.$metadata.httpStatusCode, 204)
  assert.is((await errorOf(s3.send(new GetBucketCorsCommand({ Bucket: B })))).name, 'NoSuchCORSConfiguration')
  assert.is((await preflight(`/${B}/page.txt`, APP, 'GET')).status, 403)
  const get = await fetch(await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: 'page.txt' }), { expiresIn: 300 }), { headers: { origin: APP } })
  assert.is(get.headers.get('access-control-allow-origin'), null)
  // Deleting again is still 204.
  assert.is((await s3.send(new DeleteBucketCorsCommand({ Bucket: B }))).$metadata.httpStatusCode, 204)
})

test.run()
