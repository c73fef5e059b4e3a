/** @module
 * `node dist/bench/verify-inline.js`: what verifying a chunk read from a datanode costs the
 * main thread in the worker pool (runVerifyChunk, the buffer moved there and back) against on
 * the main thread (verifyChecksums), by chunk size, for each checksum type over 16 KiB windows
 * (smaller chunks are one window). Per chunk: wall time one at a time and the main thread's
 * busy time (event-loop utilization, so the worker's own hashing is not counted). The
 * measurement behind VERIFY_INLINE_BYTES_MAX (core/limits.ts). Then, per 4 MiB chunk, the CPU
 * time of all threads when the bytes land (a copy, as from the socket) in a fresh buffer or in
 * a reused (pooled) one, verified inline or in the pool: what the read buffers' pooling buys.
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

/** CPU microseconds (all threads) per chunk of `body`'s size: the bytes copied into a fresh
 *  or a reused buffer, then verified inline or in the pool; interleaved rounds. */
async function cpuPerChunk(type: ChecksumType, body: Body): Promise<Record<string, string[]>> {
  const src = new Uint8Array(body.buffer.slice(0))
  const total = src.length
  let pooled = new ArrayBuffer(total)
  const check = (bad: number) => { if (bad >= 0) throw new Error('mismatch') }
  const verifyInline = (b: ArrayBuffer) => check(verifyChecksums(type, new Uint8Array(b, 0, body.dataLength), BYTES_PER_CHECKSUM, new Uint8Array(b, body.dataLength, body.checksumsLength)))
  const verifyInPool = async (b: ArrayBuffer) => {
    const r = await runVerifyChunk({ type, bytesPerChecksum: BYTES_PER_CHECKSUM, body: b, dataLength: body.dataLength, checksumsLength: body.checksumsLength })
    check(r.badWindow)
    return r.body
  }
  const fresh = () => { const b = Buffer.allocUnsafe(total); b.set(src); return b.buffer as ArrayBuffer }
  const cases: Record<string, () => Promise<void>> = {
    'fresh, inline': async () => verifyInline(fresh()),
    'fresh, pool': async () => { await verifyInPool(fresh()) },
    'pooled, inline': async () => { new Uint8Array(pooled).set(src); verifyInline(pooled) },
    'pooled, pool': async () => { new Uint8Array(pooled).set(src); pooled = await verifyInPool(pooled) },
  }
  const out: Record<string, string[]> = {}
  const count = 60
  for (let round = 0; round < 3; round++) {
    for (const [name, f] of Object.entries(cases)) {
      for (let i = 0; i < 5; i++) await f()
      const cpu = process.cpuUsage()
      for (let i = 0; i < count; i++) await f()
      const used = process.cpuUsage(cpu)
      ;(out[name] ??= []).push(((used.user + used.system) / count).toFixed(0))
    }
  }
  return out
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
  console.log('\nCPU of all threads per 4 MiB chunk (us, 3 interleaved rounds): bytes copied into a fresh or a pooled buffer, verified inline or in the pool')
  for (const type of TYPES) {
    for (const [name, us] of Object.entries(await cpuPerChunk(type, makeBody(type, 4096 * KiB)))) console.log(`${type.padEnd(8)} ${name.padEnd(16)} ${us.join(', ')}`)
  }
  await closeWorkerPool()
}

await main()
