/**
 * Goal: the gateway accepts AWS Signature Version 2, in the Authorization header and in
 * presigned URLs, as MinIO and RGW do, with V4's rules for time and errors: botocore's
 * `signature_version='s3'` client and its presigned URLs (the client that found the gap)
 * work unchanged; a wrong signature is SignatureDoesNotMatch, an unknown key
 * InvalidAccessKeyId, an expired URL AccessDenied, a skewed clock RequestTimeTooSkewed; the
 * subresources (?uploads, ?partNumber&uploadId, ?tagging, response-*) and the bucket of a
 * virtual-hosted request are signed, other parameters are not; V2 bodies are plain and
 * Content-MD5 is checked. Method: a real gateway over a mini cluster; botocore run as a child
 * process; raw HTTP over node:http signed here from the AWS guide "Signing and authenticating
 * REST requests (AWS signature version 2)", and the guide's own example checked against the
 * gateway's string to sign.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile, spawnSync } from 'node:child_process'
import { createHash, createHmac } from 'node:crypto'
import { request } from 'node:http'
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { verifySignatureV2, parseAuthV2 } from '../../../datapath/s3/sigv2.ts'
import { startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

let env: S3TestCluster
let port: number
const B = 'sigv2'
const DOMAIN = 's3.test'

interface Secret { awsAccessKey: string; awsSecret: string }
interface Reply { status: number; body: string; headers: Record<string, string | string[] | undefined> }

function send(method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString(), headers: res.headers }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const code = (r: Reply) => /<Code>([^<]*)<\/Code>/.exec(r.body)?.[1]
const md5 = (b: string | Buffer) => createHash('md5').update(b).digest('base64')

/**
 * The guide's StringToSign: VERB, Content-MD5, Content-Type, Date (empty when x-amz-date is
 * sent; Expires when presigning), x-amz-* headers lower-cased and sorted, then the
 * CanonicalizedResource, given here whole (bucket, path as sent, subresources).
 */
function stringToSign(method: string, resource: string, headers: Record<string, string>, expires?: string): string {
  const h: Record<string, string> = {}
  for (const [k, v] of Object.entries(headers)) h[k.toLowerCase()] = v.trim()
  const amz = Object.keys(h).filter((k) => k.startsWith('x-amz-')).sort().map((k) => `${k}:${h[k]}\n`).join('')
  const date = expires ?? ('x-amz-date' in h ? '' : h.date ?? '')
  return `${method}\n${h['content-md5'] ?? ''}\n${h['content-type'] ?? ''}\n${date}\n${amz}${resource}`
}

const sign = (secret: string, s: string) => createHmac('sha1', secret).update(s).digest('base64')

/** Sends a request with `Authorization: AWS key:signature` over `resource` (path-style: the path as sent plus subresources). */
function v2(method: string, path: string, o: { resource?: string; headers?: Record<string, string>; body?: string | Buffer; secret?: Secret; date?: Date } = {}): Promise<Reply> {
  const secret = o.secret ?? env.alice
  const headers: Record<string, string> = { date: (o.date ?? new Date()).toUTCString(), ...o.headers }
  if (o.body !== undefined) headers['content-length'] = String(Buffer.byteLength(o.body))
  const signature = sign(secret.awsSecret, stringToSign(method, o.resource ?? path, headers))
  return send(method, path, { ...headers, authorization: `AWS ${secret.awsAccessKey}:${signature}` }, o.body)
}

/** A presigned path: `path` plus AWSAccessKeyId, Expires and Signature over `resource`. */
function presign(method: string, path: string, o: { resource?: string; expiresS?: number; secret?: Secret; headers?: Record<string, string> } = {}): string {
  const secret = o.secret ?? env.alice
  const expires = String(o.expiresS ?? Math.floor(Date.now() / 1000) + 300)
  const signature = sign(secret.awsSecret, stringToSign(method, o.resource ?? path, o.headers ?? {}, expires))
  return `${path}${path.includes('?') ? '&' : '?'}AWSAccessKeyId=${encodeURIComponent(secret.awsAccessKey)}&Expires=${expires}&Signature=${encodeURIComponent(signature)}`
}

test.before(async () => {
  env = await startS3Cluster({ domain: DOMAIN })
  port = env.gateway.port
  // The bucket comes through SigV4 (the AWS SDK), so that each test below stands on its own.
  const s3 = s3Client(env)
  await s3.send(new CreateBucketCommand({ Bucket: B }))
  s3.destroy()
})

test.after(async () => { await env.dispose() })

test("verifySignatureV2() accepts the AWS guide's example (virtual-hosted GET of /photos/puppy.jpg)", () => {
  const headers = new Headers({ host: 'johnsmith.s3.amazonaws.com', date: 'Tue, 27 Mar 2007 19:36:42 +0000', authorization: 'AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=' })
  const req = { method: 'GET', rawPath: '/photos/puppy.jpg', rawQuery: '', headers }
  const auth = parseAuthV2(req, new URLSearchParams())!
  verifySignatureV2(req, auth, 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'johnsmith')
  assert.throws(() => verifySignatureV2(req, auth, 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', undefined), /does not match/)
})

// botocore: the client the gap was found with. Debian's python3-botocore or awscli bring it.
const botocore = spawnSync('python3', ['-c', 'import botocore'], { stdio: 'ignore' }).status === 0

const BOTO_SCRIPT = String.raw`
import json, os
import botocore.session
from botocore.config import Config
c = botocore.session.get_session().create_client('s3', endpoint_url=os.environ['ENDPOINT'], region_name='us-east-1',
    aws_access_key_id=os.environ['KEY'], aws_secret_access_key=os.environ['SECRET'],
    config=Config(signature_version='s3', s3={'addressing_style': 'path'}))
B = os.environ['BUCKET']
out = {}
c.put_object(Bucket=B, Key='boto/hello world.txt', Body=b'hello from botocore', ContentType='text/plain', Metadata={'who': 'boto'})
got = c.get_object(Bucket=B, Key='boto/hello world.txt')
out['get'] = {'body': got['Body'].read().decode(), 'type': got['ContentType'], 'meta': got['Metadata']}
up = c.create_multipart_upload(Bucket=B, Key='boto/mpu')
parts = []
for n, data in ((1, b'a' * (5 * 1024 * 1024)), (2, b'tail')):
    r = c.upload_part(Bucket=B, Key='boto/mpu', UploadId=up['UploadId'], PartNumber=n, Body=data)
    parts.append({'PartNumber': n, 'ETag': r['ETag']})
c.complete_multipart_upload(Bucket=B, Key='boto/mpu', UploadId=up['UploadId'], MultipartUpload={'Parts': parts})
out['mpuSize'] = c.head_object(Bucket=B, Key='boto/mpu')['ContentLength']
c.put_object_tagging(Bucket=B, Key='boto/mpu', Tagging={'TagSet': [{'Key': 'team', 'Value': 'o3'}]})
out['tags'] = c.get_object_tagging(Bucket=B, Key='boto/mpu')['TagSet']
out['list'] = [o['Key'] for o in c.list_objects(Bucket=B, Prefix='boto/')['Contents']]
out['getUrl'] = c.generate_presigned_url('get_object', Params={'Bucket': B, 'Key': 'boto/hello world.txt'}, ExpiresIn=300)
out['getTypedUrl'] = c.generate_presigned_url('get_object', Params={'Bucket': B, 'Key': 'boto/hello world.txt', 'ResponseContentType': 'application/x-o3; v=1'}, ExpiresIn=300)
out['putUrl'] = c.generate_presigned_url('put_object', Params={'Bucket': B, 'Key': 'boto/presigned put'}, ExpiresIn=300)
# No region and no signature_version: what botocore gives a bare setup (SigV2 for presigning in current versions).
bare = botocore.session.get_session().create_client('s3', endpoint_url=os.environ['ENDPOINT'], aws_access_key_id=os.environ['KEY'], aws_secret_access_key=os.environ['SECRET'])
out['defaultUrl'] = bare.generate_presigned_url('get_object', Params={'Bucket': B, 'Key': 'boto/hello world.txt'}, ExpiresIn=300)
out['expiredUrl'] = c.generate_presigned_url('get_object', Params={'Bucket': B, 'Key': 'boto/hello world.txt'}, ExpiresIn=-60)
print(json.dumps(out))
`

function python(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', script], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ENDPOINT: env.endpoint, KEY: env.alice.awsAccessKey, SECRET: env.alice.awsSecret, BUCKET: B, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
      maxBuffer: 16 * 1024 * 1024,
    }, (err, stdout, stderr) => (err ? reject(new Error(`python3 failed (${String(err.code)}): ${stderr}`)) : resolve(stdout)))
  })
}

test('botocore with signature_version=s3: PUT, GET, multipart, tagging, list; its presigned GET and PUT URLs work', async () => {
  if (!botocore) {
    console.log('SKIPPED: botocore test: python3 with botocore not found (apt-get install -y python3-botocore)')
    return
  }
  const out = JSON.parse(await python(BOTO_SCRIPT))
  assert.equal(out.get, { body: 'hello from botocore', type: 'text/plain', meta: { who: 'boto' } })
  assert.is(out.mpuSize, 5 * 1024 * 1024 + 4)
  assert.equal(out.tags, [{ Key: 'team', Value: 'o3' }])
  assert.equal(out.list, ['boto/hello world.txt', 'boto/mpu'])

  assert.match(out.getUrl, /AWSAccessKeyId=.*Signature=/)
  assert.not.match(out.getUrl, /X-Amz-Algorithm/, 'a SigV2 URL')
  const get = await fetch(out.getUrl)
  assert.is(get.status, 200)
  assert.is(await get.text(), 'hello from botocore')
  const typed = await fetch(out.getTypedUrl)
  assert.is(typed.status, 200)
  assert.is(typed.headers.get('content-type'), 'application/x-o3; v=1')
  await typed.arrayBuffer()

  const put = await fetch(out.putUrl, { method: 'PUT', body: Buffer.from('put through a presigned URL') })
  assert.is(put.status, 200, await put.text())
  assert.is((await v2('GET', `/${B}/boto/presigned%20put`)).body, 'put through a presigned URL')

  const bare = await fetch(out.defaultUrl)
  assert.is(bare.status, 200, out.defaultUrl)
  assert.is(await bare.text(), 'hello from botocore')

  const expired = await fetch(out.expiredUrl)
  assert.is(expired.status, 403)
  assert.match(await expired.text(), /<Code>AccessDenied<\/Code><Message>Request has expired/)

  // The URL signs the key: pointing it at another key fails.
  const moved = await fetch(out.getUrl.replace('hello%20world.txt', 'mpu'))
  assert.is(moved.status, 403)
  assert.match(await moved.text(), /<Code>SignatureDoesNotMatch</)
})

const awsCli = spawnSync('aws', ['--version'], { stdio: 'ignore' }).status === 0

test('`aws s3 presign` without a configured region (a SigV2 URL) can be fetched', async () => {
  if (!awsCli) {
    console.log('SKIPPED: aws s3 presign test: the aws CLI is not installed (apt-get install -y awscli)')
    return
  }
  await v2('PUT', `/${B}/cli/presigned.txt`, { body: 'fetched via aws s3 presign' })
  const url = await new Promise<string>((resolve, reject) => {
    execFile('aws', ['--endpoint-url', env.endpoint, 's3', 'presign', `s3://${B}/cli/presigned.txt`, '--expires-in', '300'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, AWS_ACCESS_KEY_ID: env.alice.awsAccessKey, AWS_SECRET_ACCESS_KEY: env.alice.awsSecret, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
    }, (err, stdout, stderr) => (err ? reject(new Error(`aws s3 presign failed: ${stderr}`)) : resolve(stdout.trim())))
  })
  const res = await fetch(url)
  assert.is(res.status, 200, url)
  assert.is(await res.text(), 'fetched via aws s3 presign')
})

test('header auth: PUT with Content-MD5, Content-Type and x-amz-meta-* then GET; a wrong Content-MD5 is BadDigest and stores nothing', async () => {
  const body = 'signed with V2'
  const put = await v2('PUT', `/${B}/raw/put.txt`, { body, headers: { 'content-md5': md5(body), 'content-type': 'text/x-v2', 'x-amz-meta-color': 'blue' } })
  assert.is(put.status, 200, put.body)
  assert.is(put.headers.etag, `"${createHash('md5').update(body).digest('hex')}"`)
  const get = await v2('GET', `/${B}/raw/put.txt`)
  assert.is(get.body, body)
  assert.is(get.headers['content-type'], 'text/x-v2')
  assert.is(get.headers['x-amz-meta-color'], 'blue')

  const bad = await v2('PUT', `/${B}/raw/bad-md5.txt`, { body, headers: { 'content-md5': md5('something else') } })
  assert.is(bad.status, 400)
  assert.is(code(bad), 'BadDigest')
  assert.is((await v2('HEAD', `/${B}/raw/bad-md5.txt`)).status, 404)
})

test('header auth: a UTF-8 metadata value signed over its bytes (as s3cmd signs it) is accepted and comes back byte for byte', async () => {
  const city = 'Zürich 中文'
  const headers: Record<string, string> = { date: new Date().toUTCString(), 'content-length': '4', 'x-amz-meta-city': city }
  const signature = sign(env.alice.awsSecret, stringToSign('PUT', `/${B}/raw/utf8.txt`, headers))
  // On the wire the value is its UTF-8 bytes, one character per byte in Node's strings.
  const sent = { ...headers, 'x-amz-meta-city': Buffer.from(city).toString('latin1'), authorization: `AWS ${env.alice.awsAccessKey}:${signature}` }
  // The body as bytes: a string body would go out in one UTF-8 write with the headers (see s3-cluster.ts).
  const put = await send('PUT', `/${B}/raw/utf8.txt`, sent, Buffer.from('utf8'))
  assert.is(put.status, 200, put.body)
  const get = await v2('GET', `/${B}/raw/utf8.txt`)
  assert.is(Buffer.from(String(get.headers['x-amz-meta-city']), 'latin1').toString('utf8'), city)
})

test('presigned, botocore style: a non-ASCII x-amz-meta-* value moved into the query verifies as the text it is', async () => {
  const city = 'Zürich 中文'
  // Signed over the text; sent percent-encoded in the query (HmacV1QueryAuth), no such header.
  const path = `/${B}/raw/query-meta.txt?x-amz-meta-city=${encodeURIComponent(city)}`
  const body = Buffer.from('q')
  const put = await send('PUT', presign('PUT', path, { resource: `/${B}/raw/query-meta.txt`, headers: { 'x-amz-meta-city': city } }), { 'content-length': '1' }, body)
  assert.is(put.status, 200, put.body)
})

test('a wrong secret or a tampered request is SignatureDoesNotMatch; an unknown key is InvalidAccessKeyId; malformed credentials are AccessDenied', async () => {
  const wrong = await v2('GET', `/${B}/raw/put.txt`, { secret: { awsAccessKey: env.alice.awsAccessKey, awsSecret: 'wrong' } })
  assert.is(wrong.status, 403)
  assert.is(code(wrong), 'SignatureDoesNotMatch')
  assert.is(code(await v2('GET', `/${B}/raw/put.txt`, { resource: `/${B}/raw/other.txt` })), 'SignatureDoesNotMatch')
  assert.is(code(await send('GET', `/${B}/raw/put.txt`, { date: new Date().toUTCString(), authorization: `AWS ${env.alice.awsAccessKey}:AAAAAAAAAAAAAAAAAAAAAAAAAAA=` })), 'SignatureDoesNotMatch')
  const unknown = await v2('GET', `/${B}/raw/put.txt`, { secret: { awsAccessKey: 'NOSUCHKEY', awsSecret: 'x' } })
  assert.is(unknown.status, 403)
  assert.is(code(unknown), 'InvalidAccessKeyId')
  const noColon = await send('GET', `/${B}/raw/put.txt`, { date: new Date().toUTCString(), authorization: 'AWS justakey' })
  assert.is(noColon.status, 403)
  assert.is(code(noColon), 'AccessDenied')
})

test('header auth: Date more than 15 minutes off is RequestTimeTooSkewed; x-amz-date replaces Date; no date is AccessDenied', async () => {
  const skewed = await v2('GET', `/${B}/raw/put.txt`, { date: new Date(Date.now() - 20 * 60_000) })
  assert.is(skewed.status, 403)
  assert.is(code(skewed), 'RequestTimeTooSkewed')
  // With x-amz-date the Date line is empty, and x-amz-date's time is the one checked.
  const amz = await v2('GET', `/${B}/raw/put.txt`, { date: new Date(Date.now() - 60 * 60_000), headers: { 'x-amz-date': new Date().toUTCString() } })
  assert.is(amz.status, 200, amz.body)
  const amzSkewed = await v2('GET', `/${B}/raw/put.txt`, { headers: { 'x-amz-date': new Date(Date.now() + 20 * 60_000).toUTCString() } })
  assert.is(code(amzSkewed), 'RequestTimeTooSkewed')
  const noDate = await send('GET', `/${B}/raw/put.txt`, { authorization: `AWS ${env.alice.awsAccessKey}:${sign(env.alice.awsSecret, `GET\n\n\n\n/${B}/raw/put.txt`)}` })
  assert.is(noDate.status, 403)
  assert.is(code(noDate), 'AccessDenied')
})

test('presigned: GET and PUT work; expired is AccessDenied "Request has expired"; a bad signature or missing Expires is refused', async () => {
  const get = await send('GET', presign('GET', `/${B}/raw/put.txt`), {})
  assert.is(get.status, 200, get.body)
  assert.is(get.body, 'signed with V2')
  const body = Buffer.from('presigned by hand')
  const put = await send('PUT', presign('PUT', `/${B}/raw/presigned.bin`, { headers: { 'content-type': 'application/x-test' } }), { 'content-type': 'application/x-test', 'content-length': String(body.length) }, body)
  assert.is(put.status, 200, put.body)
  assert.is((await v2('GET', `/${B}/raw/presigned.bin`)).body, 'presigned by hand')

  const expired = await send('GET', presign('GET', `/${B}/raw/put.txt`, { expiresS: Math.floor(Date.now() / 1000) - 10 }), {})
  assert.is(expired.status, 403)
  assert.match(expired.body, /<Code>AccessDenied<\/Code><Message>Request has expired/)
  const forged = await send('GET', presign('GET', `/${B}/raw/put.txt`, { secret: { awsAccessKey: env.alice.awsAccessKey, awsSecret: 'wrong' } }), {})
  assert.is(code(forged), 'SignatureDoesNotMatch')
  // Expires is signed: moving it forward breaks the signature.
  const url = presign('GET', `/${B}/raw/put.txt`)
  const later = url.replace(/Expires=(\d+)/, (_, s: string) => `Expires=${Number(s) + 3600}`)
  assert.is(code(await send('GET', later, {})), 'SignatureDoesNotMatch')
  const noExpires = await send('GET', url.replace(/&Expires=\d+/, ''), {})
  assert.is(noExpires.status, 403)
  assert.is(code(noExpires), 'AccessDenied')
  const unknown = await send('GET', presign('GET', `/${B}/raw/put.txt`, { secret: { awsAccessKey: 'NOSUCHKEY', awsSecret: 'x' } }), {})
  assert.is(code(unknown), 'InvalidAccessKeyId')
})

test('subresources are signed (?uploads, ?partNumber&uploadId, ?tagging), sorted and decoded; other parameters are not', async () => {
  const k = `/${B}/raw/mpu`
  // Signing the path alone while sending ?uploads must fail: the subresource is part of the resource.
  assert.is(code(await v2('POST', `${k}?uploads`, { resource: k })), 'SignatureDoesNotMatch')
  const created = await v2('POST', `${k}?uploads`)
  assert.is(created.status, 200, created.body)
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.body)![1]
  const enc = encodeURIComponent(uploadId)
  // Sent in reverse order, signed sorted (partNumber before uploadId) with values decoded.
  const part = await v2('PUT', `${k}?uploadId=${enc}&partNumber=1`, { resource: `${k}?partNumber=1&uploadId=${uploadId}`, body: 'only part' })
  assert.is(part.status, 200, part.body)
  const xml = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${String(part.headers.etag)}</ETag></Part></CompleteMultipartUpload>`
  const done = await v2('POST', `${k}?uploadId=${enc}`, { resource: `${k}?uploadId=${uploadId}`, body: xml })
  assert.is(done.status, 200, done.body)
  assert.is((await v2('GET', k)).body, 'only part')

  const tagging = '<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>'
  assert.is((await v2('PUT', `${k}?tagging`, { body: tagging })).status, 200)
  assert.match((await v2('GET', `${k}?tagging`)).body, /<Key>a<\/Key><Value>b<\/Value>/)
  assert.is(code(await v2('GET', `${k}?tagging`, { resource: k })), 'SignatureDoesNotMatch')

  // A response-* override is a subresource, signed decoded; list parameters are not signed.
  const typed = await v2('GET', `${k}?response-content-type=${encodeURIComponent('text/x; a=b')}`, { resource: `${k}?response-content-type=text/x; a=b` })
  assert.is(typed.status, 200, typed.body)
  assert.is(typed.headers['content-type'], 'text/x; a=b')
  const list = await v2('GET', `/${B}?prefix=raw%2Fm&max-keys=5`, { resource: `/${B}` })
  assert.is(list.status, 200, list.body)
  assert.match(list.body, /<Key>raw\/mpu<\/Key>/)
})

test('?uploads= is accepted signed as sent (botocore) or bare (minio-go)', async () => {
  const k = `/${B}/raw/empty-value`
  assert.is((await v2('POST', `${k}?uploads=`, { resource: `${k}?uploads=` })).status, 200)
  assert.is((await v2('POST', `${k}?uploads=`, { resource: `${k}?uploads` })).status, 200)
})

test('virtual-hosted-style: the bucket from the Host header starts the signed resource', async () => {
  const host = `${B}.${DOMAIN}:${port}`
  const body = 'virtual'
  const date = new Date().toUTCString()
  const put = await send('PUT', '/vhost.txt', { host, date, 'content-length': String(body.length), authorization: `AWS ${env.alice.awsAccessKey}:${sign(env.alice.awsSecret, `PUT\n\n\n${date}\n/${B}/vhost.txt`)}` }, body)
  assert.is(put.status, 200, put.body)
  assert.is((await v2('GET', `/${B}/vhost.txt`)).body, 'virtual')
  // Signed without the bucket, as if path-style: refused.
  const noBucket = await send('GET', '/vhost.txt', { host, date, authorization: `AWS ${env.alice.awsAccessKey}:${sign(env.alice.awsSecret, `GET\n\n\n${date}\n/vhost.txt`)}` })
  assert.is(code(noBucket), 'SignatureDoesNotMatch')
  const expires = String(Math.floor(Date.now() / 1000) + 60)
  const url = `/vhost.txt?AWSAccessKeyId=${env.alice.awsAccessKey}&Expires=${expires}&Signature=${encodeURIComponent(sign(env.alice.awsSecret, `GET\n\n\n${expires}\n/${B}/vhost.txt`))}`
  assert.is((await send('GET', url, { host })).body, 'virtual')
})

test.run()
