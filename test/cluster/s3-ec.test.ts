/**
 * Goal: an S3 user's view of erasure-coded buckets. Objects PUT into an EC bucket (rs-3-2
 * with 1 MiB cells, xor-2-1 with 64 KiB cells) are EC and read back byte for byte, whole and
 * ranged, around cell, stripe and block group ends; HEAD answers their size and MD5 ETag;
 * CopyObject copies into and out of an EC bucket (the copy takes its bucket's replication);
 * a multipart upload into an EC bucket stores EC parts (k + m nodes each) and completes into
 * an EC object that reads back whole, ranged and by part, with copied parts too; a bucket
 * whose scheme needs more datanodes than there are answers 503 and stores nothing; with two
 * of the five datanodes stopped every object still reads right.
 * Method: a real mini cluster of five datanodes (2 MiB blocks, so an rs-3-2-1024k group holds
 * 6 MiB and a few-MiB object spans groups) and an S3 gateway, driven by the AWS SDK; the
 * native client checks what was stored (headKey: replication, block groups, k + m nodes).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import {
  CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand,
  ListPartsCommand, PutObjectCommand, S3Client, UploadPartCommand, UploadPartCopyCommand,
} from '@aws-sdk/client-s3'
import { groupCapacityBytes, stripeDataBytes } from '../../core/ec-layout.ts'
import { KiB, MiB } from '../../core/limits.ts'
import type { KeyInfo } from '../../core/om-wire.ts'
import { parseReplication } from '../../core/wire.ts'
import type { O3Client } from '../../datapath/client/index.ts'
import type { S3Gateway } from '../../datapath/s3/index.ts'
import { until } from '../helpers.ts'
import { randomBytes, startMiniCluster } from './mini-cluster.ts'
import { gatewayClientOptions, startGateway } from './mini-gateway.ts'

const RS = 'EC/rs-3-2-1024k'
const XOR = 'EC/xor-2-1-64k'
const BLOCK = 2 * MiB

let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: O3Client
let gateway: S3Gateway
let s3: S3Client
/** Every object written, to read back again with datanodes down. */
const objects = new Map<string, { bucket: string; key: string; data: Buffer }>()

function shape(replication: string) {
  const s = parseReplication(replication).ec!
  return { k: s.data, m: s.parity, cell: s.cellSizeBytes, stripe: stripeDataBytes(s), group: groupCapacityBytes(s, BLOCK) }
}

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex')

function assertBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  const g = Buffer.from(got.buffer, got.byteOffset, got.byteLength)
  if (g.equals(want)) return
  const at = g.length !== want.length ? -1 : g.findIndex((b, i) => b !== want[i])
  assert.unreachable(`${what}: ${at < 0 ? `length ${g.length}, expected ${want.length}` : `first difference at byte ${at}`}`)
}

async function get(bucket: string, key: string, range?: [number, number], partNumber?: number): Promise<Buffer> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range && `bytes=${range[0]}-${range[1]}`, PartNumber: partNumber }))
  return Buffer.from(await r.Body!.transformToByteArray())
}

/** A key's block groups as the OM lists them: each an EC location of the bucket's scheme on k + m distinct nodes. */
function assertEcKey(info: KeyInfo, replication: string, what: string): void {
  const { k, m, group } = shape(replication)
  assert.is(info.replication, replication, `${what}: replication`)
  let offset = 0
  for (const l of info.locations) {
    assert.is(l.pipeline.replication, replication, `${what}: the group's pipeline is ${replication}`)
    assert.is(l.pipeline.nodes.length, k + m, `${what}: a group on k + m nodes`)
    assert.is(new Set(l.pipeline.nodes.map((n) => n.id)).size, k + m, `${what}: k + m distinct nodes`)
    assert.ok(l.length > 0 && l.length <= group, `${what}: a group holds 1..${group} bytes, not ${l.length}`)
    assert.is(l.offset, offset, `${what}: groups in key order`)
    offset += l.length
  }
  assert.is(offset, info.size, `${what}: the groups hold the key`)
}

/** Ranges around the cell, stripe and group ends inside `size` bytes, and the last byte. */
function rangesOf(size: number, replication: string): [number, number][] {
  const { cell, stripe, group } = shape(replication)
  const out: [number, number][] = [[0, 0], [size - 1, size - 1]]
  for (const edge of [cell, stripe, stripe + cell, group, group + stripe]) {
    if (edge + 1 < size) out.push([edge - 1, edge], [edge - 5, Math.min(size - 1, edge + cell + 3)])
  }
  if (size > 2) out.push([Math.floor(size / 3), size - 2])
  return out
}

async function checkObject(name: string, what: string, ranged: boolean): Promise<void> {
  const { bucket, key, data } = objects.get(name)!
  assertBytes(await get(bucket, key), data, `${what}: ${bucket}/${key}`)
  if (!ranged || data.length === 0) return
  const replication = bucket === 'ec-xor' ? XOR : RS
  for (const [a, b] of rangesOf(data.length, replication)) assertBytes(await get(bucket, key, [a, b]), data.subarray(a, b + 1), `${what}: ${bucket}/${key} bytes ${a}-${b}`)
}

test.before(async () => {
  cluster = await startMiniCluster({
    datanodes: 5,
    // The replication manager stays out: it would rebuild what the last test takes away.
    overrides: { 'scm.block.sizeBytes': BLOCK, 'scm.replication.intervalMs': 3_600_000 },
  })
  client = cluster.client()
  gateway = await startGateway(cluster)
  const secret = await client.getS3Secret('alice')
  s3 = new S3Client({ endpoint: gateway.endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret }, ...gatewayClientOptions(cluster) })
  // S3 makes RATIS buckets; an EC bucket is made with the native client (as `o3 sh bucket
  // create /s3v/NAME --replication EC/...`), owned by the S3 user.
  await s3.send(new CreateBucketCommand({ Bucket: 'plain' }))
  await client.createBucket('s3v', 'ec-rs', { replication: RS, owner: 'alice' })
  await client.createBucket('s3v', 'ec-xor', { replication: XOR, owner: 'alice' })
})

test.after(async () => {
  await gateway?.stop()
  await cluster?.dispose()
})

test('PutObject into EC buckets around cell, stripe and group ends: EC keys, MD5 ETags, HEAD, GET whole and ranged', async () => {
  for (const [bucket, replication] of [['ec-rs', RS], ['ec-xor', XOR]] as const) {
    const { cell, stripe, group } = shape(replication)
    const sizes = [0, 1, cell - 1, cell, cell + 1, stripe - 1, stripe, stripe + 1, group, group + stripe + 3, 3 * MiB + 5 * KiB + 1]
    for (const size of sizes) {
      const key = `obj-${size}`
      const data = randomBytes(size, size + 17)
      const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data, ContentType: 'application/x-test' }))
      assert.is(put.ETag, `"${md5(data)}"`, `${bucket}/${key}: the ETag is the MD5`)
      const info = await client.headKey('s3v', bucket, key)
      assert.is(info.size, size)
      assertEcKey(info, replication, `${bucket}/${key}`)
      assert.is(info.locations.length, Math.ceil(size / group), `${bucket}/${key}: one group per ${group} bytes`)
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
      assert.is(head.ContentLength, size)
      assert.is(head.ETag, `"${md5(data)}"`)
      assert.is(head.ContentType, 'application/x-test')
      objects.set(`${bucket}/${key}`, { bucket, key, data })
      await checkObject(`${bucket}/${key}`, 'healthy', true)
    }
  }
})

test('CopyObject into an EC bucket and out of it: each copy takes its bucket\'s replication, bytes and ETag equal', async () => {
  const data = randomBytes(4 * MiB + 333, 5)
  await s3.send(new PutObjectCommand({ Bucket: 'plain', Key: 'src', Body: data }))
  assert.not.ok((await client.headKey('s3v', 'plain', 'src')).replication.startsWith('EC/'), 'an S3 bucket is RATIS')
  const into = await s3.send(new CopyObjectCommand({ Bucket: 'ec-rs', Key: 'copied-in', CopySource: 'plain/src' }))
  assert.is(into.CopyObjectResult?.ETag, `"${md5(data)}"`)
  assertEcKey(await client.headKey('s3v', 'ec-rs', 'copied-in'), RS, 'copy into ec-rs')
  objects.set('ec-rs/copied-in', { bucket: 'ec-rs', key: 'copied-in', data })
  await checkObject('ec-rs/copied-in', 'copied in', true)

  const out = await s3.send(new CopyObjectCommand({ Bucket: 'plain', Key: 'copied-out', CopySource: 'ec-rs/copied-in' }))
  assert.is(out.CopyObjectResult?.ETag, `"${md5(data)}"`)
  assert.is((await client.headKey('s3v', 'plain', 'copied-out')).replication, (await client.headKey('s3v', 'plain', 'src')).replication, 'a copy out of EC is its bucket\'s replication')
  assertBytes(await get('plain', 'copied-out'), data, 'copy out of ec-rs')

  const across = await s3.send(new CopyObjectCommand({ Bucket: 'ec-xor', Key: 'from-rs', CopySource: 'ec-rs/copied-in' }))
  assert.is(across.CopyObjectResult?.ETag, `"${md5(data)}"`)
  assertEcKey(await client.headKey('s3v', 'ec-xor', 'from-rs'), XOR, 'copy from ec-rs into ec-xor')
  objects.set('ec-xor/from-rs', { bucket: 'ec-xor', key: 'from-rs', data })
  await checkObject('ec-xor/from-rs', 'copied across schemes', true)
})

test('multipart upload into an EC bucket: EC parts on k + m nodes, a short last part, the completed object EC and byte for byte', async () => {
  for (const [bucket, replication] of [['ec-rs', RS], ['ec-xor', XOR]] as const) {
    const sizes = [5 * MiB, 5 * MiB + 7 * KiB, shape(replication).cell + 3]
    const parts = sizes.map((n, i) => randomBytes(n, 100 + i))
    const data = Buffer.concat(parts)
    const key = 'multi/part'
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
    const etags: string[] = []
    for (const [i, body] of parts.entries()) {
      const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: body }))
      assert.is(r.ETag, `"${md5(body)}"`, `${bucket}: part ${i + 1}'s ETag is its MD5`)
      etags.push(r.ETag!)
    }
    // The parts, still in the upload, are EC keys of the bucket's scheme.
    const listed = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId }))
    assert.equal(listed.Parts?.map((p) => p.Size), sizes)
    const stored = await client.listKeys('s3v-multipart', bucket, { prefix: `p/${UploadId}/` })
    assert.is(stored.keys.length, 3)
    for (const p of stored.keys) assertEcKey(await client.headKey('s3v-multipart', bucket, p.name), replication, `${bucket}: part ${p.name}`)

    const done = await s3.send(new CompleteMultipartUploadCommand({
      Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
    }))
    const expected = createHash('md5').update(Buffer.concat(parts.map((p) => createHash('md5').update(p).digest()))).digest('hex') + '-3'
    assert.is(done.ETag, `"${expected}"`)
    const info = await client.headKey('s3v', bucket, key)
    assert.is(info.size, data.length)
    assertEcKey(info, replication, `${bucket}: the completed object`)
    assert.is((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag, `"${expected}"`)
    objects.set(`${bucket}/${key}`, { bucket, key, data })
    await checkObject(`${bucket}/${key}`, 'multipart', true)
    // Ranges across the part ends, and each part by number.
    for (const at of [sizes[0], sizes[0] + sizes[1]]) assertBytes(await get(bucket, key, [at - 3, at + 2]), data.subarray(at - 3, at + 3), `${bucket}: across the part end at ${at}`)
    let offset = 0
    for (const [i, p] of parts.entries()) {
      assertBytes(await get(bucket, key, undefined, i + 1), p, `${bucket}: part ${i + 1} by number`)
      offset += p.length
    }
    assert.is(offset, data.length)
  }
})

test('UploadPartCopy from an EC object into an EC upload: ranged and whole parts, the object byte for byte', async () => {
  const src = objects.get('ec-rs/multi/part')!
  const key = 'multi/copied'
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'ec-xor', Key: key }))
  // Part 1: 5 MiB + 1 of the rs-3-2 object from an odd offset (inside its second cell);
  // part 2: the whole xor-2-1 object of one stripe and a byte.
  const first = { offset: MiB + 7, length: 5 * MiB + 1 }
  const tail = objects.get(`ec-xor/obj-${shape(XOR).stripe + 1}`)!
  const p1 = await s3.send(new UploadPartCopyCommand({ Bucket: 'ec-xor', Key: key, UploadId, PartNumber: 1, CopySource: 'ec-rs/multi/part', CopySourceRange: `bytes=${first.offset}-${first.offset + first.length - 1}` }))
  const p2 = await s3.send(new UploadPartCopyCommand({ Bucket: 'ec-xor', Key: key, UploadId, PartNumber: 2, CopySource: `ec-xor/${tail.key}` }))
  const parts = [src.data.subarray(first.offset, first.offset + first.length), tail.data]
  assert.is(p1.CopyPartResult?.ETag, `"${md5(parts[0])}"`)
  assert.is(p2.CopyPartResult?.ETag, `"${md5(parts[1])}"`)
  await s3.send(new CompleteMultipartUploadCommand({
    Bucket: 'ec-xor', Key: key, UploadId, MultipartUpload: { Parts: [{ ETag: p1.CopyPartResult!.ETag, PartNumber: 1 }, { ETag: p2.CopyPartResult!.ETag, PartNumber: 2 }] },
  }))
  const data = Buffer.concat(parts)
  assertEcKey(await client.headKey('s3v', 'ec-xor', key), XOR, 'the copied upload')
  objects.set(`ec-xor/${key}`, { bucket: 'ec-xor', key, data })
  await checkObject(`ec-xor/${key}`, 'copied parts', true)
})

test('PutObject into an EC bucket the cluster cannot place (rs-6-3 on five datanodes): 503 ServiceUnavailable, nothing stored', async () => {
  await client.createBucket('s3v', 'ec-wide', { replication: 'EC/rs-6-3-64k', owner: 'alice' })
  for (const size of [10, 200 * KiB]) {
    const failed = await s3.send(new PutObjectCommand({ Bucket: 'ec-wide', Key: 'k', Body: randomBytes(size, 1) })).then(() => undefined, (e: unknown) => e as { name: string; message: string; $metadata: { httpStatusCode?: number } })
    assert.ok(failed !== undefined, `${size} bytes: refused`)
    assert.is(failed.$metadata.httpStatusCode, 503)
    assert.is(failed.name, 'ServiceUnavailable')
  }
  // The upload's record is a key of the bucket's replication too: the upload is refused at once.
  const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'ec-wide', Key: 'm' })).then(() => 'OK', (e: unknown) => (e as { name: string }).name)
  assert.is(upload, 'ServiceUnavailable')
  assert.equal((await client.listKeys('s3v', 'ec-wide')).keys, [], 'no object')
  assert.equal((await client.listKeys('s3v-multipart', 'ec-wide')).keys, [], 'no upload record nor part')
})

/** Whether every group of the object keeps at least k replicas with the nodes `down` (ids) stopped. */
async function readable(name: string, down: Set<string>): Promise<boolean> {
  const { bucket, key } = objects.get(name)!
  const info = await client.headKey('s3v', bucket, key)
  const { k } = shape(info.replication)
  return info.locations.every((l) => l.pipeline.nodes.filter((n) => !down.has(n.id)).length >= k)
}

test('with two of the five datanodes stopped every rs-3-2 object reads right, whole and ranged; xor-2-1 ones with one stopped', async () => {
  assert.ok(objects.size > 20)
  const ids = cluster.datanodes.map((d) => d!.id)
  for (const stopped of [[1, 3], [0, 4], [2]]) {
    const down = new Set(stopped.map((i) => ids[i]!))
    const readableNames = []
    for (const name of objects.keys()) if (await readable(name, down)) readableNames.push(name)
    // Any two of five leave every rs-3-2 group three replicas; one of five leaves every xor-2-1 group two.
    for (const name of objects.keys()) if (name.startsWith('ec-rs/') || stopped.length === 1) assert.ok(readableNames.includes(name), `${name} keeps k replicas`)
    for (const i of stopped) await cluster.stopDatanode(i)
    try {
      for (const name of readableNames) await checkObject(name, `datanodes ${stopped.map((i) => i + 1).join(' and ')} down`, true)
    } finally {
      for (const i of stopped) await cluster.startDatanode(i)
    }
  }
  await until('the gateway\'s pooled buffers back', () => gateway.client.readBuffers.inUse === 0, 10_000)
})

test.run()
