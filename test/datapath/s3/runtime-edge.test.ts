/**
 * Goal: what the gateway learns from the runtime beyond the web Request is the same on Node
 * and Deno (a Deno deployment found it was not): a bucket policy's aws:SourceIp sees the
 * client's address (a Deny by address denies, an Allow by address allows), aws:SecureTransport
 * and an upload's Location see HTTPS; and stopping a gateway lets the transfers in flight
 * finish (a GET streaming out, a PUT still arriving) and turns new requests away with a 503.
 * Method: a real gateway over a mini cluster, on HTTP and on HTTPS (a CA from
 * core/security/pki.ts), the AWS SDK and raw signed requests; run by Node and by Deno
 * (deno task test:s3-runtime).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import {
  CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand, PutBucketPolicyCommand, PutObjectCommand,
  S3Client, UploadPartCommand,
} from '@aws-sdk/client-s3'
import { SignatureV4 } from '@smithy/signature-v4'
import { Hash } from '@smithy/hash-node'
import { createRootCa, generateKeyPair, issueCertificate } from '../../../core/security/pki.ts'
import { S3Gateway, S3_VOLUME } from '../../../datapath/s3/index.ts'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { errorOf, s3Client, startS3Cluster, type S3TestCluster } from './s3-cluster.ts'

const B = 'runtime-edge'
const MiB = 1024 * 1024
let env: S3TestCluster
let s3: S3Client
const dir = mkdtempSync(join(tmpdir(), 'o3-runtime-edge-'))

test.before(async () => {
  env = await startS3Cluster()
  s3 = s3Client(env, env.alice, { maxAttempts: 1 })
  await s3.send(new CreateBucketCommand({ Bucket: B }))
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'k', Body: 'hello' }))
})
test.after(async () => {
  s3.destroy()
  await env.dispose()
  rmSync(dir, { recursive: true, force: true })
})

const policy = (effect: 'Allow' | 'Deny', condition: Record<string, unknown>, action = 's3:GetObject') => JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: effect, Principal: '*', Action: action, Resource: [`arn:aws:s3:::${B}`, `arn:aws:s3:::${B}/*`], Condition: condition }],
})

/** A gateway of its own over the same cluster (one a test may stop), on HTTPS with `tls`. */
async function ownGateway(tls?: { cert: string; key: string }): Promise<S3Gateway> {
  const config = tls === undefined ? env.cluster.config : { ...env.cluster.config, 's3g.https': 1, 's3g.https.cert': tls.cert, 's3g.https.key': tls.key }
  const gateway = new S3Gateway({ config, omAddress: env.cluster.omAddress, scmAddress: env.cluster.scmAddress, port: 0 })
  await gateway.start()
  return gateway
}

test('aws:SourceIp sees the client address: a Deny by address denies the owner, an Allow by address admits anyone', async () => {
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: policy('Deny', { IpAddress: { 'aws:SourceIp': '127.0.0.0/8' } }) }))
  const denied = await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'k' })))
  assert.equal([denied.name, denied.status], ['AccessDenied', 403])
  // The same rule for other addresses leaves the owner alone.
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: policy('Deny', { NotIpAddress: { 'aws:SourceIp': '127.0.0.0/8' } }) }))
  assert.is(await (await s3.send(new GetObjectCommand({ Bucket: B, Key: 'k' }))).Body!.transformToString(), 'hello')
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: policy('Allow', { IpAddress: { 'aws:SourceIp': '127.0.0.0/8' } }) }))
  const anonymous = await fetch(`${env.endpoint}/${B}/k`)
  assert.is(anonymous.status, 200)
  assert.is(await anonymous.text(), 'hello')
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: policy('Allow', { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } }) }))
  const elsewhere = await fetch(`${env.endpoint}/${B}/k`)
  assert.is(elsewhere.status, 403)
  await elsewhere.body?.cancel()
})

test('over HTTPS aws:SecureTransport is true and an upload is located at https://; over HTTP it is false', async () => {
  const now = Date.now()
  const ca = await createRootCa({ clusterId: 'CID-runtime-edge', nowMs: now, validityMs: 3600_000 })
  const keys = await generateKeyPair()
  const cert = await issueCertificate({ ca: { cert: ca.cert, privateKey: ca.privateKey }, publicKey: keys.publicKey, identity: { role: 's3g', id: 's3g-edge' }, hosts: ['127.0.0.1', 'localhost'], nowMs: now, validityMs: 3600_000 })
  const certFile = join(dir, 's3g.crt'), keyFile = join(dir, 's3g.key')
  writeFileSync(certFile, cert)
  writeFileSync(keyFile, keys.privateKey)
  const gateway = await ownGateway({ cert: certFile, key: keyFile })
  const secure = new S3Client({
    endpoint: gateway.endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: env.alice.awsAccessKey, secretAccessKey: env.alice.awsSecret },
    requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca: ca.cert }) }),
  })
  try {
    assert.ok(gateway.endpoint.startsWith('https://'), gateway.endpoint)
    await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: policy('Deny', { Bool: { 'aws:SecureTransport': 'false' } }, 's3:*') }))
    assert.is(await (await secure.send(new GetObjectCommand({ Bucket: B, Key: 'k' }))).Body!.transformToString(), 'hello')
    assert.is((await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'k' })))).name, 'AccessDenied')
    const upload = await secure.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mp' }))
    const part = await secure.send(new UploadPartCommand({ Bucket: B, Key: 'mp', UploadId: upload.UploadId, PartNumber: 1, Body: 'part' }))
    const done = await secure.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: 'mp', UploadId: upload.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }))
    assert.ok(done.Location?.startsWith('https://'), done.Location)
    await secure.send(new PutBucketPolicyCommand({ Bucket: B, Policy: policy('Allow', { Bool: { 'aws:SecureTransport': 'true' } }) }))
  } finally {
    secure.destroy()
    await gateway.stop()
  }
})

/** A SigV4-signed (UNSIGNED-PAYLOAD) request to `gateway` as alice. */
async function signed(gateway: S3Gateway, method: string, path: string, headers: Record<string, string> = {}): Promise<Record<string, string>> {
  const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: env.alice.awsAccessKey, secretAccessKey: env.alice.awsSecret }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false })
  const port = gateway.port
  const r = await signer.sign({ method, protocol: 'http:', hostname: '127.0.0.1', port, path, query: {}, headers: { host: `127.0.0.1:${port}`, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...headers } }, {})
  return r.headers
}

test('stopping a gateway lets a GET streaming out finish and turns new requests away', async () => {
  const large = randomBytes(24 * MiB)
  await env.cluster.client().putKey(S3_VOLUME, B, 'large', large)
  const gateway = await ownGateway()
  const base = `http://127.0.0.1:${gateway.port}`
  // The GET has its status line and a first piece when the gateway starts stopping.
  const get = await fetch(`${base}/${B}/large`, { headers: await signed(gateway, 'GET', `/${B}/large`) })
  assert.is(get.status, 200)
  const reader = get.body!.getReader()
  const pieces: Uint8Array[] = [(await reader.read()).value!]
  const stopping = gateway.stop()
  // A new request meanwhile is not served: Node stopped listening; Deno, still listening while
  // it drains, answers S3's 503.
  const late = await fetch(`${base}/${B}/k`, { headers: { connection: 'close' } }).then(async (r) => `${r.status} ${/<Code>(\w+)<\/Code>/.exec(await r.text())?.[1]}`, () => 'refused')
  assert.is(late, 'Deno' in globalThis ? '503 ServiceUnavailable' : 'refused')
  // The reader goes on, a turn of the event loop per piece.
  for (;;) {
    await new Promise((r) => setImmediate(r))
    const next = await reader.read()
    if (next.done) break
    pieces.push(next.value)
  }
  assert.ok(Buffer.concat(pieces).equals(large), 'the GET in flight got the whole object')
  await stopping
})

// Node counted a request until its handler returned before too; this one guards Deno, whose
// shutdown() made the bodies of requests still arriving unreadable.
test('stopping a gateway lets a PUT whose body is still arriving finish', async () => {
  const gateway = await ownGateway()
  // The PUT's headers are out and its body comes in pieces over about half a second.
  const body = randomBytes(4 * MiB)
  let sent = 0
  const putHeaders = await signed(gateway, 'PUT', `/${B}/arriving`, { 'content-length': String(body.length) })
  const put = new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: gateway.port, method: 'PUT', path: `/${B}/arriving`, headers: putHeaders }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => { text += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode!, text }))
    })
    req.on('error', reject)
    const next = () => {
      if (sent >= body.length) { req.end(); return }
      req.write(body.subarray(sent, sent + 512 * 1024))
      sent += 512 * 1024
      setTimeout(next, 60)
    }
    next()
  })
  while (sent < 1024 * 1024) await new Promise((r) => setTimeout(r, 10))
  const stopping = gateway.stop()
  const answer = await put
  assert.is(answer.status, 200, answer.text)
  await stopping
  assert.ok((await env.cluster.client().getKey(S3_VOLUME, B, 'arriving')).equals(body), 'the PUT in flight stored the whole object')
})

test.run()
