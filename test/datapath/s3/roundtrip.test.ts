/**
 * Goal: an S3 round trip (create bucket, PUT, GET, LIST, DELETE) on whichever runtime runs
 * this file: Node in `npm test`, Deno in `deno task test:s3` (cluster and gateway started
 * in-process from the TypeScript sources). Method: plain fetch calls signed with
 * @smithy/signature-v4, so that nothing but web APIs touch the gateway.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { SignatureV4 } from '@smithy/signature-v4'
import { Hash } from '@smithy/hash-node'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { startS3Cluster, type S3TestCluster } from './s3-cluster.ts'

let env: S3TestCluster
let signer: SignatureV4

async function s3(method: string, path: string, body?: Uint8Array): Promise<Response> {
  const url = new URL(path, env.endpoint)
  const query: Record<string, string> = {}
  url.searchParams.forEach((v, k) => { query[k] = v })
  const headers: Record<string, string> = { host: url.host, 'x-amz-content-sha256': createHash('sha256').update(body ?? new Uint8Array(0)).digest('hex') }
  const signed = await signer.sign({ method, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, query, headers, body })
  return fetch(url, { method, headers: signed.headers as Record<string, string>, body: body as BodyInit | undefined })
}

test.before(async () => {
  env = await startS3Cluster()
  signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: env.alice.awsAccessKey, secretAccessKey: env.alice.awsSecret }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false })
})

test.after(async () => { await env.dispose() })

test('PUT bucket, PUT object, GET, LIST, DELETE round-trip', async () => {
  assert.is((await s3('PUT', '/roundtrip')).status, 200)
  const body = randomBytes(1024 * 1024 + 17, 1)
  const put = await s3('PUT', '/roundtrip/some/key.bin', body)
  assert.is(put.status, 200)
  assert.is(put.headers.get('etag'), `"${createHash('md5').update(body).digest('hex')}"`)
  const get = await s3('GET', '/roundtrip/some/key.bin')
  assert.is(get.status, 200)
  assert.ok(Buffer.from(await get.arrayBuffer()).equals(body))
  const list = await (await s3('GET', '/roundtrip?list-type=2&prefix=some%2F')).text()
  assert.match(list, '<Key>some/key.bin</Key>')
  assert.match(list, `<Size>${body.length}</Size>`)
  assert.is((await s3('DELETE', '/roundtrip/some/key.bin')).status, 204)
  const gone = await s3('GET', '/roundtrip/some/key.bin')
  assert.is(gone.status, 404)
  assert.match(await gone.text(), '<Code>NoSuchKey</Code>')
  assert.is((await s3('DELETE', '/roundtrip')).status, 204)
})

test.run()
