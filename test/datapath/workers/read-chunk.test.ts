/**
 * Goal: a worker reads block-file bytes into the caller's buffer without a copy: a shared
 * buffer (the datanode's and the client's pools) is filled in place and stays the caller's
 * (never moved, so V8 never sees a new ArrayBuffer per read), a plain one is moved to the
 * worker and back; a short file reads short, a missing one fails CHUNK_NOT_FOUND and leaves
 * a shared buffer usable, an unreadable one IO_ERROR (UNAVAILABLE when the process runs short). A short-circuit read (readVerify) fills a reader's slab from an
 * offset in it, touches nothing around, and names the first window that does not match its
 * checksum (a byte changed on disk), -1 when all do.
 * Method: real files in a temp dir, the real Piscina pool, checksums made by core/checksum.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { computeChecksums, initChecksums } from '../../../core/checksum.ts'
import { closeWorkerPool, runReadChunk, runReadVerify } from '../../../datapath/workers/index.ts'
import { readErrorCode } from '../../../datapath/workers/read-errors.ts'
import { errorCode } from '../../helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'o3-read-chunk-'))
const file = join(dir, 'block')
const bytes = randomBytes(256 * 1024 + 5)
writeFileSync(file, bytes)

test('a shared buffer is filled in place and stays the caller\'s', async () => {
  const into = new SharedArrayBuffer(300 * 1024)
  const data = await runReadChunk({ path: file, fileOffset: 1000, length: 100_000, into })
  assert.is(data.buffer, into, 'the bytes are a view of the caller\'s own shared buffer')
  assert.is(into.byteLength, 300 * 1024)
  assert.ok(Buffer.from(data.buffer, data.byteOffset, data.length).equals(bytes.subarray(1000, 101_000)))
  // Read again into the same buffer: it was never detached.
  const again = await runReadChunk({ path: file, fileOffset: 0, length: 10, into })
  assert.ok(Buffer.from(again).equals(bytes.subarray(0, 10)))
})

test('a plain buffer moves to the worker and back', async () => {
  const into = new ArrayBuffer(300 * 1024)
  const data = await runReadChunk({ path: file, fileOffset: 5, length: 4096, into })
  assert.is(into.byteLength, 0, 'the caller\'s handle is detached: the memory moved')
  assert.is.not(data.buffer, into)
  assert.ok(Buffer.from(data).equals(bytes.subarray(5, 4101)))
})

test('a read past the end is short; a missing file fails CHUNK_NOT_FOUND and the shared buffer stays usable', async () => {
  const into = new SharedArrayBuffer(300 * 1024)
  const short = await runReadChunk({ path: file, fileOffset: bytes.length - 3, length: 100, into })
  assert.is(short.length, 3)
  assert.is(await errorCode(runReadChunk({ path: join(dir, 'none'), fileOffset: 0, length: 10, into })), 'CHUNK_NOT_FOUND')
  assert.is(into.byteLength, 300 * 1024)
})

// Catches: a process short of descriptors or memory taken for a replica that lost bytes (the
// datanode checks, and marks, a block on CHUNK_NOT_FOUND and IO_ERROR).
test('a file that cannot be read is IO_ERROR; descriptors or memory running short are UNAVAILABLE', async () => {
  assert.is(await errorCode(runReadChunk({ path: dir, fileOffset: 0, length: 10, into: new SharedArrayBuffer(16) })), 'IO_ERROR', 'a folder where the file was')
  assert.equal(['ENOENT', 'EIO', 'EISDIR', 'EMFILE', 'ENFILE', 'ENOMEM', 'EAGAIN', undefined].map(readErrorCode),
    ['CHUNK_NOT_FOUND', 'IO_ERROR', 'IO_ERROR', 'UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE', 'IO_ERROR'])
})

test('readVerify: a slab filled from an offset and verified; a changed byte names its window', async () => {
  await initChecksums()
  const window = 16 * 1024
  const at = 3 * window + 100, length = 5 * window
  const checksums = new Uint8Array(5 * 4)
  computeChecksums('CRC32C', bytes.subarray(at, at + length), window, checksums)
  const slab = new SharedArrayBuffer(length + 64)
  new Uint8Array(slab).fill(0xee)
  const into = { slab, offset: 32, length }
  const ok = await runReadVerify({ path: file, fileOffset: at, into, type: 'CRC32C', bytesPerChecksum: window, checksums })
  assert.equal(ok, { length, badWindow: -1 })
  assert.ok(Buffer.from(slab, 32, length).equals(bytes.subarray(at, at + length)), 'the range landed at the offset')
  assert.ok(new Uint8Array(slab, 0, 32).every((b) => b === 0xee) && new Uint8Array(slab, 32 + length).every((b) => b === 0xee), 'nothing around it written')
  // The same range of a file with one byte changed in its fourth window.
  const changed = join(dir, 'changed')
  const copy = Buffer.from(bytes)
  copy[at + 3 * window + 9] ^= 0x40
  writeFileSync(changed, copy)
  assert.equal(await runReadVerify({ path: changed, fileOffset: at, into, type: 'CRC32C', bytesPerChecksum: window, checksums }), { length, badWindow: 3 })
  // Past the file's end: short, not verified (the caller refuses it).
  const short = await runReadVerify({ path: file, fileOffset: bytes.length - 10, into, type: 'CRC32C', bytesPerChecksum: window, checksums })
  assert.is(short.length, 10)
  assert.is(await errorCode(runReadVerify({ path: join(dir, 'none'), fileOffset: 0, into, type: 'CRC32C', bytesPerChecksum: window, checksums })), 'CHUNK_NOT_FOUND')
})

test.after(async () => {
  await closeWorkerPool()
  rmSync(dir, { recursive: true, force: true })
})

test.run()
