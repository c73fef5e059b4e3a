/**
 * Goal: the large GET path reads chunk data into a bounded pool of reused buffers on the
 * datanode, and every buffer goes back once its response has been sent, whether the reader
 * finished, stopped early, or the S3 client cut the connection mid-body (no leak: a leak
 * would stop the datanode's reads once DATANODE_READ_BUFFERS were lost).
 * Method: BufferPool on its own (bound, wait, timeout, discard); then a real S3 gateway over
 * a one-datanode mini cluster reading over HTTP (`datanode.shortCircuitReads` 0; the
 * gateway's client pools its chunk buffers too): a 24 MiB key read whole through S3 (byte for byte) and
 * through the native client, read part way and dropped, and 20 S3 GETs aborted after their
 * first bytes; after each, the datanode's pool has no buffer out and never made more than
 * its bound (under Deno, which does not say when a response was sent: never used). With
 * every gateway buffer held (stalled clients), a GET still returns the key at once.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Readable } from 'node:stream'
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3'
import { CLIENT_READ_BUFFERS, DATANODE_READ_BUFFERS } from '../../core/limits.ts'
import { O3Error } from '../../core/errors.ts'
import { BufferPool } from '../../datapath/workers/index.ts'
import { randomBytes } from '../cluster/mini-cluster.ts'
import { startS3Cluster, type S3TestCluster } from './s3/s3-cluster.ts'

const MiB = 1024 * 1024
/** A liveness bound for buffers to come back after a connection closes, not a speed figure. */
const SETTLE_MS = 20_000
const DENO = 'Deno' in globalThis

test('BufferPool: bounded, waits for a release, times out UNAVAILABLE, reuses', async () => {
  const pool = new BufferPool(1024, 2)
  const a = await pool.acquire()
  const b = await pool.acquire()
  assert.is(pool.inUse, 2)
  let third: ArrayBuffer | undefined
  const waiting = pool.acquire().then((x) => { third = x })
  await new Promise((r) => setImmediate(r))
  assert.is(third, undefined, 'a third acquire waits while both are out')
  pool.release(a)
  await waiting
  assert.is(third, a, 'the released buffer goes to the waiter')
  assert.is(pool.inUse, 2)
  const timedOut = await pool.acquire(20).then(() => undefined, (err: unknown) => err)
  assert.ok(timedOut instanceof O3Error && timedOut.code === 'UNAVAILABLE')
  pool.discard()
  pool.release(b)
  assert.is(pool.inUse, 0)
  assert.is(pool.madeCount, 1, 'a discarded buffer is dropped, a released one kept')
  assert.is(await pool.acquire(), b, 'a kept buffer is reused')
})

test('BufferPool.take(): at once, past the count when all are out; those past it are dropped when given back', async () => {
  const pool = new BufferPool(1024, 2)
  const a = pool.take(), b = pool.take()
  assert.is(pool.available, 0)
  const c = pool.take()
  assert.equal([pool.inUse, pool.madeCount], [3, 3], 'a third made past the count')
  assert.ok(pool.owns(c), 'and the pool\'s, so that releaseIfMine() gives it back')
  for (const x of [a, b, c]) pool.release(x)
  assert.equal([pool.inUse, pool.madeCount, pool.available], [0, 2, 2], 'the pool keeps its count, no more')
})

test('BufferPool: a buffer shared by views comes back with the last of their releases', async () => {
  const pool = new BufferPool(1024, 1)
  const a = await pool.acquire()
  pool.share(a, 3)
  pool.releaseIfMine(a)
  pool.releaseIfMine(a)
  assert.is(pool.inUse, 1, 'still out while a view of it is held')
  assert.is(pool.tryAcquire(), undefined)
  pool.releaseIfMine(a)
  assert.is(pool.inUse, 0, 'back with the third release')
  const again = await pool.acquire()
  assert.is(again, a)
  pool.share(again, 1)
  pool.release(again)
  assert.is(pool.inUse, 0, 'shared by one: one release')
})

let env: S3TestCluster
let s3: S3Client
const data = randomBytes(24 * MiB + 5)

async function settled(what: string, gatewayToo = true): Promise<void> {
  const pools: { name: string; pool: BufferPool<ArrayBuffer> | BufferPool<SharedArrayBuffer>; bound: number }[] = [{ name: 'datanode', pool: env.cluster.datanodes[0]!.readBuffers, bound: DATANODE_READ_BUFFERS }]
  if (gatewayToo) pools.push({ name: 'gateway client', pool: env.gateway.client.readBuffers, bound: CLIENT_READ_BUFFERS })
  for (const { name, pool, bound } of pools) {
    for (const until = Date.now() + SETTLE_MS; pool.inUse > 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 20))
    assert.is(pool.inUse, 0, `${what}: every ${name} read buffer is back`)
    // Deno does not say when a response was sent: its reads keep fresh buffers instead.
    if (DENO) assert.is(pool.madeCount, 0, `${what}: ${name} reads under Deno left the pool alone`)
    else assert.ok(pool.madeCount > 0, `${what}: ${name} reads used the pool`)
    assert.ok(pool.madeCount <= bound, `${what}: the ${name} pool stayed within its bound`)
  }
}

test('large GETs read into pooled buffers that come back, also after aborts', async () => {
  // Over HTTP: the datanode's side of a read (its pool) is what this is about; a gateway in
  // the datanode's process would read short-circuit, into its own buffers only.
  env = await startS3Cluster({ overrides: { 'datanode.shortCircuitReads': 0 } })
  try {
    s3 = new S3Client({ endpoint: env.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: env.alice.awsAccessKey, secretAccessKey: env.alice.awsSecret } })
    await s3.send(new CreateBucketCommand({ Bucket: 'big' }))
    await s3.send(new PutObjectCommand({ Bucket: 'big', Key: 'k', Body: data }))

    const whole = await s3.send(new GetObjectCommand({ Bucket: 'big', Key: 'k' }))
    const back = Buffer.from(await whole.Body!.transformToByteArray())
    assert.ok(back.equals(data), 'the S3 GET returns the key byte for byte')
    await settled('whole S3 GET')

    // An object of one piece goes out as one body; its buffer comes back once it is sent.
    const small = randomBytes(4096 + 7)
    await s3.send(new PutObjectCommand({ Bucket: 'big', Key: 'small', Body: small }))
    for (let i = 0; i < 3 * CLIENT_READ_BUFFERS; i++) {
      const got = await s3.send(new GetObjectCommand({ Bucket: 'big', Key: 'small', ...(i % 2 === 1 ? { Range: 'bytes=100-' } : {}) }))
      assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(i % 2 === 1 ? small.subarray(100) : small), 'a small GET returns the key byte for byte')
    }
    await settled('small S3 GETs, each one piece')

    const client = env.cluster.client()
    const parts: Buffer[] = []
    for await (const p of await client.readKey('s3v', 'big', 'k')) parts.push(p as Buffer)
    assert.ok(Buffer.concat(parts).equals(data), 'the native read returns the key byte for byte')
    const early = await client.readKey('s3v', 'big', 'k')
    for await (const _ of early) break
    await settled('native reads, one dropped early', false)

    // The gateway's pieces are views of its pool's shared buffers, verified in place by the
    // workers: a buffer moved to a worker and back would be a new ArrayBuffer per read (fresh
    // external memory to V8, the back-to-back GCs bench/README.md describes).
    if (!DENO) {
      const seen = new Set<ArrayBufferLike>()
      const got: Buffer[] = []
      for await (const piece of await env.gateway.client.openKeyPieces(await client.headKey('s3v', 'big', 'k'), undefined, { pooled: true })) {
        assert.instance(piece.buffer, SharedArrayBuffer, 'a pooled piece is a view of shared memory')
        assert.ok(env.gateway.client.readBuffers.owns(piece.buffer), 'a pooled piece is a view of the pool\'s own buffer')
        seen.add(piece.buffer)
        got.push(Buffer.from(piece))
        env.gateway.client.readBuffers.release(piece.buffer as SharedArrayBuffer)
      }
      assert.ok(Buffer.concat(got).equals(data), 'the pooled pieces are the key byte for byte')
      assert.ok(seen.size <= CLIENT_READ_BUFFERS, 'the pieces reuse the pool\'s buffers')
      await settled('pooled pieces given back')
    }

    // A response abandoned before its body was read returns its pieces before the first is taken.
    const dropped = await env.gateway.client.openKeyPieces(await client.headKey('s3v', 'big', 'k'), undefined, { pooled: !DENO })
    await dropped.return(undefined)
    await settled('pooled pieces dropped before the first was taken')

    for (let i = 0; i < 20; i++) {
      const ac = new AbortController()
      const r = await s3.send(new GetObjectCommand({ Bucket: 'big', Key: 'k' }), { abortSignal: ac.signal })
      const body = r.Body as Readable
      await new Promise<void>((resolve) => body.once('data', () => resolve()))
      ac.abort()
      body.destroy()
    }
    await settled('20 S3 GETs aborted mid-body')

    const again = await s3.send(new GetObjectCommand({ Bucket: 'big', Key: 'k' }))
    assert.ok(Buffer.from(await again.Body!.transformToByteArray()).equals(data), 'reads after the aborts still return the key')
    await settled('a GET after the aborts')

    // Every pooled buffer held (as by GETs whose clients stopped reading): a GET neither waits
    // for them (it waited the pool's 30 s and failed 503) nor reads ahead; it reads a piece at a
    // time into buffers made past the pool, which go away once given back.
    if (!DENO) {
      const pool = env.gateway.client.readBuffers
      const held: SharedArrayBuffer[] = []
      while (pool.available > 0) held.push(await pool.acquire())
      try {
        const starved = await s3.send(new GetObjectCommand({ Bucket: 'big', Key: 'k' }))
        assert.ok(Buffer.from(await starved.Body!.transformToByteArray()).equals(data), 'a GET with every pooled buffer held returns the key')
        assert.is(pool.inUse, CLIENT_READ_BUFFERS, 'its own buffers went away when given back')
        // A reader whose consumer stops asking takes nothing more past the pool.
        const stopped = await env.gateway.client.openKeyPieces(await client.headKey('s3v', 'big', 'k'), undefined, { pooled: true })
        const first = await stopped.next()
        await new Promise((r) => setTimeout(r, 200))
        assert.is(pool.madeCount, CLIENT_READ_BUFFERS + 1, 'only the piece its consumer asked for was taken past the pool')
        pool.releaseIfMine((first.value as Uint8Array).buffer)
        await stopped.return(undefined)
        assert.is(pool.madeCount, CLIENT_READ_BUFFERS, 'and given back')
      } finally {
        for (const b of held) pool.release(b)
      }
      await settled('a GET with every pooled buffer held')
    }
  } finally {
    s3?.destroy()
    await env.dispose()
  }
})

test.run()
