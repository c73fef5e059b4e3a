/** @module
 * The digests of a small body (S3 ETag MD5, SHA-256 of a signed payload, x-amz-checksum-*
 * CRC32/CRC32C/SHA-1/SHA-256) computed on the main thread as the pieces arrive, for bodies of
 * at most DIGEST_INLINE_BYTES_MAX: below that, handing the bytes to the worker pool costs the
 * main thread more than hashing them (bench/digest-inline.ts measures both). Larger bodies go
 * to StreamDigest in the pool, as before. `bodyDigest` picks one by the declared length.
 * CRC-64/NVME has no native hasher here, only a WASM one: it always runs in the pool.
 */
import { createHash, type Hash } from 'node:crypto'
import { crc32, crc32c } from '@node-rs/crc32'
import { assert } from '../../core/assert.ts'
import { DIGEST_INLINE_BYTES_MAX } from '../../core/limits.ts'
import type { DigestName } from '../workers/index.ts'
import { StreamDigest } from './digests.ts'

/** What payload.ts needs of a digest: StreamDigest's two methods. */
export interface BodyDigest {
  update(bytes: Uint8Array): Promise<void>
  finish(): Promise<Partial<Record<DigestName, Buffer>>>
}

/**
 * Hashes at most DIGEST_INLINE_BYTES_MAX bytes on the calling thread. update() reads the
 * bytes before it returns and keeps no reference to them.
 */
export class InlineDigest implements BodyDigest {
  private readonly hashes: Partial<Record<'md5' | 'sha1' | 'sha256', Hash>> = {}
  private readonly crcs: Partial<Record<'crc32' | 'crc32c', number>> = {}
  private hashedBytes = 0

  /** `bytesMax`: the most it will hash (a benchmark measures past the limit). */
  constructor(names: DigestName[], private readonly bytesMax = DIGEST_INLINE_BYTES_MAX) {
    for (const n of names) {
      assert(n !== 'crc64nvme', 'CRC-64/NVME is hashed in the worker pool')
      if (n === 'crc32' || n === 'crc32c') this.crcs[n] = 0
      else this.hashes[n] = createHash(n)
    }
  }

  async update(bytes: Uint8Array): Promise<void> {
    this.hashedBytes += bytes.length
    assert(this.hashedBytes <= this.bytesMax, 'inline digest past its limit')
    for (const h of Object.values(this.hashes)) h.update(bytes)
    if (this.crcs.crc32 !== undefined) this.crcs.crc32 = crc32(bytes, this.crcs.crc32)
    if (this.crcs.crc32c !== undefined) this.crcs.crc32c = crc32c(bytes, this.crcs.crc32c)
  }

  async finish(): Promise<Partial<Record<DigestName, Buffer>>> {
    const out: Partial<Record<DigestName, Buffer>> = {}
    for (const [name, h] of Object.entries(this.hashes)) out[name as DigestName] = h.digest()
    // S3 sends a CRC as its 4 bytes big-endian, base64 coded (as hash-wasm's binary digest).
    for (const [name, crc] of Object.entries(this.crcs)) {
      const b = Buffer.allocUnsafe(4)
      b.writeUInt32BE(crc >>> 0)
      out[name as DigestName] = b
    }
    return out
  }
}

/** The digest for a body of `sizeBytes` (its declared length): inline when small, else in the pool. */
export function bodyDigest(names: DigestName[], sizeBytes: number): BodyDigest {
  return sizeBytes <= DIGEST_INLINE_BYTES_MAX && !names.includes('crc64nvme') ? new InlineDigest(names) : new StreamDigest(names)
}
