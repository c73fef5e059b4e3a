/**
 * Goal: a body's digests computed on a digest lane (a DigestSession pinned to one thread) are
 * the right ones, for every digest S3 asks for, from transferred buffers and from shared slab
 * ranges read in place, in one piece or many, with many bodies hashed at once over the lanes;
 * a process holds at most as many lanes as its pool has threads, closes one left idle (Node),
 * and holds none once closed; an ended session refuses more work. Method: real worker threads; the references are computed
 * here, independently: node:crypto on this thread for MD5 and the SHAs, and bit-at-a-time CRCs
 * written from their definitions, checked against the catalogue's check values first.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash, randomBytes } from 'node:crypto'
import { crcReference, CRC32_POLY, CRC32C_POLY, CRC64NVME_POLY, reference } from '../digest-reference.ts'
import { WORKER_IDLE_MS } from '../../../core/limits.ts'
import { closeWorkerPool, digestLanes, DigestSession, workerPool, type DigestName } from '../../../datapath/workers/index.ts'

const ALL: DigestName[] = ['md5', 'crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256']

function hexOf(d: Partial<Record<DigestName, Buffer>>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(d)) out[k] = v!.toString('hex')
  return out
}

test.after(async () => {
  await closeWorkerPool()
})

test('the reference CRCs give the catalogue check values', () => {
  const check = new TextEncoder().encode('123456789')
  assert.is(crcReference(32, CRC32_POLY, check).toString('hex'), 'cbf43926')
  assert.is(crcReference(32, CRC32C_POLY, check).toString('hex'), 'e3069283')
  assert.is(crcReference(64, CRC64NVME_POLY, check).toString('hex'), 'ae8b14860a799888')
})

test('a session gives every digest of its pieces, from transferred buffers and from slab ranges', async () => {
  const body = randomBytes(300_001)
  const want = reference(body)
  // Transferred: each piece in an ArrayBuffer of its own, detached once handed over.
  const moved = new DigestSession(ALL)
  for (const [from, to] of [[0, 1], [1, 65_537], [65_537, 300_001]]) {
    const piece = new Uint8Array(to - from)
    piece.set(body.subarray(from, to))
    await moved.update(piece.buffer)
    assert.is(piece.byteLength, 0, 'the piece was transferred, not copied')
  }
  assert.equal(hexOf(await moved.finish()), want)
  // In place: ranges of one shared slab, the body at an odd offset in it.
  const slab = new SharedArrayBuffer(body.length + 7)
  new Uint8Array(slab, 7).set(body)
  const inPlace = new DigestSession(ALL)
  await inPlace.update({ slab, offset: 7, length: 100_000 })
  await inPlace.update({ slab, offset: 100_007, length: body.length - 100_000 })
  assert.equal(hexOf(await inPlace.finish()), want)
})

test('a session fed nothing gives the digests of no bytes', async () => {
  assert.equal(hexOf(await new DigestSession(ALL).finish()), reference(new Uint8Array(0)))
  const empty = new DigestSession(['md5'])
  await empty.update(new ArrayBuffer(0))
  assert.equal(hexOf(await empty.finish()), { md5: reference(new Uint8Array(0)).md5 })
})

test('many bodies hashed at once, their pieces interleaved, each get their own digests; lanes stay within the pool', async () => {
  const bodies = Array.from({ length: 24 }, (_, i) => randomBytes(1000 + i * 7919))
  const sessions = bodies.map((_, i) => new DigestSession(i % 2 === 0 ? ['md5', 'sha256'] : ['md5', 'crc32c']))
  const PIECES = 5
  for (let p = 0; p < PIECES; p++) {
    // Every session's next piece handed over before any is awaited: the lanes see them interleaved.
    await Promise.all(sessions.map((s, i) => {
      const b = bodies[i], size = Math.ceil(b.length / PIECES)
      return s.update(new Uint8Array(b.subarray(p * size, (p + 1) * size)).buffer)
    }))
  }
  const results = await Promise.all(sessions.map((s) => s.finish()))
  results.forEach((r, i) => {
    const want = reference(bodies[i])
    const names = i % 2 === 0 ? ['md5', 'sha256'] : ['md5', 'crc32c']
    assert.equal(hexOf(r), Object.fromEntries(names.map((n) => [n, want[n as DigestName]])), `body ${i}`)
  })
  assert.ok(digestLanes() >= 1 && digestLanes() <= workerPool().maxThreads, `${digestLanes()} lanes for ${workerPool().maxThreads} threads`)
})

test('an ended session refuses more work; a dropped one gives no digests', async () => {
  const finished = new DigestSession(['md5'])
  await finished.update(new Uint8Array([1, 2, 3]).buffer)
  await finished.finish()
  let err: unknown
  try { await finished.update(new Uint8Array([4]).buffer) } catch (e) { err = e }
  assert.match(String(err), /ended/)
  const dropped = new DigestSession(['md5'])
  await dropped.update(new Uint8Array([1]).buffer)
  dropped.drop()
  err = undefined
  try { await dropped.finish() } catch (e) { err = e }
  assert.match(String(err), /ended/)
  // The lane still serves others after a drop.
  const next = new DigestSession(['md5'])
  await next.update(new Uint8Array([9]).buffer)
  assert.equal(hexOf(await next.finish()), { md5: createHash('md5').update(new Uint8Array([9])).digest('hex') })
})

test('under Node a lane with no session open closes after WORKER_IDLE_MS, its thread with it; under Deno it stays', async () => {
  await closeWorkerPool()
  const s = new DigestSession(['md5'])
  await s.update(new Uint8Array(10).buffer)
  await new Promise((r) => setTimeout(r, 200))
  assert.is(digestLanes(), 1, 'an open session keeps its lane')
  await s.finish()
  await new Promise((r) => setTimeout(r, WORKER_IDLE_MS + 1_000))
  assert.is(digestLanes(), 'Deno' in globalThis ? 1 : 0)
})

test('closeWorkerPool closes every lane', async () => {
  const s = new DigestSession(['sha1'])
  await s.update(new Uint8Array(10).buffer)
  await s.finish()
  assert.ok(digestLanes() > 0)
  await closeWorkerPool()
  assert.is(digestLanes(), 0)
})

test.run()
