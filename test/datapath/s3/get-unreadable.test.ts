/**
 * Goal: a GET whose first bytes no replica can serve answers an S3 error the SDKs retry (500
 * InternalError for corrupt data, 503 ServiceUnavailable when no datanode answers), never a
 * 200 with a cut body; a failure later in the body, after the status line, is logged and
 * counted by the gateway.
 * Method: a real gateway over a one-datanode mini cluster; flip bytes of block files on the
 * datanode's disk (the only replica), then stop the datanode. The SDK retries nothing
 * (maxAttempts 1), so that each answer is seen as sent.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { closeSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { S3Client, PutObjectCommand, GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3'
import { blockFile } from '../../../datapath/datanode/index.ts'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { errorOf, type S3TestCluster, startWithBucket, stopWithBucket } from './s3-cluster.ts'

const MiB = 1024 * 1024
const B = 'unreadable'
let env: S3TestCluster
let s3: S3Client

/** Overwrites bytes at `offset` of every block file of the object on the datanode's disk. */
async function corrupt(key: string, offset: number): Promise<void> {
  const info = await env.cluster.client().headKey('s3v', B, key)
  const dn = env.cluster.datanodes[0]!
  const loc = info.locations.find((l) => l.offset <= offset && offset < l.offset + l.length)!
  const fd = openSync(blockFile(join(env.cluster.options.dataDir, 'datanode-1'), dn.clusterId, loc.blockId.containerId, loc.blockId.localId), 'r+')
  try { writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, offset - loc.offset) } finally { closeSync(fd) }
}

async function bodyFailures(): Promise<number> {
  const m = /^o3_s3g_body_failures_total(?:\{[^}]*\})? (\d+)$/m.exec(await env.gateway.metrics.text())
  return m === null ? -1 : Number(m[1])
}

test.before(async () => { ({ env, s3 } = await startWithBucket(B)) })
test.after(() => stopWithBucket({ env, s3 }))

test('GetObject of an object whose first chunk is corrupt on every replica answers 500 InternalError, not 200', async () => {
  const body = randomBytes(3 * MiB, 1)
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'bad-head', Body: body }))
  await corrupt('bad-head', 1000)
  const e = await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'bad-head' })))
  assert.equal([e.name, e.status], ['InternalError', 500])
  assert.type(e.requestId, 'string')
  // Metadata is still readable, and so is a range that avoids the bad bytes.
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'bad-head' }))).ContentLength, body.length)
  const tail = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'bad-head', Range: `bytes=${2 * MiB}-` }))
  assert.ok(Buffer.from(await tail.Body!.transformToByteArray()).equals(body.subarray(2 * MiB)))
  assert.is(await bodyFailures(), 0)
})

test('a read that fails after the status line cuts the body, and the gateway logs and counts it', async () => {
  // Three 4 MiB chunks: the first reads, the last is corrupt.
  const body = randomBytes(12 * MiB, 2)
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'bad-tail', Body: body }))
  await corrupt('bad-tail', 10 * MiB)
  const r = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'bad-tail' }))
  assert.is(r.$metadata.httpStatusCode, 200)
  let got: Uint8Array | undefined
  try { got = await r.Body!.transformToByteArray() } catch { /* the connection was cut */ }
  assert.ok(got === undefined || !Buffer.from(got).equals(body), 'a cut body must not pass for the object')
  assert.is(await bodyFailures(), 1)
})

test('GetObject while no datanode answers is 503 ServiceUnavailable, not 200', async () => {
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'small', Body: 'tiny object' }))
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'large', Body: randomBytes(2 * MiB, 3) }))
  await env.cluster.stopDatanode(0)
  for (const key of ['small', 'large']) {
    const e = await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: key })))
    assert.equal([e.name, e.status], ['ServiceUnavailable', 503], key)
  }
  // HEAD reads no data: it still answers.
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'small' }))).ContentLength, 11)
})

test.run()
