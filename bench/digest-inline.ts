/** @module
 * `node dist/bench/digest-inline.js`: what hashing an upload body costs in the worker pool
 * (StreamDigest, the path of every body today) against on the main thread (InlineDigest),
 * by body size, for the digests an S3 PUT computes: MD5 alone (UNSIGNED-PAYLOAD) and MD5 with
 * SHA-256 (a signed payload). Per body: wall time one at a time, the main thread's busy time
 * (event-loop utilization, so the worker's own hashing is not counted), and bodies per second
 * with 32 at once. The measurement behind DIGEST_INLINE_BYTES_MAX (core/limits.ts).
 */
import { randomFillSync } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { InlineDigest, type BodyDigest } from '../datapath/s3/inline-digest.ts'
import { StreamDigest } from '../datapath/s3/digests.ts'
import { closeWorkerPool, type DigestName } from '../datapath/workers/index.ts'

const KiB = 1024
const SIZES_BYTES = [1 * KiB, 4 * KiB, 16 * KiB, 32 * KiB, 64 * KiB, 256 * KiB, 1024 * KiB]
const SETS: DigestName[][] = [['md5'], ['md5', 'sha256']]
const CONCURRENCY = 32
/** Bytes hashed per measurement, so each size runs about as long as the others. */
const BYTES_PER_STEP = 64 * 1024 * KiB

type Make = (names: DigestName[]) => BodyDigest

async function once(make: Make, names: DigestName[], body: Uint8Array): Promise<void> {
  const d = make(names)
  await d.update(body)
  await d.finish()
}

/** Microseconds of wall time and of main-thread busy time per body, one body at a time. */
async function sequential(make: Make, names: DigestName[], body: Uint8Array, count: number): Promise<{ wallUs: number; busyUs: number }> {
  for (let i = 0; i < Math.min(20, count); i++) await once(make, names, body)
  const elu = performance.eventLoopUtilization()
  const started = performance.now()
  for (let i = 0; i < count; i++) await once(make, names, body)
  const wallMs = performance.now() - started
  const busyMs = performance.eventLoopUtilization(elu).active
  return { wallUs: (wallMs * 1000) / count, busyUs: (busyMs * 1000) / count }
}

/** Bodies per second from CONCURRENCY callers. */
async function concurrent(make: Make, names: DigestName[], body: Uint8Array, count: number): Promise<number> {
  let next = 0
  const started = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) { next++; await once(make, names, body) }
  }))
  return count / ((performance.now() - started) / 1000)
}

async function main(): Promise<void> {
  const pool: Make = (names) => new StreamDigest(names)
  const inline: Make = (names) => new InlineDigest(names, Number.MAX_SAFE_INTEGER)
  console.log(`digest of one body: worker pool (StreamDigest) vs main thread (InlineDigest); ${CONCURRENCY} concurrent for ops/s`)
  console.log('size      digests       pool wall/busy us   inline wall/busy us   pool ops/s   inline ops/s')
  for (const size of SIZES_BYTES) {
    const body = randomFillSync(new Uint8Array(size))
    const count = Math.max(200, Math.min(5000, Math.floor(BYTES_PER_STEP / size)))
    for (const names of SETS) {
      const p = await sequential(pool, names, body, count)
      const i = await sequential(inline, names, body, count)
      const pc = await concurrent(pool, names, body, count)
      const ic = await concurrent(inline, names, body, count)
      console.log(`${`${size / KiB} KiB`.padEnd(9)} ${names.join('+').padEnd(12)} ${p.wallUs.toFixed(0).padStart(7)} / ${p.busyUs.toFixed(0).padStart(6)}     ${i.wallUs.toFixed(0).padStart(7)} / ${i.busyUs.toFixed(0).padStart(6)}     ${pc.toFixed(0).padStart(8)}     ${ic.toFixed(0).padStart(8)}`)
    }
  }
  await closeWorkerPool()
}

await main()
