/**
 * Goal: a worker reads block-file bytes into the caller's buffer without a copy: a shared
 * buffer (the datanode's and the client's pools) is filled in place and stays the caller's
 * (never moved, so V8 never sees a new ArrayBuffer per read), a plain one is moved to the
 * worker and back; a short file reads short, a missing one fails CHUNK_NOT_FOUND and leaves
 * a shared buffer usable.
 * Method: real files in a temp dir, the real Piscina pool.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { closeWorkerPool, runReadChunk } from '../../../datapath/workers/index.ts'
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

test.after(async () => {
  await closeWorkerPool()
  rmSync(dir, { recursive: true, force: true })
})

test.run()
