/** @module
 * Chunk checksums, one per bytes-per-checksum window (Ozone's ChecksumData): CRC32C (native,
 * @node-rs/crc32), XXH64 (xxhash-wasm), BLAKE3 (@napi-rs/blake-hash) or NONE. Borrows the
 * input bytes; never copies them. Callers run this in a worker for large chunks.
 */
import { crc32c } from '@node-rs/crc32'
import { blake3 } from '@napi-rs/blake-hash'
import xxhash from 'xxhash-wasm'
import { assert } from './assert.ts'
import type { ChecksumType } from './wire.ts'

export function checksumSizeBytes(type: ChecksumType): number {
  switch (type) {
    case 'CRC32C': return 4
    case 'XXH64': return 8
    case 'BLAKE3': return 32
    case 'NONE': return 0
  }
}

let xxh64: ((input: Uint8Array, seed?: bigint) => bigint) | undefined

/** Loads the WASM hasher; call once per thread before computeChecksums with XXH64. */
export async function initChecksums(): Promise<void> {
  if (xxh64 === undefined) xxh64 = (await xxhash()).h64Raw
}

/** Bytes needed for the checksums of `lengthBytes` of data. */
export function checksumsLengthBytes(type: ChecksumType, lengthBytes: number, bytesPerChecksum: number): number {
  return Math.ceil(lengthBytes / bytesPerChecksum) * checksumSizeBytes(type)
}

/**
 * Writes the checksum of every bytesPerChecksum window of `data` into `out` (borrowed, not
 * kept) and returns the bytes written.
 */
export function computeChecksums(type: ChecksumType, data: Uint8Array, bytesPerChecksum: number, out: Uint8Array): number {
  const size = checksumSizeBytes(type)
  const count = Math.ceil(data.length / bytesPerChecksum)
  assert(out.length >= count * size, 'checksum output too small')
  if (size === 0) return 0
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  for (let i = 0; i < count; i++) {
    const window = data.subarray(i * bytesPerChecksum, Math.min(data.length, (i + 1) * bytesPerChecksum))
    switch (type) {
      case 'CRC32C': view.setUint32(i * 4, crc32c(window as Buffer)); break
      case 'XXH64':
        assert(xxh64 !== undefined, 'initChecksums() not awaited')
        view.setBigUint64(i * 8, xxh64(window)); break
      case 'BLAKE3': out.set(blake3(window as Buffer), i * 32); break
    }
  }
  return count * size
}

/**
 * Verifies `data` against `expected` checksums, window by window; returns the index of the
 * first bad window, or -1 when all match.
 */
export function verifyChecksums(type: ChecksumType, data: Uint8Array, bytesPerChecksum: number, expected: Uint8Array): number {
  const size = checksumSizeBytes(type)
  if (size === 0) return -1
  const count = Math.ceil(data.length / bytesPerChecksum)
  if (expected.length < count * size) return 0
  const actual = new Uint8Array(count * size)
  computeChecksums(type, data, bytesPerChecksum, actual)
  for (let i = 0; i < count; i++) {
    for (let b = 0; b < size; b++) if (actual[i * size + b] !== expected[i * size + b]) return i
  }
  return -1
}
