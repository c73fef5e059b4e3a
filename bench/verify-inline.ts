/** @module
 * `node dist/bench/verify-inline.js`: what verifying a chunk read from a datanode costs the
 * main thread in the worker pool (runVerifyChunk, the buffer moved there and back) against on
 * the main thread (verifyChecksums), by chunk size, for each checksum type over 16 KiB windows
 * (smaller chunks are one window). Per chunk: wall time one at a time and the main thread's
 * busy time (event-loop utilization, so the worker's own hashing is not counted). The
 * measurement behind VERIFY_INLINE_BYTES_MAX (core/limits.ts).
 */
import { randomFillSync } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { checksumsLengthBytes, computeChecksums, initChecksums, verifyChecksums } from '../core/checksum.ts'
import type { ChecksumType } from '../core/wire.ts'
import { closeWorkerPool, runVerifyChunk } from '../datapath/workers/index.ts'

const KiB = 1024
const SIZES_BYTES = [4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1024 * KiB, 4096 * KiB]
const TYPES: ChecksumType[] = ['XXH64', 'CRC32C']
const BYTES_PER_CHECKSUM = 16 * KiB
/** Bytes verified per measurement, so each size runs about as long as the others. */
const BYTES_PER_STEP = 128 * 1024 * KiB

interface Body { buffer: ArrayBuffer; dataLength: number; checksumsLength: number }

function makeBody(type: ChecksumType, size: number): Body {
  const checksumsLength = checksumsLengthBytes(type, size, BYTES_PER_CHECKSUM)
  const buffer = new ArrayBuffer(size + checksumsLength)
  const data = randomFillSync(new Uint8Array(buffer, 0, size))
  computeChecksums(type, data, BYTES_PER_CHECKSUM, new Uint8Array(buffer, size, checksumsLength))
  return { buffer, dataLength: size, checksumsLength }
}

async function inPool(type: ChecksumType, body: Body): Promise<void> {
  const r = await runVerifyChunk({ type, bytesPerChecksum: BYTES_PER_CHECKSUM, body: body.buffer, dataLength: body.dataLength, checksumsLength: body.checksumsLength })
  if (r.badWindow >= 0) throw new Error('mismatch')
  body.buffer = r.body
}

async function inline(type: ChecksumType, body: Body): Promise<void> {
  const bad = verifyChecksums(type, new Uint8Array(body.buffer, 0, body.dataLength), BYTES_PER_CHECKSUM, new Uint8Array(body.buffer, body.dataLength, body.checksumsLength))
  if (bad >= 0) throw new Error('mismatch')
}

/** Microseconds of wall time and of main-thread busy time per chunk, one at a time. */
async function sequential(verify: typeof inline, type: ChecksumType, body: Body, count: number): Promise<{ wallUs: number; busyUs: number }> {
  for (let i = 0; i < Math.min(20, count); i++) await verify(type, body)
  const elu = performance.eventLoopUtilization()
  const started = performance.now()
  for (let i = 0; i < count; i++) await verify(type, body)
  const wallMs = performance.now() - started
  const busyMs = performance.eventLoopUtilization(elu).active
  return { wallUs: (wallMs * 1000) / count, busyUs: (busyMs * 1000) / count }
}

async function main(): Promise<void> {
  await initChecksums()
  console.log('verify one chunk read: worker pool (runVerifyChunk) vs main thread (verifyChecksums), 16 KiB windows')
  console.log('size      type      pool wall/busy us   inline wall/busy us')
  for (const size of SIZES_BYTES) {
    const count = Math.max(100, Math.min(5000, Math.floor(BYTES_PER_STEP / size)))
    for (const type of TYPES) {
      const body = makeBody(type, size)
      const p = await sequential(inPool, type, body, count)
      const i = await sequential(inline, type, body, count)
      console.log(`${`${size / KiB} KiB`.padEnd(9)} ${type.padEnd(8)} ${p.wallUs.toFixed(0).padStart(7)} / ${p.busyUs.toFixed(0).padStart(6)}     ${i.wallUs.toFixed(0).padStart(7)} / ${i.busyUs.toFixed(0).padStart(6)}`)
    }
  }
  await closeWorkerPool()
}

await main()
