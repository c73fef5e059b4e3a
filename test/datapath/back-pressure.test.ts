/**
 * Goal: the datapath holds a bounded amount of data per stream however slow the other end
 * is: a client that reads a 64 MiB object at a trickle must not make the gateway (or the
 * native reader under it) pull the whole object from the datanodes, and a client that sends
 * a 64 MiB PUT body slowly, then fast, must not make the gateway take in more of the body
 * than the writer's window of chunks ahead of the datanodes. Either way the object must
 * still arrive intact. Method: a real mini cluster (one datanode, RATIS/ONE, 256 KiB chunks)
 * and S3 gateway in this process. Two measures: the datanode's own byte counters
 * (o3_datanode_bytes_{in,out}_total) against the bytes the client has moved, which
 * is exactly how far the datapath ran ahead of (or behind) its peer; and
 * process.memoryUsage() (client, gateway and datanode together) after a garbage collection
 * (V8's gc(), exposed at run time), which must stay below the object's size. The assertions
 * are byte and memory bounds, never timings.
 */
import { Readable } from 'node:stream'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { S3Client, CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { CLIENT_CHUNKS_INFLIGHT_MAX, CLIENT_FLUSH_CHUNKS, CLIENT_READ_AHEAD_CHUNKS, KiB, MiB } from '../../core/limits.ts'
import { S3Gateway } from '../../datapath/s3/index.ts'
import type { O3Client } from '../../datapath/client/index.ts'
import { randomBytes, startMiniCluster } from '../cluster/mini-cluster.ts'

const CHUNK = 256 * KiB
const BLOCK = 4 * MiB
const OBJECT = 64 * MiB
/** What a trickling peer moves per step, and how often. */
const TRICKLE_BYTES = 64 * KiB
const TRICKLE_MS = 50
const TRICKLE_STEPS = 50
/**
 * How far one stream may run ahead of its slow peer: a writer's window of slabs
 * (CLIENT_CHUNKS_INFLIGHT_MAX + CLIENT_FLUSH_CHUNKS chunks) or a reader's read-ahead, a chunk
 * in each stream stage (reader, web stream, HTTP response) and loopback socket buffers (the
 * kernel's, which no user-space bound covers, and which its autotuning grows on a loaded
 * machine: 12 MiB was seen exceeded under CI's parallel load): 24 MiB for those, about 27 MiB
 * in all. An object pulled or buffered whole runs 58-61 MiB ahead, far past it.
 */
const AHEAD_MAX_BYTES = (Math.max(CLIENT_CHUNKS_INFLIGHT_MAX + CLIENT_FLUSH_CHUNKS, CLIENT_READ_AHEAD_CHUNKS) + 3) * CHUNK + 24 * MiB
/**
 * The memory growth allowed while a stream is slow: less than the object, so that an object
 * held whole fails it. Not tighter, because the native client still reads every chunk into
 * a fresh buffer, counted until the next collection.
 */
const GROWTH_MAX_BYTES = OBJECT

let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let gateway: S3Gateway
let client: O3Client
let s3: S3Client
let data: Buffer

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

interface Usage { arrayBuffers: number; rss: number }
function usage(): Usage {
  gc()
  const u = process.memoryUsage()
  return { arrayBuffers: u.arrayBuffers, rss: u.rss }
}

/** Samples memory until stop() and reports the largest growth over `base`. */
function sampler(base: Usage): { stop(): Usage } {
  const max: Usage = { arrayBuffers: 0, rss: 0 }
  const sample = () => {
    const u = usage()
    max.arrayBuffers = Math.max(max.arrayBuffers, u.arrayBuffers - base.arrayBuffers)
    max.rss = Math.max(max.rss, u.rss - base.rss)
  }
  const timer = setInterval(sample, 200)
  return { stop() { clearInterval(timer); sample(); return max } }
}

/** Payload bytes the datanodes have received (in) and served (out) so far, from their own counters. */
async function datanodeBytes(): Promise<{ in: number; out: number }> {
  const total = { in: 0, out: 0 }
  for (const d of cluster.datanodes) {
    if (d === undefined) continue
    total.in += (await d.metrics.bytesIn.get()).values[0]?.value ?? 0
    total.out += (await d.metrics.bytesOut.get()).values[0]?.value ?? 0
  }
  return total
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`

function assertGrowth(growth: Usage, what: string): void {
  assert.ok(growth.arrayBuffers < GROWTH_MAX_BYTES, `${what}: buffers grew by ${mib(growth.arrayBuffers)}, as much as the object`)
  assert.ok(growth.rss < GROWTH_MAX_BYTES, `${what}: RSS grew by ${mib(growth.rss)}, as much as the object`)
}

test.before(async () => {
  cluster = await startMiniCluster({
    datanodes: 1,
    overrides: { 'scm.block.sizeBytes': BLOCK, 'client.chunkSizeBytes': CHUNK, 'client.bytesPerChecksum': 16 * KiB },
  })
  gateway = new S3Gateway({ config: cluster.config, omAddress: cluster.omAddress, scmAddress: cluster.scmAddress, port: 0 })
  await gateway.start()
  client = cluster.client({ chunkSizeBytes: CHUNK })
  const alice = await client.getS3Secret('alice')
  s3 = new S3Client({ endpoint: gateway.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: alice.awsAccessKey, secretAccessKey: alice.awsSecret } })
  await s3.send(new CreateBucketCommand({ Bucket: 'big' }))
  data = randomBytes(OBJECT, 64)
  // Written natively into the S3 bucket (the cheapest way in); the GET tests read it back.
  await client.putKey('s3v', 'big', 'object', data)
})

test.after(async () => {
  s3.destroy()
  await gateway.stop()
  await cluster.dispose()
})

/**
 * Reads `TRICKLE_STEPS` pieces slowly from `body`, calls `onTrickled` with the bytes read so
 * far, then reads the rest at full speed; returns all bytes.
 */
async function trickleThenDrain(body: AsyncIterable<Uint8Array>, onTrickled: (consumed: number) => Promise<void>): Promise<Buffer> {
  const it = body[Symbol.asyncIterator]()
  const parts: Uint8Array[] = []
  let consumed = 0
  for (let i = 0; i < TRICKLE_STEPS; i++) {
    const next = await it.next()
    if (next.done === true) break
    parts.push(next.value)
    consumed += next.value.length
    await sleep(TRICKLE_MS)
  }
  await onTrickled(consumed)
  for (;;) {
    const next = await it.next()
    if (next.done === true) break
    parts.push(next.value)
  }
  return Buffer.concat(parts)
}

/** A paused stream read at most TRICKLE_BYTES at a time: how a slow S3 client consumes a body. */
async function* slowly(stream: Readable): AsyncGenerator<Uint8Array> {
  stream.pause()
  for (;;) {
    // At most TRICKLE_BYTES of what is buffered: read(n) of more than is buffered answers null
    // and, when the buffer is at its high-water mark, never gets more.
    const piece = stream.readableLength > 0 ? stream.read(Math.min(TRICKLE_BYTES, stream.readableLength)) as Buffer | null : stream.read() as Buffer | null
    if (piece !== null) { yield piece; continue }
    if (stream.readableEnded) return
    await new Promise<void>((resolve, reject) => {
      const done = () => { stream.off('readable', done); stream.off('end', done); stream.off('error', fail); resolve() }
      const fail = (err: Error) => { done(); reject(err) }
      stream.on('readable', done); stream.on('end', done); stream.on('error', fail)
    })
  }
}

/** Reads `stream` at a trickle, then fast; asserts how far the datanodes served ahead and the memory growth. */
async function slowRead(open: () => Promise<Readable>, what: string): Promise<Buffer> {
  const base = usage()
  const served = (await datanodeBytes()).out
  const stream = await open()
  const watch = sampler(base)
  return trickleThenDrain(slowly(stream), async (consumed) => {
    const growth = watch.stop()
    const ahead = (await datanodeBytes()).out - served - consumed
    assert.ok(ahead < AHEAD_MAX_BYTES, `${what}: the datanode served ${mib(ahead)} more than the client had read (${mib(consumed)}); bound ${mib(AHEAD_MAX_BYTES)}`)
    assertGrowth(growth, what)
  })
}

// Catches: a GET that ignores the response socket's back-pressure (write() returning false,
// or a web-stream bridge that reads its source regardless of demand) and so pulls the whole
// object from the datanodes into the gateway's memory while the client reads 64 KiB at a time.
test('S3 GetObject read at a trickle: the gateway reads a bounded window ahead, not the object; the rest then arrives intact', async () => {
  const got = await slowRead(async () => (await s3.send(new GetObjectCommand({ Bucket: 'big', Key: 'object' }))).Body as Readable, 'during a slow GET')
  assert.is(got.length, OBJECT)
  assert.ok(got.equals(data), 'the object read after the trickle differs')
})

// Catches: the native reader's read-ahead running unbounded (queueing every chunk of the key
// while the consumer is paused), the layer under the gateway's GET.
test('readKey() consumed at a trickle: the reader reads its read-ahead, not the key; the rest then arrives intact', async () => {
  const got = await slowRead(() => client.readKey('s3v', 'big', 'object'), 'during a slow native read')
  assert.ok(got.equals(data), 'the key read after the trickle differs')
})

// Catches: a PUT that allocates for the declared Content-Length up front, or that takes the
// body in faster than the datanode stores it (no back-pressure on the request body: reading
// the socket into a queue instead of awaiting the key writer's window), so that the gateway
// holds much of the object; checked against the bytes the datanode has received at each MiB
// the client sends, during the trickle and once the body comes fast.
test('S3 PutObject whose body trickles, then comes fast: the gateway holds a bounded window; the object is stored intact', async () => {
  const base = usage()
  const received = (await datanodeBytes()).in
  const watch = sampler(base)
  let aheadMax = 0
  let trickleGrowth: Usage | undefined
  const check = async (sent: number) => { aheadMax = Math.max(aheadMax, sent - ((await datanodeBytes()).in - received)) }
  async function* body(): AsyncGenerator<Uint8Array> {
    let at = 0
    for (let i = 0; i < TRICKLE_STEPS; i++, at += TRICKLE_BYTES) {
      yield data.subarray(at, at + TRICKLE_BYTES)
      await sleep(TRICKLE_MS)
    }
    await check(at)
    trickleGrowth = usageGrowth(base)
    for (; at < OBJECT; at += MiB) {
      yield data.subarray(at, Math.min(OBJECT, at + MiB))
      await check(at + MiB)
    }
  }
  await s3.send(new PutObjectCommand({ Bucket: 'big', Key: 'uploaded', Body: Readable.from(body(), { objectMode: false }), ContentLength: OBJECT }))
  const growth = watch.stop()
  assert.ok(aheadMax < AHEAD_MAX_BYTES, `the client got ${mib(aheadMax)} ahead of the datanode; bound ${mib(AHEAD_MAX_BYTES)}`)
  assertGrowth(trickleGrowth!, 'during the trickle of a slow PUT')
  assertGrowth(growth, 'over the whole PUT')
  const back = await client.getKey('s3v', 'big', 'uploaded')
  assert.ok(back.equals(data), 'the stored object differs')
})

// A datanode once read every chunk into a fresh ArrayBuffer that went to a worker thread and
// came back transferred; it stayed alive (and counted in arrayBuffers and RSS) after the
// response was sent, until the worker collected garbage, about every 50 MiB (seen: +64 MiB
// after one 64 MiB key read). Catches: read buffers outliving their response (per-read
// allocation instead of the fixed pool released when the response is written).
test('readKey() of the whole object leaves no read buffers alive once it is done', async () => {
  const base = usage()
  const got = await client.getKey('s3v', 'big', 'object')
  assert.is(got.length, OBJECT)
  const growth = usageGrowth(base).arrayBuffers - OBJECT // the key itself, which the test holds
  assert.ok(growth < AHEAD_MAX_BYTES, `${mib(growth)} of buffers stay alive after the read`)
})

function usageGrowth(base: Usage): Usage {
  const u = usage()
  return { arrayBuffers: u.arrayBuffers - base.arrayBuffers, rss: u.rss - base.rss }
}

test.run()
