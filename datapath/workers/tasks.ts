/** @module
 * The tasks the worker pool runs, off the main thread: checksum a chunk, verify and write a
 * chunk to its block file, read a range of a block file (and verify it, for a reader in the
 * datanode's process), verify a chunk read from a datanode. Inputs are views of shared slabs
 * (no copy); results are plain objects, errors returned as codes (structuredClone drops classes).
 */
import { openSync, closeSync, writeSync, readSync, mkdirSync, constants } from 'node:fs'
import { dirname } from 'node:path'
import { movedBack } from './moved-back.ts'
import { computeChecksums, initChecksums, verifyChecksums } from '../../core/checksum.ts'
import type { ChecksumType } from '../../core/wire.ts'
import type { ErrorCodeName } from '../../core/errors.ts'
import { readErrorCode } from './read-errors.ts'

export type TaskResult<T = object> = ({ ok: true } & T) | { ok: false; code: ErrorCodeName; message: string }

export interface SlabRange {
  slab: SharedArrayBuffer | ArrayBuffer
  offset: number
  length: number
}

export interface ChecksumTask {
  type: ChecksumType
  bytesPerChecksum: number
  data: SlabRange
  /** Where the checksums go (same or another slab). */
  out: SlabRange
}

/** Verify, then write: a whole chunk, or a run of its windows (data starts on a window). */
export interface WriteChunkTask {
  path: string
  /** The block file already open for writing (a datanode's BlockFiles): used, not closed. */
  fd?: number
  fileOffset: number
  type: ChecksumType
  bytesPerChecksum: number
  data: SlabRange
  checksums: SlabRange
}

export interface ReadChunkTask {
  path: string
  fileOffset: number
  length: number
  /** A buffer the worker fills: an ArrayBuffer is handed back (transferred, not copied); a
   *  SharedArrayBuffer (a pooled one, borrowed until the task settles) is filled in place. */
  into: ArrayBuffer | SharedArrayBuffer
}

export interface VerifyChunkTask {
  type: ChecksumType
  bytesPerChecksum: number
  /** A read's body, data then checksums from offset 0: transferred in and moved back. An
   *  ArrayBuffer, not a view of one (Deno copies a view's bytes even when its buffer moves). */
  body: ArrayBuffer
  dataLength: number
  checksumsLength: number
}

/**
 * Read a range of a block file into a reader's shared slab and verify it against the block's
 * checksums of that range (a short-circuit read: the reader runs in the datanode's process).
 */
export interface ReadVerifyTask {
  path: string
  fileOffset: number
  /** The reader's slab, written in place from `into.offset` for `into.length` bytes. */
  into: SlabRange & { slab: SharedArrayBuffer }
  type: ChecksumType
  bytesPerChecksum: number
  /** The checksums of the range's windows, from the block's record (a few KiB, cloned). */
  checksums: Uint8Array
}

/** Verify a read's data in a shared slab against its checksums there, in place (no transfer). */
export interface VerifySlabTask {
  type: ChecksumType
  bytesPerChecksum: number
  data: SlabRange
  checksums: SlabRange
}

const view = (r: SlabRange) => new Uint8Array(r.slab, r.offset, r.length)
const ready = initChecksums()

export async function checksum(task: ChecksumTask): Promise<TaskResult<{ length: number }>> {
  await ready
  return { ok: true, length: computeChecksums(task.type, view(task.data), task.bytesPerChecksum, view(task.out)) }
}

export async function writeChunk(task: WriteChunkTask): Promise<TaskResult> {
  await ready
  const data = view(task.data)
  const bad = verifyChecksums(task.type, data, task.bytesPerChecksum, view(task.checksums))
  if (bad >= 0) return { ok: false, code: 'CHECKSUM_MISMATCH', message: `Cannot write chunk data at ${task.fileOffset}: the checksum of the window at block offset ${task.fileOffset + bad * task.bytesPerChecksum} does not match the data` }
  try {
    const fd = task.fd ?? openForWrite(task.path)
    try {
      let written = 0
      while (written < data.length) written += writeSync(fd, data, written, data.length - written, task.fileOffset + written)
    } finally { if (task.fd === undefined) closeSync(fd) }
    return { ok: true }
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    return { ok: false, code: e.code === 'ENOSPC' ? 'DISK_FULL' : 'IO_ERROR', message: `Cannot write chunk to block file: ${e.message}` }
  }
}

/** The block file, created with its folder on a block's first chunk: the folder is made only
 *  when the open finds it missing, not on every chunk. */
function openForWrite(path: string): number {
  const flags = constants.O_RDWR | constants.O_CREAT
  try {
    return openSync(path, flags, 0o644)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    mkdirSync(dirname(path), { recursive: true })
    return openSync(path, flags, 0o644)
  }
}

export function readChunk(task: ReadChunkTask): TaskResult<{ into: ArrayBuffer | SharedArrayBuffer; length: number }> {
  const r = readInto(task)
  return task.into instanceof SharedArrayBuffer ? r : movedBack(r, task.into)
}

function readInto(task: ReadChunkTask): TaskResult<{ into: ArrayBuffer | SharedArrayBuffer; length: number }> {
  const r = readFileRange(task.path, task.fileOffset, new Uint8Array(task.into, 0, task.length))
  return r.ok ? { ok: true, into: task.into, length: r.length } : r
}

/** Reads `into.length` bytes of the file from `fileOffset` (fewer at its end): how many. */
function readFileRange(path: string, fileOffset: number, into: Uint8Array): TaskResult<{ length: number }> {
  try {
    const fd = openSync(path, 'r')
    try {
      let read = 0
      while (read < into.length) {
        const n = readSync(fd, into, read, into.length - read, fileOffset + read)
        if (n === 0) break
        read += n
      }
      return { ok: true, length: read }
    } finally { closeSync(fd) }
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    return { ok: false, code: readErrorCode(e.code), message: `Cannot read block file: ${e.message}` }
  }
}

/** Reads the range into the reader's slab, then verifies what was read: the bytes read and the
 *  first window that does not match (-1 when none; a short read is the caller's to refuse). */
export async function readVerify(task: ReadVerifyTask): Promise<TaskResult<{ length: number; badWindow: number }>> {
  await ready
  const into = view(task.into)
  const r = readFileRange(task.path, task.fileOffset, into)
  if (!r.ok || r.length < into.length) return r.ok ? { ok: true, length: r.length, badWindow: -1 } : r
  return { ok: true, length: r.length, badWindow: verifyChecksums(task.type, into, task.bytesPerChecksum, task.checksums) }
}

/** The first window of the body's data that fails its checksum (-1 when none); the body goes
 *  back to the caller by transfer whatever the answer. */
export async function verifyChunk(task: VerifyChunkTask): Promise<TaskResult<{ badWindow: number; body: ArrayBuffer }>> {
  await ready
  const data = new Uint8Array(task.body, 0, task.dataLength)
  const checksums = new Uint8Array(task.body, task.dataLength, task.checksumsLength)
  return movedBack({ ok: true, badWindow: verifyChecksums(task.type, data, task.bytesPerChecksum, checksums), body: task.body }, task.body)
}

/** The first window of the data that fails its checksum (-1 when none), read in place in its slab. */
export async function verifySlab(task: VerifySlabTask): Promise<TaskResult<{ badWindow: number }>> {
  await ready
  return { ok: true, badWindow: verifyChecksums(task.type, view(task.data), task.bytesPerChecksum, view(task.checksums)) }
}
