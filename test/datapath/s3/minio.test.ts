/**
 * Goal: the gateway works with a second, independent S3 client, MinIO's JavaScript SDK (its
 * own signer, XML parser and multipart logic). Method: a real gateway over a mini cluster;
 * buckets, objects, ranges, listing, multipart, copy, tagging, presigned URLs, errors.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { Client, CopyConditions, CopySourceOptions, CopyDestinationOptions } from 'minio'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { startS3Cluster, type S3TestCluster } from './s3-cluster.ts'

let env: S3TestCluster
let mc: Client
const B = 'minio-bucket'
const MiB = 1024 * 1024

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const p of stream) parts.push(p as Buffer)
  return Buffer.concat(parts)
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try { await p } catch (err) { return (err as { code?: string }).code ?? String(err) }
  return 'OK'
}

test.before(async () => {
  env = await startS3Cluster()
  mc = new Client({ endPoint: '127.0.0.1', port: env.gateway.port, useSSL: false, accessKey: env.alice.awsAccessKey, secretKey: env.alice.awsSecret, region: 'us-east-1', pathStyle: true, partSize: 5 * MiB })
})

test.after(async () => { await env.dispose() })

test('makeBucket, bucketExists, listBuckets, removeBucket', async () => {
  await mc.makeBucket(B, 'us-east-1')
  await mc.makeBucket('minio-gone', 'us-east-1')
  assert.ok(await mc.bucketExists(B))
  assert.equal((await mc.listBuckets()).map((b) => b.name), [B, 'minio-gone'])
  await mc.removeBucket('minio-gone')
  assert.is(await mc.bucketExists('minio-gone'), false)
  assert.is(await codeOf(mc.removeBucket('minio-gone')), 'NoSuchBucket')
})

test('putObject, statObject, getObject, getPartialObject with metadata', async () => {
  const body = randomBytes(200_000, 5)
  const r = await mc.putObject(B, 'obj', body, body.length, { 'Content-Type': 'text/plain', 'X-Amz-Meta-Owner': 'me' })
  assert.is(r.etag, createHash('md5').update(body).digest('hex'))
  const stat = await mc.statObject(B, 'obj')
  assert.is(stat.size, body.length)
  assert.is(stat.metaData['content-type'], 'text/plain')
  assert.is(stat.metaData.owner, 'me')
  assert.ok((await readAll(await mc.getObject(B, 'obj'))).equals(body))
  assert.ok((await readAll(await mc.getPartialObject(B, 'obj', 100, 50))).equals(body.subarray(100, 150)))
  assert.is(await codeOf(mc.statObject(B, 'missing')), 'NotFound')
  assert.is(await codeOf(mc.getObject(B, 'missing')), 'NoSuchKey')
})

test('multipart putObject of 12 MiB, listObjectsV2 with prefix and delimiter, removeObjects', async () => {
  const big = randomBytes(12 * MiB, 12)
  const r = await mc.putObject(B, 'dir/big', big, big.length)
  assert.match(r.etag, /-\d+$/, 'uploaded in parts')
  assert.ok((await readAll(await mc.getObject(B, 'dir/big'))).equals(big))
  await mc.putObject(B, 'dir/sub/a', 'a')
  await mc.putObject(B, 'dir/b', 'b')
  const listed: string[] = []
  for await (const o of mc.listObjectsV2(B, 'dir/', false)) listed.push((o as { name?: string; prefix?: string }).name ?? `prefix:${(o as { prefix: string }).prefix}`)
  assert.equal(listed.sort(), ['dir/b', 'dir/big', 'prefix:dir/sub/'])
  const recursive: string[] = []
  for await (const o of mc.listObjects(B, 'dir/', true)) recursive.push((o as { name: string }).name)
  assert.equal(recursive, ['dir/b', 'dir/big', 'dir/sub/a'])
  await mc.removeObjects(B, ['dir/b', 'dir/sub/a'])
  await mc.removeObject(B, 'dir/big')
  const left: string[] = []
  for await (const o of mc.listObjectsV2(B, 'dir/', true)) left.push((o as { name: string }).name)
  assert.equal(left, [])
})

test('copyObject with conditions, tagging, presigned GET and PUT', async () => {
  await mc.putObject(B, 'src', 'copy me', 7)
  const conds = new CopyConditions()
  conds.setMatchETagExcept('"nope"')
  await mc.copyObject(B, 'dst', `/${B}/src`, conds)
  assert.is((await readAll(await mc.getObject(B, 'dst'))).toString(), 'copy me')
  await mc.copyObject(new CopySourceOptions({ Bucket: B, Object: 'src' }), new CopyDestinationOptions({ Bucket: B, Object: 'dst2', MetadataDirective: 'REPLACE', UserMetadata: { k: 'v' } }))
  assert.is((await mc.statObject(B, 'dst2')).metaData.k, 'v')
  await mc.setObjectTagging(B, 'dst', { team: 'storage' })
  const tags = await mc.getObjectTagging(B, 'dst')
  assert.equal(tags.map((t: { Key: string; Value: string }) => [t.Key, t.Value]), [['team', 'storage']])
  await mc.removeObjectTagging(B, 'dst', { versionId: '' })
  const putUrl = await mc.presignedPutObject(B, 'presigned', 60)
  assert.is((await fetch(putUrl, { method: 'PUT', body: 'from url' })).status, 200)
  const getUrl = await mc.presignedGetObject(B, 'presigned', 60)
  assert.is(await (await fetch(getUrl)).text(), 'from url')
})

test.run()
