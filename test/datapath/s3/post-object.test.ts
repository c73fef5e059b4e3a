/**
 * Goal: a browser-based upload (PostObject: an HTML form, boto3's generate_presigned_post),
 * which the gateway does not support, is told so: NotImplemented (501), as README promises
 * for anything unsupported, rather than AccessDenied "Anonymous requests are denied" (its
 * signature is in the form body, where header authentication cannot see it); nothing is
 * written. Other unsigned requests to the bucket are still refused as anonymous.
 * Method: a real gateway over a mini cluster; the multipart form boto3 sends, over
 * node:http; the bucket made and listed with @aws-sdk/client-s3.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { request } from 'node:http'
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { startS3Cluster, type S3TestCluster } from './s3-cluster.ts'

let env: S3TestCluster
let s3: S3Client
const B = 'post-form'

function post(path: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  const url = new URL(env.endpoint)
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path, headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString() }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

test.before(async () => {
  env = await startS3Cluster()
  s3 = new S3Client({ endpoint: env.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: env.alice.awsAccessKey, secretAccessKey: env.alice.awsSecret } })
  await s3.send(new CreateBucketCommand({ Bucket: B }))
})

test.after(async () => {
  s3.destroy()
  await env.dispose()
})

test('a PostObject form upload answers NotImplemented and writes nothing', async () => {
  const boundary = 'b0undary'
  const fields: Record<string, string> = {
    key: 'posted.txt', AWSAccessKeyId: env.alice.awsAccessKey,
    policy: Buffer.from(JSON.stringify({ expiration: '2099-01-01T00:00:00Z', conditions: [{ bucket: B }, { key: 'posted.txt' }] })).toString('base64'),
    signature: 'c2lnbmF0dXJl',
  }
  const body = Object.entries(fields).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('') +
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.txt"\r\nContent-Type: text/plain\r\n\r\nposted\r\n--${boundary}--\r\n`
  const r = await post(`/${B}`, { 'content-type': `multipart/form-data; boundary=${boundary}` }, body)
  assert.is(r.status, 501)
  assert.match(r.body, '<Code>NotImplemented</Code>')
  assert.match(r.body, 'PostObject')
  const list = await s3.send(new ListObjectsV2Command({ Bucket: B }))
  assert.is(list.KeyCount, 0)
})

test('an unsigned DeleteObjects or other POST is still refused as anonymous', async () => {
  const del = await post(`/${B}?delete`, { 'content-type': 'application/xml' }, '<Delete><Object><Key>k</Key></Object></Delete>')
  assert.is(del.status, 403)
  assert.match(del.body, '<Code>AccessDenied</Code>')
  const other = await post(`/${B}`, { 'content-type': 'application/octet-stream' }, 'x')
  assert.is(other.status, 403)
})

test.run()
