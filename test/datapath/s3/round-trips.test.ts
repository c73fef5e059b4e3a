/**
 * Goal: a small S3 object costs few internal round trips. A 4 KiB PutObject makes two OM
 * calls (s3Authenticate, in which the OM verifies the signature, reads the bucket and opens
 * the key with its first block, then commitKey; an UploadPart likewise, its upload's record
 * read in the first) and one datanode request (the chunk written and
 * its block committed together), a create-only one (If-None-Match: *) no more; a 4 KiB
 * GetObject one OM call and one datanode request; HeadObject one OM call. The one lookup
 * caches nothing: a revoked key, a deleted bucket and a bucket that changed owner are seen by
 * the very next request, with the same error as before. Method: a real gateway over a mini
 * cluster of one datanode; each service's own Prometheus counters
 * (o3_<service>_rpc_requests_total by method, on GET /prom) read before and after each
 * request.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  S3Client, AbortMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, UploadPartCommand, DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand,
} from '@aws-sdk/client-s3'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { errorOf, startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

let env: S3TestCluster
let s3: S3Client
let other: S3Client

function sdk(secret: { awsAccessKey: string; awsSecret: string }): S3Client {
  return s3Client(env, secret)
}

/** RPC requests served so far, by method, summed over result codes, from one service's /prom. */
async function rpcCounts(address: string): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${address}/prom`)).text()
  const counts = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^o3_\w+_rpc_requests_total\{([^}]*)\} (\d+)$/.exec(line)
    if (m === null) continue
    const method = /method="([^"]*)"/.exec(m[1])?.[1] ?? '?'
    counts.set(method, (counts.get(method) ?? 0) + Number(m[2]))
  }
  return counts
}

interface Calls { om: Map<string, number>; datanode: Map<string, number> }

/** The OM and datanode RPCs (by method) that `run` caused. */
async function callsOf(run: () => Promise<unknown>): Promise<Calls> {
  const addresses = () => env.cluster.datanodes.flatMap((d) => d === undefined ? [] : [d.address])
  const snapshot = async () => ({ om: await rpcCounts(env.cluster.omAddress), datanode: await Promise.all(addresses().map(rpcCounts)) })
  const before = await snapshot()
  await run()
  const after = await snapshot()
  const diff = (a: Map<string, number>, b: Map<string, number>, into: Map<string, number>) => {
    for (const [k, v] of a) if (v - (b.get(k) ?? 0) > 0) into.set(k, (into.get(k) ?? 0) + v - (b.get(k) ?? 0))
  }
  const om = new Map<string, number>()
  diff(after.om, before.om, om)
  const datanode = new Map<string, number>()
  after.datanode.forEach((c, i) => diff(c, before.datanode[i] ?? new Map(), datanode))
  return { om, datanode }
}

/** The OM's open keys (its o3_om_open_keys gauge): every early open is written or aborted before the response. */
async function openKeys(): Promise<number> {
  return Number(/^o3_om_open_keys(?:\{[^}]*\})? (\d+)/m.exec(await env.cluster.om.metrics.text())?.[1] ?? -1)
}

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0)
const show = (c: Calls) => `OM ${JSON.stringify(Object.fromEntries(c.om))}, datanode ${JSON.stringify(Object.fromEntries(c.datanode))}`

test.before(async () => {
  env = await startS3Cluster()
  s3 = sdk(env.alice)
  other = sdk(env.bob)
  await s3.send(new CreateBucketCommand({ Bucket: 'small' }))
  // The first write warms what is set up once (the container on the datanode, the OM's batch of blocks).
  await s3.send(new PutObjectCommand({ Bucket: 'small', Key: 'warm', Body: randomBytes(4096) }))
})

test.after(async () => {
  s3.destroy(); other.destroy()
  await env.dispose()
})

test('PutObject of 4 KiB: three OM calls (lookup, openKey with its block, commitKey) and one datanode request', async () => {
  const body = randomBytes(4096)
  const calls = await callsOf(() => s3.send(new PutObjectCommand({ Bucket: 'small', Key: 'k4', Body: body })))
  assert.ok(total(calls.om) <= 3, show(calls))
  assert.is(calls.om.get('allocateBlock'), undefined, show(calls))
  assert.is(total(calls.datanode), 1, show(calls))
  // Over HTTP, or short-circuit from this process's gateway (local-datanodes.ts): one either way.
  assert.is((calls.datanode.get('writeChunk') ?? 0) + (calls.datanode.get('writeChunkLocal') ?? 0), 1, show(calls))
})

test('PutObject of 4 KiB: two OM calls (s3Authenticate that opens the key, commitKey)', async () => {
  const calls = await callsOf(() => s3.send(new PutObjectCommand({ Bucket: 'small', Key: 'k2', Body: randomBytes(4096) })))
  assert.is(total(calls.om), 2, show(calls))
  assert.is(calls.om.get('s3Authenticate'), 1, show(calls))
  assert.is(calls.om.get('commitKey'), 1, show(calls))
  const once = await callsOf(() => s3.send(new PutObjectCommand({ Bucket: 'small', Key: 'once2', Body: randomBytes(4096), IfNoneMatch: '*' })))
  assert.is(total(once.om), 2, show(once))
})

test('UploadPart of 4 KiB: two OM calls (s3Authenticate that reads the upload and opens the part, commitKey)', async () => {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'small', Key: 'mp' }))
  const calls = await callsOf(() => s3.send(new UploadPartCommand({ Bucket: 'small', Key: 'mp', UploadId, PartNumber: 1, Body: randomBytes(4096) })))
  assert.is(total(calls.om), 2, show(calls))
  assert.is(calls.om.get('s3Authenticate'), 1, show(calls))
  await s3.send(new AbortMultipartUploadCommand({ Bucket: 'small', Key: 'mp', UploadId }))
  const gone = await errorOf(s3.send(new UploadPartCommand({ Bucket: 'small', Key: 'mp', UploadId, PartNumber: 2, Body: 'x' })))
  assert.is(gone.name, 'NoSuchUpload')
  assert.is(await openKeys(), 0)
})

test('PutObject with a wrong signature: SignatureDoesNotMatch after one OM call, which opened nothing', async () => {
  const forger = sdk({ awsAccessKey: env.alice.awsAccessKey, awsSecret: 'not-the-secret' })
  try {
    let e: { name: string; status?: number } | undefined
    const calls = await callsOf(async () => { e = await errorOf(forger.send(new PutObjectCommand({ Bucket: 'small', Key: 'forged', Body: randomBytes(4096) }))) })
    assert.is(e!.name, 'SignatureDoesNotMatch')
    assert.is(e!.status, 403)
    assert.is(total(calls.om), 1, show(calls))
    assert.is(await openKeys(), 0)
    assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: 'small', Key: 'forged' })))).name, 'NotFound')
  } finally {
    forger.destroy()
  }
})

test('PutObject refused by its handler after the early open (bad Content-MD5): the open key is aborted', async () => {
  const e = await errorOf(s3.send(new PutObjectCommand({ Bucket: 'small', Key: 'md5', Body: 'abc', ContentMD5: 'not-an-md5' })))
  assert.is(e.name, 'InvalidDigest')
  assert.is(await openKeys(), 0)
})

test('PutObject with If-None-Match: * costs no OM call more than a plain PUT; on an existing key 412 after one', async () => {
  const body = randomBytes(4096)
  const calls = await callsOf(() => s3.send(new PutObjectCommand({ Bucket: 'small', Key: 'once', Body: body, IfNoneMatch: '*' })))
  assert.ok(total(calls.om) <= 3, show(calls))
  assert.is(total(calls.datanode), 1, show(calls))
  let e: { name: string; status?: number } | undefined
  const again = await callsOf(async () => { e = await errorOf(s3.send(new PutObjectCommand({ Bucket: 'small', Key: 'once', Body: body, IfNoneMatch: '*' }))) })
  assert.is(e!.status, 412)
  assert.is(total(again.om), 1, show(again))
  assert.is(total(again.datanode), 0, show(again))
})

test('GetObject of 4 KiB: one OM call and one datanode request', async () => {
  const body = randomBytes(4096)
  await s3.send(new PutObjectCommand({ Bucket: 'small', Key: 'g4', Body: body }))
  let got: Uint8Array | undefined
  const calls = await callsOf(async () => { got = await (await s3.send(new GetObjectCommand({ Bucket: 'small', Key: 'g4' }))).Body!.transformToByteArray() })
  assert.ok(Buffer.from(got!).equals(body))
  assert.is(total(calls.om), 1, show(calls))
  assert.is(total(calls.datanode), 1, show(calls))
})

test('HeadObject: one OM call, no datanode request', async () => {
  const calls = await callsOf(() => s3.send(new HeadObjectCommand({ Bucket: 'small', Key: 'k4' })))
  assert.is(total(calls.om), 1, show(calls))
  assert.is(total(calls.datanode), 0, show(calls))
})

test('GetObject of a missing key: NoSuchKey after one OM call', async () => {
  let e: { name: string; status?: number } | undefined
  const calls = await callsOf(async () => { e = await errorOf(s3.send(new GetObjectCommand({ Bucket: 'small', Key: 'nosuch' }))) })
  assert.is(e!.name, 'NoSuchKey')
  assert.is(e!.status, 404)
  assert.is(total(calls.om), 1, show(calls))
})

test("another user's bucket: AccessDenied after one OM call, whose key is never read", async () => {
  let get: { name: string; status?: number } | undefined, put: { name: string; status?: number } | undefined
  const calls = await callsOf(async () => { get = await errorOf(other.send(new GetObjectCommand({ Bucket: 'small', Key: 'k4' }))) })
  put = await errorOf(other.send(new PutObjectCommand({ Bucket: 'small', Key: 'x', Body: 'x' })))
  assert.is(get!.name, 'AccessDenied')
  assert.is(get!.status, 403)
  assert.is(put.name, 'AccessDenied')
  assert.is(total(calls.om), 1, show(calls))
})

test('a revoked access key is refused by the very next request (InvalidAccessKeyId)', async () => {
  const client = env.cluster.client()
  const carol = await client.getS3Secret('carol')
  const s3c = sdk(carol)
  try {
    await s3c.send(new CreateBucketCommand({ Bucket: 'carols' }))
    await s3c.send(new PutObjectCommand({ Bucket: 'carols', Key: 'k', Body: 'v' }))
    await client.revokeS3Secret('carol')
    let get: { name: string; status?: number } | undefined
    const calls = await callsOf(async () => { get = await errorOf(s3c.send(new GetObjectCommand({ Bucket: 'carols', Key: 'k' }))) })
    assert.is(get!.name, 'InvalidAccessKeyId')
    assert.is(get!.status, 403)
    assert.is(total(calls.om), 1, show(calls))
    assert.is((await errorOf(s3c.send(new PutObjectCommand({ Bucket: 'carols', Key: 'k2', Body: 'v' })))).name, 'InvalidAccessKeyId')
  } finally {
    s3c.destroy()
  }
})

test('a deleted bucket is seen by the very next request (NoSuchBucket), after one OM call', async () => {
  await s3.send(new CreateBucketCommand({ Bucket: 'doomed' }))
  await s3.send(new PutObjectCommand({ Bucket: 'doomed', Key: 'k', Body: 'v' }))
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: 'doomed', Key: 'k' }))).ContentLength, 1)
  await s3.send(new DeleteObjectCommand({ Bucket: 'doomed', Key: 'k' }))
  await s3.send(new DeleteBucketCommand({ Bucket: 'doomed' }))
  let get: { name: string; status?: number } | undefined, put: { name: string; status?: number } | undefined
  const calls = await callsOf(async () => {
    get = await errorOf(s3.send(new GetObjectCommand({ Bucket: 'doomed', Key: 'k' })))
    put = await errorOf(s3.send(new PutObjectCommand({ Bucket: 'doomed', Key: 'k', Body: 'v' })))
  })
  assert.is(get!.name, 'NoSuchBucket')
  assert.is(get!.status, 404)
  assert.is(put!.name, 'NoSuchBucket')
  assert.is(total(calls.om), 2, show(calls))
})

test('a bucket deleted and created again by another user answers AccessDenied at once', async () => {
  await s3.send(new CreateBucketCommand({ Bucket: 'handed' }))
  await s3.send(new PutObjectCommand({ Bucket: 'handed', Key: 'k', Body: 'v' }))
  await s3.send(new DeleteObjectCommand({ Bucket: 'handed', Key: 'k' }))
  await s3.send(new DeleteBucketCommand({ Bucket: 'handed' }))
  await other.send(new CreateBucketCommand({ Bucket: 'handed' }))
  assert.is((await errorOf(s3.send(new PutObjectCommand({ Bucket: 'handed', Key: 'k', Body: 'v' })))).name, 'AccessDenied')
  await other.send(new PutObjectCommand({ Bucket: 'handed', Key: 'k', Body: 'bob' }))
  assert.is((await errorOf(s3.send(new GetObjectCommand({ Bucket: 'handed', Key: 'k' })))).name, 'AccessDenied')
  const got = await (await other.send(new GetObjectCommand({ Bucket: 'handed', Key: 'k' }))).Body!.transformToString()
  assert.is(got, 'bob')
})

test.run()
